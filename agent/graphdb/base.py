"""The graph-access contract: one protocol, structured schema, query results.

Backends (``embedded``/``falkordb`` in ``falkor.py``, ``neo4j`` in ``neo4j.py``) implement
``GraphStore``. Values in ``QueryResult.rows`` are plain JSON-able Python: a node or a relationship
becomes the dict of its properties, a path a list of such dicts, temporal values ISO strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from agent.core.drift import Shape, shape_fingerprint


@dataclass(frozen=True)
class Property:
    """A property key seen on a label or relationship type."""

    name: str
    type: str  # "STRING", "INTEGER", "FLOAT", "BOOLEAN", "LIST", "DATE", "DATETIME", "POINT", "MAP" …
    samples: tuple[Any, ...] = ()  # a few distinct values, only for low-cardinality strings
    more: int = 0  # distinct values seen beyond ``samples`` (the text says "… N more": the list is cut)


@dataclass(frozen=True)
class NodeLabel:
    """A node label with its properties and node count (None when unknown)."""

    label: str
    properties: tuple[Property, ...] = ()
    count: int | None = None


@dataclass(frozen=True)
class RelType:
    """A relationship type with its properties and relationship count (None when unknown)."""

    type: str
    properties: tuple[Property, ...] = ()
    count: int | None = None


@dataclass(frozen=True)
class Pattern:
    """An existing (start label)-[type]->(end label) combination."""

    start: str
    type: str
    end: str

    def __str__(self) -> str:
        return f"(:{self.start})-[:{self.type}]->(:{self.end})"


@dataclass(frozen=True)
class GraphSchema:
    """What a graph holds: labels, relationship types and the patterns that connect them."""

    labels: tuple[NodeLabel, ...] = ()
    relationships: tuple[RelType, ...] = ()
    patterns: tuple[Pattern, ...] = ()

    # --- lookups used by the schema check --------------------------------------------------
    def label(self, name: str) -> NodeLabel | None:
        return next((x for x in self.labels if x.label == name), None)

    def rel(self, name: str) -> RelType | None:
        return next((x for x in self.relationships if x.type == name), None)

    @property
    def is_empty(self) -> bool:
        return not self.labels and not self.relationships

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def shape(self) -> Shape:
        """The structure stored queries depend on (labels, types, property names/types, patterns), not counts
        or samples; JSON-able and sorted (``agent.core.drift``)."""
        return {
            "labels": sorted((x.label, sorted((p.name, p.type) for p in x.properties)) for x in self.labels),
            "rels": sorted(
                (x.type, sorted((p.name, p.type) for p in x.properties)) for x in self.relationships
            ),
            "patterns": sorted((p.start, p.type, p.end) for p in self.patterns),
        }

    def fingerprint(self) -> str:
        """Stable hash of ``shape()`` (``agent.core.drift.shape_fingerprint``)."""
        return shape_fingerprint(self.shape())

    # --- prompt text ---------------------------------------------------------------------------
    def to_text(self, question: str | None = None, max_chars: int = 6000) -> str:
        """Render for prompts. When longer than ``max_chars``, keep what the question mentions.

        Format (stable: training data is rendered with it, so changing it changes what the model saw):
            Node properties:
            Customer {name: STRING, city: STRING ["Berlin", "Paris", "Rome", "Lyon", "Oslo", … 2 more]}
            Relationship properties:
            RATED {stars: INTEGER}
            The relationships:
            (:Customer)-[:PLACED]->(:Order)
        """
        text = _render(self.labels, self.relationships, self.patterns)
        if len(text) <= max_chars or not question:
            return text
        return _render(*self._pruned(question, max_chars))

    def _pruned(
        self, question: str, max_chars: int
    ) -> tuple[tuple[NodeLabel, ...], tuple[RelType, ...], tuple[Pattern, ...]]:
        words = {w for w in re.findall(r"[a-z0-9]+", question.lower()) if len(w) > 2}

        def score(name: str, props: tuple[Property, ...]) -> int:
            tokens = _split_identifier(name)
            s = 3 * sum(1 for t in tokens if t in words or t.rstrip("s") in words or t + "s" in words)
            s += sum(1 for p in props if any(t in words for t in _split_identifier(p.name)))
            s += sum(
                1 for p in props for v in p.samples if isinstance(v, str) and v.lower() in question.lower()
            )
            return s

        ranked = sorted(self.labels, key=lambda x: -score(x.label, x.properties))
        keep: list[NodeLabel] = []
        for lab in ranked:
            trial = keep + [lab]
            names = {x.label for x in trial}
            pats = tuple(p for p in self.patterns if p.start in names and p.end in names)
            rels = tuple(r for r in self.relationships if any(p.type == r.type for p in pats))
            if keep and len(_render(tuple(trial), rels, pats)) > max_chars:
                break
            keep = trial
        names = {x.label for x in keep}
        pats = tuple(p for p in self.patterns if p.start in names and p.end in names)
        rels = tuple(r for r in self.relationships if any(p.type == r.type for p in pats))
        return tuple(keep), rels, pats


def _split_identifier(name: str) -> list[str]:
    return [t.lower() for t in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)]


def _fmt_props(props: tuple[Property, ...]) -> str:
    parts = []
    for p in props:
        s = f"{p.name}: {p.type}"
        if p.samples:
            values = [json.dumps(v, ensure_ascii=False) for v in p.samples]
            if p.more > 0:
                values.append(f"… {p.more} more")
            s += " [" + ", ".join(values) + "]"
        parts.append(s)
    return "{" + ", ".join(parts) + "}"


def _render(labels: tuple[NodeLabel, ...], rels: tuple[RelType, ...], patterns: tuple[Pattern, ...]) -> str:
    lines = ["Node properties:"]
    lines += [f"{x.label} {_fmt_props(x.properties)}" for x in labels]
    lines.append("Relationship properties:")
    lines += [f"{x.type} {_fmt_props(x.properties)}" for x in rels if x.properties]
    lines.append("The relationships:")
    lines += [str(p) for p in patterns]
    return "\n".join(lines)


@dataclass
class QueryResult:
    """Rows from a read-only query."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False  # more rows existed than max_rows
    elapsed_ms: float = 0.0
    plan: str | None = field(default=None, repr=False)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=False)) for r in self.rows]


@runtime_checkable
class GraphStore(Protocol):
    """What the agent, the loaders and the data generators need from a graph database."""

    name: str
    """The graph's name (FalkorDB key, or the label used for a Neo4j database)."""

    backend: str
    """'embedded', 'falkordb' or 'neo4j'."""

    def schema(self, refresh: bool = False) -> GraphSchema:
        """Structured schema (cached; ``refresh`` re-reads the database)."""

    def schema_text(self, question: str | None = None) -> str:
        """The schema rendered for prompts, pruned to the question when large."""

    def explain(self, cypher: str, params: dict[str, Any] | None = None) -> str:
        """Validate without running; returns the plan text. Raises CypherSyntaxError / WriteRefused."""

    def query(
        self,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        """Run read-only (static gate + the database's own read-only mode). Never writes."""

    def write(self, cypher: str, params: dict[str, Any] | None = None) -> QueryResult:
        """Run a writing statement. For loaders and admin commands only, never for model output."""

    def stats(self) -> dict[str, dict[str, int]]:
        """{'nodes': {label: count}, 'relationships': {type: count}}."""

    def list_graphs(self) -> list[str]:
        """Names of the graphs on this server (for 'unknown graph' messages)."""

    def delete_graph(self) -> None:
        """Drop the whole graph (``graph load --replace``); admin only."""

    def close(self) -> None:
        """Release connections."""
