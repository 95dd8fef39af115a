"""State of the question → Cypher → answer graph (``agent/graph.py``).

``InputState`` is what a caller passes in, ``State`` what the nodes share, ``OutputState`` what the
caller gets back. Every field says which node writes it. Nodes return partial updates; fields with
a reducer (``Annotated[..., reducer]``) accumulate across the correction loop.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from agent.core.prompt import Example
from agent.models.base import Generation

Status = Literal["", "ok", "no_data", "refused", "failed", "error"]
"""ok: answered from rows · no_data: the query ran and matched nothing · refused: out of scope, database
not touched · failed: no valid query within max_attempts · error: database or model unavailable."""


def merge_timings(old: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    """Reducer: milliseconds per node, summed when a node runs more than once (the correction loop)."""
    out = dict(old or {})
    for k, v in (new or {}).items():
        out[k] = round(out.get(k, 0.0) + v, 3)
    return out


class Attempt(TypedDict):
    """One model call whose fate is known (``State.attempts``)."""

    attempt: int
    cypher: str
    raw: str
    error: str | None
    """None when the query ran."""
    stage: Literal["validate", "execute"]
    fixes: list[str]
    row_count: int | None


class VotedRun(TypedDict):
    """The chosen candidate's query as the vote ran it, with its result (``State.voted_run``)."""

    attempt: int
    source: str
    """The cleaned reply the check started from (``_cleaned``): validate reuses the check only for it."""
    cypher: str
    """The text sent to the database (cleaned, schema-checked, grounded)."""
    fixes: list[str]
    """The schema check's and the grounding's repairs that turned ``source`` into ``cypher``."""
    timeout_s: float
    max_rows: int
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


@dataclass(kw_only=True)
class InputState:
    """What the caller provides."""

    question: str
    """The user's question (caller)."""

    draft: list[Generation] = field(default_factory=list)
    """First replies computed ahead for this question (batched evaluation, ``CypherAgent.prefetch``);
    generate uses them instead of calling the model (caller)."""


@dataclass(kw_only=True)
class State(InputState):
    """Everything the nodes share."""

    scope: str = ""
    """Why the question was refused: "", "empty", "too_long", "greeting", "write_request", "injection"
    (check_scope)."""

    schema_text: str = ""
    """Schema for the prompt, pruned to the question when large (retrieve)."""

    schema_fingerprint: str = ""
    """Hash of the schema structure, logged with the interaction (retrieve)."""

    examples: list[Example] = field(default_factory=list)
    """Verified few-shot examples from the feedback store; empty without one (retrieve)."""

    raw: str = ""
    """The model's latest raw reply (generate, correct)."""

    cypher: str = ""
    """The latest query: cleaned and direction-fixed (validate); the one that ran, when status is
    ok/no_data."""

    candidates: list[Generation] = field(default_factory=list)
    """The first attempt's replies when several were sampled (generate); vote picks one."""

    agreement: float | None = None
    """Share of the candidates whose query returned the chosen result (vote); None with one candidate."""

    voted_run: VotedRun | None = None
    """The chosen reply's check, query and result as the vote made them (vote); validate takes its check
    instead of checking the same reply again in the same attempt, execute its result instead of running the
    same query again, and clears it."""

    confidence: float | None = None
    """How far to trust the answer, 0..1, from the agreement and the repair history (assess, give_up,
    escalate); None for refusals."""

    doubts: list[str] = field(default_factory=list)
    """Why the confidence is below 1, in words (assess, escalate)."""

    escalated: bool = False
    """The question went to the escalation model (escalate)."""

    escalation_error: str | None = None
    """Why the escalation model's answer was not used; None when it answered or was not asked (escalate)."""

    answered_by: str = ""
    """The generator whose query answered: model_version, or the escalation model's (escalate)."""

    fixes: list[str] = field(default_factory=list)
    """Automatic repairs applied to the current query, e.g. a reversed relationship (validate)."""

    loop_step: Annotated[int, operator.add] = 0
    """Model calls so far, +1 per generate/correct; routers compare it with max_attempts."""

    attempts: Annotated[list[Attempt], operator.add] = field(default_factory=list)
    """One record per model call once its fate is known (validate on failure, execute otherwise)."""

    error: str | None = None
    """Message of the last failure (validate, execute), fed back by correct; None after a success."""

    columns: list[str] = field(default_factory=list)
    """Result columns (execute)."""

    rows: list[list[Any]] = field(default_factory=list)
    """Result rows as plain JSON-able values (execute)."""

    truncated: bool = False
    """More rows existed than the row cap (execute)."""

    timed_out: bool = False
    """A query ran past the time limit (execute): the question ends there (give_up) instead of running
    its remaining attempts at full cost each."""

    answer: str = ""
    """The sentence shown to the user (answer, give_up, check_scope on refusal)."""

    status: Status = ""
    """Outcome, see ``Status`` (answer, give_up, check_scope)."""

    model_version: str = ""
    """Generator identity, base+adapter (generate, correct)."""

    timings: Annotated[dict[str, float], merge_timings] = field(default_factory=dict)
    """Milliseconds per node, summed over repeats (every node)."""


@dataclass(kw_only=True)
class OutputState:
    """What the graph returns (``CypherAgent`` wraps it in an ``AgentAnswer``)."""

    answer: str = ""
    """See State.answer."""

    cypher: str = ""
    """See State.cypher (the last query tried when status is failed)."""

    columns: list[str] = field(default_factory=list)
    """See State.columns."""

    rows: list[list[Any]] = field(default_factory=list)
    """See State.rows."""

    truncated: bool = False
    """See State.truncated."""

    attempts: list[Attempt] = field(default_factory=list)
    """See State.attempts."""

    error: str | None = None
    """See State.error."""

    status: Status = ""
    """See State.status."""

    scope: str = ""
    """See State.scope."""

    model_version: str = ""
    """See State.model_version."""

    schema_fingerprint: str = ""
    """See State.schema_fingerprint."""

    agreement: float | None = None
    """See State.agreement."""

    confidence: float | None = None
    """See State.confidence."""

    doubts: list[str] = field(default_factory=list)
    """See State.doubts."""

    escalated: bool = False
    """See State.escalated."""

    escalation_error: str | None = None
    """See State.escalation_error."""

    answered_by: str = ""
    """See State.answered_by."""

    timings: dict[str, float] = field(default_factory=dict)
    """See State.timings."""


@dataclass(kw_only=True)
class AgentAnswer(OutputState):
    """What ``CypherAgent.ask`` returns and the CLI, the UI and evaluation read: the graph's output plus the
    call's identity and wall time. ``to_dict()`` is the ``cypherloop ask --json`` object."""

    question: str = ""
    """The question as asked (CypherAgent)."""

    graph: str = ""
    """The graph it was asked on (CypherAgent)."""

    session_id: str = ""
    """The caller's session, e.g. one browser tab (caller)."""

    latency_ms: float = 0.0
    """Wall time of the whole call (CypherAgent)."""

    @property
    def ran(self) -> bool:
        """The final query ran (with or without rows)."""
        return self.status in ("ok", "no_data")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
