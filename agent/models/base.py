"""The generator protocol, and a scripted generator for tests and demos."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agent.core.errors import ModelError
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


@dataclass
class GenerationTrace:
    """Where one model call spent its time (the latency trace of docs/BENCHMARKS.md). The backends fill it
    in ``complete``; ``ChatGenerator.traces`` keeps the last ones."""

    backend: str
    prompt_tokens: int = 0
    """Tokens of the rendered chat prompt."""
    cached_prompt_tokens: int = 0
    """Of those, tokens whose state came from a prefix cache (not recomputed)."""
    new_tokens: int = 0
    """Tokens the model generated, the stop token included."""
    tokenize_ms: float = 0.0
    """Chat template and tokenizer."""
    prefill_ms: float = 0.0
    """From the start of generation to the first new token (the prompt's forward pass)."""
    decode_ms: float = 0.0
    """From the first new token to the last."""
    total_ms: float = 0.0
    """The whole call, from messages to text."""
    row_tokens: list[int] | None = None
    """A batched call: each row's reply in tokens (its stop token included), while ``new_tokens`` counts the
    steps of the whole batch, which decodes until its longest row stops."""
    graph_captures: int = 0
    """CUDA graphs the call captured (the graphed loop: a shape or kind of choice no warm-up captured)."""
    settled_rows: int = 0
    """Rows whose sampled choice the graphed loop made again with the full sort on the host."""
    step_times_ms: list[float] | None = None
    """Each decoding step's time after the first token (``StepClock``): how evenly a call stepped."""
    draft_tokens: int = 0
    """Exact drafting (``llamacpp_draft``): tokens drafted and checked by the model."""
    draft_accepted: int = 0
    """Of those, tokens the model wrote itself (each one a decoding step saved)."""

    @property
    def step_ms(self) -> float:
        """Mean time of one decoding step after the first token."""
        return self.decode_ms / (self.new_tokens - 1) if self.new_tokens > 1 else 0.0

    @property
    def host_ms(self) -> float:
        """Time outside the model's prefill and decode steps: adapter check, template, tokenizer, detokenizer,
        the runtime's set-up."""
        return max(0.0, self.total_ms - self.prefill_ms - self.decode_ms)

    def to_dict(self) -> dict[str, float | int | str | list[int]]:
        out: dict[str, float | int | str | list[int]] = {
            "backend": self.backend, "prompt_tokens": self.prompt_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens, "new_tokens": self.new_tokens,
            "tokenize_ms": round(self.tokenize_ms, 3), "prefill_ms": round(self.prefill_ms, 3),
            "decode_ms": round(self.decode_ms, 3), "step_ms": round(self.step_ms, 3),
            "host_ms": round(self.host_ms, 3), "total_ms": round(self.total_ms, 3)}
        if self.row_tokens is not None:
            out["row_tokens"] = self.row_tokens
        if self.draft_tokens:
            out["draft_tokens"], out["draft_accepted"] = self.draft_tokens, self.draft_accepted
        return out


class StepClock:
    """Timestamps of a generation's steps: ``tick()`` once before the prompt's forward pass and once per new
    token; fills a ``GenerationTrace``'s prefill and decode times."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def tick(self, tokens: int = 1) -> None:
        """A step's end; ``tokens`` > 1 when one step wrote several (prompt-lookup decoding)."""
        self.stamps.extend([time.perf_counter()] * tokens)

    def fill(self, trace: GenerationTrace) -> GenerationTrace:
        t = self.stamps
        trace.new_tokens = max(0, len(t) - 1)
        if len(t) > 1:
            trace.prefill_ms = (t[1] - t[0]) * 1000
            trace.decode_ms = (t[-1] - t[1]) * 1000
            trace.step_times_ms = [(b - a) * 1000 for a, b in itertools.pairwise(t[1:])]
        return trace


Ready = Callable[[int, list[Generation]], None]
"""Told of a prompt's replies as soon as they are all written: (its index in the call, its replies)."""


def tell_each(replies: list[list[Generation]], on_ready: Ready | None,
              told: Collection[int] = ()) -> list[list[Generation]]:
    """``replies``, returned once ``on_ready`` has been told of each prompt's not in ``told``: how
    ``generate_batch`` keeps its ``on_ready`` where a backend has a call's replies only all together (or for
    the prompts a streamed call did not tell)."""
    if on_ready is not None:
        for i, gens in enumerate(replies):
            if i not in told:
                on_ready(i, gens)
    return replies


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
        on_ready: Ready | None = None,
    ) -> list[list[Generation]]:
        """``n`` replies for each prompt, in order (``temperature`` overrides the setting; 0 is greedy).
        ``on_ready(index, replies)`` is told of every prompt once, with the replies returned for it: as soon
        as they are written where the backend decodes prompts together, else when the call has them all
        (``tell_each``)."""


class ChatGenerator:
    """Base of the model-backed generators: ``generate`` renders the one shared prompt and hands the chat
    messages to the subclass's ``complete(messages, max_new_tokens=None) -> str``.

    ``generate_batch`` answers many prompts, ``n`` replies each (``temperature`` overrides the setting;
    0 is greedy). Backends that can batch override it; this default asks one reply at a time.

    ``traces`` holds the ``GenerationTrace`` of the last ``TRACE_KEEP`` ``complete`` calls (the latency
    trace reads and clears it). ``prepare`` does the first question's loading ahead.
    """

    TRACE_KEEP = 256

    @property
    def traces(self) -> deque[GenerationTrace]:
        found = self.__dict__.get("_traces")
        if found is None:
            found = self.__dict__["_traces"] = deque(maxlen=self.TRACE_KEEP)
        return found

    def share_traces(self, other: ChatGenerator) -> None:
        """Record this generator's traces in ``other``'s: a stand-in answering some of ``other``'s calls."""
        self.__dict__["_traces"] = other.traces

    def generate_batch(self, prompts: Sequence[PromptInput], *, n: int = 1, temperature: float | None = None,
                       max_new_tokens: int | None = None,
                       on_ready: Ready | None = None) -> list[list[Generation]]:
        return tell_each([[Generation(self.complete(p.messages(), max_new_tokens)) for _ in range(n)]
                          for p in prompts], on_ready)

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

    def prepare(self, keep: bool = True) -> None:
        """Do now what the first question would (convert, load); ``keep``: also write to disk what would make
        a later process's start quicker (``cypherloop warm``). Nothing to do for a remote model."""

    def release(self) -> None:
        """Drop the model in memory (the next call loads it again): ``auto``'s chain calls it on a generator
        that refused a new version, whose previous model would otherwise stay beside the fallback's."""

    def warm_up(self, prompts: Sequence[PromptInput], candidates: int = 1, batch_size: int = 0,
                chunks: Sequence[Sequence[PromptInput]] = ()) -> list[dict[str, Any]]:
        """Do at load what the first questions' calls would compile (``prompts``: two of different lengths;
        ``candidates``: the replies a question's first attempt asks for); the calls made. Nothing to compile
        here; the transformers backend compiles its static decoding step on a GPU (``batch_size`` > 1: the
        steps of batches of that many questions; ``chunks``: the batches a caller will ask, when it knows
        them, whose shapes are then the ones made)."""
        return []

    def warms_up(self, batch_size: int = 0) -> bool:
        """Whether ``warm_up`` has anything to do (checked before building its prompts; loads nothing)."""
        return False


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
                       max_new_tokens: int | None = None,
                       on_ready: Ready | None = None) -> list[list[Generation]]:
        return tell_each([
            [
                Generation(self.generate(p.question, p.schema_text, p.examples, p.error_feedback))
                for _ in range(n)
            ]
            for p in prompts
        ], on_ready)

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


def optional_module(name: str, hint: str) -> Any:
    """An optional runtime's module (ctranslate2, llama_cpp, xllamacpp), or a ModelError saying how to install
    it."""
    import sys

    try:
        __import__(name)  # the import statement's own hook, as ``import name`` would
    except ImportError as e:
        raise ModelError(hint) from e
    return sys.modules[name]


def installed(name: str) -> bool:
    """Whether module ``name`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(name) is not None
