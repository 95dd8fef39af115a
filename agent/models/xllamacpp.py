"""llama.cpp from a prebuilt wheel (``xllamacpp``: no build): what ``model_backend=auto`` serves on a CPU
(a Llama base: ``agent.models.llamacpp.auto_refusal``), and ``model_backend=llamacpp`` when llama-cpp-python
is not installed.

The base is the same GGUF as the llama-cpp-python backend (``agent.models.llamacpp.gguf_base_path``: the
packaged SmolLM2, or a ``.gguf`` base). Under ``llamacpp_weights`` f32 / f16 the live LoRA is merged into the
base (``ensure_merged``) and served as its own full-model GGUF (``merged_model_gguf``: a LoRA applied at run
time costs about 30 % a token, docs/BENCHMARKS.md 5b); under ``gguf`` (quantized weights, no merge without
requantising) and for bases other than Llama it is a GGUF LoRA (``adapter_gguf``: the PEFT adapter converted
once into ``<home>/models/lora-gguf/``) applied by llama.cpp at load. Either is written ahead by a
promotion (``prepare_live``), and a new live adapter (one ``stat`` per call, ``AdapterFollower``) reloads the
small model. A full fine-tune (what ``cypherloop bootstrap`` trains for a small base) has no LoRA: it is
served as its own GGUF, the base's metadata with its weights in float32 (``llamacpp_weights=f32``) or
float16 (f16, gguf), written once into ``<home>/models/gguf-full/`` (``agent.models.gguf_full``; Llama only:
others are refused), where the merged LoRAs' files are too. xllamacpp embeds
llama.cpp's own server engine in the process: ``Server.handle_completions`` answers without an HTTP round
trip, releasing the GIL.

The prompt is rendered to token ids by the converted base's Hugging Face tokenizer and chat template
(``agent.core.prompt.prompt_token_ids``), as training sees them. The engine keeps one slot's KV state and
reuses the longest common prefix of the next prompt (``cache_prompt``): the system turn (instructions +
schema) is computed once per graph, each question only its own tokens. Generation stops at the model's
end-of-turn tokens. ``llamacpp_threads`` threads (2 by default, at most the cores this process may use;
on the Q4_1 model the thread count changed some replies: docs/BENCHMARKS.md 5b).

llama.cpp computes with the GGUF's quantized weights (SmolLM2: Q4_1, activations quantized to 8 bits for
the dot products), where transformers and CTranslate2 compute with the same weights dequantized to float32:
faster, but its greedy replies are not theirs on many questions (docs/BENCHMARKS.md 5b). So the default
``llamacpp_weights`` is ``f32``: the base GGUF dequantized to float32 (``agent.models.gguf_full.
dequantized_gguf``, written once into the home), transformers' replies on 96-100 of 100 questions, at about
three times the Q4_1 step; f16 nearly (93 of 100); ``gguf`` the quantized file as it is. The default
``llamacpp_draft`` ``ngram-mod`` (n 2, up to 4 tokens) is llama.cpp's n-gram speculative decoding
(``set_draft``): drafts from a table of earlier n-grams, checked in one forward pass, which wins back more
than the float32 step costs (docs/BENCHMARKS.md 5b).

xllamacpp's server also listens on a random 127.0.0.1 port; it gets a random API key that nobody is told, so
it answers no one else.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

from agent.core.adapters import AdapterRef
from agent.core.errors import ModelError
from agent.core.prompt import prompt_token_ids
from agent.core.settings import Settings
from agent.models.base import (
    ChatGenerator,
    Generation,
    GenerationTrace,
    PromptInput,
    Ready,
    installed,
    optional_module,
)
from agent.models.ctranslate import load_tokenizer
from agent.models.gguf_full import (  # noqa: F401
    dequantized_gguf,
    full_model_gguf,
    merged_model_gguf,
    merges_lora,
    write_dequantized_gguf,
)
from agent.models.llamacpp import gguf_base_path, served_gguf, usable_threads  # noqa: F401
from agent.models.local import AdapterFollower, base_display_name, ensure_base_model

INSTALL_HINT = (
    "the llamacpp backend needs llama.cpp: pip install 'cypherloop[llamacpp]' (xllamacpp, a prebuilt wheel: "
    "pip install xllamacpp) or llama-cpp-python (a source build)"
)

LOG_ERRORS = 1
"""llama.cpp's log verbosity for errors only (its default, 3, logs every request's timings to stderr)."""


def import_xllamacpp() -> Any:
    return optional_module("xllamacpp", INSTALL_HINT)


def available() -> bool:
    """Whether the xllamacpp package is installed (without importing it)."""
    return installed("xllamacpp")


DRAFTS = {"ngram-simple": ("COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE", "ngram_simple"),
          "ngram-map-k": ("COMMON_SPECULATIVE_TYPE_NGRAM_MAP_K", "ngram_map_k"),
          "ngram-mod": ("COMMON_SPECULATIVE_TYPE_NGRAM_MOD", "ngram_mod")}
"""``llamacpp_draft`` → llama.cpp's speculative type and the field of its n-gram parameters."""


def set_draft(params: Any, xlc: Any, settings: Settings) -> None:
    """``llamacpp_draft``: llama.cpp's n-gram speculative decoding on ``params`` (no draft model). Drafts come
    from the slot's own tokens, prompt and reply; the model checks them in one forward pass and keeps its own
    token where a draft differs, so a greedy reply is the undrafted one up to the arithmetic of a batch of
    positions against one (docs/BENCHMARKS.md 5b)."""
    if settings.llamacpp_draft == "none":
        return
    kind, field = DRAFTS[settings.llamacpp_draft]
    spec = params.speculative
    spec.types = [getattr(xlc.common_speculative_type, kind)]
    ngram = getattr(spec, field)
    if settings.llamacpp_draft == "ngram-mod":  # one table n-gram -> next token, kept across requests
        ngram.n_match = settings.llamacpp_draft_ngram
        ngram.n_max = settings.llamacpp_draft_max
        ngram.n_min = min(settings.llamacpp_draft_min, settings.llamacpp_draft_max)
    else:  # the slot's own tokens searched for the last n-gram, what followed it drafted
        ngram.size_n = settings.llamacpp_draft_ngram
        ngram.size_m = settings.llamacpp_draft_max
    spec.draft.n_max = settings.llamacpp_draft_max


class XLlamaCppGenerator(ChatGenerator):
    """``CypherGenerator`` on llama.cpp through xllamacpp, with the live adapter merged into a full-model GGUF
    (``llamacpp_weights`` f32 / f16) or as a GGUF LoRA (gguf)."""

    def __init__(self, settings: Settings, *, n_ctx: int = 4096) -> None:
        self.settings = settings
        self.base_path = gguf_base_path(settings)
        self.base_name = base_display_name(settings.base_model)
        self.adapters = AdapterFollower(settings.adapter, settings.home_dir, settings.base_model)
        self.n_ctx = n_ctx
        self._lock = threading.RLock()
        self._server: Any = None
        self._tokenizer: Any = None
        self._loaded: AdapterRef | None = None

    @property
    def version(self) -> str:
        ref = self._loaded if self._server is not None else self.adapters.current_or_none()
        return f"{self.base_name}+{ref.version if ref else 'base'}"

    def prepare(self, keep: bool = True) -> None:
        """Convert the base (for its tokenizer) and the adapter (merged GGUF, or GGUF LoRA) once, and load the
        model."""
        self._ensure()

    def release(self) -> None:
        with self._lock:
            self._server, self._loaded = None, None

    def _ensure(self) -> Any:
        with self._lock:
            want = self.adapters.current()
            if self._server is not None and want == self._loaded:
                return self._server
            xlc = import_xllamacpp()
            if self._tokenizer is None:
                self._tokenizer = load_tokenizer(ensure_base_model(self.settings))
            params = xlc.CommonParams()
            self._server, self._loaded = None, None  # the previous model's memory goes first
            model, lora = served_gguf(self.settings, self.base_path, want)
            params.model.path = str(model)
            params.n_ctx = self.n_ctx
            params.n_parallel = 1
            threads = usable_threads(self.settings.llamacpp_threads)
            if threads:
                params.cpuparams.n_threads = threads
                params.cpuparams_batch.n_threads = threads
            params.api_keys = [secrets.token_urlsafe(32)]
            params.verbosity = LOG_ERRORS
            set_draft(params, xlc, self.settings)
            if lora is not None:
                params.lora_adapters = [xlc.CommonAdapterLoraInfo(str(lora), 1.0)]
            try:
                self._server = xlc.Server(params)
            except Exception as e:  # noqa: BLE001
                adapter = f" with {want.version}" if want else ""
                raise ModelError(f"llama.cpp could not load {self.base_path.name}{adapter}: {e}") from e
            self._loaded = want
            return self._server

    def _request(self, ids: list[int], temperature: float, max_new_tokens: int | None) -> dict[str, Any]:
        s = self.settings
        req: dict[str, Any] = {
            "prompt": ids,
            "max_tokens": max_new_tokens or s.max_new_tokens,
            "repeat_penalty": s.repetition_penalty,
            "cache_prompt": True,
        }
        if temperature > 0:
            req.update(temperature=temperature, top_p=s.top_p, top_k=0)
        else:
            req.update(temperature=0.0, top_k=1)
        return req

    def _run(self, server: Any, ids: list[int], temperature: float, max_new_tokens: int | None,
             trace: GenerationTrace) -> str:
        try:
            out = server.handle_completions(self._request(ids, temperature, max_new_tokens))
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"llama.cpp generation failed: {e}") from e
        choices = out.get("choices") if isinstance(out, dict) else None
        if not choices:
            message = (out.get("error") or out).get("message", out) if isinstance(out, dict) else out
            raise ModelError(f"llama.cpp generation failed: {message}")
        timings = out.get("timings") or {}
        trace.prompt_tokens = len(ids)
        trace.cached_prompt_tokens = int(timings.get("cache_n", 0))
        trace.new_tokens = int(timings.get("predicted_n", 0))
        trace.prefill_ms = float(timings.get("prompt_ms", 0.0))
        trace.decode_ms = float(timings.get("predicted_ms", 0.0))
        trace.draft_tokens = int(timings.get("draft_n", 0))
        trace.draft_accepted = int(timings.get("draft_n_accepted", 0))
        return (choices[0].get("text") or "").strip()

    def complete(self, messages: list[dict[str, str]], max_new_tokens: int | None = None) -> str:
        return self._complete(messages, self.settings.temperature, max_new_tokens)

    def _complete(self, messages: list[dict[str, str]], temperature: float,
                  max_new_tokens: int | None) -> str:
        start = time.perf_counter()
        with self._lock:
            server = self._ensure()
            trace = GenerationTrace("llamacpp")
            t = time.perf_counter()
            ids = prompt_token_ids(self._tokenizer, messages)
            trace.tokenize_ms = (time.perf_counter() - t) * 1000
            text = self._run(server, ids, temperature, max_new_tokens, trace)
            trace.total_ms = (time.perf_counter() - start) * 1000
            self.traces.append(trace)
            return text

    def generate_batch(self, prompts: Sequence[PromptInput], *, n: int = 1, temperature: float | None = None,
                       max_new_tokens: int | None = None,
                       on_ready: Ready | None = None) -> list[list[Generation]]:
        """``n`` replies per prompt, one request at a time (one slot: the system turn's state stays cached
        between them). Greedy when the temperature is 0 (``n`` > 1 then repeats the one reply). ``on_ready``
        is told of each prompt as its request returns."""
        temp = self.settings.temperature if temperature is None else temperature
        out: list[list[Generation]] = []
        for p in prompts:
            if temp > 0:
                out.append([Generation(self._complete(p.messages(), temp, max_new_tokens)) for _ in range(n)])
            else:
                out.append([Generation(self._complete(p.messages(), 0.0, max_new_tokens))] * n)
            if on_ready is not None:
                on_ready(len(out) - 1, out[-1])
        return out
