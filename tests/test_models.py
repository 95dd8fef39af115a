"""Generators: local transformers (+ hot-swapped PEFT adapter), OpenAI-compatible (HTTP boundary),
llama.cpp."""

from __future__ import annotations

import importlib.util
import json
import math
import threading
import time
from pathlib import Path

import httpx
import pytest
from agent_helpers import make_lora_adapter, make_tiny_model_dir, respx_for_openai
from pydantic import SecretStr

from agent.core.adapters import write_active
from agent.core.errors import ModelError
from agent.core.prompt import ErrorFeedback, Example
from agent.models.base import CypherGenerator

SCHEMA = "Node properties:\nCustomer {name: STRING}\nRelationship properties:\nThe relationships:\n"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "tiny-llama")


# --- base model conversion ------------------------------------------------------------------------
def test_default_base_is_converted_once_to_safetensors(settings, monkeypatch):
    from agent.models import local
    from agent.models.local import CONVERTED_MARKER, ensure_base_model

    path = ensure_base_model(settings)  # shared with the other tests of the session (cl_home)
    assert path == settings.path("models", "smollm2-135m-instruct")
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
        CONVERTED_MARKER,
    ):
        assert (path / name).is_file(), name
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(local, "convert_gguf", lambda *a: pytest.fail("converted a second time"))
    assert ensure_base_model(settings) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_conversion_is_locked_and_replaces_a_broken_attempt(settings_for, tmp_path, monkeypatch):
    from agent.models import local

    calls = []

    def fake_convert(gguf, out_dir):
        calls.append(out_dir)
        time.sleep(0.2)
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")
        (out_dir / local.CONVERTED_MARKER).write_text("{}")

    monkeypatch.setattr(local, "convert_gguf", fake_convert)
    s = settings_for(tmp_path)
    broken = s.path("models", "smollm2-135m-instruct")
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("half-written")  # no marker: an interrupted conversion
    results = []
    threads = [threading.Thread(target=lambda: results.append(local.ensure_base_model(s))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1
    assert (broken / local.CONVERTED_MARKER).is_file() and (broken / "config.json").read_text() == "{}"


def test_hf_id_missing_from_cache_is_a_clear_error(settings, monkeypatch):
    from agent.models.local import ensure_base_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="never downloads"):
        ensure_base_model(settings.model_copy(update={"base_model": "no-such-org/no-such-model-xyz"}))


def test_missing_gguf_file_is_a_clear_error(settings, tmp_path):
    from agent.models.local import ensure_base_model

    with pytest.raises(ModelError, match="not found"):
        ensure_base_model(settings.model_copy(update={"base_model": str(tmp_path / "nope.gguf")}))


# --- transformers generator ------------------------------------------------------------------------
def _tiny_settings(settings, tiny_dir, **kw):
    return settings.model_copy(
        update={"base_model": str(tiny_dir), "temperature": 0.0, "max_new_tokens": 8, "adapter": "none", **kw}
    )


def test_transformers_generator_conforms_and_is_greedy_at_temperature_zero(settings, tiny_dir):
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir))
    assert isinstance(gen, CypherGenerator)
    a = gen.generate("How many customers?", SCHEMA)
    b = gen.generate("How many customers?", SCHEMA)
    assert isinstance(a, str) and a == b
    c = gen.generate(
        "How many customers?", SCHEMA, [Example("q", "MATCH (n) RETURN n")], ErrorFeedback("MATCH", "bad")
    )
    assert isinstance(c, str)
    assert gen.version == "tiny-llama+base"


def test_each_call_leaves_a_latency_trace(settings, tiny_dir):
    from agent.core.prompt import build_messages, prompt_token_ids
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir))
    gen.generate("How many customers?", SCHEMA)
    gen.generate("Which products cost more than 10?", SCHEMA)
    assert len(gen.traces) == 2
    t = gen.traces[-1]
    want = prompt_token_ids(gen.tokenizer, build_messages("Which products cost more than 10?", SCHEMA))
    assert t.backend == "transformers" and t.prompt_tokens == len(want) and t.cached_prompt_tokens == 0
    assert 1 <= t.new_tokens <= 8  # max_new_tokens, the stop token counted when it came
    assert t.prefill_ms > 0 and t.total_ms >= t.prefill_ms + t.decode_ms and t.host_ms >= 0
    assert set(t.to_dict()) >= {"prompt_tokens", "new_tokens", "prefill_ms", "step_ms", "host_ms"}


def test_a_reply_in_a_repetition_loop_is_recognised():
    from agent.models.local import LOOP_MIN_TOKENS, repetition_loop

    assert repetition_loop([7] * LOOP_MIN_TOKENS) and not repetition_loop([7] * (LOOP_MIN_TOKENS - 1))
    assert repetition_loop([1, 2, 3] + [4, 5, 6, 7] * 4)  # ", p.reproduced" four times
    assert not repetition_loop([4, 5, 6, 7] * 3)  # three times is not a loop yet
    assert not repetition_loop(list(range(200)))
    assert not repetition_loop([4, 5, 6, 7] * 4 + [8])  # it went on: not (or no longer) looping


def test_a_looping_reply_stops_before_max_new_tokens(settings, tiny_dir):
    """The tiny random model writes one token over and over (greedy): once that is a loop, the row is done, in
    a single call and in a batch, instead of running to max_new_tokens (a batch waits for its longest row)."""
    from agent.models.base import PromptInput
    from agent.models.local import LOOP_CHECK_EVERY, LOOP_MIN_TOKENS, TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, max_new_tokens=60))
    gen.generate("How many customers?", SCHEMA)
    assert LOOP_MIN_TOKENS <= gen.traces[-1].new_tokens < LOOP_MIN_TOKENS + LOOP_CHECK_EVERY
    gen.generate_batch([PromptInput("How many customers?", SCHEMA), PromptInput("a?", SCHEMA)], n=1)
    batch = gen.traces[-1]
    assert batch.new_tokens < 60 and max(batch.row_tokens) == batch.new_tokens


def test_static_cache_generates_what_the_dynamic_cache_does(settings, tiny_dir):
    from agent.models.local import TransformersGenerator

    dynamic = TransformersGenerator(_tiny_settings(settings, tiny_dir))
    static = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static"))
    for q in ("How many customers?", "Which products cost more than 10?"):
        assert static.generate(q, SCHEMA) == dynamic.generate(q, SCHEMA)


def test_a_failing_static_cache_falls_back_to_the_dynamic_cache(settings, tiny_dir, caplog):
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static"))
    model = gen.model
    real = model.generate
    calls = []

    def flaky(**kw):
        calls.append(kw.get("cache_implementation"))
        if kw.get("cache_implementation") == "static":
            raise RuntimeError("compiled step broke")
        return real(**kw)

    model.generate = flaky
    expected = TransformersGenerator(_tiny_settings(settings, tiny_dir)).generate(
        "How many customers?", SCHEMA
    )
    with caplog.at_level("WARNING"):
        assert gen.generate("How many customers?", SCHEMA) == expected
        assert gen.generate("How many customers?", SCHEMA) == expected
    assert calls == ["static", None, None]  # tried once, then the dynamic cache for good
    assert "static KV cache failed" in caplog.text and "compiled step broke" in caplog.text
    assert "Traceback" in gen.static_cache_error and "compiled step broke" in gen.static_cache_error


def test_adapter_follows_the_registry_pointer_without_reloading_the_base(settings_for, tmp_path, tiny_dir):
    from agent.models.local import TransformersGenerator

    home = tmp_path / "home"
    make_lora_adapter(tiny_dir, home / "adapters" / "v0001", seed=1)
    make_lora_adapter(tiny_dir, home / "adapters" / "v0002", seed=2)
    s = settings_for(home, base_model=str(tiny_dir), temperature=0.0, max_new_tokens=6, adapter="active")
    gen = TransformersGenerator(s)

    base_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+base"
    model_id = id(gen.model)

    write_active(home, "v0001")
    v1_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+v0001"
    assert v1_out != base_out
    assert gen._merged  # served with the LoRA folded into the weights
    peft_model = gen._peft
    loads = []
    original = peft_model.load_adapter
    peft_model.load_adapter = lambda *a, **k: (loads.append(a), original(*a, **k))[1]
    gen.generate("q?", SCHEMA)  # unchanged pointer: nothing reloaded
    assert loads == []

    time.sleep(0.01)
    write_active(home, "v0002")
    v2_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+v0002" and v2_out != v1_out
    assert len(loads) == 1
    assert gen.resident_adapters == ["a_v0002"]  # the old adapter was released

    time.sleep(0.01)
    write_active(home, None)
    assert gen.generate("q?", SCHEMA) == base_out
    assert gen.version == "tiny-llama+base" and not gen._merged

    time.sleep(0.01)
    write_active(home, "v0001")
    assert gen.generate("q?", SCHEMA) == v1_out
    assert id(gen.model) == model_id


def test_a_merged_adapter_answers_what_the_unmerged_one_does(settings_for, tmp_path, tiny_dir, monkeypatch):
    from agent.models.local import TransformersGenerator

    adapter = make_lora_adapter(tiny_dir, tmp_path / "my-adapter", seed=3)
    s = settings_for(
        tmp_path / "h", base_model=str(tiny_dir), temperature=0.0, max_new_tokens=8, adapter=str(adapter)
    )
    merged = TransformersGenerator(s)
    questions = ("How many customers?", "Which products cost more than 10?", "q?")
    got = [merged.generate(q, SCHEMA) for q in questions]
    assert merged._merged
    monkeypatch.setattr(TransformersGenerator, "_merge", lambda self: None)
    unmerged = TransformersGenerator(s)
    assert [unmerged.generate(q, SCHEMA) for q in questions] == got
    assert not unmerged._merged


def test_a_merged_copy_on_disk_serves_the_adapter_without_peft(settings_for, tmp_path, tiny_dir):
    """``prepare`` (what ``cypherloop warm`` runs) writes the base with the live LoRA merged; a fresh process
    then loads that one model, never PEFT (the cold start of issue 16), and answers as the adapter merged in
    memory does; a new live version swaps the weights."""
    from agent.models.local import MERGED_MARKER, TransformersGenerator, merged_if_ready

    home = tmp_path / "home"
    make_lora_adapter(tiny_dir, home / "adapters" / "v0001", seed=1)
    make_lora_adapter(tiny_dir, home / "adapters" / "v0002", seed=2)
    write_active(home, "v0001")
    s = settings_for(home, base_model=str(tiny_dir), temperature=0.0, max_new_tokens=6, adapter="active")
    questions = ("How many customers?", "q?")
    in_memory = TransformersGenerator(s)
    expected = [in_memory.generate(q, SCHEMA) for q in questions]
    live = in_memory.adapters.current()
    assert in_memory._merged and merged_if_ready(s, live) is None  # a question writes nothing to disk

    TransformersGenerator(s).prepare()
    ready = merged_if_ready(s, live)
    assert ready is not None and (ready / MERGED_MARKER).is_file()
    cold = TransformersGenerator(s)
    assert [cold.generate(q, SCHEMA) for q in questions] == expected
    assert cold._baked and cold._peft is None and cold.version == "tiny-llama+v0001"

    write_active(home, "v0002")
    v2 = in_memory.generate("q?", SCHEMA)
    assert cold.generate("q?", SCHEMA) == v2
    assert cold.version == "tiny-llama+v0002" and not cold._baked and cold._merged


def test_pinned_adapter_directory(settings_for, tmp_path, tiny_dir):
    from agent.models.local import TransformersGenerator

    adapter = make_lora_adapter(tiny_dir, tmp_path / "my-adapter")
    gen = TransformersGenerator(
        settings_for(
            tmp_path / "h", base_model=str(tiny_dir), temperature=0.0, max_new_tokens=4, adapter=str(adapter)
        )
    )
    gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+my-adapter"


def test_missing_pinned_adapter_is_a_clear_error(settings_for, tmp_path, tiny_dir):
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(settings_for(tmp_path, base_model=str(tiny_dir), adapter="v0042"))
    with pytest.raises(ModelError, match="adapter 'v0042' not found"):
        gen.generate("q?", SCHEMA)


def test_real_default_model_generates_text(settings):
    """The packaged SmolLM2 (converted base) answers; untuned it writes prose, which is fine here."""
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(settings.model_copy(update={"max_new_tokens": 24, "adapter": "none"}))
    out = gen.generate("How many customers are there?", SCHEMA)
    assert isinstance(out, str) and out
    assert "<|im_end|>" not in out
    assert gen.version == "smollm2-135m-instruct+base"


# --- OpenAI-compatible -------------------------------------------------------------------------------
def _completion(content: str, model: str = "my-lora") -> dict:
    # Shape recorded from a vLLM 0.x OpenAI-compatible server's /v1/chat/completions response.
    return {
        "id": "chatcmpl-7f3c2a",
        "object": "chat.completion",
        "created": 1732300000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "usage": {"prompt_tokens": 112, "total_tokens": 124, "completion_tokens": 12},
    }


def _openai_settings(settings, **kw):
    return settings.model_copy(
        update={
            "model_backend": "openai",
            "openai_model": "my-lora",
            "openai_base_url": "http://vllm.test:8000/v1",
            **kw,
        }
    )


def test_openai_compat_sends_the_prompt_and_returns_the_reply(settings):
    from agent.models.openai_compat import OpenAICompatGenerator

    with respx_for_openai() as mock:
        route = mock.post("http://vllm.test:8000/v1/chat/completions").mock(
            return_value=httpx.Response(200, json=_completion(" MATCH (c:Customer) RETURN count(c) "))
        )
        gen = OpenAICompatGenerator(_openai_settings(settings, repetition_penalty=1.1, temperature=0.1))
        assert isinstance(gen, CypherGenerator)
        out = gen.generate("How many customers?", SCHEMA, [Example("a?", "MATCH (a) RETURN a")])
    assert out == "MATCH (c:Customer) RETURN count(c)"
    assert gen.version == "openai:my-lora"
    body = json.loads(route.calls.last.request.content)
    assert body["model"] == "my-lora"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert (
        "Customer {name: STRING}" in body["messages"][0]["content"]
        and "Question: a?" in body["messages"][0]["content"]
    )
    assert (
        body["temperature"] == 0.1 and body["top_p"] == 0.9 and body["max_tokens"] == settings.max_new_tokens
    )
    assert body["repetition_penalty"] == 1.1  # extra_body, for vLLM/Ollama, when set away from 1.0
    assert "<|im_end|>" in body["stop"]


def test_the_one_reply_is_greedy_by_default(settings):
    """Every accuracy the benchmarks report is greedy: the default reply is too (no top_p sent with it)."""
    from agent.core.settings import Settings
    from agent.models.openai_compat import OpenAICompatGenerator

    assert Settings.model_fields["temperature"].default == 0.0
    with respx_for_openai() as mock:
        route = mock.post("http://vllm.test:8000/v1/chat/completions").mock(
            return_value=httpx.Response(200, json=_completion("MATCH (c:Customer) RETURN count(c)"))
        )
        gen = OpenAICompatGenerator(_openai_settings(settings, temperature=Settings().temperature))
        gen.generate("How many customers?", SCHEMA, [])
    body = json.loads(route.calls.last.request.content)
    assert body["temperature"] == 0.0 and "top_p" not in body


def test_openai_proper_gets_no_nonstandard_parameters(settings):
    from agent.models.openai_compat import OpenAICompatGenerator

    s = settings.model_copy(
        update={
            "model_backend": "openai",
            "openai_model": "gpt-4o-mini",
            "openai_base_url": None,
            "openai_api_key": SecretStr("sk-test"),
            "temperature": 0.0,
        }
    )
    with respx_for_openai() as mock:
        route = mock.post("https://api.openai.com/v1/chat/completions").mock(
            return_value=httpx.Response(200, json=_completion("MATCH (n) RETURN n", "gpt-4o-mini"))
        )
        assert OpenAICompatGenerator(s).generate("q?", SCHEMA) == "MATCH (n) RETURN n"
    body = json.loads(route.calls.last.request.content)
    assert "repetition_penalty" not in body and "stop" not in body and "top_p" not in body
    assert body["temperature"] == 0.0
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    "status, payload, match",
    [
        (
            404,
            {"error": {"message": "The model `nope` does not exist.", "type": "NotFoundError", "code": 404}},
            "not found",
        ),
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            "API key",
        ),
        (
            400,
            {
                "error": {
                    "message": "maximum context length is 2048 tokens",
                    "type": "BadRequestError",
                    "code": 400,
                }
            },
            "context length",
        ),
    ],
)
def test_openai_compat_errors_become_model_errors(settings, status, payload, match):
    from agent.models.openai_compat import OpenAICompatGenerator

    with respx_for_openai() as mock:
        mock.post("http://vllm.test:8000/v1/chat/completions").mock(
            return_value=httpx.Response(status, json=payload)
        )
        gen = OpenAICompatGenerator(_openai_settings(settings), max_retries=0)
        with pytest.raises(ModelError, match=match):
            gen.generate("q?", SCHEMA)


def test_openai_unreachable_server_is_a_model_error(settings):
    import httpcore2

    from agent.models.openai_compat import OpenAICompatGenerator

    with respx_for_openai() as mock:
        mock.post("http://vllm.test:8000/v1/chat/completions").mock(
            side_effect=httpcore2.ConnectError("connection refused")
        )
        gen = OpenAICompatGenerator(_openai_settings(settings), max_retries=0)
        with pytest.raises(ModelError, match="cannot reach"):
            gen.generate("q?", SCHEMA)


def test_openai_without_key_is_a_config_error(settings, monkeypatch):
    from agent.core.errors import ConfigError
    from agent.models.openai_compat import OpenAICompatGenerator

    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAICompatGenerator(settings.model_copy(update={"openai_base_url": None, "openai_api_key": None}))


# --- llama.cpp ---------------------------------------------------------------------------------------
HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.skipif(HAS_LLAMA_CPP, reason="llama-cpp-python is installed")
def test_llamacpp_missing_is_a_clear_error(settings):
    from agent.models.llamacpp import LlamaCppGenerator

    gen = LlamaCppGenerator(settings.model_copy(update={"model_backend": "llamacpp", "adapter": "none"}))
    with pytest.raises(ModelError, match=r"pip install 'cypherloop\[llamacpp\]'"):
        gen.generate("q?", SCHEMA)


@pytest.mark.skipif(not HAS_LLAMA_CPP, reason="llama-cpp-python not installed (optional extra 'llamacpp')")
def test_llamacpp_generates_with_the_packaged_gguf(settings):
    from agent.models.llamacpp import LlamaCppGenerator

    gen = LlamaCppGenerator(
        settings.model_copy(update={"model_backend": "llamacpp", "adapter": "none", "max_new_tokens": 16})
    )
    out = gen.generate("How many customers are there?", SCHEMA)
    assert isinstance(out, str)
    assert gen.version == "smollm2-135m-instruct+base"


# --- factory -------------------------------------------------------------------------------------------
def test_factory_picks_the_backend(settings):
    from agent.models.factory import make_generator
    from agent.models.llamacpp import LlamaCppGenerator
    from agent.models.local import TransformersGenerator
    from agent.models.openai_compat import OpenAICompatGenerator

    transformers = settings.model_copy(update={"model_backend": "transformers"})
    assert isinstance(make_generator(transformers), TransformersGenerator)
    assert isinstance(make_generator(_openai_settings(settings)), OpenAICompatGenerator)
    # llama.cpp: llama-cpp-python when it is installed, else xllamacpp's prebuilt wheel when that is
    from agent.models import llamacpp, xllamacpp
    from agent.models.xllamacpp import XLlamaCppGenerator

    prebuilt = xllamacpp.available() and not llamacpp.available()
    assert isinstance(make_generator(settings.model_copy(update={"model_backend": "llamacpp"})),
                      XLlamaCppGenerator if prebuilt else LlamaCppGenerator)
    # constructing never loads a model or touches the network
    assert make_generator(transformers)._model is None


# --- the static KV cache on a GPU: when it is used, and the warm-up at load ------------------------------
@pytest.mark.parametrize(("setting", "device", "warmed", "static"), [
    ("auto", "cuda", True, True), ("auto", "cuda:1", True, True),
    ("auto", "cuda", False, False),  # a one-shot ask: compiling would cost more than the question
    ("auto", "cpu", True, False), ("dynamic", "cuda", True, False),
    ("static", "cpu", False, True), ("static", "cuda", False, True),
])
def test_auto_takes_the_static_cache_only_on_cuda_once_warmed(setting, device, warmed, static):
    from agent.models.local import use_static_cache

    assert use_static_cache(setting, device, warmed) is static


def test_the_static_cache_length_is_pinned_to_few_sizes():
    from agent.models.local import STATIC_CACHE_MIN, static_cache_len

    assert {static_cache_len(n) for n in (1, 226, 236, STATIC_CACHE_MIN)} == {STATIC_CACHE_MIN}
    assert static_cache_len(STATIC_CACHE_MIN + 1) == 2 * STATIC_CACHE_MIN


def test_auto_on_a_cpu_neither_warms_up_nor_loads(settings, tiny_dir):
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, device="cpu"))
    assert gen.settings.generation_cache == "auto" and not gen.warms_up()
    assert gen.warm_up([PromptInput("How many customers?", SCHEMA)], candidates=4) == []
    assert gen._model is None


def test_warm_up_asks_each_prompt_as_a_question_asks_then_replies_are_unchanged(settings, tiny_dir):
    """``static`` runs the static path on a CPU too (nothing compiles there): the warm-up's calls, and the
    replies after it equal the dynamic cache's, single calls and a question's candidates alike."""
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static"))
    dynamic = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="dynamic"))
    short, long = PromptInput("a?", SCHEMA), PromptInput("Which products cost more than 10? " * 8, SCHEMA)
    calls = gen.warm_up([short, long], candidates=4)  # a repair round's call, then the candidates' one call
    assert [c["rows"] for c in calls] == [1, 4] * 2 and all(c["static"] for c in calls)
    two = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static",
                                               candidates_one_call=False))
    assert [c["rows"] for c in two.warm_up([short, long], candidates=4)] == [1, 1, 3] * 2
    assert calls[0]["prompt_tokens"] < calls[3]["prompt_tokens"]
    assert gen.generate("How many customers?", SCHEMA) == dynamic.generate("How many customers?", SCHEMA)
    [[static_reply]], [[dynamic_reply]] = gen.generate_batch([long], n=1), dynamic.generate_batch([long], n=1)
    assert static_reply.text == dynamic_reply.text  # the log-probability to float rounding
    assert static_reply.logprob == pytest.approx(dynamic_reply.logprob, rel=1e-5)


def test_only_a_single_question_batch_takes_the_static_cache(settings, tiny_dir):
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static"))
    model = gen.model
    real, seen = model.generate, []
    model.generate = lambda **kw: seen.append(kw.get("cache_implementation")) or real(**kw)
    one, two = PromptInput("a?", SCHEMA), PromptInput("Which products cost more than 10?", SCHEMA)
    gen.generate_batch([one], n=1)
    gen.generate_batch([one, two], n=1)  # left-padded rows (eval --batch-size): the dynamic cache
    assert seen == ["static", None]


def test_sampled_calls_turn_generates_default_top_k_off(settings, tiny_dir):
    """transformers fills an unset top_k with 50; the graphed loop, CTranslate2 and llama.cpp sample with
    temperature and top-p only, so ``generate`` is told top_k=0 in every sampled call (greedy ones: None)."""
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, temperature=0.7, decode_loop="generate"))
    model = gen.model
    real, seen = model.generate, []
    model.generate = lambda **kw: seen.append((kw.get("do_sample"), kw.get("top_k"))) or real(**kw)
    p = PromptInput("a?", SCHEMA)
    gen.complete(p.messages())
    gen.generate_batch([p, p], n=3, temperature=0.7, greedy_first=True)
    gen.generate_batch([p], n=1, temperature=0.0)
    assert seen == [(True, 0), (True, 0), (False, None)]


def test_a_failing_sampled_batch_leaves_the_single_calls_static(settings, tiny_dir):
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static"))
    model = gen.model
    real, seen = model.generate, []

    def flaky(**kw):
        seen.append((kw.get("num_return_sequences", 1), kw.get("cache_implementation")))
        if kw.get("cache_implementation") and kw.get("num_return_sequences", 1) > 1:
            raise RuntimeError("sampled rows broke")
        return real(**kw)

    model.generate = flaky
    p = PromptInput("How many customers?", SCHEMA)
    assert len(gen.generate_batch([p], n=3, temperature=0.7)[0]) == 3
    gen.generate_batch([p], n=3, temperature=0.7)
    gen.generate("How many customers?", SCHEMA)
    assert seen == [(3, "static"), (3, None), (3, None), (1, "static")]
    assert gen.static_cache_error.startswith("[batch calls]") and gen.warms_up()


# --- issue 15 levers: prompt lookup, static batches, the compile mode ---------------------------------------
def _spy_generate(gen):
    model = gen.model
    real, seen = model.generate, []

    def spy(**kw):
        seen.append({**kw, "rows": kw["input_ids"].shape[0]})
        return real(**kw)

    model.generate = spy
    return seen


def _count_forwards(gen):
    model = gen.model
    real, count = model.forward, [0]

    def forward(*a, **kw):
        count[0] += 1
        return real(*a, **kw)

    model.forward = forward
    return count


def test_prompt_lookup_replies_are_the_greedy_replies_in_fewer_forward_passes(settings, tiny_dir):
    """prompt_lookup_tokens: the same greedy tokens (single calls and a question's greedy candidate), on the
    dynamic and the static cache alike, with fewer forward passes (the tiny model repeats itself, which the
    lookup copies); the trace still counts tokens."""
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    plain = TransformersGenerator(_tiny_settings(settings, tiny_dir, max_new_tokens=40))
    looked = [TransformersGenerator(_tiny_settings(settings, tiny_dir, max_new_tokens=40,
                                                   prompt_lookup_tokens=10, generation_cache=cache))
              for cache in ("dynamic", "static")]
    passes = [_count_forwards(g) for g in (plain, *looked)]
    seen = _spy_generate(looked[1])
    for q in ("How many customers?", "Which products cost more than 10?"):
        want = plain.generate(q, SCHEMA)
        for g in looked:
            assert g.generate(q, SCHEMA) == want
            assert g.traces[-1].new_tokens == plain.traces[-1].new_tokens
    assert passes[1][0] < passes[0][0] and passes[2][0] < passes[0][0]
    assert seen[0]["prompt_lookup_num_tokens"] == 10 and seen[0]["cache_implementation"] == "static"
    p = PromptInput("Which products cost more than 10?", SCHEMA)
    [[want]] = plain.generate_batch([p], n=1, temperature=0.0)
    for g in looked:
        [[got]] = g.generate_batch([p], n=1, temperature=0.0)
        assert got.text == want.text and got.logprob == pytest.approx(want.logprob, rel=1e-5)
    looked[1].generate_batch([p, p], n=1, temperature=0.0)  # several rows: transformers' lookup takes one
    looked[1].generate_batch([p], n=2, temperature=0.7)
    assert "prompt_lookup_num_tokens" not in seen[-1] and "prompt_lookup_num_tokens" not in seen[-2]


def test_static_batches_pad_every_chunk_to_the_batch_size_and_reply_as_the_dynamic_cache(settings, tiny_dir):
    from agent.models.base import PromptInput
    from agent.models.local import BATCH_CACHE_MIN, TransformersGenerator

    static, dynamic = (TransformersGenerator(_tiny_settings(settings, tiny_dir, max_new_tokens=24,
                                                            generation_batch_size=4, batch_cache=cache))
                       for cache in ("static", "dynamic"))
    seen = _spy_generate(static)
    asked = ("a?", "How many customers?", "Which products cost more than 10? " * 3, "Who?", "Name cities.")
    prompts = [PromptInput(q, SCHEMA) for q in asked]
    got = static.generate_batch(prompts, n=1, temperature=0.0)
    want = dynamic.generate_batch(prompts, n=1, temperature=0.0)
    assert [g[0].text for g in got] == [w[0].text for w in want] and len(got) == 5
    assert [g[0].logprob for g in got] == pytest.approx([w[0].logprob for w in want], rel=1e-5)
    assert [s["rows"] for s in seen] == [4, 4]  # 4 questions, then 1 padded with copies of itself
    assert {s["cache_implementation"] for s in seen} == {"static"}
    assert seen[0]["max_cache_len"] == BATCH_CACHE_MIN
    sampled = static.generate_batch(prompts[:3], n=3, temperature=0.7)
    assert seen[-1]["rows"] == 4 and seen[-1]["num_return_sequences"] == 3
    assert [len(s) for s in sampled] == [3, 3, 3] and len(static.traces[-1].row_tokens) == 9
    assert static.generate_batch(prompts[:1], n=1, temperature=0.0)[0][0].text == want[0][0].text
    assert seen[-1]["rows"] == 1 and "cache_implementation" not in seen[-1]  # one question: the single path


def test_warm_up_of_static_batches_compiles_the_chunk_shapes_only(settings, tiny_dir):
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, batch_cache="static", device="cpu"))
    p = [PromptInput("a?", SCHEMA), PromptInput("How many customers?", SCHEMA)]
    assert gen.warms_up(batch_size=8) and not gen.warms_up()  # auto on a CPU: the single path stays dynamic
    calls = gen.warm_up(p, candidates=4, batch_size=8)
    assert [c["rows"] for c in calls] == [32] and not gen._warmed  # the candidates from one call
    two = TransformersGenerator(_tiny_settings(settings, tiny_dir, batch_cache="static", device="cpu",
                                               candidates_one_call=False))
    assert [c["rows"] for c in two.warm_up(p, candidates=4, batch_size=8)] == [8, 24]
    off = TransformersGenerator(_tiny_settings(settings, tiny_dir, device="cpu"))
    assert not off.warms_up(batch_size=8) and off.warm_up(p, candidates=4, batch_size=8) == []


def test_compile_mode_reaches_generate_on_the_static_path_only(settings, tiny_dir):
    from transformers import CompileConfig

    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static",
                                               generation_compile_mode="default"))
    assert gen._compile_kwargs() == {"compile_config": CompileConfig(mode="default")}
    seen = _spy_generate(gen)
    gen.generate("How many customers?", SCHEMA)
    assert seen[-1]["compile_config"].mode == "default"
    auto = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_cache="static"))
    assert auto.settings.generation_compile_mode == "auto" and auto._compile_kwargs() == {}
    dynamic = TransformersGenerator(_tiny_settings(settings, tiny_dir, generation_compile_mode="default"))
    seen = _spy_generate(dynamic)
    dynamic.generate("How many customers?", SCHEMA)
    assert "compile_config" not in seen[-1]


def test_lever_settings_resolve_from_the_environment_with_the_defaults_off(settings_for, tmp_path,
                                                                          monkeypatch):
    from pydantic import ValidationError

    s = settings_for(tmp_path)
    assert (s.prompt_lookup_tokens, s.batch_cache, s.generation_compile_mode, s.generation_batch_size) == (
        0, "dynamic", "auto", 0)
    monkeypatch.setenv("CYPHERLOOP_PROMPT_LOOKUP_TOKENS", "10")
    monkeypatch.setenv("CYPHERLOOP_BATCH_CACHE", "static")
    monkeypatch.setenv("CYPHERLOOP_GENERATION_COMPILE_MODE", "default")
    s = settings_for(tmp_path)
    assert (s.prompt_lookup_tokens, s.batch_cache, s.generation_compile_mode) == (10, "static", "default")
    monkeypatch.setenv("CYPHERLOOP_BATCH_CACHE", "sometimes")
    with pytest.raises(ValidationError, match="batch_cache"):
        settings_for(tmp_path)


def test_one_call_candidates_hold_the_greedy_row_to_the_greedy_reply(settings, tiny_dir):
    """candidates_one_call: a question's candidates from one sampled call whose first row per prompt is
    greedy: the same reply and log-probability as the greedy call, for one question and a batch of them; the
    warm-up asks that one call."""
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    # 8 new tokens: under the loop rule's 16, so every row runs its 8 (a row stopped early is padded, and the
    # pad is a stop token whose score would count); the same log-probability means the same greedy tokens
    one = TransformersGenerator(_tiny_settings(settings, tiny_dir, candidates_one_call=True,
                                               generation_cache="static"))
    seen = _spy_generate(one)
    prompts = [PromptInput(q, SCHEMA) for q in ("How many customers?", "Which products cost more than 10?")]
    greedy = one.generate_batch(prompts, n=1, temperature=0.0)
    for asked in ([prompts[0]], prompts):
        got = one.generate_batch(asked, n=4, temperature=0.7, greedy_first=True)
        assert [len(g) for g in got] == [4] * len(asked) and seen[-1]["rows"] == len(asked)
        for g, want in zip(got, greedy, strict=False):
            assert g[0].text == want[0].text and g[0].logprob == pytest.approx(want[0].logprob, rel=1e-4)
    assert one.one_call_candidates()
    calls = one.warm_up(prompts, candidates=4)
    assert [c["rows"] for c in calls] == [1, 4] * 2


def test_first_replies_take_one_call_when_the_generator_offers_it(settings, tiny_dir):
    from agent.graph import AgentContext, first_replies
    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, candidates_one_call=True))
    seen = _spy_generate(gen)
    ctx = AgentContext(graph_store=None, generator=gen, candidates=4)
    [replies] = first_replies(gen, [PromptInput("How many customers?", SCHEMA)], ctx)
    assert len(replies) == 4 and len(seen) == 1 and seen[0]["num_return_sequences"] == 4


def test_first_replies_tell_each_prompt_as_they_return_it():
    """``on_ready`` hears each prompt once with the replies ``first_replies`` returns for it: one reply, and
    the candidates of two calls (the greedy call's reply first, told as the sampled call has each)."""
    from agent.graph import AgentContext, first_replies
    from agent.models.base import PromptInput, ScriptedGenerator

    gen = ScriptedGenerator(lambda question, _feedback, call_no: f"{question} {call_no}")
    prompts = [PromptInput("a?", SCHEMA), PromptInput("b?", SCHEMA)]
    for candidates, asked in ((1, prompts[:1]), (1, prompts), (3, prompts)):
        told = []
        ctx = AgentContext(graph_store=None, generator=gen, candidates=candidates)
        got = first_replies(gen, asked, ctx, lambda i, gens, told=told: told.append((i, gens)))
        assert told == list(enumerate(got)) and all(len(r) == candidates for r in got)
    assert [g.text for g in got[1]] == ["b? 4", "b? 7", "b? 8"]  # greedy call: 3, 4; sampled: 5-8


def _spy_transition_scores(gen):
    """Spy on ``generate`` that also asks transformers for the scores (the old path) on the same call, and
    keeps each call's log-probabilities by ``compute_transition_scores``, greedy rows from the raw logits."""
    model = gen.model
    real, seen = model.generate, []

    def spy(**kw):
        greedy_rows = "logits_processor" in kw
        res = real(**kw, output_scores=True, output_logits=greedy_rows)
        scores = model.compute_transition_scores(res.sequences, res.scores, normalize_logits=True)
        if greedy_rows:
            n = kw["num_return_sequences"]
            raw = model.compute_transition_scores(res.sequences, res.logits, normalize_logits=True)
            scores[::n] = raw[::n]
        seen.append({**kw, "new": res.sequences[:, kw["input_ids"].shape[1]:].tolist(),
                     "scores": scores.tolist()})
        return res

    model.generate = spy
    return seen


def _summed(gen, new, scores):
    """A row's log-probability as ``generate_batch`` sums it: up to the first stop token, pads ended."""
    pad, total = gen._tokenizer.pad_token_id, 0.0
    for t, sc in zip(new, scores, strict=False):
        if t == pad and t not in gen._stop_ids:
            break
        total += sc if math.isfinite(sc) else 0.0
        if t in gen._stop_ids:
            break
    return total


@pytest.mark.parametrize("batch_cache", ["dynamic", "static"])
def test_batch_logprobs_equal_transformers_transition_scores_without_storing_scores(settings, tiny_dir,
                                                                                    batch_cache):
    """generate_batch keeps one step's scores, not output_scores' rows × vocab × steps (30 GiB for a batch
    of 64 on Gemma 3): its log-probabilities are still compute_transition_scores' on the same call, greedy,
    sampled (a fixed seed) and greedy_first (raw logits for each prompt's first row)."""
    import torch

    from agent.models.base import PromptInput
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(_tiny_settings(settings, tiny_dir, max_new_tokens=24, generation_batch_size=2,
                                               batch_cache=batch_cache))
    seen = _spy_transition_scores(gen)
    prompts = [PromptInput(q, SCHEMA) for q in ("a?", "How many customers?", "Which products cost more?")]
    for ask, kw in (([prompts[0]], {"n": 1, "temperature": 0.0}), (prompts, {"n": 1, "temperature": 0.0}),
                    (prompts, {"n": 3, "temperature": 0.9}), ([prompts[1]], {"n": 3, "temperature": 0.9}),
                    (prompts, {"n": 4, "temperature": 0.9, "greedy_first": True})):
        torch.manual_seed(7)
        before = len(seen)
        got = gen.generate_batch(ask, **kw)
        calls = seen[before:]
        assert len(calls) == -(-len(ask) // 2)
        per = kw["n"] if kw["temperature"] > 0 else 1
        want = [_summed(gen, new, sc) for c in calls for new, sc in zip(c["new"], c["scores"], strict=True)]
        want = want[: len(ask) * per]  # a static chunk's padding rows are dropped
        flat = [g.logprob for gens in got for g in gens[:per]]
        assert flat == pytest.approx(want, rel=1e-5, abs=1e-5) and any(w != 0 for w in want)
        assert not any("output_scores" in c or "output_logits" in c for c in calls)
