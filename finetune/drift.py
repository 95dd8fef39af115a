"""Schema drift: keep what cypherloop stored true when the graph's schema changes.

    cypherloop graph schema --diff [--graph NAME]      what changed since the last recorded snapshot
    cypherloop feedback recheck [--graph NAME]         re-run every stored example on the live schema

Every verified example, adapter version and bootstrap pool carries the schema fingerprint it was made
on (``agent.core.drift``; the shape itself in ``<home>/schemas/<graph>/``). When the live schema differs:

- ``recheck_examples`` re-runs each stored example read-only — the schema check first (a property that
  no longer exists only yields nulls in Cypher, so the database alone would not notice), then the
  database — and marks it valid / failing / empty in its metadata. Nothing is deleted; failing ones
  leave retrieval and training until a person reviews them (the Review tab's "failing" filter).
- the scheduler (``finetune.schedule``) runs that re-check and starts a bootstrap for the changed graph;
- the UI shows a banner while the live adapter was trained on another schema (``adapter_drift``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from agent.core.adapters import live_adapter, read_meta
from agent.core.drift import SchemaDiff, Snapshot, SnapshotStore, diff_shapes
from agent.core.errors import (
    CypherloopError,
    GraphAuthError,
    GraphUnavailable,
    InvalidCorrection,
    UnknownGraph,
)
from agent.core.feedback import Drift, FeedbackStore, VerifiedExample
from agent.core.settings import Settings
from agent.graphdb import GraphStore
from agent.schema_check import check_cypher
from feedback_store.pool import ExamplePool

log = logging.getLogger("cypherloop.drift")

INFRASTRUCTURE_ERRORS = (GraphUnavailable, GraphAuthError, UnknownGraph)
"""The database is not there: that says nothing about an example, so the re-check stops instead."""


@dataclass
class RecheckReport:
    """What ``recheck_examples`` found: counts per verdict and the failing examples with the message."""

    graph: str
    fingerprint: str
    valid: int = 0
    empty: int = 0
    failing: list[tuple[str, str, str]] = field(default_factory=list)
    """``(example id, question, message)``."""

    @property
    def checked(self) -> int:
        return self.valid + self.empty + len(self.failing)

    def summary(self) -> str:
        return (f"graph {self.graph!r}: {self.checked} stored examples re-checked on schema "
                f"{self.fingerprint}: "
                f"{self.valid} valid, {self.empty} empty, {len(self.failing)} failing")


def verdict(cypher: str, graph_store: GraphStore, timeout_s: float | None = None) -> tuple[Drift, str]:
    """One stored query on the live schema: the schema check (no repairs), then a read-only run."""
    checked = check_cypher(cypher, graph_store.schema(), repair=False)
    if not checked.ok:
        return "failing", checked.message()
    try:
        rows = graph_store.query(cypher, timeout_s=timeout_s, max_rows=1).rows
    except INFRASTRUCTURE_ERRORS:
        raise
    except CypherloopError as e:
        return "failing", " ".join((getattr(e, "db_message", None) or str(e)).split())[:300]
    return ("valid" if rows else "empty"), ""


def recheck_examples(store: FeedbackStore, graph_store: GraphStore, snapshots: SnapshotStore | None = None,
                     timeout_s: float | None = None) -> RecheckReport:
    """Re-run every stored example of ``graph_store``'s graph (rejected ones excepted) and mark each one;
    the live shape is then recorded in ``snapshots`` as the one checked against."""
    schema = graph_store.schema(refresh=True)
    report = RecheckReport(graph=graph_store.name, fingerprint=schema.fingerprint())
    verdicts: dict[str, tuple[Drift, str]] = {}
    for ex in store.list_examples(graph=graph_store.name):
        if ex.status == "rejected":
            continue
        verdicts[ex.id] = v = verdict(ex.cypher, graph_store, timeout_s)
        if v[0] == "failing":
            report.failing.append((ex.id, ex.question, v[1]))
        else:
            report.valid += v[0] == "valid"
            report.empty += v[0] == "empty"
    store.mark_drift(verdicts, report.fingerprint)
    if snapshots is not None:
        snapshots.record(graph_store.name, schema.shape(), "recheck")
    log.info(report.summary())
    return report


def approve(store: FeedbackStore, item_id: str, graph_store: GraphStore | None = None,
            timeout_s: float | None = None) -> None:
    """Approve a feedback record or example (the UI's and the CLI's one path). An example the last
    re-check found failing is first re-checked on the live schema of its graph: approved when it passes
    now, otherwise the store refuses with the reason (``StoreError``)."""
    ex = example_of(store, item_id)
    if ex is not None and ex.drift == "failing" and graph_store is not None and graph_store.name == ex.graph:
        fingerprint = graph_store.schema(refresh=True).fingerprint()  # the live schema, not a cached one
        store.mark_drift({ex.id: verdict(ex.cypher, graph_store, timeout_s)}, fingerprint)
    store.review(item_id, "approved")


def approve_edited(store: FeedbackStore, item_id: str, question: str, cypher: str, graph_store: GraphStore,
                   timeout_s: float | None = None) -> VerifiedExample:
    """Approve a reviewer's edit of the example behind ``item_id`` (the UI's and the CLI's one path): the
    edited query must pass what a re-check asks of a stored example (the schema check, then a read-only
    run: ``verdict``), else ``InvalidCorrection`` and nothing changes; then ``store.approve_revised`` stores
    the edit approved and keeps the original, rejected."""
    kind, why = verdict(cypher, graph_store, timeout_s)
    if kind == "failing":
        raise InvalidCorrection(f"the edited query fails on the live schema of {graph_store.name!r}: {why}")
    return store.approve_revised(item_id, question, cypher, graph_store)


def example_of(store: FeedbackStore, item_id: str) -> VerifiedExample | None:
    """The verified example behind an example id or a feedback id (None when there is none)."""
    examples = {e.id: e for e in store.list_examples()}
    if item_id not in examples:
        item_id = next((r["example_id"] for r in store.feedback_rows(limit=0) if r["id"] == item_id), "")
    return examples.get(item_id)


def schema_diff(snapshots: SnapshotStore, graph_store: GraphStore) -> tuple[Snapshot | None, SchemaDiff]:
    """The latest recorded snapshot of the graph and what changed from it to the live schema (an empty diff
    when nothing was recorded yet)."""
    last = snapshots.latest(graph_store.name)
    live = graph_store.schema(refresh=True).shape()
    return last, (diff_shapes(last.shape, live) if last is not None else SchemaDiff())


def stamp(settings: Settings, graph_store: GraphStore, source: str) -> dict[str, Any]:
    """``{"schema_fingerprint", "schema"}`` of the live graph for a meta.json, its shape recorded too."""
    shape = graph_store.schema().shape()
    fp = SnapshotStore(settings.home_dir).record(graph_store.name, shape, source)
    return {"schema_fingerprint": fp, "schema": shape}


def pool_drifted(settings: Settings, graph_store: GraphStore) -> bool:
    """True when the graph has a bootstrap pool made on another schema than the live one."""
    pool = ExamplePool.open(settings.home_dir, graph_store.name)
    if pool is None:
        return False
    made_on = pool.meta().get("schema_fingerprint") or ""
    return bool(made_on) and made_on != graph_store.schema(refresh=True).fingerprint()


def adapter_drift(settings: Settings, graph_store: GraphStore) -> str | None:
    """A warning when the live adapter was trained on this graph under another schema, else None."""
    ref = live_adapter(settings.home_dir, settings.base_model)
    if ref is None:
        return None
    meta = read_meta(ref.path)
    trained_on = meta.get("schema_fingerprint") or ""
    if not trained_on or meta.get("graph") not in (None, graph_store.name):
        return None  # trained on no schema in particular (the shipped adapter), or on another graph
    live = graph_store.schema().fingerprint()
    if trained_on == live:
        return None
    last = SnapshotStore(settings.home_dir).get(graph_store.name, trained_on)
    changes = diff_shapes(last.shape, graph_store.schema().shape()).lines() if last else []
    what = f": {'; '.join(changes[:4])}{' …' if len(changes) > 4 else ''}" if changes else ""
    return (f"The live adapter {ref.version} was trained on an older schema of graph {graph_store.name!r} "
            f"({trained_on}, now {live}){what}. Its answers may use names that changed; run "
            f"`cypherloop bootstrap --graph {graph_store.name}` to train one on the current schema.")
