"""Any OpenAI-compatible chat server as a ``CypherGenerator``: OpenAI, vLLM (LoRA adapters are served
under their own model names), Ollama, llama.cpp's server, LM Studio …

The same ``build_messages`` prompt is sent as chat messages; the server applies the model's chat
template. Sampling follows the settings (temperature 0 → greedy); ``repetition_penalty`` is sent only
to servers that accept it (anything but api.openai.com, as ``extra_body``).
"""

from __future__ import annotations

from typing import Any

from agent.core.errors import ConfigError, ModelError
from agent.core.settings import Settings
from agent.models.base import ChatGenerator

OPENAI_HOST = "api.openai.com"
STOP = ["<|im_end|>", "<|endoftext|>", "<end_of_turn>"]
"""Turn ends of the local chat formats (ChatML, Gemma), for OpenAI-compatible servers that do not stop on
them."""


class OpenAICompatGenerator(ChatGenerator):
    """Chat completions over the ``openai`` client (``settings.openai_*``)."""

    def __init__(self, settings: Settings, client: Any | None = None, *, timeout_s: float = 60.0,
                 max_retries: int = 2) -> None:
        self.settings = settings
        self.model = settings.openai_model
        self.base_url = settings.openai_base_url or None
        if client is None:
            import openai

            raw_key = settings.openai_api_key
            key = raw_key.get_secret_value() if hasattr(raw_key, "get_secret_value") else raw_key
            if not key and self._is_openai:
                raise ConfigError(
                    "model_backend is openai but OPENAI_API_KEY is not set (or set OPENAI_BASE_URL for a "
                    "local server)"
                )
            # Local servers (vLLM, Ollama) ignore the key but the client requires one.
            client = openai.OpenAI(
                api_key=key or "not-needed",
                base_url=self.base_url,
                timeout=timeout_s,
                max_retries=max_retries,
            )
        self.client = client

    @property
    def _is_openai(self) -> bool:
        return not self.base_url or OPENAI_HOST in self.base_url

    @property
    def version(self) -> str:
        return f"openai:{self.model}"


    def complete(self, messages: list[dict[str, str]], max_new_tokens: int | None = None) -> str:
        import openai

        s = self.settings
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_new_tokens or s.max_new_tokens,
            "temperature": s.temperature,
        }
        if s.temperature > 0:
            kwargs["top_p"] = s.top_p
        if not self._is_openai:
            kwargs["stop"] = STOP
            if s.repetition_penalty != 1.0:
                kwargs["extra_body"] = {"repetition_penalty": s.repetition_penalty}
        try:
            resp = self.client.chat.completions.create(**kwargs)
        except openai.AuthenticationError as e:
            raise ModelError(f"the model server refused the API key (check OPENAI_API_KEY): {_msg(e)}") from e
        except openai.NotFoundError as e:
            raise ModelError(
                f"model {self.model!r} not found on {self.base_url or 'OpenAI'} (check "
                f"CYPHERLOOP_OPENAI_MODEL): {_msg(e)}"
            ) from e
        except openai.APIConnectionError as e:
            raise ModelError(
                f"cannot reach the model server at {self.base_url or 'OpenAI'} (check OPENAI_BASE_URL): "
                f"{_msg(e)}"
            ) from e
        except openai.APIError as e:
            raise ModelError(f"the model server failed: {_msg(e)}") from e
        if not resp.choices:
            raise ModelError("the model server returned no choices")
        return (resp.choices[0].message.content or "").strip()


def _msg(e: Exception) -> str:
    return str(getattr(e, "message", None) or e).splitlines()[0][:300]
