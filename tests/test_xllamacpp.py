"""The llamacpp backend on xllamacpp's prebuilt llama.cpp (no build), with the tiny GGUF test model: real
conversion, real llama.cpp."""

from __future__ import annotations

import importlib.util

import pytest
from agent_helpers import make_full_model, make_lora_adapter, make_tiny_gguf, make_tiny_model_dir

from agent.core.adapters import read_active, write_active
from agent.core.errors import ModelError
from agent.models.base import CypherGenerator, Generation, PromptInput
from agent.models.factory import make_generator
from agent.models.local import ensure_base_model

SCHEMA = "Node properties:\nCustomer {name: STRING}\nRelationship properties:\nThe relationships:\n"
PROMPTS = [
    PromptInput("How many customers?", SCHEMA),
    PromptInput("Which products cost more than 10?", SCHEMA),
    PromptInput("q?", SCHEMA),
]
needs_xllamacpp = pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None,
                                     reason="xllamacpp is not installed")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return make_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny-llama.gguf")


def _settings(settings_for, home, gguf, **kw):
    values = {"base_model": str(gguf), "model_backend": "llamacpp", "temperature": 0.0, "max_new_tokens": 8,
              "adapter": "none", **kw}
    return settings_for(home, **values)


@needs_xllamacpp
def test_llamacpp_serves_through_xllamacpp_when_llama_cpp_python_is_missing(settings_for, tmp_path, tiny_gguf,
                                                                           monkeypatch):
    from agent.models import llamacpp
    from agent.models.xllamacpp import XLlamaCppGenerator

    monkeypatch.setattr(llamacpp, "available", lambda: False)
    gen = make_generator(_settings(settings_for, tmp_path / "h", tiny_gguf))
    assert isinstance(gen, XLlamaCppGenerator) and isinstance(gen, CypherGenerator)
    single = [gen.generate(p.question, p.schema_text) for p in PROMPTS]
    first, second = gen.traces[0], gen.traces[1]
    assert first.backend == "llamacpp" and first.prompt_tokens > 0 and 1 <= first.new_tokens <= 8
    assert first.total_ms >= first.prefill_ms > 0
    # the next question shares the system turn: its state is reused, only the question's tokens computed
    assert 0 < second.cached_prompt_tokens < second.prompt_tokens

    greedy = gen.generate_batch(PROMPTS, n=2)
    assert [[g.text for g in replies] for replies in greedy] == [[s, s] for s in single]
    assert all(isinstance(g, Generation) for replies in greedy for g in replies)
    sampled = gen.generate_batch(PROMPTS, n=3, temperature=1.5, max_new_tokens=6)
    assert [len(r) for r in sampled] == [3, 3, 3]
    assert len({g.text for r in sampled for g in r}) > 1  # a random model at a high temperature
    assert gen.generate_batch([], n=2) == []


@needs_xllamacpp
def test_the_live_adapter_is_served_as_a_gguf_lora_and_followed(settings_for, tmp_path, tiny_gguf):
    """Under quantized weights (``llamacpp_weights=gguf``) the LoRA cannot be merged: the base and the LoRA
    as a GGUF, applied at run time."""
    from agent.models.xllamacpp import XLlamaCppGenerator

    home = tmp_path / "home"
    settings = _settings(settings_for, home, tiny_gguf, adapter="active", llamacpp_weights="gguf")
    make_lora_adapter(ensure_base_model(settings), home / "adapters" / "v0001", seed=1)
    gen = XLlamaCppGenerator(settings)
    base_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+base"

    write_active(home, "v0001")
    v1_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+v0001" and v1_out != base_out
    assert (home / "models" / "lora-gguf" / "v0001.gguf").is_file()  # converted once into the home
    assert not (home / "models" / "gguf-full").exists()
    write_active(home, None)
    assert gen.generate("q?", SCHEMA) == base_out and gen.version == "tiny-llama+base"


@needs_xllamacpp
@pytest.mark.parametrize("weights, tensor_type", [("f16", "F16"), ("f32", "F32")])
def test_dequantized_weights_are_written_once_and_served(settings_for, tmp_path, tiny_gguf, weights,
                                                         tensor_type):
    """``llamacpp_weights=f16|f32``: the base GGUF dequantized once into the home, and served."""
    import gguf

    from agent.models.xllamacpp import XLlamaCppGenerator, dequantized_gguf

    s = _settings(settings_for, tmp_path / "h", tiny_gguf, llamacpp_weights=weights)
    gen = XLlamaCppGenerator(s)
    assert gen.generate("q?", SCHEMA) == gen.generate("q?", SCHEMA)
    path = dequantized_gguf(tiny_gguf, s, weights)
    assert path.parent.parent == s.path("models", f"gguf-{weights}")
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(str(path)).tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType[tensor_type]
    assert types["output_norm.weight"] == gguf.GGMLQuantizationType.F32
    stamp = path.stat().st_mtime_ns
    assert dequantized_gguf(tiny_gguf, s, weights) == path
    assert path.stat().st_mtime_ns == stamp  # written once


@needs_xllamacpp
@pytest.mark.parametrize("draft", ["ngram-map-k", "ngram-mod"])
def test_drafting_writes_the_same_greedy_replies_in_fewer_passes(settings_for, tmp_path, tiny_gguf, draft):
    """``llamacpp_draft``: n-gram drafts from the prompt and the reply, checked by the model in one pass. The
    tiny random model's greedy replies repeat themselves, so drafts are accepted; the replies are those
    written without drafting."""
    from agent.models.xllamacpp import XLlamaCppGenerator

    plain = XLlamaCppGenerator(_settings(settings_for, tmp_path / "a", tiny_gguf, max_new_tokens=48,
                                         llamacpp_draft="none"))
    drafted = XLlamaCppGenerator(_settings(settings_for, tmp_path / "b", tiny_gguf, max_new_tokens=48,
                                           llamacpp_draft=draft, llamacpp_draft_ngram=2,
                                           llamacpp_draft_max=6))
    assert [drafted.generate(p.question, p.schema_text) for p in PROMPTS] == \
        [plain.generate(p.question, p.schema_text) for p in PROMPTS]
    assert not any(t.draft_tokens for t in plain.traces)
    assert sum(t.draft_tokens for t in drafted.traces) >= sum(t.draft_accepted for t in drafted.traces) > 0
    last = drafted.traces[-1].to_dict()
    assert last["draft_tokens"] >= last["draft_accepted"] > 0


@needs_xllamacpp
@pytest.mark.parametrize("draft, kind, field", [
    ("ngram-simple", "COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE", "ngram_simple"),
    ("ngram-map-k", "COMMON_SPECULATIVE_TYPE_NGRAM_MAP_K", "ngram_map_k"),
    ("ngram-mod", "COMMON_SPECULATIVE_TYPE_NGRAM_MOD", "ngram_mod"),
])
def test_the_draft_settings_reach_llama_cpp(settings_for, tmp_path, draft, kind, field):
    import xllamacpp as xlc

    from agent.models.xllamacpp import set_draft

    params = xlc.CommonParams()
    set_draft(params, xlc, settings_for(tmp_path, llamacpp_draft="none"))
    assert params.speculative.types == [xlc.common_speculative_type.COMMON_SPECULATIVE_TYPE_NONE]
    set_draft(params, xlc, settings_for(tmp_path, llamacpp_draft=draft, llamacpp_draft_ngram=3,
                                        llamacpp_draft_max=10))
    assert params.speculative.types == [getattr(xlc.common_speculative_type, kind)]
    ngram = getattr(params.speculative, field)
    if draft == "ngram-mod":
        assert (ngram.n_match, ngram.n_min, ngram.n_max) == (3, 2, 10)
    else:
        assert (ngram.size_n, ngram.size_m) == (3, 10)
    assert params.speculative.draft.n_max == 10


def test_missing_xllamacpp_is_a_clear_error(settings_for, tmp_path, tiny_gguf, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_xllamacpp(name, *a, **k):
        if name == "xllamacpp" or name.startswith("xllamacpp."):
            raise ImportError("No module named 'xllamacpp'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_xllamacpp)
    from agent.models.xllamacpp import XLlamaCppGenerator

    gen = XLlamaCppGenerator(_settings(settings_for, tmp_path / "h", tiny_gguf))
    with pytest.raises(ModelError, match="pip install xllamacpp"):
        gen.generate("q?", SCHEMA)


def test_promotion_converts_the_new_live_adapter_for_llamacpp(settings_for, tmp_path, tiny_gguf):
    """A promotion leaves the new live LoRA as a GGUF adapter (quantized weights: no merge), so llama.cpp's
    first question after it only loads (no xllamacpp needed to convert)."""
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, adapter="active", llamacpp_weights="gguf")
    make_lora_adapter(ensure_base_model(s), home / "adapters" / "v0001", seed=1)
    (home / "adapters" / "v0001" / "meta.json").write_text('{"version": "v0001"}')
    assert AdapterRegistry(home, s).promote("v0001") == "v0001"
    assert (home / "models" / "lora-gguf" / "v0001.gguf").is_file()


def _full_fine_tune(home, settings, seed=3):
    """A full fine-tune of the tiny GGUF base in the registry (not promoted): every weight moved, saved in
    bfloat16 as ``finetune.full`` saves it."""
    from finetune.registry import AdapterRegistry

    full = make_full_model(ensure_base_model(settings), home / f"trained-{seed}", noise=0.2, seed=seed,
                           dtype="bfloat16")
    return AdapterRegistry(home).add(full, {"graph": "shop"})


@needs_xllamacpp
def test_a_full_fine_tune_is_served_as_its_own_gguf_with_transformers_replies(settings_for, tmp_path,
                                                                               tiny_gguf):
    """What ``cypherloop bootstrap`` promotes for a small base is a full fine-tune, no LoRA: llama.cpp serves
    it as a GGUF written once with the base's metadata and its weights (q/k permuted as llama.cpp reads them,
    the head tied), and its greedy replies in float32 are transformers' from the fine-tune's own folder."""
    import gguf

    from agent.models.local import TransformersGenerator
    from agent.models.xllamacpp import XLlamaCppGenerator
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, adapter="active", llamacpp_weights="f32", max_new_tokens=12)
    gen = XLlamaCppGenerator(s)
    base_out = [gen.generate(p.question, p.schema_text) for p in PROMPTS]
    v1 = _full_fine_tune(home, s)
    write_active(home, v1)
    served = [gen.generate(p.question, p.schema_text) for p in PROMPTS]
    assert gen.version == f"tiny-llama+{v1}"
    reference = TransformersGenerator(s.model_copy(update={"model_backend": "transformers"}))
    assert served == [reference.generate(p.question, p.schema_text) for p in PROMPTS]
    assert served != base_out and all(served)

    [path] = (home / "models" / "gguf-full").glob("*/model.gguf")
    reader = gguf.GGUFReader(str(path))
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F32 and "output.weight" not in types
    assert reader.fields["tokenizer.chat_template"].contents() == \
        gguf.GGUFReader(str(tiny_gguf)).fields["tokenizer.chat_template"].contents()

    # a promotion writes the next version's GGUF ahead, beside the first; the two newest are kept
    v2 = _full_fine_tune(home, s, seed=4)
    AdapterRegistry(home, s).promote(v2)
    first = path.parent
    assert len(list((home / "models" / "gguf-full").glob("*/model.gguf"))) == 2
    assert gen.generate("q?", SCHEMA) != served[2] and gen.version == f"tiny-llama+{v2}"
    AdapterRegistry(home, s).promote(_full_fine_tune(home, s, seed=5))
    assert len(list((home / "models" / "gguf-full").glob("*/model.gguf"))) == 2 and not first.exists()
    # a rollback to the bare base serves it again
    write_active(home, None)
    assert gen.generate("q?", SCHEMA) == base_out[2] and gen.version == "tiny-llama+base"


@needs_xllamacpp
def test_a_failed_conversion_of_a_full_fine_tune_leaves_nothing_served(settings_for, tmp_path, tiny_gguf,
                                                                       monkeypatch):
    """A conversion that dies half-way (here: half the file written, then an error) is a one-line
    ``ModelError`` and leaves no GGUF that a later question loads; the next question writes it whole."""
    from agent.models import gguf_full
    from agent.models.xllamacpp import XLlamaCppGenerator

    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, adapter="active", llamacpp_weights="f16")
    write_active(home, _full_fine_tune(home, s))
    real = gguf_full.write_full_gguf

    def dies_half_way(model_dir, base_gguf, out, dtype="float32"):
        real(model_dir, base_gguf, out, dtype)
        with out.open("r+b") as f:
            f.truncate(out.stat().st_size // 2)
        raise OSError("No space left on device")

    monkeypatch.setattr(gguf_full, "write_full_gguf", dies_half_way)
    gen = XLlamaCppGenerator(s)
    with pytest.raises(ModelError, match="could not write the full fine-tune .* No space left") as e:
        gen.generate("q?", SCHEMA)
    assert "\n" not in str(e.value)
    assert not list((home / "models" / "gguf-full").rglob("*.gguf"))
    monkeypatch.setattr(gguf_full, "write_full_gguf", real)
    assert gen.generate("q?", SCHEMA) == gen.generate("q?", SCHEMA)
    [path] = (home / "models" / "gguf-full").rglob("*.gguf")
    assert (path.parent / gguf_full.FULL_MARKER).is_file()


def test_full_fine_tunes_llama_cpp_cannot_serve_are_refused_in_one_line(tmp_path, tiny_gguf):
    """Another architecture (Gemma 3) or other shapes than the base GGUF's (a resized vocabulary) cannot take
    the base's metadata: one-line errors, nothing written."""
    from agent.models.gguf_full import write_full_gguf

    gemma = tmp_path / "gemma"
    gemma.mkdir()
    (gemma / "config.json").write_text('{"architectures": ["Gemma3ForCausalLM"]}')
    with pytest.raises(ModelError, match="LlamaForCausalLM only .*not Gemma3ForCausalLM"):
        write_full_gguf(gemma, tiny_gguf, tmp_path / "gemma.gguf")
    other_vocab = make_tiny_model_dir(tmp_path / "llama")  # SmolLM2's whole vocabulary, the GGUF has 1,024
    with pytest.raises(ModelError, match="token_embd.weight is .* resized vocabulary"):
        write_full_gguf(other_vocab, tiny_gguf, tmp_path / "llama.gguf")
    assert not list(tmp_path.glob("*.gguf"))


# --- the CPU default: ``auto`` serves through llama.cpp, CTranslate2's chain behind it ---------------------
@needs_xllamacpp
def test_auto_on_a_cpu_serves_a_llama_base_through_llama_cpp_f32_with_drafting(settings_for, tmp_path,
                                                                             tiny_gguf):
    """The CPU default: ``auto`` resolves to llama.cpp for a Llama base, with the field defaults f32 weights
    and ngram-mod drafting (2 / up to 4), and answers as the explicit ``llamacpp`` backend does."""
    from agent.models.ctranslate import resolve_backend
    from agent.models.factory import FallbackGenerator
    from agent.models.xllamacpp import XLlamaCppGenerator

    s = _settings(settings_for, tmp_path / "h", tiny_gguf, model_backend="auto", device="cpu",
                  max_new_tokens=24)
    assert (s.llamacpp_weights, s.llamacpp_draft, s.llamacpp_draft_ngram, s.llamacpp_draft_max) == \
        ("f32", "ngram-mod", 2, 4)
    assert resolve_backend(s) == "llamacpp" and s.resolved_candidates() == 1
    gen = make_generator(s)
    assert isinstance(gen, FallbackGenerator) and isinstance(gen.primary, XLlamaCppGenerator)
    replies = [gen.generate(p.question, p.schema_text) for p in PROMPTS]
    assert gen.serving() is gen.primary and gen.backend == "llama.cpp" and gen.version == "tiny-llama+base"
    assert gen.traces[-1].backend == "llamacpp"
    assert (s.path("models", "gguf-f32")).is_dir()  # the base dequantized to float32, once
    explicit = make_generator(s.model_copy(update={"model_backend": "llamacpp"}))
    assert [explicit.generate(p.question, p.schema_text) for p in PROMPTS] == replies


@needs_xllamacpp
def test_auto_answers_from_threads_as_one_at_a_time(settings_for, tmp_path, tiny_gguf):
    """serve and the UI answer from threads: the one llama.cpp slot is taken in turn (the generator's lock),
    so replies from four threads at once are those asked one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    s = _settings(settings_for, tmp_path / "h", tiny_gguf, model_backend="auto", device="cpu",
                  max_new_tokens=16)
    gen = make_generator(s)
    alone = [gen.generate(p.question, p.schema_text) for p in PROMPTS]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda i: gen.generate(PROMPTS[i % 3].question, SCHEMA), range(12)))
    assert together == [alone[i % 3] for i in range(12)]


@needs_xllamacpp
def test_auto_falls_back_to_ctranslate2_for_a_model_llama_cpp_refuses(settings_for, tmp_path, tiny_gguf,
                                                                     caplog):
    """A full fine-tune whose shapes are not its base GGUF's (a resized vocabulary) cannot be written as a
    GGUF: the promotion prepares it for CTranslate2 instead and the first question is answered there, each
    with one warning line."""
    import logging

    from agent.models import ctranslate
    from finetune.registry import AdapterRegistry

    pytest.importorskip("ctranslate2")
    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, model_backend="auto", device="cpu", adapter="active",
                  max_new_tokens=8, ct2_quantization="float32")
    resized = make_tiny_model_dir(tmp_path / "resized")  # SmolLM2's whole vocabulary; the GGUF has 1,024
    version = AdapterRegistry(home).add(resized, {"graph": "shop"})
    caplog.set_level(logging.WARNING)
    assert AdapterRegistry(home, s).promote(version) == version
    ref = read_active(home)
    assert (ctranslate.converted_dir(s, ref, "float32") / ctranslate.MARKER).is_file()
    assert any("llama.cpp cannot serve" in r.message and "resized vocabulary" in r.message
               for r in caplog.records)
    caplog.clear()

    gen = make_generator(s)
    assert gen.generate("q?", SCHEMA) == gen.generate("q?", SCHEMA)
    assert gen.backend == "CTranslate2" and gen.version == f"tiny-llama+{version}"
    assert gen.traces[-1].backend == "ctranslate2"
    warned = [r.message for r in caplog.records if "cannot serve" in r.message]
    assert len(warned) == 1 and "llama.cpp" in warned[0] and "CTranslate2 answers instead" in warned[0]


@needs_xllamacpp
def test_auto_tries_llama_cpp_again_for_each_new_live_version(settings_for, tmp_path, tiny_gguf, caplog):
    """A refusal holds for the refused weights only. In one process (the UI, the scheduled retrain): the base
    through llama.cpp; a promoted full fine-tune it refuses (a resized vocabulary) through CTranslate2; the
    next promotion, one it can serve, through llama.cpp again, with llama.cpp's own replies and
    CTranslate2's model dropped; a rollback to the refused one through CTranslate2 again. One warning line a
    refusal."""
    import logging

    from agent.models.xllamacpp import XLlamaCppGenerator
    from finetune.registry import AdapterRegistry

    pytest.importorskip("ctranslate2")
    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, model_backend="auto", device="cpu", adapter="active",
                  max_new_tokens=8, ct2_quantization="float32")
    gen = make_generator(s)
    gen.generate("q?", SCHEMA)
    assert gen.backend == "llama.cpp" and gen.version == "tiny-llama+base"

    caplog.set_level(logging.INFO)
    registry = AdapterRegistry(home, s)
    refused = registry.add(make_tiny_model_dir(tmp_path / "resized"), {"graph": "shop"})
    registry.promote(refused)
    gen.generate("q?", SCHEMA)
    assert gen.backend == "CTranslate2" and gen.version == f"tiny-llama+{refused}"
    assert gen.traces[-1].backend == "ctranslate2" and gen.primary._server is None  # llama.cpp's released

    served = _full_fine_tune(home, s)
    registry.promote(served)
    replies = [gen.generate(p.question, p.schema_text) for p in PROMPTS]
    assert gen.backend == "llama.cpp" and gen.version == f"tiny-llama+{served}"
    assert gen.traces[-1].backend == "llamacpp" and gen._fallback is None
    assert replies == [XLlamaCppGenerator(s).generate(p.question, p.schema_text) for p in PROMPTS]
    assert any(f"llama.cpp serves tiny-llama+{served} again" in r.message for r in caplog.records)

    assert registry.rollback() == refused
    gen.generate("q?", SCHEMA)
    assert gen.backend == "CTranslate2" and gen.version == f"tiny-llama+{refused}"
    served_warnings = [r.message for r in caplog.records if "llama.cpp cannot serve (" in r.message]
    assert len(served_warnings) == 2 and all("resized vocabulary" in m for m in served_warnings)


def test_auto_serves_a_gemma_base_or_a_missing_xllamacpp_through_ctranslate2(settings_for, tmp_path,
                                                                             tiny_gguf, monkeypatch):
    """What ``auto`` knows before loading anything: Gemma 3 bases (their LoRAs and full fine-tunes llama.cpp
    refuses), bases that are no GGUF, and an install without xllamacpp go to CTranslate2 (transformers
    without it) from the start."""
    from agent.models import llamacpp
    from agent.models.ctranslate import auto_fallback, resolve_backend

    def auto(**kw):
        return settings_for(tmp_path, **{"model_backend": "auto", "device": "cpu", **kw})

    assert "Llama bases only" in llamacpp.auto_refusal(auto(base_model="gemma3-270m"))
    assert resolve_backend(auto(base_model="gemma3-270m")) == auto_fallback()
    assert "not a GGUF" in llamacpp.auto_refusal(auto(base_model=str(tmp_path / "model-dir")))
    real = llamacpp.installed
    monkeypatch.setattr(llamacpp, "installed", lambda name: name != "xllamacpp" and real(name))
    assert "xllamacpp" in llamacpp.auto_refusal(auto(base_model=str(tiny_gguf)))
    assert resolve_backend(auto()) == auto_fallback()
    monkeypatch.setattr(llamacpp, "installed", real)
    if real("xllamacpp"):
        assert llamacpp.auto_refusal(auto()) is None and resolve_backend(auto()) == "llamacpp"
        assert llamacpp.auto_refusal(auto(base_model=str(tiny_gguf))) is None
    assert resolve_backend(auto(device="cuda")) == "transformers"
    assert resolve_backend(settings_for(tmp_path, model_backend="ctranslate2")) == "ctranslate2"


@needs_xllamacpp
def test_a_promotion_under_auto_writes_the_llama_cpp_files_ahead(settings_for, tmp_path, tiny_gguf):
    """Promotion converts a new adapter for the runtime that serves it: under ``auto`` on a CPU the LoRA
    merged into the base as a float32 GGUF, so the first question after it only loads."""
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, model_backend="auto", device="cpu", adapter="active")
    make_lora_adapter(ensure_base_model(s), home / "adapters" / "v0001", seed=1)
    (home / "adapters" / "v0001" / "meta.json").write_text('{"version": "v0001"}')
    assert AdapterRegistry(home, s).promote("v0001") == "v0001"
    [path] = (home / "models" / "gguf-full").glob("v0001-f32-*/model.gguf")
    assert not (home / "models" / "lora-gguf").exists() and not (home / "models" / "gguf-f32").exists()
    assert not (home / "models" / "ct2").exists()  # nothing written for a backend that does not serve
    gen = make_generator(s)
    assert gen.generate("q?", SCHEMA) and gen.backend == "llama.cpp" and gen.version == "tiny-llama+v0001"
    assert list((home / "models" / "gguf-full").glob("*/model.gguf")) == [path]  # loaded, not written again


def _lora(home, settings, version, seed):
    folder = make_lora_adapter(ensure_base_model(settings), home / "adapters" / version, seed=seed)
    (folder / "meta.json").write_text(f'{{"version": "{version}"}}')
    return version


@needs_xllamacpp
@pytest.mark.parametrize("weights, tensor_type", [("f32", "F32"), ("f16", "F16")])
def test_a_lora_is_served_merged_as_a_full_gguf_and_followed(settings_for, tmp_path, tiny_gguf, weights,
                                                             tensor_type):
    """Under ``llamacpp_weights`` f32 / f16 a LoRA is merged into its base and served as a full fine-tune is,
    its own GGUF in gguf-full (no LoRA applied at run time: about 30 % a token, docs/BENCHMARKS.md 5b). In
    float32 its greedy replies are transformers' with the LoRA; a promotion writes the next version's file
    ahead, a rollback loads the one before it again without writing it."""
    import gguf

    from agent.models.local import TransformersGenerator
    from agent.models.xllamacpp import XLlamaCppGenerator
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, adapter="active", llamacpp_weights=weights,
                  max_new_tokens=12)
    v1, v2 = _lora(home, s, "v0001", seed=1), _lora(home, s, "v0002", seed=2)
    gen = XLlamaCppGenerator(s)
    base_out = gen.generate("q?", SCHEMA)
    write_active(home, v1)
    served = [gen.generate(p.question, p.schema_text) for p in PROMPTS]
    assert gen.version == "tiny-llama+v0001" and served[2] != base_out and all(served)
    [path] = (home / "models" / "gguf-full").glob(f"v0001-{weights}-*/model.gguf")
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(str(path)).tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType[tensor_type]
    assert not any("lora" in name for name in types)
    assert gen._server is not None and not (home / "models" / "lora-gguf").exists()  # no LoRA attached
    if weights == "f32":
        reference = TransformersGenerator(s.model_copy(update={"model_backend": "transformers"}))
        assert served == [reference.generate(p.question, p.schema_text) for p in PROMPTS]

    registry = AdapterRegistry(home, s)
    assert registry.promote(v2) == v2
    second = list((home / "models" / "gguf-full").glob(f"v0002-{weights}-*/model.gguf"))
    assert len(second) == 1  # written ahead by the promotion
    v2_out = gen.generate("q?", SCHEMA)
    assert gen.version == "tiny-llama+v0002" and v2_out != served[2]
    stamp = path.stat().st_mtime_ns
    write_active(home, v1)  # a rollback: the first version's file, as it was
    assert gen.generate("q?", SCHEMA) == served[2] and gen.version == "tiny-llama+v0001"
    assert path.stat().st_mtime_ns == stamp
    assert len(list((home / "models" / "gguf-full").glob("*/model.gguf"))) == 2
    write_active(home, None)
    assert gen.generate("q?", SCHEMA) == base_out and gen.version == "tiny-llama+base"


# --- llama-cpp-python: the same files and settings, through a stand-in of its Llama class -----------------
class _StandInLlama:
    """llama-cpp-python's ``Llama`` at the boundary (not installed here: a source build): the keyword
    arguments its constructor takes (``model_path``, ``n_ctx``, ``n_threads``, ``n_threads_batch``,
    ``lora_path``, ``draft_model``, ``verbose``), any other a TypeError as there; it records each load."""

    loads: list[dict] = []

    def __init__(self, model_path, *, n_ctx=512, n_threads=None, n_threads_batch=None, lora_path=None,
                 draft_model=None, verbose=True):
        self.kwargs = {"model_path": model_path, "n_threads": n_threads, "n_threads_batch": n_threads_batch,
                       "lora_path": lora_path, "draft_model": draft_model}
        _StandInLlama.loads.append(self.kwargs)

    def create_chat_completion(self, messages, **sampling):
        return {"choices": [{"message": {"content": "MATCH (c:Customer) RETURN count(c)"}}]}

    def create_completion(self, prompt, **sampling):
        return {"choices": [{"text": "MATCH (c:Customer) RETURN count(c)"}]}


class _StandInLookup:
    def __init__(self, max_ngram_size=2, num_pred_tokens=10):
        self.max_ngram_size, self.num_pred_tokens = max_ngram_size, num_pred_tokens


@pytest.fixture
def llama_cpp_python(monkeypatch):
    """``llama_cpp`` and ``llama_cpp.llama_speculative`` as importable stand-ins."""
    import importlib.machinery
    import sys
    import types

    module = types.ModuleType("llama_cpp")
    module.__spec__ = importlib.machinery.ModuleSpec("llama_cpp", None)
    module.Llama = _StandInLlama
    speculative = types.ModuleType("llama_cpp.llama_speculative")
    speculative.LlamaPromptLookupDecoding = _StandInLookup
    module.llama_speculative = speculative
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_speculative", speculative)
    _StandInLlama.loads = []
    return _StandInLlama.loads


def test_llama_cpp_python_loads_the_files_and_settings_xllamacpp_does(settings_for, tmp_path, tiny_gguf,
                                                                      llama_cpp_python, caplog):
    """With llama-cpp-python installed, ``model_backend=llamacpp`` loads what xllamacpp would: the base
    dequantized to float32 (``llamacpp_weights=f32``), a promoted LoRA merged into a full-model GGUF written
    ahead by the promotion (no LoRA at run time), ``llamacpp_threads`` threads, and the drafting as prompt
    lookup (``llamacpp_draft_ngram`` / ``_max``). The default ngram-mod and its ``llamacpp_draft_min`` it does
    not have: one warning line at the first load, none at the reloads."""
    import logging

    from agent.models.gguf_full import dequantized_gguf
    from agent.models.llamacpp import LlamaCppGenerator, usable_threads
    from finetune.registry import AdapterRegistry

    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, adapter="active", llamacpp_threads=2, llamacpp_draft_max=5)
    assert (s.llamacpp_weights, s.llamacpp_draft) == ("f32", "ngram-mod")
    gen = make_generator(s)
    assert isinstance(gen, LlamaCppGenerator)
    caplog.set_level(logging.WARNING, logger="agent.models.llamacpp")
    assert gen.generate("q?", SCHEMA) == "MATCH (c:Customer) RETURN count(c)"
    [base] = llama_cpp_python
    assert base["model_path"] == str(dequantized_gguf(tiny_gguf, s, "f32")) and base["lora_path"] is None
    assert base["n_threads"] == base["n_threads_batch"] == usable_threads(2) >= 1
    draft = base["draft_model"]
    assert isinstance(draft, _StandInLookup) and (draft.max_ngram_size, draft.num_pred_tokens) == (2, 5)

    v1 = _lora(home, s, "v0001", seed=1)
    AdapterRegistry(home, s).promote(v1)
    [merged] = (home / "models" / "gguf-full").glob("v0001-f32-*/model.gguf")  # written by the promotion
    gen.generate("q?", SCHEMA)
    assert llama_cpp_python[-1]["model_path"] == str(merged) and llama_cpp_python[-1]["lora_path"] is None
    assert gen.version == "tiny-llama+v0001" and not (home / "models" / "lora-gguf").exists()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "llamacpp_draft=ngram-mod (served as prompt lookup)" in warned[0]
    assert "llamacpp_draft_min" in warned[0]


@pytest.mark.parametrize("draft, warned",
                         [("ngram-simple", ""), ("ngram-map-k", "ngram-map-k"), ("none", "")])
def test_llama_cpp_python_under_quantized_weights_and_other_drafts(settings_for, tmp_path, tiny_gguf,
                                                                   llama_cpp_python, caplog, draft, warned):
    """``llamacpp_weights=gguf``: the base GGUF as it is, and the LoRA as a GGUF applied at load.
    ngram-simple is prompt lookup itself (nothing to warn of); none loads no draft model."""
    import logging

    from agent.models.llamacpp import LlamaCppGenerator

    home = tmp_path / "home"
    s = _settings(settings_for, home, tiny_gguf, adapter="active", llamacpp_weights="gguf",
                  llamacpp_draft=draft, llamacpp_threads=0)
    write_active(home, _lora(home, s, "v0001", seed=1))
    caplog.set_level(logging.WARNING, logger="agent.models.llamacpp")
    LlamaCppGenerator(s).generate("q?", SCHEMA)
    [load] = llama_cpp_python
    assert load["model_path"] == str(tiny_gguf) and load["n_threads"] is None
    assert load["lora_path"] == str(home / "models" / "lora-gguf" / "v0001.gguf")
    assert (load["draft_model"] is None) == (draft == "none")
    lines = [r.getMessage() for r in caplog.records]
    assert (lines and warned in lines[0] and "llamacpp_draft_min" not in lines[0]) if warned else not lines


def test_llama_cpp_threads_are_capped_at_the_usable_cores(monkeypatch):
    import os

    from agent.models.xllamacpp import usable_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert (usable_threads(2), usable_threads(8), usable_threads(1), usable_threads(0)) == (2, 2, 1, 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert usable_threads(2) == 1
