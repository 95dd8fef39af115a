"""Run sampled queries read-only and keep the ones that make good training pairs.

A candidate (``grammar.Query``) is kept when its query runs within a short timeout, returns rows
that say something (not only nulls or zeros), is written with DISTINCT only where rows would repeat
(and counts or averages over repeated nodes count each node once), and — when it orders and cuts
(ORDER BY … LIMIT k) — has no tie at the cut. Each kept query is rendered as several questions
(paraphrases by rendering variety); pairs are de-duplicated on normalised question and query.

Candidates are sampled sequentially from one seeded sampler and checked in parallel batches whose
results are consumed in order, so a run is deterministic for a graph and seed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.core.cypher_text import normalize_cypher, normalize_question, same_result, says_nothing
from agent.core.errors import DataError, GraphError
from agent.core.files import read_jsonl, write_jsonl
from agent.graphdb.base import GraphStore
from finetune.synth.grammar import FRAMES, Agg, Query, Ref, Sampler, compile_cypher, tie_probe
from finetune.synth.profile import Profile, profile_graph
from finetune.synth.render import Renderer

BATCH = 64
"""Candidates sampled, then checked in parallel, per round."""


@dataclass
class Pair:
    """A kept question → Cypher pair (one JSONL line)."""

    question: str
    cypher: str
    category: str
    graph: str
    row_count: int
    source: str = "synth"
    features: tuple[str, ...] = ()
    query_id: str = ""  # the same for every paraphrase of one query (held-out splits keep them together)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "cypher": self.cypher,
            "category": self.category,
            "graph": self.graph,
            "source": self.source,
            "row_count": self.row_count,
            "query_id": self.query_id,
            "features": list(self.features),
        }


@dataclass
class GenerationReport:
    """What a run produced: pairs, distinct queries, rejections per frame and coverage per construct."""

    graph: str
    requested: int
    kept: int = 0
    queries_kept: int = 0
    seconds: float = 0.0
    profile_seconds: float = 0.0
    db_queries: int = 0
    sampled: int = 0
    rejected: dict[str, Counter] = field(default_factory=dict)
    coverage: Counter = field(default_factory=Counter)
    exhausted: bool = False

    @property
    def pairs_per_second(self) -> float:
        return self.kept / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph,
            "requested": self.requested,
            "kept": self.kept,
            "queries_kept": self.queries_kept,
            "seconds": round(self.seconds, 2),
            "profile_seconds": round(self.profile_seconds, 2),
            "db_queries": self.db_queries,
            "sampled": self.sampled,
            "exhausted": self.exhausted,
            "rejected": {k: dict(v) for k, v in self.rejected.items()},
            "coverage": dict(sorted(self.coverage.items())),
        }

    def table(self) -> str:
        """Markdown: kept queries per construct, and why candidates were dropped."""
        lines = ["| construct | queries |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(self.coverage.items())]
        reasons = Counter()
        for c in self.rejected.values():
            reasons.update(c)
        lines.append("")
        lines.append(
            f"{self.kept} pairs from {self.queries_kept} distinct queries; {self.sampled} candidates "
            "sampled, "
            f"{self.db_queries} database queries, {self.seconds:.1f} s. Dropped: "
            + ", ".join(f"{k} {v}" for k, v in reasons.most_common())
        )
        return "\n".join(lines)


def _has_duplicates(rows: list[list[Any]]) -> bool:
    seen = set()
    for r in rows:
        key = json.dumps(r, sort_keys=True, default=str)
        if key in seen:
            return True
        seen.add(key)
    return False


class Checker:
    """Runs one candidate's queries and settles its final form (or the reason it is dropped)."""

    def __init__(self, graph: GraphStore, timeout_s: float, max_rows: int) -> None:
        self.graph, self.timeout_s, self.max_rows = graph, timeout_s, max_rows

    def _run(self, cypher: str, counter: list[int]) -> Any:
        counter[0] += 1
        try:
            return self.graph.query(cypher, timeout_s=self.timeout_s, max_rows=self.max_rows)
        except GraphError:
            return None

    def check(self, q: Query) -> tuple[Query | None, str, int, int]:
        """(final query or None, reason, row count, database queries used)."""
        n = [0]
        q = self._settle_distinct(q, n)
        if q is None:
            return None, "error", 0, n[0]
        res = self._run(compile_cypher(q), n)
        if res is None:
            return None, "error", 0, n[0]
        if not res.rows:
            return None, "empty", 0, n[0]
        if res.truncated:
            return None, "too_many_rows", 0, n[0]
        if says_nothing(res.rows):
            return None, "no_information", 0, n[0]
        ranked = (
            q.frame in ("top", "first")
            or (q.compare is not None and q.compare.kind == "rank")
            or (q.listed is not None and q.order is not None)
        )
        if q.limit and len(res.rows) < q.limit and ranked and q.limit > 1:
            return None, "fewer_than_limit", 0, n[0]
        if q.order is not None and q.limit:
            probe = tie_probe(q)
            assert probe is not None
            text, k = probe
            pr = self._run(text, n)
            if pr is None:
                return None, "error", 0, n[0]
            if len(pr.rows) > k and pr.rows[k - 1][-1] == pr.rows[k][-1]:
                return None, "tie_at_limit", 0, n[0]
        if q.group and (q.agg or q.listed) and (not q.agg or q.agg.func != "collect") and len(res.rows) < 2 \
                and not q.limit:
            return None, "single_group", 0, n[0]
        return q, "kept", len(res.rows), n[0]

    def _settle_distinct(self, q: Query, n: list[int]) -> Query | None:
        """DISTINCT only where it changes the answer: repeated rows, nodes counted twice, averages over
        repeats."""
        if not q.hops:
            return q
        if q.agg is None and not q.distinct:
            if not q.dedupe:
                return q  # people mostly list repeated rows as they come (grammar.DISTINCT_REPEATS_P)
            body = copy.copy(q)
            body.limit = None
            body.order = None
            res = self._run(compile_cypher(body), n)
            if res is None:
                return None
            if _has_duplicates(res.rows):
                q = copy.copy(q)
                q.distinct = True
            return q
        if q.also is not None and q.also.func in ("sum", "avg"):  # a node met twice in a group adds twice
            keep = ", ".join(sorted({q.nodes[0].var} | {q.nodes[g.index].var for g in q.group}))
            res = self._run(_pattern(q) + f" WITH {keep}, count(*) AS __times RETURN max(__times)", n)
            if res is None:
                return None
            if res.rows and (res.rows[0][0] or 0) > 1:
                return replace(q, dedupe_first=True)  # each node once per group: its count is distinct too
        if q.agg is not None and q.agg.func in ("count", "collect"):
            plain = self._run(compile_cypher(q), n)
            dq = copy.copy(q)
            dq.agg = Agg(q.agg.func, q.agg.target, distinct=True)
            distinct = self._run(compile_cypher(dq), n)
            if plain is None or distinct is None:
                return None
            return q if same_result(plain.rows, distinct.rows) else dq
        if q.agg is not None and q.agg.func in ("sum", "avg") and q.agg.target and q.agg.target.on == "node":
            v = q.nodes[0].var
            res = self._run(_pattern(q) + f" RETURN count({v}), count(DISTINCT {v})", n)
            if res is None:
                return None
            if res.rows and res.rows[0][0] != res.rows[0][1]:
                q = copy.copy(q)
                q.dedupe_first = True
        return q


def _pattern(q: Query) -> str:
    """The query's MATCH and WHERE, before anything it returns or aggregates (cut structurally: a value may
    read " WITH ", as in ``STARTS WITH 'A'``)."""
    plain = replace(q, agg=None, also=None, having=None, group=[], returns=[Ref("node", 0)], order=None,
                    limit=None, distinct=False, dedupe_first=False, ranked_alone=False)
    text = compile_cypher(plain)
    return text[: text.rfind(" RETURN ")]


def query_id(cypher: str) -> str:
    """The same for every paraphrase of one query: a hash of its normalised form."""
    return hashlib.sha1(normalize_cypher(cypher).encode()).hexdigest()[:12]


def generate_pairs(
    graph: GraphStore,
    n: int,
    *,
    seed: int = 0,
    frames: Iterable[str] | None = None,
    paraphrases: int = 3,
    timeout_s: float = 2.0,
    max_rows: int = 1000,
    workers: int = 4,
    max_sampled: int | None = None,
    profile: Profile | None = None,
    progress: Callable[[int], None] | None = None,
    return_style: str = "mixed",
) -> tuple[list[Pair], GenerationReport]:
    """Up to ``n`` executed, de-duplicated pairs (``paraphrases`` renderings per kept query), with a
    report. ``return_style``: how an asked-for entity comes back (``grammar.RETURN_STYLES``)."""
    chosen = list(frames) if frames is not None else list(FRAMES)
    unknown = [f for f in chosen if f not in FRAMES]
    if unknown:
        raise DataError(f"unknown frame(s) {', '.join(unknown)}; choose from {', '.join(FRAMES)}")
    if n <= 0:
        raise DataError("the number of pairs must be positive")
    start = time.perf_counter()
    report = GenerationReport(graph.name, n, rejected={f: Counter() for f in chosen})
    if profile is None:
        profile = profile_graph(graph, seed=seed)
    report.profile_seconds = time.perf_counter() - start
    if not any(lab.nodes for lab in profile.labels.values()):
        raise DataError(f"graph {graph.name!r} has no nodes to generate questions about")
    sampler = Sampler(profile, seed, return_style)
    renderer = Renderer(seed)
    checker = Checker(graph, timeout_s, max_rows)
    weights = {f: FRAMES[f] for f in chosen}
    seen_q: set[str] = set()
    seen_c: set[str] = set()
    pairs: list[Pair] = []
    limit = max_sampled if max_sampled is not None else max(2000, n * 40)
    stale = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while len(pairs) < n and report.sampled < limit:
            batch = _sample_batch(sampler, weights, report, limit, seen_c)
            before = len(pairs)
            for q, (final, reason, rows, used) in zip(batch, pool.map(checker.check, batch), strict=True):
                report.db_queries += used
                if final is None:
                    report.rejected[q.frame][reason] += 1
                    continue
                cypher = compile_cypher(final)
                nc = normalize_cypher(cypher)
                if nc in seen_c:
                    report.rejected[q.frame]["duplicate"] += 1
                    continue
                seen_c.add(nc)
                qid = hashlib.sha1(nc.encode()).hexdigest()[:12]
                features = tuple(final.features())
                # an unconditioned query is rare among distinct ones but common in people's questions
                wanted = paraphrases * (2 if not final.filters and not final.exists else 1)
                questions = _paraphrase(renderer, final, wanted, n - len(pairs), seen_q)
                pairs.extend(
                    Pair(question, cypher, final.frame, graph.name, rows, features=features, query_id=qid)
                    for question in questions
                )
                if questions:
                    report.queries_kept += 1
                    report.coverage.update(features)
                if len(pairs) >= n:
                    break
            if progress is not None:
                progress(len(pairs))
            stale = stale + 1 if len(pairs) == before else 0
            if stale >= 20:  # twenty rounds without a new pair: this graph has no more to give
                report.exhausted = True
                break
    report.exhausted = report.exhausted or (len(pairs) < n)
    report.kept = len(pairs)
    report.seconds = time.perf_counter() - start
    return pairs, report


def _sample_batch(sampler: Sampler, weights: dict[str, float], report: GenerationReport, limit: int,
                  seen_c: set[str]) -> list[Query]:
    """Up to ``BATCH`` sampled queries of the weighted frames, not yet kept; the misses are counted in the
    report."""
    batch: list[Query] = []
    while len(batch) < BATCH and report.sampled < limit:
        frame = sampler.rng.choices(list(weights), weights=list(weights.values()))[0]
        q = sampler.sample(frame)
        report.sampled += 1
        if q is None:
            report.rejected[frame]["no_fit"] += 1
            continue
        if normalize_cypher(compile_cypher(q)) in seen_c:
            report.rejected[frame]["duplicate"] += 1
            continue
        batch.append(q)
    return batch


def _paraphrase(renderer: Renderer, query: Query, wanted: int, room: int, seen_q: set[str]) -> list[str]:
    """Up to ``wanted`` (and ``room``) questions for one query, none asked before (``seen_q`` is updated), in
    at most twice as many renderings."""
    questions: list[str] = []
    for _ in range(wanted * 2):
        if len(questions) >= min(wanted, room):
            break
        question = renderer.question(query)
        nq = normalize_question(question)
        if nq in seen_q:
            continue
        seen_q.add(nq)
        questions.append(question)
    return questions


def write_pairs(pairs: Iterable[Pair], path: Path) -> int:
    """Write pairs as JSONL (atomically); returns the count."""
    return write_jsonl(path, (p.to_dict() for p in pairs))


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file of pairs (for the dataset builder and tests)."""
    return read_jsonl(path)


__all__ = ["GenerationReport", "Pair", "Ref", "generate_pairs", "query_id", "read_pairs", "write_pairs"]
