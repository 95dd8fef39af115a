"""The feedback-store contract. ``chroma.py`` implements it; the agent and finetune depend only on this."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Verdict = Literal["up", "down"]
ReviewStatus = Literal["pending", "approved", "rejected"]


def stable_id(*parts: object) -> str:
    """Deterministic id from content: writing the same thing twice is a no-op."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return h[:32]


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
    source: Literal["thumbs_up", "correction", "import"] = "thumbs_up"
    status: ReviewStatus = "pending"
    result_fingerprint: str | None = None
    interaction_id: str | None = None
    created_at: float = 0.0
    id: str = ""


@runtime_checkable
class FeedbackStore(Protocol):
    """Log of exchanges, feedback and verified examples."""

    def log_interaction(self, interaction: Interaction) -> str:
        """Store an interaction; returns its id (deterministic)."""

    def get_interaction(self, interaction_id: str) -> Interaction | None: ...

    def add_feedback(self, feedback: Feedback) -> str:
        """Store 👍/👎. A 👍 also records the interaction's pair as a verified example."""

    def add_correction(self, interaction_id: str, corrected_cypher: str, graph_store: Any, comment: str = "") -> Feedback:
        """Run the correction read-only through ``graph_store``; store it only if it ran (else InvalidCorrection)."""

    def review(self, item_id: str, status: ReviewStatus) -> None:
        """Approve or reject a verified example / correction before it may enter training."""

    def similar_examples(self, question: str, graph: str, k: int = 3, approved_only: bool = False) -> list[Any]:
        """Few-shot search: verified examples for this graph, most similar first (``agent.prompt.Example``)."""

    def list_feedback(self, status: ReviewStatus | None = None, limit: int = 200) -> list[Feedback]: ...

    def list_examples(self, graph: str | None = None, status: ReviewStatus | None = None) -> list[VerifiedExample]: ...

    def export_examples(self, path: Any, graph: str | None = None, status: Sequence[ReviewStatus] = ("approved",)) -> int:
        """Write verified examples as JSONL (question, cypher, graph, source, status); returns the count."""

    def counts(self) -> dict[str, int]:
        """Counts for the UI: interactions, up, down, corrections, examples by status."""

    def iter_interactions(self, graph: str | None = None) -> Iterator[Interaction]: ...
