"""Dev benchmark: the host-side CPU time of ``CypherAgent.ask(question, draft=...)`` when the model's first
replies are given, as ``cypherloop eval --batch-size N`` asks (reads ../shared/bench; never a test).

    .venv/bin/python scripts/bench_ask_overhead.py                      # 100 movies questions, 3 passes
    .venv/bin/python scripts/bench_ask_overhead.py --profile            # + cProfile, cumulative, top 40
    .venv/bin/python scripts/bench_ask_overhead.py --json --out FILE    # the numbers as JSON
    .venv/bin/python scripts/bench_ask_overhead.py --code ../other-checkout   # A/B: that checkout's agent

The movies graph is loaded into a throwaway home (its own embedded FalkorDB, stopped at the end); the agent is
built as ``cypherloop eval`` builds it (``agent.factory.make_agent``: no feedback store, no pool) with a
generator that fails if it is ever called, 4 candidates and one attempt. Each dev question is asked with a
draft of 4 ``Generation``s, as a batched model call would hand them over: the gold query twice (the greedy
reply and a sampled one) and two perturbations of it (a wrong property, a changed LIMIT), so the vote groups,
runs and compares distinct queries. Per question: wall time and the process's CPU time (the vote's threads
included; the database's own work runs in its server process and is not), and each question's least CPU
over the passes (``cpu_ms_least_*``: on a shared machine, the least disturbed). Nothing here says whether an
answer is right: this is about time; ``answers_sha256`` hashes the answers (all but their timings), so two
checkouts that must answer alike can be seen to.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import hashlib
import io
import json
import os
import platform
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"


class NoModel:
    """A generator that is never to be called: every first reply comes from the draft."""

    version = "no-model"

    def generate(self, *args, **kwargs):
        raise AssertionError("the model was called although the draft holds the first replies")

    def generate_batch(self, *args, **kwargs):
        raise AssertionError("the model was called although the draft holds the first replies")


def wrong_property(cypher: str) -> str:
    """The first property access misspelt (``m.title`` → ``m.titlex``): the schema check refuses or
    repairs it, or the query runs and returns nulls."""
    return re.sub(r"\b(\w+)\.(\w+)\b", r"\1.\2x", cypher, count=1)


def other_limit(cypher: str) -> str:
    """``LIMIT n`` → ``LIMIT n+1``; without one, ``LIMIT 5`` added: rows that may or may not differ."""
    if re.search(r"\bLIMIT\s+\d+", cypher, re.IGNORECASE):
        return re.sub(r"\bLIMIT\s+(\d+)", lambda m: f"LIMIT {int(m.group(1)) + 1}", cypher, count=1,
                      flags=re.IGNORECASE)
    return cypher.rstrip().rstrip(";") + "\nLIMIT 5"


def draft_for(gold: str) -> list:
    """A batched call's 4 replies for one question: greedy gold, a wrong property, gold again, another LIMIT
    (two fenced as the model writes them, two bare)."""
    from agent.models.base import Generation

    return [Generation(f"```cypher\n{gold}\n```", -1.0), Generation(wrong_property(gold), -2.5),
            Generation(gold, -1.5), Generation(f"```cypher\n{other_limit(gold)}\n```", -3.0)]


def _profile_vote_threads(into: list) -> None:
    """Profile each of the vote's runs on its own thread as well (``agent.graph._vote_run``, when the
    checkout has it), each into a profile added to ``into``."""
    import agent.graph as agent_graph

    inner = getattr(agent_graph, "_vote_run", None)
    if inner is None:
        return

    def profiled(*a, **k):
        prof = cProfile.Profile()
        prof.enable()
        try:
            return inner(*a, **k)
        finally:
            prof.disable()
            into.append(prof)

    agent_graph._vote_run = profiled


def questions(dataset: Path, limit: int) -> tuple[list, list]:
    """The dataset's first ``limit`` questions and a draft for each (``draft_for``)."""
    from agent.evaluation import load_dataset

    items = load_dataset(dataset)[:limit]
    return items, [draft_for(item.cypher) for item in items]


@contextlib.contextmanager
def bench_agent(graph: str, graph_file: Path, candidates: int) -> Iterator:
    """The agent as ``cypherloop eval`` builds it (``make_agent``) over ``graph_file`` loaded into a throwaway
    home (``cypherloop graph load FILE --graph NAME``), with ``NoModel``, ``candidates`` and one attempt; its
    embedded FalkorDB is stopped and the home removed after."""
    from agent.core.env import library_defaults

    library_defaults()
    from agent.core.settings import Settings
    from agent.factory import make_agent
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script

    with tempfile.TemporaryDirectory(prefix="cl-ask-overhead-") as home:
        settings = Settings(_env_file=None, home=Path(home), graph=graph, graph_backend="embedded",
                            embedded_port=0, few_shot_k=0, pool_k=0, candidates=candidates,
                            max_attempts=1, confidence_threshold=0.0)
        try:
            loading = open_graph(settings, graph)
            try:
                load_script(loading, graph_file, replace=True, progress=False)
            finally:
                loading.close()
            with make_agent(settings, generator=NoModel()) as asker:
                yield asker
        finally:
            stop(settings)


def answers_hash(asker, items: list, drafts: list) -> str:
    """Ask every question once; a hash of the answers less their timings (equal: the same answers)."""
    answers = hashlib.sha256()
    for item, draft in zip(items, drafts, strict=True):
        out = asker.ask(item.question, draft=draft).to_dict()
        kept = {k: v for k, v in out.items() if k not in ("timings", "latency_ms")}
        answers.update(json.dumps(kept, sort_keys=True, default=str).encode())
    return answers.hexdigest()[:16]


def machine() -> dict[str, object]:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=BENCH / "dev" / "movies.jsonl")
    ap.add_argument("--graph-file", type=Path, default=BENCH / "graphs" / "movies.cypher")
    ap.add_argument("--graph", default="movies")
    ap.add_argument("--limit", type=int, default=100, help="questions (the dataset's first N)")
    ap.add_argument("--passes", type=int, default=3, help="times every question is asked (after one warm-up)")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--profile", action="store_true", help="print a cProfile summary (cumulative, top 40)")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="the checkout whose agent is measured (A/B runs against another worktree)")
    args = ap.parse_args(argv)
    for f in (args.dataset, args.graph_file):
        if not f.is_file():
            print(f"bench_ask_overhead: {f} not found", file=sys.stderr)
            return 2
    sys.path.insert(0, str(args.code.resolve()))

    import agent

    items, drafts = questions(args.dataset, args.limit)
    with bench_agent(args.graph, args.graph_file, args.candidates) as asker:
        answers = answers_hash(asker, items, drafts)  # also the warm-up: caches, the vote's threads
        walls: list[float] = []
        cpus: list[float] = []
        profiler = cProfile.Profile() if args.profile else None
        threads: list[cProfile.Profile] = []
        if profiler is not None:
            _profile_vote_threads(threads)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(args.passes):
            for item, draft in zip(items, drafts, strict=True):
                w, c = time.perf_counter(), time.process_time()
                if profiler is not None:
                    profiler.enable()
                asker.ask(item.question, draft=draft)
                if profiler is not None:
                    profiler.disable()
                cpus.append((time.process_time() - c) * 1000)
                walls.append((time.perf_counter() - w) * 1000)
        wall_total, cpu_total = time.perf_counter() - wall0, time.process_time() - cpu0
    n = len(walls)
    least = [min(cpus[i::len(items)]) for i in range(len(items))]
    doc = {
        "benchmark": "ask overhead: host time of CypherAgent.ask with the first replies given (draft)",
        "command": "scripts/bench_ask_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "code": str(Path(agent.__file__).resolve().parent.parent),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "questions": len(items), "passes": args.passes, "asks": n, "candidates": args.candidates,
        "profiled": bool(args.profile),
        "wall_ms_median": round(statistics.median(walls), 3),
        "wall_ms_p90": round(sorted(walls)[min(n - 1, n * 9 // 10)], 3),
        "cpu_ms_median": round(statistics.median(cpus), 3),
        "cpu_ms_mean": round(cpu_total * 1000 / n, 3),
        # each question's least CPU over the passes (what other processes' load added the least to)
        "cpu_ms_least_median": round(statistics.median(least), 3),
        "cpu_ms_least_total": round(sum(least), 1),
        "wall_s_total": round(wall_total, 3), "cpu_s_total": round(cpu_total, 3),
        "questions_per_s": round(n / wall_total, 1),
        "answers_sha256": answers,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"{n} asks ({len(items)} questions x {args.passes}): wall median {doc['wall_ms_median']} ms, "
              f"CPU median {doc['cpu_ms_median']} ms, mean {doc['cpu_ms_mean']} ms, least-of-passes median "
              f"{doc['cpu_ms_least_median']} ms; {doc['questions_per_s']} "
              f"questions/s; answers {doc['answers_sha256']} ({doc['code']})")
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        for other in threads:  # the vote's threads (cProfile sees only the thread that enables it)
            stats.add(other)
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue(), file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
