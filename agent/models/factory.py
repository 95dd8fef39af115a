"""Pick the generator the settings ask for. Heavy libraries (torch, llama.cpp, openai) load only when a
generator is used."""

from __future__ import annotations

from agent.core.errors import ConfigError
from agent.core.settings import Settings
from agent.models.base import CypherGenerator
from agent.models.ctranslate import CTranslate2Generator, resolve_backend
from agent.models.llamacpp import LlamaCppGenerator
from agent.models.local import TransformersGenerator
from agent.models.openai_compat import OpenAICompatGenerator


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


def make_generator(settings: Settings) -> CypherGenerator:
    """``settings.model_backend``: auto (ctranslate2 on a CPU when installed, else transformers), ctranslate2
    (local, adapter merged), transformers (local + PEFT), llamacpp (GGUF), openai (compatible server)."""
    backend = resolve_backend(settings)
    if backend == "ctranslate2":
        return CTranslate2Generator(settings)
    if backend == "transformers":
        return TransformersGenerator(settings)
    if backend == "llamacpp":
        return LlamaCppGenerator(settings)
    if backend == "openai":
        return OpenAICompatGenerator(settings)
    raise ConfigError(
        f"unknown CYPHERLOOP_MODEL_BACKEND {backend!r}; choose auto, ctranslate2, transformers, llamacpp or "
        "openai"
    )
