"""The feedback-store contract: its records and the protocols its users depend on.

``feedback_store.chroma`` implements ``FeedbackStore``; the agent depends only on ``AgentStore`` (few-shot
retrieval and the interaction log), so the agent and the store never import each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from agent.core.prompt import Example

Verdict = Literal["up", "down"]
ReviewStatus = Literal["pending", "approved", "rejected"]
REVIEW_STATUSES: tuple[ReviewStatus, ...] = ("pending", "approved", "rejected")
Drift = Literal["", "valid", "failing", "empty"]
"""What the last re-check on the live schema found (``finetune.drift.recheck_examples``): "" not
re-checked (or reviewed since), valid: the query ran and returned rows, failing: the schema check or the
database refused it (out of retrieval and training until a person reviews it), empty: it ran and matched
nothing."""


def stable_id(*parts: object) -> str:
    """Deterministic id from content: writing the same thing twice is a no-op."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return h[:32]


class ShapedSchema(Protocol):
    """A schema that knows its shape and fingerprint (``agent.graphdb.GraphSchema``; ``agent.core.drift``)."""

    def shape(self) -> dict[str, Any]: ...

    def fingerprint(self) -> str: ...


class ReadOnlyQuery(Protocol):
    """A graph to verify a query on: ``query`` runs it read-only (``agent.graphdb.GraphStore`` is one)."""

    name: str

    def schema(self, refresh: bool = False) -> ShapedSchema:
        """The graph's schema: its fingerprint is stamped on what is verified there."""
        ...

    def query(self, cypher: str, params: dict[str, Any] | None = None, *, timeout_s: float | None = None,
              max_rows: int | None = None) -> Any:
        """Rows of a read-only run (a ``QueryResult``); raises a ``CypherloopError`` when it fails or
        writes."""
        ...


@dataclass
class Interaction:
    """One question answered by the agent (written by the agent/UI after every answer)."""

    question: str
    graph: str
    final_cypher: str | None
    answer: str
    row_count: int
    attempts: list[dict[str, Any]] = field(default_factory=list)  # [{"cypher": ..., "error": ...}, ...]
    latency_ms: float = 0.0
    model_version: str = ""
    schema_fingerprint: str = ""
    session_id: str = ""
    created_at: float = 0.0  # unix time; the store fills it when 0
    ok: bool = True
    id: str = ""  # the store fills it deterministically when empty
    confidence: float | None = None
    """The answer's confidence (agreement and repair history); None for refusals and older records."""
    answered_by: str = ""
    """The generator whose query answered (model_version, or the escalation model's when it answered)."""


@dataclass
class Feedback:
    """A 👍/👎 on an interaction, with an optional corrected query and comment."""

    interaction_id: str
    verdict: Verdict
    corrected_cypher: str | None = None
    comment: str = ""
    result_fingerprint: str | None = None  # hash of the correction's rows; set only after it ran
    status: ReviewStatus = "pending"
    created_at: float = 0.0
    id: str = ""


@dataclass
class VerifiedExample:
    """A question → Cypher pair that ran read-only without error (from 👍 or a correction)."""

    question: str
    cypher: str
    graph: str
    source: Literal["thumbs_up", "correction", "import", "escalation"] = "thumbs_up"
    status: ReviewStatus = "pending"
    result_fingerprint: str | None = None
    interaction_id: str | None = None
    created_at: float = 0.0
    id: str = ""
    schema_fingerprint: str = ""
    """The graph's schema fingerprint when the pair was verified ("" for records older than drift checks)."""
    drift: Drift = ""
    """What the last re-check found (see ``Drift``)."""
    drift_error: str = ""
    """The database's message when the re-check found it failing."""
    checked_fingerprint: str = ""
    """The schema fingerprint of the last re-check."""
    revised_from: str = ""
    """The example a reviewer edited into this one (``FeedbackStore.approve_revised``; "" when none)."""


class FeedbackRow(TypedDict):
    """A feedback record flattened for tables (``FeedbackStore.feedback_rows``)."""

    id: str
    interaction_id: str
    verdict: Verdict
    corrected_cypher: str | None
    comment: str
    result_fingerprint: str | None
    status: ReviewStatus
    created_at: float
    question: str
    graph: str
    example_id: str


@dataclass
class ImportReport:
    """What ``import_examples`` did: counts, and the refused lines (1-based) with the reason."""

    added: int = 0
    present: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


class ExampleSource(Protocol):
    """Few-shot retrieval: what the agent reads from the feedback store."""

    def similar_examples(
        self, question: str, graph: str, k: int = 3, approved_only: bool = False, min_similarity: float = -1.0
    ) -> list[Example]:
        """Up to ``k`` verified examples of ``graph`` most similar to ``question``, none less similar than
        ``min_similarity`` (cosine of the question embeddings; -1 keeps all), rejected ones never."""
        ...


class InteractionLog(Protocol):
    """What the agent writes after every answer."""

    def log_interaction(self, interaction: Interaction) -> str:
        """Store an interaction; returns its id (deterministic)."""
        ...


@runtime_checkable
class ExampleWriter(Protocol):
    """Where the agent puts an escalated model's verified answer: a pending example for review."""

    def add_example(self, example: VerifiedExample) -> str:
        """Store a verified example as given (its id filled when empty); a no-op when present. Returns the
        id."""
        ...


@runtime_checkable
class AgentStore(ExampleSource, InteractionLog, Protocol):
    """Everything the agent needs from a feedback store (``CypherAgent``'s ``feedback_store``)."""


@runtime_checkable
class FeedbackStore(AgentStore, Protocol):
    """The whole store: what the agent, the UI, the ``feedback`` command and finetune use.

    ``feedback_store.chroma.ChromaFeedbackStore`` implements it. ``graph_store`` arguments are the
    ``agent.graphdb`` ``GraphStore`` of the graph the question was asked on: a correction or an
    imported pair is stored only after it ran there read-only without error.
    """

    @property
    def location(self) -> str:
        """The folder or server URL (for messages)."""
        ...

    def get_interaction(self, interaction_id: str) -> Interaction | None: ...

    def iter_interactions(self, graph: str | None = None) -> Iterator[Interaction]: ...

    def add_feedback(self, feedback: Feedback) -> str:
        """Store 👍/👎. A 👍 also records the interaction's pair as a verified example."""
        ...

    def withdraw_feedback(self, interaction_id: str, verdict: str) -> int:
        """Undo a 👍/👎 (and the still-pending example a 👍 created); returns how many records went."""
        ...

    def add_correction(self, interaction_id: str, corrected_cypher: str, graph_store: ReadOnlyQuery,
                       comment: str = "") -> Feedback:
        """Run the correction read-only; store it only if it ran (else ``InvalidCorrection``)."""
        ...

    def import_examples(self, pairs: Sequence[tuple[str, str]], graph_store: ReadOnlyQuery,
                        status: ReviewStatus = "approved") -> ImportReport:
        """Verified examples from the user's own pairs, each run read-only first."""
        ...

    def mark_drift(self, verdicts: dict[str, tuple[Drift, str]], checked_fingerprint: str) -> int:
        """Record a re-check on the live schema: ``{example id: (drift, message)}``; metadata only, never a
        deletion. Returns how many were marked (``finetune.drift.recheck_examples`` decides the verdicts)."""
        ...

    def resolve_id(self, prefix: str) -> str:
        """The full id of a feedback record or example from a unique prefix."""
        ...

    def review(self, item_id: str, status: ReviewStatus) -> None:
        """Approve or reject a verified example / correction before it may enter training. Approving an
        example whose last schema re-check failed raises ``StoreError`` (it would re-enter retrieval and
        training while its query fails); rejecting one settles it."""
        ...

    def approve_revised(self, item_id: str, question: str, cypher: str,
                        graph_store: ReadOnlyQuery) -> VerifiedExample:
        """A reviewer's edit of the example behind ``item_id``: the edited pair is run read-only and stored
        approved (``revised_from`` naming the original), and the original is rejected, never changed or
        deleted. ``InvalidCorrection`` (nothing stored) when the edited query fails or writes."""
        ...

    def list_feedback(self, status: ReviewStatus | None = None, limit: int = 200) -> list[Feedback]: ...

    def feedback_rows(self, status: ReviewStatus | None = None, limit: int = 200) -> list[FeedbackRow]:
        """Feedback with the interaction's question and graph and the linked example's id (tables)."""
        ...

    def list_examples(
        self, graph: str | None = None, status: ReviewStatus | None = None
    ) -> list[VerifiedExample]: ...

    def export_examples(self, path: Path | str, graph: str | None = None,
                        status: Sequence[ReviewStatus] = ("approved",)) -> int:
        """Write verified examples as JSONL (question, cypher, graph, source, status); returns the count."""
        ...

    def counts(self) -> dict[str, int]:
        """Counts for the UI: interactions, up, down, corrections, examples by status."""
        ...

    def warm_up(self) -> None:
        """Load what the first request would (the embedding model) now."""
        ...

    def close(self) -> None: ...
