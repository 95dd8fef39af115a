"""Host-side cost of `cypherloop eval --batch-size 128` without a model, with four *distinct* candidates a
question (docs/benchmarks/cpu/eval-host-inline/ gave every question four copies of its gold query, so its vote
ran one query). A scripted generator answers each question with:

0. the gold query (the greedy reply);
1. the gold query with another LIMIT, or with DISTINCT (or a LIMIT) added: usually the same rows;
2. the gold query with its first known property renamed ``<prop>_value``: fails the schema check;
3. the gold query with its first string literal lower-cased (or ``x`` added when that changes nothing), which
   no node holds: the grounding probes run (``holds`` on each text property, then ``values``); a gold query
   without a string literal gets a Movie-title lookup of the question's first words instead.

Every question runs `run_eval` with the real agent and an embedded FalkorDB, predictions written to a file and
the progress bar on, as `cypherloop eval` does; 100 movies dev questions, 4 candidates, one attempt, 1 and 8
workers; the batched model call returns at once (the host side alone) or after sleeping 1.5 s, the H200's
decoding of these questions (issue 15), with the GIL free all that time: a GPU's decoding loop holds it for
part of it, so what runs beside that sleep (the gold queries, since this change) is an upper bound of what
overlaps the real decoding.

Before/after: the driver exports ``--before`` (a git revision) and runs it and this working tree in turns, a
fresh process for each measured run (its own embedded server and graph; eight other questions warm it up, then
the 100 are asked once, as `cypherloop eval` asks them: nothing the agent remembers from one run flatters the
next), ``--rounds`` times; the medians compare them. Each process writes its predictions; the driver checks
that they are the same (``latency_ms`` and ``timings`` aside: they are clocks) across trees, worker counts and
decoding times. Each run also says where its milliseconds a question went by the agent's own clocks
(``where_it_went``); breakdown.py cuts a cProfile of one run finer.

Run from the repository root (the movies graph and dev questions of ../shared/bench, as scripts/gpu_run.py's
GRAPHS and DEV name them):

    .venv/bin/python docs/benchmarks/cpu/eval-host-distinct/host.py --before REV > host.json

One process alone (what the driver runs; ``--profile FILE`` writes a cProfile of the measured run):

    PYTHONPATH=.:tests .venv/bin/python docs/benchmarks/cpu/eval-host-distinct/host.py \
        --one OUT_DIR --workers 1 [--decode-s 1.5] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[4]
SHARED = ROOT.parent / "shared" / "bench"
N_QUESTIONS = 100
WORKERS = (1, 8)
DECODE_S = (0.0, 1.5)
"""The batched call's simulated decoding: none (the host side alone), and the H200's 1.5 s for these 100
questions (issue 15), during which the gold queries may run."""
CLOCKS = ("latency_ms", "timings")


# --- the scripted candidates ------------------------------------------------------------------------
PROPS = "name|title|born|released|tagline|roles|rating|summary"
PROP_ACCESS = re.compile(rf"\b([A-Za-z_]\w*)\.({PROPS})\b")
STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")
FINAL_LIMIT = re.compile(r"\bLIMIT\s+(\d+)\s*$", re.IGNORECASE)
RETURN = re.compile(r"\bRETURN\s+(?!DISTINCT\b)", re.IGNORECASE)


def outside_strings(cypher: str, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The first match of ``pattern`` not inside a string literal."""
    spans = [m.span() for m in STRING.finditer(cypher)]
    for m in pattern.finditer(cypher):
        if not any(a <= m.start() < b for a, b in spans):
            return m
    return None


def candidates(question: str, gold: str) -> list[str]:
    """Four distinct replies for one question (the module doc says which)."""
    limit = FINAL_LIMIT.search(gold)
    if limit:
        other = gold[: limit.start(1)] + str(int(limit.group(1)) + 2) + gold[limit.end(1):]
    else:
        returns = list(RETURN.finditer(gold))
        other = (gold[: returns[-1].end()] + "DISTINCT " + gold[returns[-1].end():] if returns
                 else gold + "\nLIMIT 50")
        if other == gold:
            other = gold + "\nLIMIT 50"
    prop = outside_strings(gold, PROP_ACCESS)
    wrong = (gold[: prop.end(2)] + "_value" + gold[prop.end(2):] if prop
             else gold.replace(":Movie", ":Film", 1).replace(":Person", ":People", 1))
    lit = STRING.search(gold)
    if lit:
        value = lit.group(1).lower() if lit.group(1).lower() != lit.group(1) else lit.group(1) + "x"
        absent = gold[: lit.start(1)] + value + gold[lit.end(1):]
    else:
        words = " ".join(re.findall(r"[A-Za-z]+", question)[:4])
        absent = f"MATCH (m:Movie) WHERE m.title = '{words}' RETURN m.title, m.released"
    return [gold, other, wrong, absent]


class DistinctCandidates:
    """A generator that answers from ``candidates``: the four replies in one call, the greedy one first (the
    highest log-probability), as the transformers backend's one-call candidates come. A batched call first
    sleeps ``decode_s`` (the GIL free, as while a GPU decodes)."""

    def __init__(self, gold: dict[str, str], decode_s: float = 0.0) -> None:
        self._gold = gold
        self.decode_s = decode_s

    @property
    def version(self) -> str:
        return "scripted-distinct"

    def one_call_candidates(self) -> bool:
        return True

    def _replies(self, question: str) -> list[str]:
        gold = self._gold.get(question)
        return candidates(question, gold) if gold else ["MATCH (n) RETURN n LIMIT 1"] * 4

    def generate(self, question, schema_text, examples=(), error_feedback=None) -> str:
        return self._replies(question)[0]

    def generate_batch(self, prompts, *, n=1, temperature=None, max_new_tokens=None, greedy_first=True,
                       on_ready=None):
        from agent.models.base import Generation, tell_each

        time.sleep(self.decode_s)
        replies = [[Generation(t, logprob=-1.0 - i) for i, t in enumerate(self._replies(p.question)[:n])]
                   for p in prompts]
        return tell_each(replies, on_ready)


# --- one process: one tree ---------------------------------------------------------------------------
def counted_queries(store, agent, run_eval, items) -> dict[str, float]:
    """Database calls a question makes (an untimed run with the store's ``query`` and ``explain`` counted),
    and how many of its candidates are distinct and pass the schema check."""
    from agent.cleanup import clean_cypher
    from agent.schema_check import check_cypher

    counts = {"query": 0, "explain": 0}
    query, explain = store.query, store.explain

    def counting(name, call):
        def wrapped(*a, **kw):
            counts[name] += 1
            return call(*a, **kw)
        return wrapped

    store.query, store.explain = counting("query", query), counting("explain", explain)
    try:
        run_eval(agent, items, progress=False, batch_size=128)
    finally:
        del store.query, store.explain
    replies = [agent.generator._replies(i.question) for i in items]
    schema = store.schema()
    n = len(items)
    return {
        "db_queries_per_question": round(counts["query"] / n, 2),
        "db_explains_per_question": round(counts["explain"] / n, 2),
        "distinct_candidates_per_question": round(
            sum(len({clean_cypher(r) for r in rs}) for rs in replies) / n, 2),
        "candidates_passing_schema_check_per_question": round(
            sum(check_cypher(clean_cypher(r), schema).ok for rs in replies for r in rs) / n, 2),
    }


def where_it_went(report, decode_s: float) -> dict[str, float]:
    """Milliseconds a question by part, from the agent's own clocks (each answer's ``timings``): its nodes,
    LangGraph around them (the answer's total less its nodes), and what is left of the wall outside ``ask``
    (the gold query, the prompts, the report, the JSON line, the progress bar; the simulated decode taken
    out). With several workers the parts add up to more than the wall: they overlap."""
    preds = report.predictions
    mean = {}
    for p in preds:
        for k, v in p["timings"].items():
            mean[k] = mean.get(k, 0.0) + v / len(preds)
    total = mean.pop("total")
    nodes = sum(mean.values())
    parts = {"vote": mean.get("vote", 0.0), "validate": mean.get("validate", 0.0)}
    parts["other nodes"] = nodes - parts["vote"] - parts["validate"]
    parts["LangGraph"] = total - nodes
    parts["outside ask"] = (report.wall_s - decode_s) * 1000 / len(preds) - total
    return {k: round(v, 3) for k, v in parts.items()}


def one(out: Path, workers: int, stats: bool, decode_s: float, profile: Path | None = None) -> None:
    """Measure this tree (the one on ``sys.path``) once: a row on stdout as JSON, predictions in ``out``.

    One measured run a process: the agent remembers checks of texts it saw (the read-only gate's memo), and
    `cypherloop eval` asks each question once. Eight other questions warm the process up first."""
    from conftest import make_settings

    from agent.evaluation import load_dataset, run_eval
    from agent.factory import make_agent
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script

    home = Path(tempfile.mkdtemp(prefix="eval-host-distinct-"))
    s = make_settings(home, graph="movies", candidates=4, max_attempts=1)
    store = open_graph(s, "movies")
    load_script(store, SHARED / "graphs" / "movies.cypher", replace=True, progress=False)
    everything = load_dataset(SHARED / "dev" / "movies.jsonl")
    items, warm = everything[:N_QUESTIONS], everything[N_QUESTIONS: N_QUESTIONS + 8]
    gen = DistinctCandidates({i.question: i.cypher for i in everything})
    try:
        with make_agent(s, graph_store=store, generator=gen) as agent:
            run_eval(agent, warm, progress=False, batch_size=8)
            gen.decode_s = decode_s
            load = os.getloadavg()[0]
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            report = run_eval(agent, items, progress=True, batch_size=128, workers=workers,
                              predictions_path=out / "pred.jsonl", label="movies")
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            gen.decode_s = 0.0
            row = {"workers": workers, "decode_s": decode_s, "n": report.n, "correct": report.correct,
                   "wall_s": round(report.wall_s, 4), "questions_per_s": round(report.n / report.wall_s, 1),
                   "load_1min": round(load, 2), "ms_per_question": where_it_went(report, decode_s)}
            if stats:
                row["per_question"] = counted_queries(store, agent, run_eval, items)
    finally:
        store.close()
        stop(s)
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(row))


# --- the driver --------------------------------------------------------------------------------------
def stripped(path: Path) -> list[dict]:
    """A predictions file without its clocks."""
    return [{k: v for k, v in json.loads(line).items() if k not in CLOCKS}
            for line in path.read_text(encoding="utf-8").splitlines()]


def measured_trees(before: str, prefix: str) -> tuple[Path, dict[str, Path], str, str]:
    """A work folder, the trees to measure (``before`` exported into it, "after": this working tree) and the
    two revisions' short names ("+ uncommitted changes" after HEAD's when agent/ or ui/ has some)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    both = {"before": work / "before", "after": ROOT}
    both["before"].mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", before], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(both["before"])], input=archive.stdout, check=True)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "agent", "ui") else ""
    return work, both, git("rev-parse", "--short", before), git("rev-parse", "--short", "HEAD") + dirty


def drive(before: str, rounds: int) -> None:
    work, trees, rev, head = measured_trees(before, "eval-host-distinct-driver-")
    rows, stats, preds = [], {}, {}
    load_at_start = os.getloadavg()
    runs = [(d, w) for d in DECODE_S for w in WORKERS]
    for rnd in range(rounds):
        for name, tree in trees.items():
            for d, w in runs:
                out = work / f"{name}-{rnd}-w{w}-d{d}"
                out.mkdir()
                env = {**os.environ, "PYTHONPATH": f"{tree}:{tree / 'tests'}"}
                cmd = [sys.executable, str(HERE), "--one", str(out), "--workers", str(w), "--decode-s",
                       str(d)]
                with open(out / "stderr.txt", "w") as err:
                    done = subprocess.run(cmd + (["--stats"] if rnd == 0 and (d, w) == runs[0] else []),
                                          cwd=tree, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                          check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                if "per_question" in row:
                    stats[name] = row.pop("per_question")
                rows.append({"round": rnd, "tree": name, **row})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                preds[(name, rnd, w, d)] = stripped(out / "pred.jsonl")
    reference = preds[("before", 0, *runs[0][::-1])]
    same = {f"{name}, round {rnd}, {w} worker(s), decode {d} s": p == reference
            for (name, rnd, w, d), p in preds.items()}
    medians = {}
    for d, w in runs:
        for name in trees:
            mine = [r for r in rows if r["tree"] == name and r["workers"] == w and r["decode_s"] == d]
            qps = sorted(r["questions_per_s"] for r in mine)
            wall = sorted(r["wall_s"] for r in mine)
            parts = {k: sorted(r["ms_per_question"][k] for r in mine)[len(mine) // 2]
                     for k in mine[0]["ms_per_question"]}
            medians[f"{name}, {w} worker(s), decode {d} s"] = {
                "questions_per_s": qps[len(qps) // 2], "wall_s": wall[len(wall) // 2],
                "host_s": round(wall[len(wall) // 2] - d, 4), "ms_per_question": parts, "runs": len(qps)}
    print(json.dumps({
        "script": "docs/benchmarks/cpu/eval-host-distinct/host.py",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{len(os.sched_getaffinity(0))} cores (nproc), {os.cpu_count()} CPUs",
        "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
        "before": rev, "after": head,
        "questions": N_QUESTIONS, "candidates": 4, "max_attempts": 1, "batch_size": 128,
        "predictions_same_as_before_round_0_1_worker_no_decode": same,
        "predictions_all_same": all(same.values()),
        "per_question": stats,
        "median": medians, "rows": rows,
    }, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="git revision measured as 'before'")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--one", type=Path, default=None, help="measure this tree once; predictions here")
    parser.add_argument("--workers", type=int, default=1, help="with --one")
    parser.add_argument("--stats", action="store_true", help="with --one: count the database calls too")
    parser.add_argument("--decode-s", type=float, default=0.0, help="with --one: the batched call's sleep")
    parser.add_argument("--profile", type=Path, default=None, help="with --one: cProfile the measured run")
    args = parser.parse_args()
    if args.one:
        one(args.one, args.workers, args.stats, args.decode_s, args.profile)
    else:
        drive(args.before, args.rounds)
