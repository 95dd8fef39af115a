"""Profile a graph for the generator: what each label and pattern holds, and a sample of the data itself.

A handful of read-only queries (one per label, one per pattern) read sampled nodes with their
properties and sampled relationships with their endpoints. From the samples every property gets a
*kind* — the key that names an entity, an id, a category, free text, a number, a number stored as
text, a date, a date stored as ISO text, a boolean — and each label its naming key. The node and
edge samples let the grammar walk real paths, so the values a question mentions belong together and
its query returns rows.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from agent.graphdb.base import GraphStore
from finetune.synth.cypher import ident
from finetune.synth.english import Noun, Verb, plural, prop_words, split_words, verb_of, words_of

NODE_SAMPLE = 5000
"""Nodes read per label."""
EDGE_SAMPLE = 20000
"""Relationships read per pattern."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_NUMERIC_TEXT = re.compile(r"^-?\d+(?:\.\d+)?$")
_MISSING = {"", "NULL", "null", "None", "N/A", "n/a"}
_ID_NAME = re.compile(r"(^|_)id$|Id$|ID$", re.IGNORECASE)
LOCATION_WORDS = frozenset(
    [
        "city",
        "country",
        "state",
        "region",
        "town",
        "county",
        "province",
        "continent",
        "location",
        "place",
        "area",
    ]
)
MONEY_WORDS = frozenset(
    [
        "price",
        "cost",
        "amount",
        "total",
        "revenue",
        "budget",
        "salary",
        "fee",
        "freight",
        "value",
        "spend",
        "spent",
        "income",
        "sales",
    ]
)
_PARTICIPLE_NOUNS = {
    "born": "birth",
    "released": "release",
    "created": "creation",
    "updated": "update",
    "joined": "join",
    "published": "publication",
    "founded": "founding",
    "died": "death",
    "started": "start",
    "ended": "end",
    "registered": "registration",
    "opened": "opening",
    "shipped": "shipping",
    "delivered": "delivery",
    "completed": "completion",
    "established": "establishment",
    "launched": "launch",
    "recorded": "recording",
    "posted": "posting",
    "hired": "hiring",
}


@dataclass
class Prop:
    """A property of a label or relationship type, as the samples show it."""

    name: str
    words: str  # "unit price"
    kind: str  # key | id | category | text | number | numtext | date | datetext | bool | list | other
    values: list[Any]  # distinct usable values, most common first
    counts: Counter
    present: int
    total: int
    db_type: str = ""
    participle: str = ""  # "released", "born": the property reads as a verb ("movies released after 1999")

    @property
    def nullable(self) -> bool:
        return 0 < self.present < self.total

    @property
    def numeric(self) -> bool:
        return self.kind in ("number", "numtext")

    @property
    def is_location(self) -> bool:
        return bool(set(self.words.split()) & LOCATION_WORDS)

    @property
    def is_money(self) -> bool:
        return bool(set(self.words.split()) & MONEY_WORDS)

    @property
    def is_year(self) -> bool:
        return (
            self.kind == "number"
            and bool(self.values)
            and all(isinstance(v, int) and 1000 <= v <= 2200 for v in self.values[:200])
        )

    @property
    def plural_words(self) -> str:
        return plural(self.words)


@dataclass
class Label:
    """A node label: its English, properties, naming key and sampled nodes (id → properties)."""

    label: str
    var: str
    noun: Noun
    count: int
    props: dict[str, Prop]
    key: Prop | None = None
    nodes: dict[int, dict[str, Any]] = field(default_factory=dict)
    unique_keys: set[Any] = field(default_factory=set)  # key values that name exactly one node

    def usable(self, *kinds: str) -> list[Prop]:
        return [p for p in self.props.values() if p.kind in kinds and p.values]


@dataclass
class Rel:
    """One (start)-[type]->(end) pattern with its sampled edges."""

    start: Label
    type: str
    end: Label
    verb: Verb
    props: dict[str, Prop]
    edges: list[tuple[int, int, dict[str, Any]]]
    out: dict[int, list[int]]  # start node id → edge indexes
    inc: dict[int, list[int]]  # end node id → edge indexes

    @property
    def self_loop(self) -> bool:
        return self.start.label == self.end.label

    @property
    def words(self) -> str:
        return words_of(self.type)

    def usable(self, *kinds: str) -> list[Prop]:
        return [p for p in self.props.values() if p.kind in kinds and p.values]


@dataclass
class Profile:
    graph: str
    labels: dict[str, Label]
    rels: list[Rel]

    def rels_at(self, label: str) -> list[tuple[Rel, bool]]:
        """Patterns touching ``label``: (rel, outward) — outward when the label is the pattern's start."""
        out = [(r, True) for r in self.rels if r.start.label == label and r.edges]
        out += [(r, False) for r in self.rels if r.end.label == label and r.edges]
        return out


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def is_number(v: Any, numtext: bool = False) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return not (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))
    return numtext and isinstance(v, str) and bool(_NUMERIC_TEXT.match(v.strip()))


def classify(name: str, values: list[Any], db_type: str) -> tuple[str, list[Any], Counter]:
    """The kind of a property from its sampled values (and the database's type name when it has one)."""
    usable = [v for v in values if v is not None and not (isinstance(v, str) and v.strip() in _MISSING)]
    counts: Counter = Counter(_hashable(v) for v in usable)
    distinct = sorted(counts, key=lambda v: (-counts[v], str(v)))
    if not usable:
        return "other", [], counts
    if all(isinstance(v, bool) for v in usable):
        return "bool", distinct, counts
    if all(isinstance(v, (list, tuple)) for v in usable):
        return "list", distinct, counts
    if db_type in ("DATE", "DATETIME", "LOCALDATETIME"):
        return "date", distinct, counts
    if all(is_number(v) for v in usable):
        if _ID_NAME.search(name) and len(counts) > 0.9 * len(usable):
            return "id", distinct, counts
        return "number", distinct, counts
    if not all(isinstance(v, str) for v in usable):
        return "other", [], counts
    avg_len = sum(len(v) for v in usable) / len(usable)
    if avg_len > 200 or re.match(r"^(0x)?[0-9A-Fa-f]{64,}$", usable[0]):
        return "other", [], counts
    if all(_ISO_DATE.match(v) for v in usable[:300]):
        return "datetext", distinct, counts
    id_like = bool(_ID_NAME.search(name) or re.search(r"(^|_)(code|key|sku|isbn)$", name, re.IGNORECASE))
    if all(_NUMERIC_TEXT.match(v.strip()) for v in usable[:300]) and not id_like and len(counts) > 5:
        return "numtext", distinct, counts
    if id_like or name.lower() in (
        "email",
        "phone",
        "fax",
        "url",
        "homepage",
        "postalcode",
        "zip",
        "picture",
    ):
        return "id", distinct, counts
    if len(counts) <= 60 and len(counts) <= 0.5 * len(usable) and avg_len <= 40:
        return "category", distinct, counts
    if avg_len <= 120:
        return "text", distinct, counts
    return "other", [], counts


def _participle(p: Prop) -> None:
    """ "released" (a year) → words "release year", participle "released"."""
    words = p.words.split()
    if len(words) != 1 or p.kind not in ("number", "date", "datetext"):
        return
    word = words[0]
    if word not in _PARTICIPLE_NOUNS and not (word.endswith("ed") and len(word) > 4):
        return
    stem = _PARTICIPLE_NOUNS.get(word, word)
    if p.kind == "number":
        if not p.is_year:
            return
        p.words = f"{stem} year"
    else:
        p.words = f"{stem} date"
    p.participle = word


def _key_score(label: str, p: Prop) -> float:
    """How well a property names the entities of a label (0: not at all)."""
    if p.kind not in ("text", "id", "category", "number") or p.present < 0.95 * p.total or not p.values:
        return 0
    if len(p.counts) / max(1, p.present) < 0.9:
        return 0
    name, lab = p.name.lower(), label.lower()
    if p.kind in ("text", "category"):
        if name == "name":
            return 100
        if name == "title":
            return 95
        if name in (f"{lab}name", f"{lab}_name", f"{lab}title"):
            return 90
        if name.endswith("name") and any(w in name for w in ("company", "full", "display")):
            return 85
        if name.endswith(("name", "title")):
            return 75
        return 10
    if name in ("id", f"{lab}id", f"{lab}_id") or name.endswith("id"):
        return 50
    return 20 if p.kind == "id" else 0


def _props_of(records: list[dict[str, Any]], db_types: dict[str, str], label: str | None) -> dict[str, Prop]:
    names: list[str] = []
    for rec in records:
        for k in rec:
            if isinstance(k, str) and k and k != "None" and not k.startswith("_") and k not in names:
                names.append(k)
    props: dict[str, Prop] = {}
    for name in names:
        vals = [rec.get(name) for rec in records if rec.get(name) is not None]
        kind, distinct, counts = classify(name, vals, db_types.get(name, ""))
        words = prop_words(label, name) if label else words_of(name)
        props[name] = Prop(
            name, words, kind, distinct, counts, len(vals), len(records), db_types.get(name, "")
        )
        _participle(props[name])
    return props


def _pick_var(label: str, used: set[str]) -> str:
    """ "c" for Customer; "cat" for Category when "c" is taken; "oi" for OrderItem; then digits."""
    words = [w for w in split_words(label) if w and w[0].isalpha()] or ["n"]
    first = words[0].lower()
    for var in (first[0], "".join(w[0].lower() for w in words), first[:3], first):
        if var and var not in used and var not in ("as", "in", "is", "or", "on", "by", "to", "and", "not"):
            used.add(var)
            return var
    i = 2
    while f"{first[0]}{i}" in used:
        i += 1
    used.add(f"{first[0]}{i}")
    return f"{first[0]}{i}"


def profile_graph(graph: GraphStore, *, timeout_s: float = 30.0, seed: int = 0) -> Profile:
    """Read the schema, sampled nodes and sampled relationships (one query per label and per pattern)."""
    schema = graph.schema()
    labels: dict[str, Label] = {}
    used: set[str] = set()
    ordered = sorted((x for x in schema.labels if x.label), key=lambda x: (-(x.count or 0), x.label))
    var_of = {x.label: _pick_var(x.label, used) for x in ordered}
    rng = random.Random(seed)
    for nl in schema.labels:
        if not nl.label:
            continue
        rows = graph.query(
            f"MATCH (n:{ident(nl.label)}) WITH n LIMIT {NODE_SAMPLE} RETURN id(n), properties(n)",
            timeout_s=timeout_s,
            max_rows=NODE_SAMPLE,
        ).rows
        nodes = {int(r[0]): r[1] for r in rows if isinstance(r[1], dict)}
        props = _props_of(list(nodes.values()), {p.name: p.type for p in nl.properties}, nl.label)
        lab = Label(
            nl.label, var_of[nl.label], Noun.of_label(nl.label), nl.count or len(nodes), props, nodes=nodes
        )
        scored = sorted(
            ((s, p.name) for p in props.values() if (s := _key_score(nl.label, p)) > 0), reverse=True
        )
        if scored:
            lab.key = props[scored[0][1]]
            if lab.key.kind in ("text", "category"):
                lab.key.kind = "key"
            lab.unique_keys = {v for v in lab.key.values if lab.key.counts[v] == 1}
        labels[nl.label] = lab
    rel_types = {r.type: r for r in schema.relationships}
    rels: list[Rel] = []
    for pat in schema.patterns:
        a, b = labels.get(pat.start), labels.get(pat.end)
        if a is None or b is None:
            continue
        rows = graph.query(
            f"MATCH (a:{ident(a.label)})-[r:{ident(pat.type)}]->(b:{ident(b.label)}) WITH a, r, b "
            f"LIMIT {EDGE_SAMPLE} RETURN id(a), id(b), properties(r)",
            timeout_s=timeout_s,
            max_rows=EDGE_SAMPLE,
        ).rows
        edges = [(int(x), int(y), p if isinstance(p, dict) else {}) for x, y, p in rows]
        rng.shuffle(edges)
        out: dict[int, list[int]] = defaultdict(list)
        inc: dict[int, list[int]] = defaultdict(list)
        for i, (x, y, _) in enumerate(edges):
            out[x].append(i)
            inc[y].append(i)
        rt = rel_types.get(pat.type)
        props = _props_of(
            [e[2] for e in edges], {p.name: p.type for p in (rt.properties if rt else ())}, None
        )
        rels.append(Rel(a, pat.type, b, verb_of(pat.type, b.label), props, edges, dict(out), dict(inc)))
    return Profile(graph.name, labels, rels)
