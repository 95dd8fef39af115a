"""Schema drift: a graph's *shape*, its fingerprint, what changed between two shapes, and the snapshots.

The shape is what a stored query depends on: labels with their property keys and types, relationship
types with theirs, and the patterns (start label, type, end label) — not counts or sample values.
``GraphSchema.shape()`` builds it and ``GraphSchema.fingerprint()`` is ``shape_fingerprint`` of it, so a
snapshot read back from JSON has the fingerprint it was stored under.

Every stamped thing carries the fingerprint (verified examples, adapter versions, bootstrap pools); the
shape itself is kept once per fingerprint in ``<home>/schemas/<graph>/<fingerprint>.json`` by
``SnapshotStore``. ``cypherloop graph schema --diff`` compares the live shape with the latest snapshot
there; ``cypherloop feedback recheck`` re-runs the stored examples and records the live one.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.core.files import atomic_write_text

Shape = dict[str, Any]
"""``{"labels": [[label, [[prop, type], …]], …], "rels": [[type, [[prop, type], …]], …],
"patterns": [[start, type, end], …]}``, every list sorted."""


def shape_fingerprint(shape: Shape) -> str:
    """Stable 16-hex hash of a shape (equal shapes ⇔ equal fingerprints)."""
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def _props(entries: list[Any]) -> dict[str, dict[str, str]]:
    return {str(owner): {str(n): str(t) for n, t in props} for owner, props in entries}


@dataclass
class SchemaDiff:
    """What changed from an old shape to a new one. Property entries are ``(owner, name, type)``; a label
    owner is written ``Customer``, a relationship type ``:RATED``."""

    labels_added: list[str] = field(default_factory=list)
    labels_removed: list[str] = field(default_factory=list)
    rels_added: list[str] = field(default_factory=list)
    rels_removed: list[str] = field(default_factory=list)
    patterns_added: list[str] = field(default_factory=list)
    patterns_removed: list[str] = field(default_factory=list)
    props_added: list[tuple[str, str, str]] = field(default_factory=list)
    props_removed: list[tuple[str, str, str]] = field(default_factory=list)
    props_retyped: list[tuple[str, str, str, str]] = field(default_factory=list)
    """``(owner, name, old type, new type)``."""
    renamed: list[tuple[str, str, str]] = field(default_factory=list)
    """``(owner, old name, new name)``: on one owner, exactly one key went and one of the same type came."""

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__)

    def lines(self) -> list[str]:
        """One human line per change, removals first."""
        out = [f"- label {x}" for x in self.labels_removed] + [f"+ label {x}" for x in self.labels_added]
        out += [f"- relationship type :{x}" for x in self.rels_removed]
        out += [f"+ relationship type :{x}" for x in self.rels_added]
        out += [f"- pattern {x}" for x in self.patterns_removed]
        out += [f"+ pattern {x}" for x in self.patterns_added]
        renamed = {(o, a) for o, a, _ in self.renamed} | {(o, b) for o, _, b in self.renamed}
        out += [f"~ property {o}.{a} renamed to {o}.{b}?" for o, a, b in self.renamed]
        out += [f"- property {o}.{n} ({t})" for o, n, t in self.props_removed if (o, n) not in renamed]
        out += [f"+ property {o}.{n} ({t})" for o, n, t in self.props_added if (o, n) not in renamed]
        out += [f"~ property {o}.{n}: {a} → {b}" for o, n, a, b in self.props_retyped]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def diff_shapes(old: Shape, new: Shape) -> SchemaDiff:
    """The changes from ``old`` to ``new`` (both ``Shape``)."""
    d = SchemaDiff()
    for kind, prefix, added, removed in (("labels", "", d.labels_added, d.labels_removed),
                                         ("rels", ":", d.rels_added, d.rels_removed)):
        a, b = _props(old.get(kind, [])), _props(new.get(kind, []))
        added += sorted(set(b) - set(a))
        removed += sorted(set(a) - set(b))
        for owner in sorted(set(a) & set(b)):
            pa, pb = a[owner], b[owner]
            name = prefix + owner
            gone = [(name, n, pa[n]) for n in sorted(set(pa) - set(pb))]
            came = [(name, n, pb[n]) for n in sorted(set(pb) - set(pa))]
            d.props_removed += gone
            d.props_added += came
            d.props_retyped += [(name, n, pa[n], pb[n]) for n in sorted(set(pa) & set(pb)) if pa[n] != pb[n]]
            if len(gone) == 1 and len(came) == 1 and gone[0][2] == came[0][2]:
                d.renamed.append((name, gone[0][1], came[0][1]))
    pat = lambda p: f"(:{p[0]})-[:{p[1]}]->(:{p[2]})"  # noqa: E731
    pa_, pb_ = {pat(p) for p in old.get("patterns", [])}, {pat(p) for p in new.get("patterns", [])}
    d.patterns_added, d.patterns_removed = sorted(pb_ - pa_), sorted(pa_ - pb_)
    return d


# --- snapshots on disk ------------------------------------------------------------------------------------

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Snapshot:
    """A stored shape: which graph, its fingerprint, when it was last recorded and by whom."""

    graph: str
    fingerprint: str
    shape: Shape
    recorded_at: float
    source: str


class SnapshotStore:
    """``<home>/schemas/<graph>/<fingerprint>.json``, one file per shape ever stamped on something."""

    def __init__(self, home: Path | str) -> None:
        self.root = Path(home) / "schemas"

    def _dir(self, graph: str) -> Path:
        return self.root / (_SAFE.sub("_", graph) or "_")

    def record(self, graph: str, shape: Shape, source: str) -> str:
        """Store ``shape`` (or refresh its time) as the graph's latest; returns its fingerprint."""
        fp = shape_fingerprint(shape)
        body = {"graph": graph, "fingerprint": fp, "shape": shape, "recorded_at": time.time(),
                "source": source}
        atomic_write_text(self._dir(graph) / f"{fp}.json", json.dumps(body, sort_keys=True), durable=False)
        return fp

    def _read(self, path: Path) -> Snapshot | None:
        try:
            b = json.loads(path.read_text())
            return Snapshot(b["graph"], b["fingerprint"], b["shape"], float(b["recorded_at"]),
                            b.get("source", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a torn or foreign file is not a snapshot

    def get(self, graph: str, fingerprint: str) -> Snapshot | None:
        return self._read(self._dir(graph) / f"{fingerprint}.json") if fingerprint else None

    def latest(self, graph: str) -> Snapshot | None:
        """The most recently recorded snapshot of ``graph`` (None before anything was stamped)."""
        folder = self._dir(graph)
        paths = folder.glob("*.json") if folder.is_dir() else []
        found = [s for p in paths if (s := self._read(p)) is not None]
        return max(found, key=lambda s: s.recorded_at, default=None)
