"""CTranslate2 on a CPU (``model_backend=auto`` or ``ctranslate2``; prebuilt wheels from PyPI, no build),
float32 weights by default, which write the transformers backend's replies (int8 is faster, but its replies
differ). The default backend `auto` uses it on a CPU for what llama.cpp does not serve (a Gemma base, a model
llama.cpp refuses at load, no xllamacpp installed: ``resolve_backend``, ``agent.models.factory``):
docs/BENCHMARKS.md 5b.

The live adapter is merged into the base (PEFT ``merge_and_unload``, fp32: the merged copy of
``agent.models.local.ensure_merged``, kept on disk, which `auto`'s transformers stand-in loads too) and the
merged model converted with CTranslate2's own ``TransformersConverter`` (Llama-architecture models, SmolLM2
included) into ``<home>/models/ct2/<base>-<version>-<quantization>-<fingerprint>/``, once, under a file
lock, written to a temp dir and renamed. The fingerprint covers the adapter's (or full model's) files, so a
new live adapter (``adapter=active`` follows the registry with one ``stat`` per call) is converted on its
first question; ``finetune.registry`` prepares a promoted version ahead (``prepare_live``), so it is ready
before anyone asks. Older conversions of the same base are removed (``KEEP`` stay, for a rollback).

The prompt is rendered by the same Hugging Face tokenizer and chat template as training
(``agent.core.prompt.prompt_token_ids``). The system turn (instructions + schema) is the same for every
question on a graph, so it is passed as CTranslate2's ``static_prompt`` (``ct2_prefix_cache``): its KV state
is computed once per distinct system turn and reused (a changed schema is another static prompt), and each
question runs the forward pass over its own ~20 tokens only; the greedy replies are those of the uncached
path. What is left is decoding, ~40 steps a reply, each reading all the float32 weights. One OpenMP thread
(``ct2_threads``) by default: two on two cores waited on each other whenever another process took a core.

Sliding-window models (Gemma 2/3: local layers attend to the last ``sliding_window`` tokens, global layers to
all): CTranslate2 4.8.5 converts Gemma 3 and writes transformers' logits (to 3e-5) while the prompt fits the
window (512 tokens for Gemma 3 270M), decoding past it included, but a longer prompt comes out wrong (logit
errors of 0.2 at 520 tokens, 5 at 600, garbage beyond; a static prompt longer than the window corrupted the
heap), with or without the static prompt (docs/BENCHMARKS.md A, second base). So the conversion records the
window and a longer prompt is refused with ``PromptOverWindow``, which ``auto`` answers with transformers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.core.adapters import AdapterRef
from agent.core.errors import ModelError, PromptOverWindow, TrainingError
from agent.core.prompt import prompt_token_ids
from agent.core.settings import Settings, cuda_present
from agent.models.base import (
    ChatGenerator,
    Generation,
    GenerationTrace,
    PromptInput,
    Ready,
    StepClock,
    installed,
    optional_module,
    tell_each,
)
from agent.models.llamacpp import auto_refusal, gguf_base_path, served_gguf
from agent.models.local import (
    STOP_TOKENS,
    AdapterFollower,
    base_display_name,
    build_once,
    ensure_base_model,
    ensure_merged,
    resolve_device,
    weights_fingerprint,
)

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the ctranslate2 backend needs the package ctranslate2 (prebuilt wheels): pip install ctranslate2, "
    "or use CYPHERLOOP_MODEL_BACKEND=transformers"
)
MARKER = "cypherloop-ct2.json"
KEEP = 3
"""Conversions kept per base model (the live one and the previous ones, for a rollback)."""
MAX_STATIC_PROMPTS = 64
"""Distinct system turns whose state CTranslate2 keeps (it never evicts): past this, the model is reloaded."""
TURN_STARTS = ("<|im_start|>", "<start_of_turn>")
"""Tokens that open a chat turn (ChatML, Gemma): the question's turn starts at the last one."""


def import_ctranslate2() -> Any:
    return optional_module("ctranslate2", INSTALL_HINT)


def available() -> bool:
    """Whether the ctranslate2 package is installed (without importing it)."""
    return installed("ctranslate2")


# --- conversion -------------------------------------------------------------------------------------
def converted_dir(settings: Settings, ref: AdapterRef | None, quantization: str) -> Path:
    """Where the CTranslate2 model for the base + ``ref`` lives (converted or not)."""
    base = base_display_name(settings.base_model)
    source = ref.path if ref is not None else ensure_base_model(settings)
    label = ref.version if ref is not None else "base"
    return settings.path("models", "ct2", f"{base}-{label}-{quantization}-{weights_fingerprint(source)}")


def ensure_converted(settings: Settings, ref: AdapterRef | None, quantization: str | None = None) -> Path:
    """The CTranslate2 model of the base with ``ref`` merged (``ref`` a full model: that model); converts
    once."""
    quantization = quantization or settings.ct2_quantization
    target = converted_dir(settings, ref, quantization)
    t0 = time.perf_counter()
    try:
        made = build_once(target, MARKER, lambda tmp: _convert(settings, ref, quantization, tmp),
                          lock=".convert.lock", timeout=1800)
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ModelError(
            f"could not convert {ref.version if ref else 'the base model'} for CTranslate2: {e}"
        ) from e
    if made:
        _prune(target)
        log.info("converted %s for CTranslate2 (%s) in %.1f s", ref.version if ref else "the base",
                 quantization, time.perf_counter() - t0)
    return target


def _convert(settings: Settings, ref: AdapterRef | None, quantization: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ct2 = import_ctranslate2()
    from ctranslate2.converters import TransformersConverter

    source = ref.path if ref is not None else ensure_base_model(settings)
    if ref is not None and not ref.full_model:
        merged = ensure_merged(settings, ref)  # kept: the transformers stand-in of `auto` loads it too
    else:  # the base or a full model, in fp32 for the converter
        merged = out / "fp32"
        model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32, local_files_only=True)
        model.save_pretrained(str(merged))
        AutoTokenizer.from_pretrained(str(source), local_files_only=True).save_pretrained(str(merged))
        del model
    TransformersConverter(str(merged), low_cpu_mem_usage=True).convert(
        str(out / "ct2"), quantization=quantization, force=True
    )
    window = sliding_window(merged)
    # the same tokenizer and chat template as training
    AutoTokenizer.from_pretrained(str(merged), local_files_only=True).save_pretrained(str(out / "ct2"))
    shutil.rmtree(out / "fp32", ignore_errors=True)
    for p in (out / "ct2").iterdir():
        os.replace(p, out / p.name)
    (out / "ct2").rmdir()
    (out / MARKER).write_text(json.dumps({
        "source": str(source), "version": ref.version if ref else "base",
        "quantization": quantization, "ctranslate2": ct2.__version__, "sliding_window": window,
    }, indent=2))


def sliding_window(model_dir: Path) -> int | None:
    """The window of a model whose layers include sliding-window attention (``layer_types``: Gemma 2/3), read
    from its ``config.json``; None for full attention everywhere (Llama, SmolLM2) or no readable config."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = config.get("text_config") or config
    window = config.get("sliding_window")
    layers = config.get("layer_types") or []
    return int(window) if window and "sliding_attention" in layers else None


def converted_window(folder: Path) -> int | None:
    """The sliding window a conversion recorded; for one made before it was recorded, that of the model it
    was converted from (its folder in the marker)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if "sliding_window" in marker:
        return marker["sliding_window"]
    return sliding_window(Path(marker.get("source", "")))


def _prune(keep: Path) -> None:
    """Remove all but the ``KEEP`` newest conversions of the same base and quantization."""
    prefix, quant = keep.name.split("-")[0], keep.name.rsplit("-", 2)[-2]
    same = [p for p in keep.parent.iterdir() if p.is_dir() and not p.name.startswith(".")
            and p.name.startswith(prefix) and f"-{quant}-" in p.name]
    same.sort(key=lambda p: (p == keep, p.stat().st_mtime), reverse=True)
    for old in same[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def prepare_live(settings: Settings) -> Path | None:
    """Make what ``settings.adapter`` serves now ready for a CPU, so the first question after a promotion or
    a rollback pays neither the merge nor the conversion: CTranslate2 serving, its conversion (and the
    merged copy it is made from); transformers on a CPU, the merged copy of the base with the live LoRA
    (``ensure_merged``, what ``cypherloop warm`` writes); llama.cpp, the live LoRA merged into a full-model
    GGUF (``gguf_full.merged_model_gguf``, under ``llamacpp_weights`` f32 / f16) or as a GGUF
    adapter (``agent.models.llamacpp.adapter_gguf``) with the base dequantized (``llamacpp_weights``), or a
    full fine-tune as its own GGUF (``gguf_full``). Under ``auto``, a model llama.cpp refuses (a resized
    vocabulary, a failed conversion) is prepared for CTranslate2 instead, which is what serves it then (one
    warning line). Returns the folder or file made ready; None on a GPU, with another backend, or with nothing
    to merge or convert."""
    backend = resolve_backend(settings)
    if backend not in ("ctranslate2", "transformers", "llamacpp"):
        return None
    ref = AdapterFollower(settings.adapter, settings.home_dir, settings.base_model).current()
    if backend == "llamacpp":
        try:
            return _prepare_llamacpp(settings, ref)
        except (ModelError, TrainingError) as e:
            if settings.model_backend != "auto":
                raise
            backend = auto_fallback()
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            log.warning("llama.cpp cannot serve %s (%s); %s is prepared instead",
                        ref.version if ref else "the base", reason, backend)
    if backend == "ctranslate2":
        return ensure_converted(settings, ref)
    if ref is None or ref.full_model or resolve_device(settings.device) != "cpu":
        return None  # a full model loads as it is; a GPU merges in memory in well under a second
    return ensure_merged(settings, ref)


def _prepare_llamacpp(settings: Settings, ref: AdapterRef | None) -> Path:
    """The GGUF files llama.cpp (either binding) serves ``ref`` from, written once (``served_gguf``): a full
    fine-tune's own GGUF; for a LoRA under ``llamacpp_weights`` f32 / f16, the LoRA merged into a full-model
    GGUF (``merged_model_gguf``); else the base (dequantized under f16 / f32) and the LoRA as a GGUF
    (quantized weights, a base other than Llama). Returns the LoRA's file where there is one, else the
    model's."""
    model, lora = served_gguf(settings, gguf_base_path(settings), ref)
    return lora or model


def auto_fallback() -> str:
    """What ``auto`` serves on a CPU where llama.cpp does not: CTranslate2, or transformers without it."""
    return "ctranslate2" if available() else "transformers"


def resolve_backend(settings: Settings) -> str:
    """``auto``: transformers on a GPU; on a CPU llama.cpp (xllamacpp, with ``llamacpp_weights`` f32 and
    ``llamacpp_draft`` ngram-mod by default: docs/BENCHMARKS.md 5b) when it is installed and the base is a
    Llama one (``agent.models.llamacpp.auto_refusal``), else CTranslate2 when it is installed, else
    transformers."""
    backend = settings.model_backend
    if backend != "auto":
        return backend
    if settings.device.startswith("cuda") or (settings.device != "cpu" and cuda_present()):
        return "transformers"
    return "llamacpp" if auto_refusal(settings) is None else auto_fallback()


# --- serving ----------------------------------------------------------------------------------------
FAST_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")
"""``tokenizer_class`` values ``AutoTokenizer`` resolves to ``PreTrainedTokenizerFast`` itself (transformers 5
names it ``TokenizersBackend``): SmolLM2's."""


def load_tokenizer(folder: Path) -> Any:
    """The converted model's tokenizer, the class ``AutoTokenizer`` would pick. When that class is
    ``PreTrainedTokenizerFast`` it is loaded directly: ``AutoTokenizer`` imports torch for its model registry,
    seconds of a cold ``cypherloop ask`` that CTranslate2 never needs (docs/BENCHMARKS.md 7)."""
    try:
        config = json.loads((Path(folder) / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if config.get("tokenizer_class") in FAST_CLASSES:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def split_static(tokens: list[str]) -> int:
    """Where the question's turn starts: everything before it, the system turn, is the static prompt. The
    prompt ends with the model's turn header (the generation prompt), so the question's turn is the one opened
    before that. 0 when the prompt has no earlier turn."""
    starts = [i for i, t in enumerate(tokens) if t in TURN_STARTS][:-1]  # the last opens the model's reply
    return starts[-1] if starts else 0


class CTranslate2Generator(ChatGenerator):
    """``CypherGenerator`` on CTranslate2 (``ct2_quantization`` weights) with the live adapter merged,
    following the registry."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_name = base_display_name(settings.base_model)
        self.adapters = AdapterFollower(settings.adapter, settings.home_dir, settings.base_model)
        self._lock = threading.RLock()
        self._gen: Any = None
        self._tokenizer: Any = None
        self._loaded: AdapterRef | None = None
        self._path: Path | None = None
        self._stop: list[str] = []
        self._statics: set[tuple[str, ...]] = set()
        self._window: int | None = None

    @property
    def version(self) -> str:
        ref = self._loaded if self._gen is not None else self.adapters.current_or_none()
        return f"{self.base_name}+{ref.version if ref else 'base'}"

    @property
    def tokenizer(self) -> Any:
        self._ensure()
        return self._tokenizer

    def prepare(self, keep: bool = True) -> None:
        """Convert (once) and load the model for the adapter that serves now; ``ModelError`` if that fails."""
        self._ensure()

    def release(self) -> None:
        with self._lock:
            self._gen, self._loaded, self._path = None, None, None

    def _ensure(self) -> Any:
        """The loaded model for the adapter the setting asks for now (converted and reloaded when it
        changed)."""
        with self._lock:
            want = self.adapters.current()
            if self._gen is not None and want == self._loaded:
                return self._gen
            path = ensure_converted(self.settings, want)
            if self._gen is None or path != self._path:
                self._load(path)
            self._loaded = want
            if want is not None:
                log.info("serving %s through CTranslate2 from %s", want.version, path)
            return self._gen

    def _load(self, path: Path) -> None:
        ct2 = import_ctranslate2()
        device = "cuda" if self.settings.device.startswith("cuda") else "cpu"
        try:
            self._gen = ct2.Generator(str(path), device=device, compute_type=self.settings.ct2_quantization,
                                      intra_threads=self.settings.ct2_threads)
            self._tokenizer = load_tokenizer(path)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"CTranslate2 could not load the model in {path}: {e}") from e
        vocab = self._tokenizer.get_vocab()
        stops = [t for t in STOP_TOKENS if t in vocab]
        eos = self._tokenizer.eos_token
        self._stop = sorted({*stops, *([eos] if eos else [])})
        self._path = path
        self._statics = set()
        self._window = converted_window(path)

    def _check_window(self, prompt_tokens: int) -> None:
        """``PromptOverWindow`` for a prompt longer than the model's sliding window (module docstring)."""
        if self._window is not None and prompt_tokens > self._window:
            ct2 = import_ctranslate2()
            raise PromptOverWindow(
                f"CTranslate2 {ct2.__version__} computes a sliding-window model wrongly from a prompt longer "
                f"than its window ({prompt_tokens} tokens > {self._window}): CYPHERLOOP_MODEL_BACKEND=auto "
                "or transformers answers it"
            )

    def _options(self, temperature: float, max_new_tokens: int | None) -> dict[str, Any]:
        s = self.settings
        opts: dict[str, Any] = {
            "max_length": max_new_tokens or s.max_new_tokens,
            "repetition_penalty": s.repetition_penalty,
            "end_token": self._stop,
            "include_prompt_in_result": False,
        }
        if temperature > 0:
            opts.update(sampling_topk=0, sampling_topp=s.top_p, sampling_temperature=temperature)
        else:
            opts.update(sampling_topk=1)
        return opts

    def _static(self, tokens: list[str]) -> tuple[list[str] | None, list[str]]:
        """(static prompt, the rest); the static prompt's state is cached by CTranslate2, so their number is
        bounded: past ``MAX_STATIC_PROMPTS`` distinct ones, the model is reloaded (its cache emptied). (None,
        tokens) when ``ct2_prefix_cache`` is off."""
        cut = split_static(tokens) if self.settings.ct2_prefix_cache else 0
        if cut == 0:
            return None, tokens
        static = tuple(tokens[:cut])
        if static not in self._statics:
            if len(self._statics) >= MAX_STATIC_PROMPTS:
                assert self._path is not None
                self._load(self._path)
            self._statics.add(static)
        return list(static), tokens[cut:]

    def _tokens(self, messages: list[dict[str, str]]) -> list[str]:
        return self._tokenizer.convert_ids_to_tokens(prompt_token_ids(self._tokenizer, messages))

    def _text(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=True).strip()

    def complete(self, messages: list[dict[str, str]], max_new_tokens: int | None = None) -> str:
        start = time.perf_counter()
        with self._lock:
            gen = self._ensure()
            trace = GenerationTrace("ctranslate2")
            t = time.perf_counter()
            tokens = self._tokens(messages)
            self._check_window(len(tokens))
            static, rest = self._static(tokens)
            trace.tokenize_ms, trace.prompt_tokens = (time.perf_counter() - t) * 1000, len(tokens)
            trace.cached_prompt_tokens = len(static or ())
            clock = StepClock()
            opts = self._options(self.settings.temperature, max_new_tokens)
            clock.tick()
            try:
                res = gen.generate_batch([rest], static_prompt=static, callback=lambda _step: clock.tick(),
                                         **opts)
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"CTranslate2 generation failed: {e}") from e
            text = self._text(res[0].sequences_ids[0])
            trace.total_ms = (time.perf_counter() - start) * 1000
            self.traces.append(clock.fill(trace))
            return text

    def generate_batch(self, prompts: Sequence[PromptInput], *, n: int = 1, temperature: float | None = None,
                       max_new_tokens: int | None = None,
                       on_ready: Ready | None = None) -> list[list[Generation]]:
        """``n`` replies per prompt, with summed log-probabilities; one batched call per distinct system turn
        (its state cached). Greedy when the temperature is 0 (``n`` > 1 then repeats the one reply).
        ``on_ready`` is told of every prompt when the call has them all (``tell_each``)."""
        if not prompts:
            return []
        with self._lock:
            gen = self._ensure()
            temp = self.settings.temperature if temperature is None else temperature
            per = n if temp > 0 else 1
            groups: dict[tuple[str, ...], list[tuple[int, list[str]]]] = {}
            rendered = [self._tokens(p.messages()) for p in prompts]
            self._check_window(max(len(tokens) for tokens in rendered))
            for i, tokens in enumerate(rendered):
                static, rest = self._static(tokens)
                groups.setdefault(tuple(static or ()), []).append((i, rest))
            out: list[list[Generation]] = [[] for _ in prompts]
            opts = self._options(temp, max_new_tokens)
            for static, members in groups.items():
                batch = [rest for _, rest in members for _ in range(per)]
                try:
                    res = gen.generate_batch(batch, static_prompt=list(static) or None, return_scores=True,
                                             max_batch_size=32, **opts)
                except Exception as e:  # noqa: BLE001
                    raise ModelError(f"CTranslate2 batched generation failed: {e}") from e
                for k, (i, _) in enumerate(members):
                    gens = [Generation(self._text(r.sequences_ids[0]),
                                       float(r.scores[0]) if r.scores else None)
                            for r in res[k * per: (k + 1) * per]]
                    out[i] = gens if temp > 0 else gens * n
        return tell_each(out, on_ready)
