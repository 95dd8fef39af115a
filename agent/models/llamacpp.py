"""GGUF models through llama.cpp's ``llama-cpp-python`` (a source build, ~8 min), when it is installed;
otherwise ``model_backend=llamacpp`` serves through xllamacpp's prebuilt wheel (``agent.models.xllamacpp``,
the optional extra ``cypherloop[llamacpp]``), which uses this module's GGUF base and LoRA conversion.

On a CPU it generates about 4x faster than transformers (docs/BENCHMARKS.md §5), with other greedy replies on
many questions (its quantized arithmetic, measured through xllamacpp: docs/BENCHMARKS.md 5b). The base is a
GGUF file (the packaged SmolLM2 by default, or ``settings.base_model`` ending in ``.gguf``); the adapter is a
LoRA in GGUF form (``adapter.gguf`` in the adapter folder, e.g. written by llama.cpp's
``convert_lora_to_gguf.py``), passed as ``lora_path``; a full fine-tune is served as its own GGUF
(``agent.models.gguf_full``). llama.cpp applies a LoRA at load time, so a
new active adapter reloads the (small) model; the pointer is checked with a ``stat`` per call.
The prompt is rendered by the same Hugging Face chat template as training when the converted base
directory exists, so training and serving see the same tokens.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from agent.core.adapters import AdapterRef
from agent.core.errors import ModelError
from agent.core.prompt import prompt_token_ids
from agent.core.settings import Settings
from agent.models.base import ChatGenerator, installed, optional_module
from agent.models.gguf_full import full_model_gguf
from agent.models.gguf_lora import write_gguf_lora
from agent.models.local import (
    PACKAGED_MODELS,
    STOP_TOKENS,
    AdapterFollower,
    base_display_name,
    ensure_base_model,
    packaged_gguf,
)

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


class LlamaCppGenerator(ChatGenerator):
    """``CypherGenerator`` on llama.cpp with an optional GGUF LoRA that follows the registry."""

    def __init__(self, settings: Settings, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        self.settings = settings
        self.base_path = gguf_base_path(settings)
        self.base_name = base_display_name(settings.base_model)
        self.adapters = AdapterFollower(settings.adapter, settings.home_dir, settings.base_model)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._lock = threading.RLock()
        self._llm: Any = None
        self._loaded: AdapterRef | None = None
        self._tokenizer: Any = None
        self._tokenizer_checked = False

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
            kwargs: dict[str, Any] = {
                "model_path": str(self.base_path),
                "n_ctx": self.n_ctx,
                "verbose": False,
            }
            if self.n_threads:
                kwargs["n_threads"] = self.n_threads
            if want is not None and want.full_model:  # its own GGUF (agent.models.gguf_full)
                kwargs["model_path"] = str(full_model_gguf(want, self.base_path, self.settings,
                                                           self.settings.llamacpp_weights))
            elif want is not None:
                kwargs["lora_path"] = str(adapter_gguf(want, self.settings))
            try:
                self._llm = llama_cpp.Llama(**kwargs)
            except Exception as e:  # noqa: BLE001
                raise ModelError(
                    "llama.cpp could not load "
                    f"{self.base_path.name}{' with ' + want.version if want else ''}: {e}"
                ) from e
            self._loaded = want
            return self._llm

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
