"""The training dataset: teacher, offline, user and feedback pairs mixed, de-duplicated and split.

    cypherloop data build --graph shop --offline pairs.jsonl --teacher .cypherloop/data/teacher/shop \
        --feedback --out .cypherloop/data/datasets/shop

Questions and queries are compared in their normalised forms (``agent.core.cypher_text``:
``normalize_question``, ``normalize_cypher``). A built dataset is a folder with ``train.jsonl``,
``heldout.jsonl``, ``feedback_regression.jsonl`` and ``summary.json``; ``dataset_hash`` is its identity.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import math
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.core.cypher_text import normalize_cypher, normalize_question
from agent.core.errors import ConfigError, DataError
from agent.core.feedback import FeedbackStore, stable_id
from agent.core.files import atomic_write_text, jsonl_text, read_jsonl
from agent.core.prompt import PROMPT_VERSION, Example, training_record
from agent.core.settings import Settings
from agent.graphdb import GraphSchema, GraphStore, NodeLabel, Pattern, Property, RelType, open_graph
from feedback_store.chroma import ChromaFeedbackStore
from finetune.review import ReviewFile, review_path, trainable
from finetune.synth import generate_pairs, write_pairs

# ============================================================================================
# The builder
# ============================================================================================
#
# Sources, highest priority first (when two sources give different queries for one question, the
# higher one wins): approved corrections > approved 👍 / imported pairs > the user's own pairs >
# teacher > offline > extra multi-schema files.
#
# Split. Graph-bound examples (everything but ``--extra``) are grouped: two examples belong together
# when they share a normalised question or a normalised query (a teacher question and its ten
# paraphrases share one query). A whole group goes to one side, so no held-out question *and* no
# held-out query is ever trained on. A group is held out when a hash of its anchor question (the
# member whose normalised question hashes lowest) falls below the fraction: a question keeps its
# side across rebuilds unless new data joins its group under a new anchor. Groups that contain
# verified feedback are decided with ``regression_frac``; their feedback members form the
# regression set (``feedback_regression.jsonl``), the rest go to ``heldout.jsonl``. Extra files
# (other databases, not executable here) only ever train, and any of their rows that repeats a
# held-out question or query is dropped.
#
# A small pool (a hundred pairs are some thirty groups) can hash no group below the fraction, and a
# retrain round's gate has nothing to judge on. So whenever ``heldout_frac`` > 0 and at least
# ``SPLIT_MIN_GROUPS`` groups without feedback exist, at least ``min(HELDOUT_MIN_GROUPS,
# max(1, floor(heldout_frac * groups)))`` of them are held out: the hash's choice, topped up with the
# trained groups whose hash comes next (still whole groups, still stable for unchanged data). Below
# ``SPLIT_MIN_GROUPS`` nothing is forced out; summary.json's ``split`` says how it went.


SOURCE_PRIORITY = {
    "correction": 6,
    "thumbs_up": 5,
    "import": 5,
    "pairs": 4,
    "teacher": 3,
    "offline": 2,
    "extra": 1,
}
FEEDBACK_SOURCES = ("correction", "thumbs_up", "import", "escalation")
SPLIT_SALT = "cypherloop-heldout-v1"
"""Part of the split hash. Changing it reshuffles every held-out set ever built: don't."""
HELDOUT_MIN_GROUPS = 10
"""The held-out set of a split with a held-out fraction holds at least this many groups (or the fraction's
share of them when that is fewer, but one at least): see the split's comment."""
SPLIT_MIN_GROUPS = 5
"""Fewer groups without feedback than this and the split holds none out beyond the hash's choice: the pool is
too small to give any up for evaluation."""
FILES = {
    "train": "train.jsonl",
    "heldout": "heldout.jsonl",
    "feedback_regression": "feedback_regression.jsonl",
}


@dataclass
class BuildSpec:
    """What goes into a dataset (the CLI's flags; finetune's retrain job builds one directly)."""

    graph: str
    out_dir: Path
    offline: Sequence[Path] = ()
    teacher: Sequence[Path] = ()
    pairs: Sequence[Path] = ()
    question_col: str = "instruction"
    cypher_col: str = "cypher"
    extra: Sequence[Path] = ()
    extra_schemas: Path | None = None
    extra_question_col: str = "question"
    extra_cypher_col: str = "cypher"
    max_extra: int | None = None
    feedback: bool = False
    feedback_weight: int = 3
    heldout_frac: float = 0.15
    regression_frac: float = 0.15
    teacher_pending_pass: bool = True
    seed: int = 0
    auto_offline_n: int = 0
    """When > 0 and no ``offline`` file is given: use ``<home>/data/offline/<graph>.jsonl``, generating that
    many pairs first if it does not exist (what an unattended retrain round wants)."""
    return_style: str = "mixed"
    """How the pairs generated for ``auto_offline_n`` return entities (``finetune.synth.grammar``'s
    ``RETURN_STYLES``; a retrain round resolves the style asked for:
    ``finetune.bootstrap.refresh_offline``)."""

    @classmethod
    def for_retrain(
        cls, settings: Settings, graph: str | None = None, out_dir: Path | None = None, **overrides: Any
    ) -> BuildSpec:
        """The unattended round's recipe: the graph's bootstrap pool when ``cypherloop bootstrap`` made one
        (its training pairs, with their few-shot examples), else offline pairs generated once; teacher data
        when a review file exists; approved feedback; written to ``<home>/datasets/<graph>``."""
        graph = graph or settings.graph
        teacher = [review_path(settings, graph)] if review_path(settings, graph).exists() else []
        pool = settings.path("bootstrap", graph, "train_pairs.jsonl")
        values: dict[str, Any] = {
            "graph": graph,
            "teacher": teacher,
            "feedback": True,
            "offline": [pool] if pool.is_file() else [],
            "auto_offline_n": 0 if pool.is_file() else 5000,
            "out_dir": Path(out_dir) if out_dir else settings.path("datasets", graph),
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class BuildSummary:
    """What a build wrote: counts per split, source and category, what was dropped, the dataset hash."""

    out_dir: Path
    graph: str
    counts: dict[str, int]
    by_source: dict[str, dict[str, int]]
    by_category: dict[str, dict[str, int]]
    dropped: dict[str, int]
    dataset_hash: str
    schema_fingerprint: str
    files: dict[str, str] = field(default_factory=dict)
    split: dict[str, int] = field(default_factory=dict)
    """How the groups without feedback were split: groups, heldout_groups, topped_up (held out beyond the
    hash's choice to reach ``heldout_minimum``), min_groups (``SPLIT_MIN_GROUPS``)."""

    @property
    def out(self) -> Path:
        return self.out_dir

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph,
            "counts": self.counts,
            "by_source": self.by_source,
            "by_category": self.by_category,
            "dropped": self.dropped,
            "dataset_hash": self.dataset_hash,
            "schema_fingerprint": self.schema_fingerprint,
            "prompt_version": PROMPT_VERSION,
            "files": self.files,
            "split": self.split,
        }

    def table(self) -> str:
        lines = ["| split | examples | by source |", "|---|---:|---|"]
        for split in ("train", "heldout", "feedback_regression"):
            src = ", ".join(f"{k} {v}" for k, v in sorted(self.by_source.get(split, {}).items()))
            lines.append(f"| {split} | {self.counts.get(split, 0)} | {src} |")
        return "\n".join(lines)


@dataclass
class _Rec:
    question: str
    cypher: str
    graph: str  # the graph (or, for extra data, the database) the query is written for
    source: str
    category: str
    file: str
    original_id: str
    weight: int = 1
    schema_text: str | None = None  # extra data: the row's own schema
    examples: tuple[Example, ...] = ()  # few-shot examples rendered into this record's prompt (bootstrap)
    nq: str = ""
    nc: str = ""

    @property
    def bound(self) -> bool:
        return self.source != "extra"

    @property
    def feedback(self) -> bool:
        return self.source in FEEDBACK_SOURCES

    @property
    def id(self) -> str:
        return stable_id(self.graph, self.nq, self.nc)[:16]


# --- readers -------------------------------------------------------------------------------------


def _read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV or JSONL file as dicts."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _need_columns(path: Path, rows: list[dict[str, Any]], *cols: str) -> None:
    if not rows:
        return
    have = set(rows[0])
    missing = [c for c in cols if c not in have]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]!r} (columns: {', '.join(sorted(map(str, have)))}); "
            "choose others with --question-col / --cypher-col"
        )


def _read_offline(path: Path, graph: str, dropped: Counter) -> list[_Rec]:
    rows = _read_table(path)
    _need_columns(path, rows, "question", "cypher")
    out = []
    for i, r in enumerate(rows, 1):
        if r.get("graph") and r["graph"] != graph:
            dropped["other_graph"] += 1
            continue
        shots = tuple(Example(str(e["question"]), str(e["cypher"])) for e in (r.get("examples") or []))
        out.append(
            _Rec(
                str(r.get("question") or ""),
                str(r.get("cypher") or ""),
                graph,
                "offline",
                str(r.get("category") or "offline"),
                str(path),
                str(r.get("id") or i),
                examples=shots,
            )
        )
    return out


def _read_teacher(path: Path, graph: str, include_pending_pass: bool, dropped: Counter) -> list[_Rec]:
    review = ReviewFile(path)
    if not review.path.exists():
        raise DataError(f"no teacher review file at {review.path}; run `cypherloop data teacher` first")
    out = []
    for item in review.load():
        if item.get("graph", graph) != graph:
            dropped["other_graph"] += 1
            continue
        if not trainable(item, include_pending_pass):
            dropped["teacher_not_approved"] += 1
            continue
        theme = str(item.get("theme") or "teacher")
        out.append(
            _Rec(
                item["question"],
                item.get("cypher") or "",
                graph,
                "teacher",
                theme,
                str(review.path),
                item["id"],
            )
        )
        for j, para in enumerate(item.get("paraphrases") or []):
            out.append(
                _Rec(
                    para,
                    item.get("cypher") or "",
                    graph,
                    "teacher",
                    theme,
                    str(review.path),
                    f"{item['id']}#p{j + 1}",
                )
            )
    return out


def _read_pairs(path: Path, graph: str, qcol: str, ccol: str) -> list[_Rec]:
    rows = _read_table(path)
    _need_columns(path, rows, qcol, ccol)
    return [
        _Rec(
            str(r.get(qcol) or ""),
            str(r.get(ccol) or ""),
            graph,
            "pairs",
            str(r.get("category") or r.get("type") or "user"),
            str(path),
            str(r.get("id") or i),
        )
        for i, r in enumerate(rows, 1)
    ]


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def schema_from_structured(data: dict[str, Any]) -> GraphSchema:
    """A ``GraphSchema`` from a Neo4j-style structured schema (node_props / rel_props / relationships), as
    the multi-schema text2cypher files carry it."""

    def props(items: list[dict[str, Any]]) -> tuple[Property, ...]:
        out = []
        for p in items or []:
            typ = str(p.get("type") or "STRING").upper().replace("DATE_TIME", "DATETIME")
            samples: tuple[Any, ...] = ()
            values = p.get("values") or []
            distinct = p.get("distinct_count")
            # like our own schema reader: sample values only for low-cardinality strings (the distinct
            # count when given; otherwise fewer values than the sampler's five, all short)
            low = (
                distinct <= 10
                if distinct is not None
                else (len(values) < 5 and all(len(str(v)) <= 40 for v in values))
            )
            more = 0
            if typ == "STRING" and values and low:
                samples = tuple(values[:5])
                more = max(0, (distinct if distinct is not None else len(values)) - len(samples))
            out.append(Property(str(p.get("property")), typ, samples, more))
        return tuple(out)

    return GraphSchema(
        labels=tuple(NodeLabel(k, props(v)) for k, v in (data.get("node_props") or {}).items()),
        relationships=tuple(RelType(k, props(v)) for k, v in (data.get("rel_props") or {}).items()),
        patterns=tuple(Pattern(r["start"], r["type"], r["end"]) for r in data.get("relationships") or []),
    )


def _load_schemas(path: Path) -> dict[str, GraphSchema | str]:
    """database → GraphSchema (or raw schema text) from a schemas CSV (database, schema,
    structured_schema)."""
    out: dict[str, GraphSchema | str] = {}
    for r in _read_table(path):
        db = r.get("database")
        if not db:
            continue
        structured = r.get("structured_schema")
        if structured:
            try:
                data = structured if isinstance(structured, dict) else ast.literal_eval(structured)
                out[db] = schema_from_structured(data)
                continue
            except (ValueError, SyntaxError, KeyError, TypeError):
                pass
        if r.get("schema"):
            out[db] = str(r["schema"])
    return out


def _read_extra(path: Path, spec: BuildSpec, max_chars: int, dropped: Counter) -> list[_Rec]:
    rows = _read_table(path)
    _need_columns(path, rows, spec.extra_question_col, spec.extra_cypher_col)
    schemas: dict[str, Any] = {}
    if rows and "schema" not in rows[0]:
        if "database" not in rows[0]:
            raise DataError(
                f"{path}: extra files need a 'schema' column, or a 'database' column and a schemas file"
            )
        schema_file = (
            Path(spec.extra_schemas) if spec.extra_schemas else path.parent / "text2cypher_schemas.csv"
        )
        if not schema_file.is_file():
            raise DataError(
                f"{path}: no schemas file {schema_file} for its 'database' column (pass --extra-schemas)"
            )
        schemas = _load_schemas(schema_file)
    out = []
    for i, r in enumerate(rows, 1):
        if (
            _truthy(r.get("syntax_error"))
            or _truthy(r.get("timeout"))
            or str(r.get("false_schema") or "").strip()
        ):
            dropped["extra_flagged"] += 1
            continue
        question = str(r.get(spec.extra_question_col) or "")
        db = str(r.get("database") or path.stem)
        if "schema" in r and r["schema"]:
            text = str(r["schema"])
        else:
            sch = schemas.get(db)
            if sch is None:
                dropped["extra_no_schema"] += 1
                continue
            text = sch if isinstance(sch, str) else sch.to_text(question, max_chars=max_chars)
        out.append(
            _Rec(
                question,
                str(r.get(spec.extra_cypher_col) or ""),
                db,
                "extra",
                str(r.get("type") or r.get("category") or "extra"),
                str(path),
                str(r.get("id") or i),
                schema_text=text,
            )
        )
        if spec.max_extra and len(out) >= spec.max_extra:
            break
    return out


def _read_feedback(store: FeedbackStore, graph: str, weight: int) -> list[_Rec]:
    out = []
    for ex in store.list_examples(graph=graph, status="approved"):
        if ex.status != "approved" or ex.drift == "failing":  # failing on the live schema: out until reviewed
            continue
        src = ex.source if ex.source in FEEDBACK_SOURCES else "thumbs_up"
        out.append(
            _Rec(
                ex.question, ex.cypher, graph, src, f"feedback_{src}", "feedback_store", ex.id, weight=weight
            )
        )
    return out


@dataclass(frozen=True)
class OfflinePairs:
    """The generated offline pairs a build reads (``auto_offline``): where, in which return style, and whether
    this call generated them (``replaced``: the style of the pairs they replaced, "" when there were none)."""

    path: Path
    return_style: str
    generated: bool
    replaced: str = ""
    pairs: int = 0


def offline_stamp(settings: Settings, graph: str) -> dict[str, Any]:
    """What ``<home>/data/offline/<graph>.jsonl`` was generated for: its ``.schema`` stamp
    (schema_fingerprint, return_style, why); {} when there is none. A stamp written before the style was part
    of it is the schema's fingerprint alone, and its pairs are mixed (all there was then)."""
    stamp = settings.path("data", "offline", f"{graph}.schema")
    try:
        text = stamp.read_text().strip()
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return {"schema_fingerprint": text, "return_style": "mixed"}
    return data


def auto_offline(settings: Settings, graph_store: GraphStore, n: int, seed: int, return_style: str = "mixed",
                 *, why: str = "", profile: Any = None) -> OfflinePairs:
    """``<home>/data/offline/<graph>.jsonl``, generated when missing or when the schema or the return style
    asked for differs from the one it was generated for (its stamp says both).

    Last good state: the new pairs are generated before anything is touched, the stamp is removed before the
    pairs file is replaced (atomically) and written again after, so a run killed midway leaves either the old
    pairs or new ones without a stamp, which the next call generates again; never pairs under another style's
    stamp."""
    path = settings.path("data", "offline", f"{graph_store.name}.jsonl")
    stamp = path.with_suffix(".schema")
    fingerprint = graph_store.schema().fingerprint()
    had = offline_stamp(settings, graph_store.name) if path.exists() else {}
    if had and had.get("schema_fingerprint") == fingerprint and had.get("return_style") == return_style:
        return OfflinePairs(path, return_style, generated=False)
    pairs, _ = generate_pairs(graph_store, n, seed=seed, return_style=return_style, profile=profile)
    if not pairs:
        raise DataError(f"no usable question/query pair could be generated on graph {graph_store.name!r}")
    stamp.unlink(missing_ok=True)
    write_pairs(pairs, path)
    atomic_write_text(stamp, json.dumps({"schema_fingerprint": fingerprint, "return_style": return_style,
                                         "why": why}))
    return OfflinePairs(path, return_style, generated=True, replaced=str(had.get("return_style") or ""),
                        pairs=len(pairs))


# --- split -----------------------------------------------------------------------------------------


def _h(text: str, salt: str = SPLIT_SALT) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}\x1f{text}".encode()).digest()[:8], "big")


def held_out(anchor_question: str, frac: float) -> bool:
    """Whether a group whose anchor has this normalised question is held out (stable across rebuilds)."""
    return frac > 0 and _h(anchor_question, SPLIT_SALT + ":side") < frac * 2**64


def _groups(recs: list[_Rec]) -> list[list[_Rec]]:
    """Connected groups of records sharing a normalised question or query (union-find)."""
    parent = list(range(len(recs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, r in enumerate(recs):
        for key in (("q", r.nq), ("c", r.nc)):
            j = first.setdefault(key, i)
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[_Rec]] = defaultdict(list)
    for i, r in enumerate(recs):
        groups[find(i)].append(r)
    return list(groups.values())


# --- build -----------------------------------------------------------------------------------------


def dataset_hash(folder: Path | str) -> str:
    """A built dataset's identity: a hash of its three split files as written (a missing one counts as empty).

    The registry records it with every adapter and a retrain round skips data it already trained on with
    the same recipe; every split counts, because the held-out and regression sets decide the gate.
    """
    digest = hashlib.sha256()
    for split, name in FILES.items():
        path = Path(folder) / name
        digest.update(split.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()[:16]


def build_dataset(
    settings: Settings,
    spec: BuildSpec,
    *,
    graph_store: GraphStore | None = None,
    feedback_store: FeedbackStore | None = None,
) -> BuildSummary:
    """Mix, de-duplicate, split and write the dataset described by ``spec``; returns its summary."""
    if not 0 <= spec.heldout_frac < 1 or not 0 <= spec.regression_frac < 1:
        raise ConfigError("--heldout-frac must be in [0, 1)")
    if spec.feedback_weight < 1:
        raise ConfigError("--feedback-weight must be at least 1")
    own_graph = graph_store is None
    store = open_graph(settings, spec.graph) if graph_store is None else graph_store
    try:
        schema = store.schema()  # an unknown graph fails here, before any source is read
        dropped: Counter = Counter()
        recs = _dedupe(_gather(settings, spec, store, feedback_store, dropped), dropped)
        split_info: dict[str, int] = {}
        train, heldout, regression = _split(recs, spec, dropped, split_info)
        splits = {"train": train, "heldout": heldout, "feedback_regression": regression}
        return _write(settings, spec, store, splits, dropped, schema.fingerprint(), split_info)
    finally:
        if own_graph:
            store.close()


def _gather(
    settings: Settings,
    spec: BuildSpec,
    graph_store: GraphStore,
    feedback_store: FeedbackStore | None,
    dropped: Counter,
) -> list[_Rec]:
    """Every record of every source the spec names, highest priority first."""
    recs: list[_Rec] = []
    if spec.feedback:
        recs += _read_feedback(
            feedback_store or ChromaFeedbackStore(settings), spec.graph, spec.feedback_weight
        )
    for p in spec.pairs:
        recs += _read_pairs(Path(p), spec.graph, spec.question_col, spec.cypher_col)
    for p in spec.teacher:
        recs += _read_teacher(Path(p), spec.graph, spec.teacher_pending_pass, dropped)
    offline = list(spec.offline)
    if not offline and spec.auto_offline_n > 0:
        made = auto_offline(settings, graph_store, spec.auto_offline_n, spec.seed, spec.return_style)
        offline = [made.path]
    for p in offline:
        recs += _read_offline(Path(p), spec.graph, dropped)
    for p in spec.extra:
        recs += _read_extra(Path(p), spec, settings.schema_max_chars, dropped)
    if not recs:
        raise DataError("nothing to build from: give --offline, --teacher, --pairs, --extra or --feedback")
    return recs


def _dedupe(recs: list[_Rec], dropped: Counter) -> list[_Rec]:
    """Normalise, drop empties, keep one record per (graph, question): the higher source wins."""
    kept: dict[tuple[str, str], _Rec] = {}
    for r in recs:
        r.question, r.cypher = r.question.strip(), r.cypher.strip()
        r.nq, r.nc = normalize_question(r.question), normalize_cypher(r.cypher)
        if not r.nq or not r.nc:
            dropped["empty"] += 1
            continue
        key = (r.graph, r.nq)
        old = kept.get(key)
        if old is None:
            kept[key] = r
            continue
        winner, loser = (r, old) if SOURCE_PRIORITY[r.source] > SOURCE_PRIORITY[old.source] else (old, r)
        dropped["duplicate" if winner.nc == loser.nc else "conflict"] += 1
        kept[key] = winner
    return list(kept.values())


def _split(recs: list[_Rec], spec: BuildSpec, dropped: Counter,
           split_info: dict[str, int] | None = None) -> tuple[list[_Rec], list[_Rec], list[_Rec]]:
    """(train, heldout, regression): graph-bound groups go to one side whole (a small pool's held-out set
    topped up to its minimum: ``_heldout_groups``); extra rows train unless they repeat a held-out question or
    query. ``split_info`` receives how the groups were split (summary.json's ``split``)."""
    train: list[_Rec] = []
    heldout: list[_Rec] = []
    regression: list[_Rec] = []
    plain: list[tuple[int, str, list[_Rec]]] = []  # groups without feedback: (side hash, anchor, members)
    for group in _groups([r for r in recs if r.bound]):
        anchor = min(group, key=lambda r: (_h(r.nq), r.nq)).nq
        if not any(r.feedback for r in group):
            plain.append((_h(anchor, SPLIT_SALT + ":side"), anchor, group))
        elif held_out(anchor, spec.regression_frac):
            for r in group:
                (regression if r.feedback else heldout).append(r)
        else:
            train.extend(group)
    held = _heldout_groups(plain, spec.heldout_frac, split_info)
    for i, (_, _, group) in enumerate(plain):
        (heldout if i in held else train).extend(group)
    held_q = {r.nq for r in heldout + regression}
    held_c = {r.nc for r in heldout + regression}
    for r in recs:
        if r.bound:
            continue
        if r.nq in held_q or r.nc in held_c:
            dropped["extra_repeats_heldout"] += 1
            continue
        train.append(r)
    leak_q = {r.nq for r in train} & held_q
    leak_c = {r.nc for r in train} & held_c
    if leak_q or leak_c:  # cannot happen by construction; refuse to write a leaking dataset
        raise DataError(
            f"internal error: {len(leak_q)} questions / {len(leak_c)} queries in both train and held-out"
        )
    return train, heldout, regression


def heldout_minimum(groups: int, frac: float) -> int:
    """How many of ``groups`` groups without feedback a split with held-out fraction ``frac`` holds out at
    least: none without a fraction or below ``SPLIT_MIN_GROUPS`` groups, else ``min(HELDOUT_MIN_GROUPS,
    max(1, floor(frac * groups)))``, always leaving one to train on."""
    if frac <= 0 or groups < SPLIT_MIN_GROUPS:
        return 0
    return min(HELDOUT_MIN_GROUPS, max(1, math.floor(frac * groups)), groups - 1)


def _heldout_groups(plain: list[tuple[int, str, list[_Rec]]], frac: float,
                    split_info: dict[str, int] | None) -> set[int]:
    """Indexes of the ``plain`` groups held out: those whose side hash falls below ``frac``, then, up to
    ``heldout_minimum``, the others in the order of their side hash (the next ones the hash would take)."""
    bound = frac * 2**64
    held = {i for i, (h, _, _) in enumerate(plain) if frac > 0 and h < bound}
    need = heldout_minimum(len(plain), frac)
    by_hash = sorted((h, anchor, i) for i, (h, anchor, _) in enumerate(plain) if i not in held)
    added = [i for _, _, i in by_hash[: max(0, need - len(held))]]
    held.update(added)
    if split_info is not None:
        split_info.update(groups=len(plain), heldout_groups=len(held), topped_up=len(added),
                          min_groups=SPLIT_MIN_GROUPS)
    return held


def _write(
    settings: Settings,
    spec: BuildSpec,
    graph_store: GraphStore,
    splits: dict[str, list[_Rec]],
    dropped: Counter,
    schema_fingerprint: str,
    split_info: dict[str, int] | None = None,
) -> BuildSummary:
    """Render every record through the shared prompt module, write the splits and summary.json."""
    whole_schema = graph_store.schema_text()
    fits = len(whole_schema) <= settings.schema_max_chars

    def line(r: _Rec, copy: int | None = None) -> dict[str, Any]:
        schema = (
            r.schema_text
            if r.schema_text is not None
            else whole_schema
            if fits
            else graph_store.schema_text(r.question)
        )
        rec = {
            "id": r.id,
            "question": r.question,
            "cypher": r.cypher,
            "graph": r.graph,
            "source": r.source,
            "category": r.category,
            "weight": r.weight,
            "provenance": {
                "source": r.source,
                "file": r.file,
                "original_id": r.original_id,
                "weight": r.weight,
            },
        }
        if copy is not None:
            rec["copy"] = copy
        rec.update(training_record(r.question, r.cypher, schema, r.examples))
        return rec

    lines = {
        "train": [line(r, k) for r in sorted(splits["train"], key=lambda r: r.id) for k in range(r.weight)]
    }
    random.Random(spec.seed).shuffle(lines["train"])
    for split in ("heldout", "feedback_regression"):
        lines[split] = [line(r) for r in sorted(splits[split], key=lambda r: r.id)]
    out = Path(spec.out_dir)
    for split, name in FILES.items():
        atomic_write_text(out / name, jsonl_text(lines[split], sort_keys=True))

    def tally(items: Iterable[_Rec], attr: str) -> dict[str, int]:
        return dict(sorted(Counter(getattr(r, attr) for r in items).items()))

    summary = BuildSummary(
        out_dir=out,
        graph=spec.graph,
        counts={
            "train": len(lines["train"]),
            "train_unique": len(splits["train"]),
            "heldout": len(splits["heldout"]),
            "feedback_regression": len(splits["feedback_regression"]),
        },
        by_source={split: tally(items, "source") for split, items in splits.items()},
        by_category={split: tally(items, "category") for split, items in splits.items()},
        dropped=dict(sorted(dropped.items())),
        dataset_hash=dataset_hash(out),
        schema_fingerprint=schema_fingerprint,
        files={split: str(out / name) for split, name in FILES.items()},
        split=dict(split_info or {}),
    )
    atomic_write_text(out / "summary.json", json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    return summary
