"""The generator protocol, and a scripted generator for tests and demos."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agent.core.prompt import ErrorFeedback, Example, build_messages


@dataclass(frozen=True)
class PromptInput:
    """One request of a batch: what ``generate`` takes for one question."""

    question: str
    schema_text: str
    examples: Sequence[Example] = ()
    error_feedback: ErrorFeedback | None = None

    def messages(self) -> list[dict[str, str]]:
        return build_messages(self.question, self.schema_text, self.examples, self.error_feedback)


@dataclass(frozen=True)
class Generation:
    """One reply of a batch, with the sum of its tokens' log-probabilities when the backend reports them."""

    text: str
    logprob: float | None = None


@runtime_checkable
class CypherGenerator(Protocol):
    """Turns a question into (raw) Cypher text. The agent cleans and checks what comes back."""

    @property
    def version(self) -> str:
        """Model and adapter identity, e.g. ``smollm2-135m-instruct+v0003``; logged with every answer."""

    def generate(
        self,
        question: str,
        schema_text: str,
        examples: Sequence[Example] = (),
        error_feedback: ErrorFeedback | None = None,
    ) -> str:
        """Return the model's raw text for one question (or for a correction when ``error_feedback``)."""

    def generate_batch(
        self,
        prompts: Sequence[PromptInput],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
    ) -> list[list[Generation]]:
        """``n`` replies for each prompt, in order (``temperature`` overrides the setting; 0 is greedy)."""


class ChatGenerator:
    """Base of the model-backed generators: ``generate`` renders the one shared prompt and hands the chat
    messages to the subclass's ``complete(messages, max_new_tokens=None) -> str``.

    ``generate_batch`` answers many prompts, ``n`` replies each (``temperature`` overrides the setting;
    0 is greedy). Backends that can batch override it; this default asks one reply at a time.
    """

    def generate_batch(self, prompts: Sequence[PromptInput], *, n: int = 1, temperature: float | None = None,
                       max_new_tokens: int | None = None) -> list[list[Generation]]:
        return [[Generation(self.complete(p.messages(), max_new_tokens)) for _ in range(n)] for p in prompts]

    def generate(
        self,
        question: str,
        schema_text: str,
        examples: Sequence[Example] = (),
        error_feedback: ErrorFeedback | None = None,
    ) -> str:
        return self.complete(build_messages(question, schema_text, examples, error_feedback))

    def complete(self, messages: list[dict[str, str]], max_new_tokens: int | None = None) -> str:
        raise NotImplementedError


Script = Callable[[str, ErrorFeedback | None, int], str]


class ScriptedGenerator:
    """Answers from a fixed script: a list of replies in call order, a dict by question, or a function.

    A function receives ``(question, error_feedback, call_no)``. Used by tests and by the browser test.
    """

    def __init__(
        self, script: Sequence[str] | dict[str, str | Sequence[str]] | Script, version: str = "scripted"
    ) -> None:
        self._script = script
        self._version = version
        self.calls: list[tuple[str, ErrorFeedback | None]] = []
        self._per_question: dict[str, int] = {}

    @property
    def version(self) -> str:
        return self._version

    def generate_batch(self, prompts: Sequence[PromptInput], *, n: int = 1, temperature: float | None = None,
                       max_new_tokens: int | None = None) -> list[list[Generation]]:
        return [
            [
                Generation(self.generate(p.question, p.schema_text, p.examples, p.error_feedback))
                for _ in range(n)
            ]
            for p in prompts
        ]

    def generate(self, question, schema_text, examples=(), error_feedback=None) -> str:
        call_no = len(self.calls)
        self.calls.append((question, error_feedback))
        s = self._script
        if callable(s):
            return s(question, error_feedback, call_no)
        if isinstance(s, dict):
            reply = s.get(question, s.get("*", ""))
            if isinstance(reply, str):
                return reply
            i = self._per_question.get(question, 0)
            self._per_question[question] = i + 1
            return reply[min(i, len(reply) - 1)]
        return s[min(call_no, len(s) - 1)]
