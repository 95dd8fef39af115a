"""Pick the generator the settings ask for. Heavy libraries load only when the generator is used."""

from __future__ import annotations

from typing import Any

from agent.errors import ConfigError
from agent.models.base import CypherGenerator


def make_generator(settings: Any) -> CypherGenerator:
    """``settings.model_backend``: transformers (local + PEFT), llamacpp (GGUF), openai (compatible server)."""
    backend = settings.model_backend
    if backend == "transformers":
        from agent.models.local import TransformersGenerator

        return TransformersGenerator(settings)
    if backend == "llamacpp":
        from agent.models.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(settings)
    if backend == "openai":
        from agent.models.openai_compat import OpenAICompatGenerator

        return OpenAICompatGenerator(settings)
    raise ConfigError(f"unknown CYPHERLOOP_MODEL_BACKEND {backend!r}; choose transformers, llamacpp or openai")
