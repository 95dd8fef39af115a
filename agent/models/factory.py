"""Pick the generator the settings ask for. Heavy libraries (torch, llama.cpp, openai) load only when a
generator is used."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from agent.core.adapters import AdapterRef
from agent.core.errors import ConfigError, ModelError, PromptOverWindow
from agent.core.prompt import ErrorFeedback, Example
from agent.core.settings import Settings
from agent.models import ctranslate, llamacpp, xllamacpp
from agent.models.base import ChatGenerator, CypherGenerator, Generation, PromptInput, Ready
from agent.models.ctranslate import CTranslate2Generator, auto_fallback, resolve_backend
from agent.models.llamacpp import LlamaCppGenerator
from agent.models.local import AdapterFollower, TransformersGenerator
from agent.models.openai_compat import OpenAICompatGenerator
from agent.models.xllamacpp import XLlamaCppGenerator

log = logging.getLogger(__name__)


class FallbackGenerator:
    """``auto`` on a CPU: the primary answers (llama.cpp, or CTranslate2 where llama.cpp does not serve);
    when it cannot prepare the model (the conversion or the load failed: for llama.cpp also a model it
    refuses, a resized vocabulary), the fallback answers that model, after one warning line: llama.cpp's is
    CTranslate2's own chain, CTranslate2's transformers. The refusal holds for those weights only: once the
    live version changes (a promotion or a rollback, in this process or another: the primary's
    ``AdapterFollower``), the chain is tried again from the top, so a model the primary can serve is served
    by it again (one info line, the fallback's model dropped) and one it refuses falls back again (one
    warning line). A prompt CTranslate2 refuses as longer than the model's sliding window (Gemma 3:
    ``PromptOverWindow``) is answered by transformers, loaded on the first such prompt with one warning line;
    the prompts that fit stay with CTranslate2."""

    def __init__(self, primary: ChatGenerator, fallback: Callable[[], CypherGenerator],
                 names: tuple[str, str] = ("CTranslate2", "transformers")) -> None:
        self.primary = primary
        self.names = names
        self._make_fallback = fallback
        self._fallback: CypherGenerator | None = None
        self._refused: AdapterRef | None = None  # the live version when the primary refused it
        self._over_window: CypherGenerator | None = None
        self._lock = threading.Lock()

    def _live(self) -> AdapterRef | None:
        """The version the primary would serve now (None: the base, or a primary that follows no registry)."""
        follower = getattr(self.primary, "adapters", None)
        return follower.current_or_none() if isinstance(follower, AdapterFollower) else None

    def serving(self) -> CypherGenerator:
        """The generator that answers now (the primary's model converted and loaded on first use, and again
        for each new live version after a refusal)."""
        with self._lock:
            want = self._live()
            if self._fallback is not None and want == self._refused:
                return self._fallback
            try:
                self.primary.prepare()
            except ModelError as e:
                reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
                log.warning("%s cannot serve (%s); %s answers instead", self.names[0], reason, self.names[1])
                self._refused = want
                self.primary.release()  # a model loaded before the refused one: the fallback serves now
                if self._fallback is None:
                    self._fallback = self._make_fallback()
                return self._fallback
            if self._fallback is not None:
                log.info("%s serves %s again", self.names[0], self.primary.version)
                self._fallback = None  # its model's memory goes with it
            return self.primary

    def stand_in(self, refused: PromptOverWindow) -> CypherGenerator:
        """The transformers generator that answers the prompts CTranslate2 refuses as over the window (made
        on the first, with one warning line; its traces go where CTranslate2's go)."""
        with self._lock:
            if self._over_window is None:
                log.warning("%s; transformers answers the prompts longer than the window", refused)
                self._over_window = self._make_fallback()
                if isinstance(self._over_window, ChatGenerator):
                    self._over_window.share_traces(self.primary)
            return self._over_window

    def prepare(self, keep: bool = True) -> None:
        """Load what serves now (``ChatGenerator.prepare``): the primary's model, or the fallback's when it
        cannot serve."""
        serving = self.serving()
        if serving is not self.primary and isinstance(serving, ChatGenerator | FallbackGenerator):
            serving.prepare(keep)

    @property
    def backend(self) -> str:
        """The name of what serves now (``names``; the fallback's own when it is a chain)."""
        if self._fallback is None:
            return self.names[0]
        inner = self._fallback
        return inner.backend if isinstance(inner, FallbackGenerator) else self.names[1]

    def warms_up(self, batch_size: int = 0) -> bool:
        return False  # ``auto`` on a CPU: nothing compiles (``ChatGenerator.warm_up``)

    @property
    def version(self) -> str:
        return (self._fallback or self.primary).version

    @property
    def traces(self) -> Any:
        return getattr(self._fallback or self.primary, "traces", None)

    def generate(self, question: str, schema_text: str, examples: Sequence[Example] = (),
                 error_feedback: ErrorFeedback | None = None) -> str:
        try:
            return self.serving().generate(question, schema_text, examples, error_feedback)
        except PromptOverWindow as e:
            return self.stand_in(e).generate(question, schema_text, examples, error_feedback)

    def generate_batch(self, prompts: Sequence[PromptInput], *, n: int = 1, temperature: float | None = None,
                       max_new_tokens: int | None = None,
                       on_ready: Ready | None = None) -> list[list[Generation]]:
        try:
            return self.serving().generate_batch(prompts, n=n, temperature=temperature,
                                                 max_new_tokens=max_new_tokens, on_ready=on_ready)
        except PromptOverWindow as e:  # refused before a reply was written: none was told
            return self.stand_in(e).generate_batch(prompts, n=n, temperature=temperature,
                                                   max_new_tokens=max_new_tokens, on_ready=on_ready)


def _load_quietly(model: ChatGenerator | FallbackGenerator) -> None:
    """Load ahead; a failure here is the first question's to report (it loads again and says why)."""
    try:
        model.prepare(keep=False)
    except Exception as e:  # noqa: BLE001
        log.debug("loading the model ahead failed: %s", e)


def load_ahead(model: CypherGenerator) -> None:
    """Start loading a local model in a background thread, so the caller readies the rest meanwhile (a cold
    ``ask``: langgraph's import, the graph, the feedback store). Other backends have nothing to load."""
    if isinstance(model, ChatGenerator | FallbackGenerator):  # Fallback: auto on a CPU
        threading.Thread(target=_load_quietly, args=(model,), name="cypherloop-model-load",
                         daemon=True).start()


def make_escalation_generator(settings: Settings) -> CypherGenerator | None:
    """The larger model low-confidence questions go to (``escalate_model`` on an OpenAI-compatible server), or
    None when none is set."""
    if not settings.escalate_model:
        return None
    return OpenAICompatGenerator(settings.model_copy(update={
        "model_backend": "openai",
        "openai_model": settings.escalate_model,
        "openai_base_url": settings.escalate_base_url or settings.openai_base_url,
        "openai_api_key": settings.escalate_api_key or settings.openai_api_key,
    }))


def _auto_cpu_chain(settings: Settings) -> CypherGenerator:
    """What ``auto`` serves on a CPU where llama.cpp does not: CTranslate2 with transformers behind it, or
    transformers alone (one warning line) without the ctranslate2 package."""
    if auto_fallback() == "ctranslate2":
        return FallbackGenerator(CTranslate2Generator(settings), lambda: TransformersGenerator(settings))
    if not settings.device.startswith("cuda"):
        log.warning("the ctranslate2 package is not installed, so transformers answers (slower on a CPU: "
                    "pip install ctranslate2)")
    return TransformersGenerator(settings)


def _auto_llamacpp(settings: Settings) -> CypherGenerator:
    """``auto`` on a CPU with xllamacpp and a Llama base: llama.cpp answers, with CTranslate2's chain behind
    it for what it refuses (a model it cannot write or load, at the first question or a promotion's)."""
    try:
        primary = XLlamaCppGenerator(settings)
    except ModelError as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        log.warning("llama.cpp cannot serve (%s); %s answers instead", reason, auto_fallback())
        return _auto_cpu_chain(settings)
    behind = "CTranslate2" if auto_fallback() == "ctranslate2" else "transformers"
    return FallbackGenerator(primary, lambda: _auto_cpu_chain(settings), ("llama.cpp", behind))


def make_generator(settings: Settings) -> CypherGenerator:
    """``settings.model_backend``: auto (on a CPU llama.cpp when xllamacpp is installed and the base is a
    Llama one, else ctranslate2 when installed, else transformers; transformers on a GPU), ctranslate2
    (local, adapter merged), transformers (local + PEFT), llamacpp (GGUF), openai (compatible server).

    Under ``auto`` on a CPU, what llama.cpp cannot serve (a model it refuses, a failed conversion or load)
    CTranslate2 serves, and what CTranslate2 cannot serve transformers does, each switch one log line."""
    backend = resolve_backend(settings)
    auto = settings.model_backend == "auto"
    if auto and backend == "llamacpp":  # resolved so on a CPU only
        return _auto_llamacpp(settings)
    if auto and backend == "ctranslate2":
        return _auto_cpu_chain(settings)
    if backend == "ctranslate2":
        return CTranslate2Generator(settings)
    if backend == "transformers":
        if auto and not settings.device.startswith("cuda") and not ctranslate.available():
            log.warning("the ctranslate2 package is not installed, so transformers answers (slower on a CPU: "
                        "pip install ctranslate2)")
        return TransformersGenerator(settings)
    if backend == "llamacpp":
        if xllamacpp.available() and not llamacpp.available():
            return XLlamaCppGenerator(settings)
        return LlamaCppGenerator(settings)
    if backend == "openai":
        return OpenAICompatGenerator(settings)
    raise ConfigError(
        f"unknown CYPHERLOOP_MODEL_BACKEND {backend!r}; choose auto, ctranslate2, transformers, llamacpp or "
        "openai"
    )
