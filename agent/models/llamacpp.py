"""GGUF models through llama.cpp's ``llama-cpp-python`` (a source build, ~8 min), when it is installed;
otherwise ``model_backend=llamacpp`` serves through xllamacpp's prebuilt wheel (``agent.models.xllamacpp``,
the optional extra ``cypherloop[llamacpp]``), which uses this module's GGUF base and LoRA conversion.

On a CPU it generates about 4x faster than transformers (docs/BENCHMARKS.md §5), with other greedy replies on
many questions (its quantized arithmetic, measured through xllamacpp: docs/BENCHMARKS.md 5b). The base is a
GGUF file (the packaged SmolLM2 by default, or ``settings.base_model`` ending in ``.gguf``). Both bindings
load the same files (``served_gguf``): under ``llamacpp_weights`` f32 / f16 the base dequantized and a Llama
LoRA merged into a full-model GGUF; under ``gguf`` (or another base) the LoRA in GGUF form (``adapter.gguf``
in the adapter folder, or the PEFT adapter converted once), passed as ``lora_path``; a full fine-tune as its
own GGUF (``agent.models.gguf_full``). A new active adapter reloads the (small) model; the pointer is checked
with a ``stat`` per call. The prompt is rendered by the same Hugging Face chat template as training when the
converted base directory exists, so training and serving see the same tokens.

llama-cpp-python honours ``llamacpp_threads`` (generation and prompt) and ``llamacpp_draft`` through its one
exact drafting, prompt lookup (``LlamaPromptLookupDecoding``: ``llamacpp_draft_ngram`` tokens at most,
``llamacpp_draft_max`` drafted), which is xllamacpp's ngram-simple; ngram-map-k and ngram-mod (whose table of
n-grams outlives a question) and ``llamacpp_draft_min`` have no equivalent there: those are served as prompt
lookup, and the first load says so in one warning line (``prompt_lookup``). Unmeasured: llama-cpp-python is
not installed where the benchmarks ran, and its glue is tested against a stand-in of its ``Llama`` class.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from agent.core.adapters import AdapterRef
from agent.core.errors import ModelError, TrainingError
from agent.core.prompt import prompt_token_ids
from agent.core.settings import Settings
from agent.models.base import ChatGenerator, installed, optional_module
from agent.models.gguf_full import dequantized_gguf, full_model_gguf, merged_model_gguf, merges_lora
from agent.models.gguf_lora import write_gguf_lora
from agent.models.local import (
    PACKAGED_MODELS,
    STOP_TOKENS,
    AdapterFollower,
    base_display_name,
    ensure_base_model,
    packaged_gguf,
)

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the llamacpp backend needs llama.cpp: pip install 'cypherloop[llamacpp]' (xllamacpp, a prebuilt "
    "wheel) or llama-cpp-python (a source build, ~8 min on 2 cores), or use CYPHERLOOP_MODEL_BACKEND=auto"
)
ADAPTER_FILES = ("adapter.gguf", "adapter_model.gguf", "lora.gguf")
STOP = list(STOP_TOKENS)


def import_llama_cpp() -> Any:
    return optional_module("llama_cpp", INSTALL_HINT)


def available() -> bool:
    """Whether llama-cpp-python is installed (without importing it)."""
    return installed("llama_cpp")


AUTO_BASES = ("smollm2-135m-instruct",)
"""Packaged bases ``auto`` serves through llama.cpp on a CPU: the Llama architecture, whose LoRAs
(``gguf_lora``) and full fine-tunes (``gguf_full``) this project writes as GGUF. Gemma 3's are refused, so
``auto`` serves a Gemma base through CTranslate2 from the start."""


def auto_refusal(settings: Settings) -> str | None:
    """Why ``model_backend=auto`` on a CPU does not serve through llama.cpp (xllamacpp), or None when it does:
    xllamacpp must be installed and the base a Llama one (the packaged SmolLM2, or a ``.gguf`` file of the
    llama architecture). What only loading can tell (a fine-tune with a resized vocabulary, a failed
    conversion) falls back later (``agent.models.factory.FallbackGenerator``). Reads no weights."""
    if not installed("xllamacpp"):
        return "the xllamacpp package is not installed (pip install xllamacpp)"
    name = settings.base_model
    if name in AUTO_BASES:
        return None
    if name in PACKAGED_MODELS:
        return f"llama.cpp serves Llama bases only, and {name} is not one"
    if not name.endswith(".gguf"):
        return f"the base {name!r} is not a GGUF file"
    try:
        import gguf

        field = gguf.GGUFReader(str(Path(name).expanduser())).fields["general.architecture"]
        arch = field.contents()
    except Exception as e:  # noqa: BLE001 - any unreadable file is one the fallback serves
        return f"cannot read the GGUF {name}: {e}"
    return None if arch == "llama" else f"llama.cpp serves Llama bases only, and {name} is {arch}"


def gguf_base_path(settings: Settings) -> Path:
    name = settings.base_model
    if name in PACKAGED_MODELS:
        return packaged_gguf(name, settings.path("models", "gguf"))
    path = Path(name).expanduser()
    if name.endswith(".gguf") and path.is_file():
        return path
    raise ModelError(f"the llamacpp backend needs a GGUF base model (a .gguf file), not {name!r}")


def adapter_gguf(ref: AdapterRef, settings: Settings | None = None) -> Path:
    """The GGUF LoRA file inside an adapter folder; for a PEFT-only folder (the shipped adapter, a fresh
    registry version) one converted once into ``<home>/models/lora-gguf/`` when ``settings`` is given."""
    if ref.path.is_file() and ref.path.suffix == ".gguf":
        return ref.path
    for name in ADAPTER_FILES:
        if (ref.path / name).is_file():
            return ref.path / name
    found = sorted(ref.path.glob("*.gguf"))
    if found:
        return found[0]
    if settings is not None and (ref.path / "adapter_config.json").is_file():
        return _converted_lora(ref, settings)
    raise ModelError(
        f"adapter {ref.version} has no GGUF LoRA for llama.cpp in {ref.path} "
        f"(expected {ADAPTER_FILES[0]}; convert the PEFT adapter with llama.cpp's convert_lora_to_gguf.py)"
    )


def _converted_lora(ref: AdapterRef, settings: Settings) -> Path:
    out = settings.path("models", "lora-gguf", f"{ref.version}.gguf")
    if out.is_file() and out.stat().st_mtime >= (ref.path / "adapter_model.safetensors").stat().st_mtime:
        return out
    config = json.loads((ensure_base_model(settings) / "config.json").read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp-{os.getpid()}")
    try:
        write_gguf_lora(ref.path, config, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def served_gguf(settings: Settings, base: Path, want: AdapterRef | None) -> tuple[Path, Path | None]:
    """The GGUF model file llama.cpp loads for the live version ``want`` under ``llamacpp_weights``, and the
    GGUF LoRA applied on it at load (None: none), written once, the same for both bindings: a full
    fine-tune's own GGUF; a Llama LoRA under f32 / f16 merged into a full-model GGUF (``merges_lora``); else
    the base (dequantized under f32 / f16) with the LoRA as a GGUF (``adapter_gguf``)."""
    weights = settings.llamacpp_weights
    if want is not None and want.full_model:
        return full_model_gguf(want, base, settings, weights), None
    if merges_lora(settings, want):
        assert want is not None
        return merged_model_gguf(want, base, settings, weights), None
    model = base if weights == "gguf" else dequantized_gguf(base, settings, weights)
    if want is None:
        return model, None
    try:
        return model, adapter_gguf(want, settings)
    except TrainingError as e:  # a base whose LoRAs the built-in GGUF export cannot write
        raise ModelError(str(e)) from e


def usable_threads(threads: int) -> int:
    """``threads`` (``llamacpp_threads``), but no more than the cores this process may run on: threads beyond
    them wait on each other at every step. 0 stays 0 (llama.cpp's own default)."""
    if threads <= 0:
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(threads, cores))


def prompt_lookup(settings: Settings, llama_cpp: Any) -> tuple[Any, list[str]]:
    """``llamacpp_draft`` on llama-cpp-python: its one exact drafting, prompt lookup
    (``llama_cpp.llama_speculative.LlamaPromptLookupDecoding``: the last ``max_ngram_size`` tokens, then
    fewer, searched in the prompt and the reply so far, up to ``num_pred_tokens`` of what followed them
    drafted and checked in one forward pass), the nearest to xllamacpp's ngram-simple. The draft model (None
    for ``none``) and the settings it does not honour as llama.cpp's server does, for the load's log line:
    ngram-map-k and ngram-mod (no table of n-grams kept across questions) are served as prompt lookup, and
    ``llamacpp_draft_min`` has no equivalent."""
    kind = settings.llamacpp_draft
    if kind == "none":
        return None, []
    speculative = importlib.import_module(f"{llama_cpp.__name__}.llama_speculative")
    draft = speculative.LlamaPromptLookupDecoding(max_ngram_size=settings.llamacpp_draft_ngram,
                                                  num_pred_tokens=settings.llamacpp_draft_max)
    ignored = [] if kind == "ngram-simple" else [f"llamacpp_draft={kind} (served as prompt lookup)"]
    if kind == "ngram-mod":
        ignored.append("llamacpp_draft_min")
    return draft, ignored


class LlamaCppGenerator(ChatGenerator):
    """``CypherGenerator`` on llama.cpp with an optional GGUF LoRA that follows the registry."""

    def __init__(self, settings: Settings, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        self.settings = settings
        self.base_path = gguf_base_path(settings)
        self.base_name = base_display_name(settings.base_model)
        self.adapters = AdapterFollower(settings.adapter, settings.home_dir, settings.base_model)
        self.n_ctx = n_ctx
        self.n_threads = n_threads if n_threads is not None else usable_threads(settings.llamacpp_threads)
        self._lock = threading.RLock()
        self._llm: Any = None
        self._loaded: AdapterRef | None = None
        self._tokenizer: Any = None
        self._tokenizer_checked = False
        self._told = False  # the settings this binding ignores: logged at the first load only

    @property
    def version(self) -> str:
        ref = self._loaded if self._llm is not None else self.adapters.current()
        return f"{self.base_name}+{ref.version if ref else 'base'}"

    def _ensure(self) -> Any:
        with self._lock:
            want = self.adapters.current()
            if self._llm is not None and want == self._loaded:
                return self._llm
            llama_cpp = import_llama_cpp()
            self._llm, self._loaded = None, None  # the previous model's memory goes first
            model, lora = served_gguf(self.settings, self.base_path, want)
            kwargs: dict[str, Any] = {
                "model_path": str(model),
                "n_ctx": self.n_ctx,
                "verbose": False,
            }
            if self.n_threads:
                kwargs["n_threads"] = kwargs["n_threads_batch"] = self.n_threads
            if lora is not None:
                kwargs["lora_path"] = str(lora)
            kwargs["draft_model"], ignored = prompt_lookup(self.settings, llama_cpp)
            if kwargs["draft_model"] is None:
                del kwargs["draft_model"]
            if ignored and not self._told:
                self._told = True
                log.warning("llama-cpp-python does not honour %s (CYPHERLOOP_LLAMACPP_DRAFT=ngram-simple "
                            "asks for what it serves; xllamacpp honours them: pip install xllamacpp and "
                            "uninstall llama-cpp-python)", ", ".join(ignored))
            try:
                self._llm = llama_cpp.Llama(**kwargs)
            except Exception as e:  # noqa: BLE001
                raise ModelError(
                    "llama.cpp could not load "
                    f"{self.base_path.name}{' with ' + want.version if want else ''}: {e}"
                ) from e
            self._loaded = want
            return self._llm

    def release(self) -> None:
        with self._lock:
            self._llm, self._loaded = None, None

    def _hf_tokenizer(self) -> Any:
        """The converted base's tokenizer (same chat template as training), when it exists."""
        if not self._tokenizer_checked:
            self._tokenizer_checked = True
            name = self.settings.base_model
            if name in PACKAGED_MODELS:
                d = self.settings.path("models", name)
                if (d / "tokenizer_config.json").is_file():
                    try:
                        from transformers import AutoTokenizer

                        self._tokenizer = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
                    except Exception:  # noqa: BLE001 - fall back to llama.cpp's own template
                        self._tokenizer = None
        return self._tokenizer


    def complete(self, messages: list[dict[str, str]], max_new_tokens: int | None = None) -> str:
        s = self.settings
        with self._lock:
            llm = self._ensure()
            sampling = {
                "max_tokens": max_new_tokens or s.max_new_tokens,
                "temperature": s.temperature,
                "top_p": s.top_p if s.temperature > 0 else 1.0,
                "repeat_penalty": s.repetition_penalty,
                "stop": STOP,
            }
            try:
                tok = self._hf_tokenizer()
                if tok is not None:
                    ids = prompt_token_ids(tok, messages)
                    out = llm.create_completion(prompt=ids, **sampling)
                    return (out["choices"][0]["text"] or "").strip()
                out = llm.create_chat_completion(messages=messages, **sampling)
                return (out["choices"][0]["message"]["content"] or "").strip()
            except ModelError:
                raise
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"llama.cpp generation failed: {e}") from e
