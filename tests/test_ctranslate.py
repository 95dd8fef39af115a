"""The CTranslate2 backend (the CPU default) and ``generate_batch`` on every installed backend, with the tiny
test model: real conversion, real CTranslate2, real transformers."""

from __future__ import annotations

import importlib.util
import json
import time

import httpx
import pytest
from agent_helpers import make_full_model, make_lora_adapter, make_tiny_model_dir, respx_for_openai

from agent.core.adapters import read_active, write_active
from agent.core.errors import ModelError
from agent.core.prompt import Example
from agent.models.base import CypherGenerator, Generation, PromptInput
from agent.models.factory import make_generator
from agent.models.local import merged_if_ready

SCHEMA = "Node properties:\nCustomer {name: STRING}\nRelationship properties:\nThe relationships:\n"
PROMPTS = [
    PromptInput("How many customers?", SCHEMA),
    PromptInput("Which products cost more than 10?", SCHEMA, [Example("a?", "MATCH (a) RETURN a")]),
    PromptInput("q?", SCHEMA),
]
needs_ct2 = pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None, reason="ctranslate2 missing")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def _local(settings_for, home, tiny_dir, backend, **kw):
    values = {"base_model": str(tiny_dir), "temperature": 0.0, "max_new_tokens": 8, "adapter": "none",
              "model_backend": backend, "ct2_quantization": "float32", **kw}
    return make_generator(settings_for(home, **values))


# --- generate_batch on every installed backend ---------------------------------------------------------
LOCAL_BACKENDS = [
    "transformers",
    pytest.param("ctranslate2", marks=needs_ct2),
    pytest.param("llamacpp", marks=pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")),
]


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_generate_batch_answers_each_prompt_as_generate_does(settings_for, tmp_path, tiny_dir, backend):
    if backend == "llamacpp":
        pytest.skip("the llamacpp backend serves GGUF bases only; the tiny test model has none")
    gen = _local(settings_for, tmp_path / "h", tiny_dir, backend)
    assert isinstance(gen, CypherGenerator)
    single = [gen.generate(p.question, p.schema_text, p.examples) for p in PROMPTS]
    told = []
    greedy = gen.generate_batch(PROMPTS, n=2, on_ready=lambda i, gens: told.append((i, gens)))
    assert sorted(told, key=lambda t: t[0]) == list(enumerate(greedy))  # each prompt once, as returned
    assert [[g.text for g in replies] for replies in greedy] == [[s, s] for s in single]
    assert all(isinstance(g, Generation) and isinstance(g.logprob, float) for r in greedy for g in r)

    sampled = gen.generate_batch(PROMPTS, n=3, temperature=1.5, max_new_tokens=6)
    assert [len(r) for r in sampled] == [3, 3, 3]
    if backend == "transformers":  # the batch's steps are traced: a row that never stops shows as 6 here
        last = gen.traces[-1]
        assert last.backend == "transformers-batch" and 1 <= last.new_tokens <= 6 and last.total_ms > 0
        # each row's length beside the batch's steps: the batch decodes until its longest row stops
        assert len(last.row_tokens) == 9 and max(last.row_tokens) == last.new_tokens
        assert last.to_dict()["row_tokens"] == last.row_tokens
    texts = {g.text for r in sampled for g in r}
    assert len(texts) > 1  # sampling at a high temperature from a random model: not all the same reply
    assert gen.generate_batch([], n=2) == []


def test_generate_batch_on_the_openai_compatible_backend(settings):
    """No local model: one request per reply to the server (here a recorded vLLM reply)."""
    from agent.models.openai_compat import OpenAICompatGenerator

    reply = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "MATCH (n) RETURN n"},
                          "finish_reason": "stop"}]}
    s = settings.model_copy(update={"model_backend": "openai", "openai_model": "m",
                                    "openai_base_url": "http://vllm.test:8000/v1"})
    with respx_for_openai() as mock:
        route = mock.post("http://vllm.test:8000/v1/chat/completions").mock(
            return_value=httpx.Response(200, json=reply))
        told = []
        out = OpenAICompatGenerator(s).generate_batch(PROMPTS[:2], n=2, on_ready=lambda *t: told.append(t))
    assert [[g.text for g in r] for r in out] == [["MATCH (n) RETURN n"] * 2] * 2
    assert told == list(enumerate(out))
    assert len(route.calls) == 4
    assert "Question: a?" in json.loads(route.calls[2].request.content)["messages"][0]["content"]


# --- CTranslate2 ------------------------------------------------------------------------------------
@needs_ct2
def test_ctranslate2_answers_as_transformers_does_with_the_adapter_merged(settings_for, tmp_path, tiny_dir):
    adapter = make_lora_adapter(tiny_dir, tmp_path / "my-adapter", seed=3)
    kw = {"adapter": str(adapter), "max_new_tokens": 10}
    ct2 = _local(settings_for, tmp_path / "h", tiny_dir, "ctranslate2", **kw)
    hf = _local(settings_for, tmp_path / "h", tiny_dir, "transformers", **kw)
    base = _local(settings_for, tmp_path / "h", tiny_dir, "ctranslate2")
    for p in PROMPTS:
        want = hf.generate(p.question, p.schema_text, p.examples)
        assert ct2.generate(p.question, p.schema_text, p.examples) == want
    assert [ct2.generate(p.question, SCHEMA) for p in PROMPTS] != [base.generate(p.question, SCHEMA)
                                                                   for p in PROMPTS]
    assert ct2.version == "tiny-llama+my-adapter"
    trace = ct2.traces[-1]
    assert trace.backend == "ctranslate2" and trace.prompt_tokens > trace.cached_prompt_tokens > 0
    assert 0 < trace.new_tokens <= 11 and trace.total_ms >= trace.prefill_ms + trace.decode_ms
    assert hf.traces[-1].new_tokens > 0 and hf.traces[-1].cached_prompt_tokens == 0


@pytest.mark.parametrize("tokens, cut", [
    (["<|im_start|>", "system", "S", "<|im_end|>", "<|im_start|>", "user", "Q", "<|im_end|>",
      "<|im_start|>", "assistant", "Ċ"], 4),
    (["<bos>", "<start_of_turn>", "user", "S", "Q", "<end_of_turn>", "<start_of_turn>", "model"], 1),
    (["<|im_start|>", "user", "Q", "<|im_end|>", "<|im_start|>", "assistant"], 0),
    (["a", "b"], 0),
])
def test_the_static_prompt_ends_where_the_question_starts(tokens, cut):
    from agent.models.ctranslate import split_static

    assert split_static(tokens) == cut


@needs_ct2
def test_the_system_turn_is_cached_once_for_every_question(settings_for, tmp_path, tiny_dir):
    gen = _local(settings_for, tmp_path / "h", tiny_dir, "ctranslate2")
    for q in ("How many customers?", "Which customers live in Berlin?"):
        gen.generate(q, SCHEMA)
    assert len(gen._statics) == 1
    trace = gen.traces[-1]
    assert trace.prompt_tokens - trace.cached_prompt_tokens > 5  # the question and the turn headers


OTHER_SCHEMA = "Node properties:\nProduct {title: STRING, price: FLOAT}\nRelationship properties:\n" \
    "The relationships:\n(:Customer)-[:BOUGHT]->(:Product)\n"


@needs_ct2
def test_the_prefix_cache_writes_the_replies_of_the_uncached_path(settings_for, tmp_path, tiny_dir):
    """Greedy replies with the system turn's state reused equal those computed from the whole prompt, for
    several questions on one schema and after the schema changed (a new static prompt, not the old state)."""
    kw = {"adapter": str(make_lora_adapter(tiny_dir, tmp_path / "a", seed=3)), "max_new_tokens": 12}
    cached = _local(settings_for, tmp_path / "h", tiny_dir, "ctranslate2", **kw)
    whole = _local(settings_for, tmp_path / "h", tiny_dir, "ctranslate2", ct2_prefix_cache=False, **kw)
    asks = [(q, schema) for schema in (SCHEMA, OTHER_SCHEMA)
            for q in ("How many customers?", "Which customers live in Berlin?", "q?")]
    replies = [cached.generate(q, schema) for q, schema in asks]
    assert replies == [whole.generate(q, schema) for q, schema in asks]
    assert all(replies) and replies[:3] != replies[3:]  # the schema reaches the reply: old state would show
    assert len(cached._statics) == 2 and not whole._statics
    assert cached.traces[-1].cached_prompt_tokens > 0 and whole.traces[-1].cached_prompt_tokens == 0
    batched = cached.generate_batch([PromptInput(q, schema) for q, schema in asks])
    assert [r[0].text for r in batched] == replies


@needs_ct2
def test_the_thread_count_changes_no_reply(settings_for, tmp_path, tiny_dir):
    one, two = (_local(settings_for, tmp_path / "h", tiny_dir, "ctranslate2", ct2_threads=k) for k in (1, 2))
    assert [one.generate(p.question, p.schema_text, p.examples) for p in PROMPTS] == \
        [two.generate(p.question, p.schema_text, p.examples) for p in PROMPTS]
    assert (one._gen, two._gen) != (None, None)


@needs_ct2
def test_conversion_is_cached_and_redone_when_the_live_adapter_changes(settings_for, tmp_path, tiny_dir):
    from agent.models import ctranslate

    home = tmp_path / "home"
    make_lora_adapter(tiny_dir, home / "adapters" / "v0001", seed=1)
    make_lora_adapter(tiny_dir, home / "adapters" / "v0002", seed=2)
    gen = _local(settings_for, home, tiny_dir, "ctranslate2", adapter="active")
    base_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+base"

    write_active(home, "v0001")
    v1_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+v0001" and v1_out != base_out
    v1_dir = gen._path
    assert (v1_dir / ctranslate.MARKER).is_file()
    stamp = (v1_dir / "model.bin").stat().st_mtime_ns
    assert ctranslate.ensure_converted(gen.settings, gen._loaded) == v1_dir  # cached: not converted again
    assert (v1_dir / "model.bin").stat().st_mtime_ns == stamp

    time.sleep(0.01)
    write_active(home, "v0002")
    assert gen.generate("q?", SCHEMA) != v1_out and gen.version == "tiny-llama+v0002"
    write_active(home, "v0001")
    assert gen.generate("q?", SCHEMA) == v1_out and gen._path == v1_dir  # the kept conversion, reused
    assert not [p for p in v1_dir.parent.iterdir() if ".tmp-" in p.name]


@needs_ct2
@pytest.mark.parametrize("backend", ["ctranslate2", "auto"])
def test_promotion_converts_the_new_live_adapter(settings_for, tmp_path, tiny_dir, backend):
    from agent.models import ctranslate
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    _promotable(tiny_dir, home)
    s = settings_for(home, base_model=str(tiny_dir), adapter="active", model_backend=backend, device="cpu",
                     ct2_quantization="float32")
    assert AdapterRegistry(home, s).promote("v0001") == "v0001"
    ref = read_active(home)
    assert (ctranslate.converted_dir(s, ref, "float32") / ctranslate.MARKER).is_file()
    assert merged_if_ready(s, ref) is not None  # converted from the merged copy, which stays for transformers
    AdapterRegistry(home, s.model_copy(update={"model_backend": "transformers"})).rollback()
    assert read_active(home) is None


def _promotable(tiny_dir, home, version="v0001"):
    make_lora_adapter(tiny_dir, home / "adapters" / version, seed=1)
    (home / "adapters" / version / "meta.json").write_text(json.dumps({"version": version}))


def test_promotion_on_a_cpu_with_transformers_writes_the_merged_copy(settings_for, tmp_path, tiny_dir):
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    _promotable(tiny_dir, home)
    s = settings_for(home, base_model=str(tiny_dir), adapter="active", model_backend="transformers",
                     device="cpu", temperature=0.0, max_new_tokens=8)
    AdapterRegistry(home, s).promote("v0001")
    assert merged_if_ready(s, read_active(home)) is not None
    gen = make_generator(s)
    gen.generate("q?", SCHEMA)
    assert gen._baked and gen._model_path == merged_if_ready(s, read_active(home))  # no merge in memory


@needs_ct2
def test_a_failed_conversion_leaves_the_promotion_and_auto_answers_from_the_merged_copy(
        settings_for, tmp_path, tiny_dir, monkeypatch, caplog):
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    _promotable(tiny_dir, home)
    s = settings_for(home, base_model=str(tiny_dir), adapter="active", model_backend="auto", device="cpu",
                     ct2_quantization="float32", temperature=0.0, max_new_tokens=8)
    want = make_generator(s.model_copy(update={"adapter": "v0001", "model_backend": "transformers"}))
    want = want.generate("q?", SCHEMA)  # merged in memory: nothing promoted, nothing on disk yet

    def broken(self, *_a, **_k):
        raise RuntimeError("unsupported architecture\nsecond line")

    from ctranslate2.converters import TransformersConverter

    monkeypatch.setattr(TransformersConverter, "convert", broken)
    with caplog.at_level("WARNING", logger="finetune.registry"):
        assert AdapterRegistry(home, s).promote("v0001") == "v0001"
    assert read_active(home).version == "v0001"
    (warned,) = [r for r in caplog.records if r.name == "finetune.registry"]
    assert "unsupported architecture" in warned.getMessage() and "\n" not in warned.getMessage()
    baked = merged_if_ready(s, read_active(home))
    assert baked is not None  # merged before the conversion failed

    gen = make_generator(s)
    assert gen.generate("q?", SCHEMA) == want
    assert gen.traces[-1].backend == "transformers" and gen.serving()._model_path == baked


@needs_ct2
def test_auto_picks_ctranslate2_on_a_cpu_where_llama_cpp_does_not_serve(settings, tmp_path, monkeypatch):
    """On a CPU ``auto`` serves a Llama base through llama.cpp (tests/test_xllamacpp.py); a base llama.cpp
    does not serve (a model folder), or any base without xllamacpp, through CTranslate2, with transformers
    behind it."""
    from agent.models import llamacpp
    from agent.models.ctranslate import CTranslate2Generator
    from agent.models.factory import FallbackGenerator, make_generator
    from agent.models.local import TransformersGenerator

    auto = settings.model_copy(update={"model_backend": "auto"})
    folder = make_generator(auto.model_copy(update={"device": "cpu", "base_model": str(tmp_path)}))
    assert isinstance(folder, FallbackGenerator) and isinstance(folder.primary, CTranslate2Generator)
    real = llamacpp.installed
    monkeypatch.setattr(llamacpp, "installed", lambda name: name != "xllamacpp" and real(name))
    cpu = make_generator(auto.model_copy(update={"device": "cpu"}))
    assert isinstance(cpu, FallbackGenerator) and isinstance(cpu.primary, CTranslate2Generator)
    assert cpu.backend == "CTranslate2"
    assert isinstance(make_generator(auto.model_copy(update={"device": "cuda"})), TransformersGenerator)
    assert isinstance(make_generator(auto.model_copy(update={"model_backend": "ctranslate2"})),
                      CTranslate2Generator)


@needs_ct2
def test_auto_falls_back_to_transformers_when_the_conversion_fails(settings_for, tmp_path, tiny_dir,
                                                                  monkeypatch, caplog):
    from agent.models import ctranslate

    def broken(*_a, **_k):
        raise RuntimeError("unsupported architecture\nsecond line")

    monkeypatch.setattr(ctranslate, "_convert", broken)
    gen = _local(settings_for, tmp_path / "h", tiny_dir, "auto", device="cpu")
    want = _local(settings_for, tmp_path / "h", tiny_dir, "transformers").generate("q?", SCHEMA)
    with caplog.at_level("WARNING", logger="agent.models.factory"):
        assert gen.generate("q?", SCHEMA) == want
        assert [g.text for g in gen.generate_batch([PROMPTS[2]])[0]] == [want]
    warned = [r for r in caplog.records if r.name == "agent.models.factory"]
    assert len(warned) == 1 and warned[0].exc_info is None
    msg = warned[0].getMessage()
    assert "unsupported architecture" in msg and "transformers answers" in msg and "\n" not in msg
    assert gen.version == "tiny-llama+base" and gen.traces[-1].backend == "transformers-batch"  # the batch


@needs_ct2
def test_auto_tries_ctranslate2_again_for_the_next_live_version(settings_for, tmp_path, tiny_dir, monkeypatch,
                                                                caplog):
    """CTranslate2 refusing one version (its conversion raising for v0001 only, a test double at the
    converter) sends that version to transformers; promoting v0002 in the same process brings CTranslate2
    back, a rollback to v0001 sends it to transformers again."""
    from agent.models import ctranslate
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    _promotable(tiny_dir, home, "v0001")
    _promotable(tiny_dir, home, "v0002")
    real = ctranslate._convert

    def refuses_v0001(settings, ref, quantization, out):
        if ref is not None and ref.version == "v0001":
            raise RuntimeError("unsupported layer")
        return real(settings, ref, quantization, out)

    monkeypatch.setattr(ctranslate, "_convert", refuses_v0001)
    gen = _local(settings_for, home, tiny_dir, "auto", device="cpu", adapter="active")
    s = gen.primary.settings
    registry = AdapterRegistry(home, s.model_copy(update={"model_backend": "ctranslate2"}))
    registry.promote("v0001")
    with caplog.at_level("INFO", logger="agent.models.factory"):
        gen.generate("q?", SCHEMA)
        assert gen.backend == "transformers" and gen.version == "tiny-llama+v0001"
        registry.promote("v0002")
        reply = gen.generate("q?", SCHEMA)
        assert gen.backend == "CTranslate2" and gen.traces[-1].backend == "ctranslate2"
        assert gen.version == "tiny-llama+v0002" and gen._fallback is None
        want = _local(settings_for, home, tiny_dir, "transformers", device="cpu", adapter="v0002")
        assert reply == want.generate("q?", SCHEMA)  # float32: transformers' reply
        assert registry.rollback() == "v0001"
        gen.generate("q?", SCHEMA)
        assert gen.backend == "transformers" and gen.version == "tiny-llama+v0001"
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.models.factory"]
    assert len(lines) == 3 and "CTranslate2 serves tiny-llama+v0002 again" in lines[1]
    assert all("unsupported layer" in m and "transformers answers" in m for m in (lines[0], lines[2]))


def test_auto_without_the_package_is_transformers_with_one_line(settings_for, tmp_path, tiny_dir,
                                                                monkeypatch, caplog):
    from agent.models import ctranslate
    from agent.models.local import TransformersGenerator

    monkeypatch.setattr(ctranslate, "available", lambda: False)
    with caplog.at_level("WARNING", logger="agent.models.factory"):
        gen = _local(settings_for, tmp_path / "h", tiny_dir, "auto", device="cpu")
    assert isinstance(gen, TransformersGenerator)
    warned = [r.getMessage() for r in caplog.records if r.name == "agent.models.factory"]
    assert len(warned) == 1 and "pip install ctranslate2" in warned[0]


def test_missing_ctranslate2_is_a_clear_error(settings_for, tmp_path, tiny_dir, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ct2(name, *a, **k):
        if name == "ctranslate2" or name.startswith("ctranslate2."):
            raise ImportError("No module named 'ctranslate2'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ct2)
    from agent.models.ctranslate import CTranslate2Generator

    gen = CTranslate2Generator(settings_for(tmp_path / "h", base_model=str(tiny_dir), adapter="none"))
    with pytest.raises(ModelError, match="pip install ctranslate2"):
        gen.generate("q?", SCHEMA)


@needs_ct2
def test_a_promoted_full_model_is_converted_and_answers_as_transformers(settings_for, tmp_path, tiny_dir):
    """What ``cypherloop bootstrap`` promotes is a full fine-tune: the promotion converts it, under ``auto``
    on a CPU, and CTranslate2 then serves it with transformers' replies (float32)."""
    from agent.models import ctranslate
    from finetune.registry import AdapterRegistry

    full = make_full_model(tiny_dir, tmp_path / "full")
    home = tmp_path / "home"
    s = settings_for(home, base_model=str(tiny_dir), adapter="active", model_backend="auto", device="cpu",
                     ct2_quantization="float32", temperature=0.0, max_new_tokens=8)
    reg = AdapterRegistry(home, s)
    v = reg.add(full, {"graph": "shop"})
    reg.promote(v)
    from agent.core.adapters import read_active

    target = ctranslate.converted_dir(s, read_active(home), "float32")
    assert (target / ctranslate.MARKER).is_file()
    ct2 = _local(settings_for, home, tiny_dir, "auto", adapter="active", device="cpu", max_new_tokens=8)
    hf = _local(settings_for, home, tiny_dir, "transformers", adapter="active", max_new_tokens=8)
    for p in PROMPTS:
        assert ct2.generate(p.question, p.schema_text, p.examples) == hf.generate(p.question, p.schema_text,
                                                                                  p.examples)
    assert ct2.primary._path == target and ct2.version == f"tiny-llama+{v}"


@needs_ct2
def test_auto_prepares_ahead_like_the_other_local_backends(settings_for, tmp_path, tiny_dir):
    """``ask`` loads the model in the background and ``warm`` loads it ahead through ``prepare``: under
    ``auto`` on a CPU (the default there) that must load CTranslate2's model, not skip it."""
    gen = _local(settings_for, tmp_path / "h", tiny_dir, "auto", device="cpu")
    assert gen.primary._gen is None
    gen.prepare(keep=False)
    assert gen.primary._gen is not None and gen.serving() is gen.primary


def test_the_tokenizer_is_autotokenizers_own_class_and_prompt_without_torch(tiny_dir):
    """CTranslate2 serves with the class ``AutoTokenizer`` picks and the same prompt ids, but loads it without
    importing torch (AutoTokenizer's model registry does: seconds of a cold ``ask``)."""
    import subprocess
    import sys
    from pathlib import Path

    from transformers import AutoTokenizer

    from agent.core.prompt import prompt_token_ids
    from agent.models.ctranslate import load_tokenizer

    ours, auto = load_tokenizer(tiny_dir), AutoTokenizer.from_pretrained(str(tiny_dir))
    assert type(ours) is type(auto)
    messages = [{"role": "system", "content": "Schema:\n" + SCHEMA},
                {"role": "user", "content": "Wie viele Kunden?"}]
    assert prompt_token_ids(ours, messages) == prompt_token_ids(auto, messages)
    code = ("import sys; from pathlib import Path; from agent.models.ctranslate import load_tokenizer; "
            f"load_tokenizer(Path({str(tiny_dir)!r})); print('torch' in sys.modules)")
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.split()[-1] == "False"


# --- sliding-window models (Gemma 3) ------------------------------------------------------------------
LONG_SCHEMA = "Node properties:\n" + "".join(f"Label{i} {{name: STRING, city: STRING}}\n" for i in range(12))


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    """A tiny Gemma 3 (a local and a global layer) whose sliding window a question on ``SCHEMA`` fits and one
    on ``LONG_SCHEMA`` does not: (its folder, the window)."""
    import copy

    from agent_helpers import gemma_like_tokenizer, make_tiny_gemma_dir

    from agent.core.prompt import prompt_token_ids
    from agent.models.local import default_chat_template

    tok = copy.deepcopy(gemma_like_tokenizer())
    tok.chat_template = default_chat_template(tok)
    short, long = (len(prompt_token_ids(tok, PromptInput("q?", s).messages())) for s in (SCHEMA, LONG_SCHEMA))
    window = short + 12  # decoding past the window is computed right: only the prompt must fit
    assert long > window
    return make_tiny_gemma_dir(tmp_path_factory.mktemp("gemma") / "tiny-gemma", sliding_window=window), window


@pytest.mark.parametrize("config, window", [
    ({"sliding_window": 512, "layer_types": ["sliding_attention", "full_attention"]}, 512),  # Gemma 3
    ({"text_config": {"sliding_window": 1024, "layer_types": ["sliding_attention"]}}, 1024),  # multimodal
    ({"sliding_window": 4096, "layer_types": ["full_attention"] * 2}, None),  # Qwen2, use_sliding_window off
    ({"hidden_size": 576}, None),  # Llama, SmolLM2
])
def test_the_sliding_window_is_read_from_models_that_have_local_layers(tmp_path, config, window):
    from agent.models.ctranslate import sliding_window

    (tmp_path / "config.json").write_text(json.dumps(config))
    assert sliding_window(tmp_path) == window
    assert sliding_window(tmp_path / "missing") is None


@needs_ct2
def test_ctranslate2_serves_gemma3_as_transformers_does_and_refuses_a_prompt_past_its_window(
        settings_for, tmp_path, tiny_gemma):
    """CTranslate2 converts Gemma 3 and writes transformers' replies while the prompt fits the sliding
    window; a longer prompt, which it would compute wrongly (docs/BENCHMARKS.md A, second base), is refused
    in one line, batch included."""
    from agent.core.errors import PromptOverWindow
    from agent.models.ctranslate import MARKER

    model_dir, window = tiny_gemma
    ct2 = _local(settings_for, tmp_path / "h", model_dir, "ctranslate2")
    hf = _local(settings_for, tmp_path / "h", model_dir, "transformers")
    for q in ("q?", "How many customers?"):
        assert ct2.generate(q, SCHEMA) == hf.generate(q, SCHEMA)
    assert json.loads((ct2._path / MARKER).read_text())["sliding_window"] == window
    for ask in (lambda: ct2.generate("q?", LONG_SCHEMA),
                lambda: ct2.generate_batch([PromptInput("q?", SCHEMA), PromptInput("q?", LONG_SCHEMA)])):
        with pytest.raises(PromptOverWindow) as err:
            ask()
        msg = str(err.value)
        assert "\n" not in msg and f"> {window}" in msg and "transformers" in msg


@needs_ct2
def test_auto_answers_the_prompts_past_the_window_with_transformers(settings_for, tmp_path, tiny_gemma,
                                                                     caplog):
    model_dir, window = tiny_gemma
    gen = _local(settings_for, tmp_path / "h", model_dir, "auto", device="cpu")
    hf = _local(settings_for, tmp_path / "h", model_dir, "transformers")
    short, long = hf.generate("q?", SCHEMA), hf.generate("q?", LONG_SCHEMA)
    with caplog.at_level("WARNING", logger="agent.models.factory"):
        assert gen.generate("q?", LONG_SCHEMA) == long
        assert gen.traces[-1].backend == "transformers"
        assert gen.generate("q?", SCHEMA) == short
        assert gen.traces[-1].backend == "ctranslate2"  # the prompts that fit stay with CTranslate2
        batch = gen.generate_batch([PromptInput("q?", SCHEMA), PromptInput("q?", LONG_SCHEMA)])
        assert [r[0].text for r in batch] == [short, long]
        assert gen.generate("q?", LONG_SCHEMA) == long
    warned = [r.getMessage() for r in caplog.records if r.name == "agent.models.factory"]
    assert len(warned) == 1 and "\n" not in warned[0] and f"> {window}" in warned[0]
    assert gen.version == "tiny-gemma+base"
