"""Dev benchmark: what the schema check costs a query, and proof that a change to its speed changes none of
its outputs (reads ../shared/bench and docs/benchmarks' stored predictions; never a test).

    .venv/bin/python scripts/bench_schema_check.py --base /tmp/before      # this checkout against that one
    .venv/bin/python scripts/bench_schema_check.py --base /tmp/before --out FILE.json

``--base`` is a directory holding another version's ``agent/`` package (``git archive REV agent | tar -x -C
DIR``). Both versions run in their own processes (``PYTHONPATH``), on the schemas
``docs/benchmarks/cpu/schema-check-cost/schema.py`` pickled (the public dev graphs, ``--schemas``).

Equivalence: every dev gold query (also followed by ``; MATCH (n) RETURN n``) and every stored prediction's
``predicted_cypher`` in ``docs/benchmarks/gpu/bootstrap-r1*/pred-*.jsonl.gz`` (distinct texts; only the
queries are read, never whether they were right) goes through ``check_cypher(clean_cypher(q), schema)`` on
each schema, and the result of ``ground_literals`` on the checked query with a deterministic stand-in for
the database; the two versions must give the same text, errors and fixes for every one.

Time: ``check_cypher(clean_cypher(q))`` over the dev golds of each graph, one pass per process after one
warm-up pass, the two versions alternating ``--rounds`` times; the medians of the passes and their ratio.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
GRAPHS = ("movies", "northwind")


def golds(graph: str) -> list[str]:
    with open(BENCH / "dev" / f"{graph}.jsonl") as f:
        return [json.loads(line)["cypher"] for line in f if line.strip()]


def corpus() -> list[str]:
    """The dev golds of both graphs (each also as a reply with a second statement after a ``;``, for the
    cleanup) and the stored predictions' queries, each text once, in a fixed order."""
    texts = [q for g in GRAPHS for q in golds(g)]
    texts += [f"{q}; MATCH (n) RETURN n" for q in texts]
    for path in sorted((ROOT / "docs" / "benchmarks" / "gpu").glob("bootstrap-r1*/pred-*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            texts += [json.loads(line).get("predicted_cypher") or "" for line in f if line.strip()]
    return list(dict.fromkeys(texts))


def _holds(label: str, prop: str, value: str | float) -> bool:
    """A database stand-in for ``ground_literals``: a fixed, arbitrary answer per question asked."""
    return zlib.crc32(f"{label}|{prop}|{value}".encode()) % 3 != 0


def _values(label: str, prop: str) -> list[str]:
    return [f"{label} {prop} {i}" for i in range(3)] + ["Keanu Reeves", "The Matrix", "Germany"]


def worker_dump(schemas: dict, out: str) -> None:
    from agent.cleanup import clean_cypher
    from agent.schema_check import check_cypher, ground_literals

    rows = []
    for q in corpus():
        cleaned = clean_cypher(q)
        for g in GRAPHS:
            r = check_cypher(cleaned, schemas[g])
            grounded = ground_literals(r.cypher, schemas[g], _holds, _values) if r.ok else None
            rows.append([g, q, cleaned, r.cypher, r.errors, r.fixes, grounded])
    with open(out, "w") as f:
        json.dump(rows, f)


def worker_time(schemas: dict) -> None:
    from agent.cleanup import clean_cypher
    from agent.schema_check import check_cypher

    res = {}
    for g in GRAPHS:
        qs = golds(g)
        for q in qs:  # warm-up: regex compilation, first imports
            check_cypher(clean_cypher(q), schemas[g])
        t0 = time.perf_counter()
        for q in qs:
            check_cypher(clean_cypher(q), schemas[g])
        res[g] = (time.perf_counter() - t0) * 1000 / len(qs)
    print(json.dumps(res))


def run_worker(code: Path, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.run([sys.executable, __file__, *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, help="a directory with the other version's agent/ package")
    ap.add_argument("--schemas", default="/tmp/schema-check-cost.pkl")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", help="write the result as JSON here")
    ap.add_argument("--worker", choices=("dump", "time"), help=argparse.SUPPRESS)
    ap.add_argument("--dump-to", help=argparse.SUPPRESS)
    a = ap.parse_args()
    with open(a.schemas, "rb") as f:
        schemas = pickle.load(f)
    if a.worker == "dump":
        return worker_dump(schemas, a.dump_to)
    if a.worker == "time":
        return worker_time(schemas)
    if a.base is None:
        ap.error("--base is required")
    common = ["--schemas", a.schemas]
    dumps = {}
    for name, code in (("before", a.base), ("after", ROOT)):
        path = f"/tmp/bench-schema-check-{os.getpid()}-{name}.json"
        run_worker(code, [*common, "--worker", "dump", "--dump-to", path])
        with open(path) as f:
            dumps[name] = json.load(f)
        os.unlink(path)
    before, after = dumps["before"], dumps["after"]
    differ = [b[:2] for b, c in zip(before, after, strict=True) if b != c]
    equivalence = {
        "queries": len(before) // len(GRAPHS), "checks": len(before), "differ": len(differ),
        "changed_by_check": sum(r[3] != r[2] for r in before), "with_errors": sum(bool(r[4]) for r in before),
        "with_fixes": sum(bool(r[5]) for r in before),
        "grounding_changed": sum(bool(r[6]) and r[6][0] != r[3] for r in before),
    }
    print(json.dumps({"equivalence": equivalence}), flush=True)
    for g, q in differ[:5]:
        print("DIFFERS", g, q, file=sys.stderr)
    passes: dict[str, dict[str, list[float]]] = {n: {g: [] for g in GRAPHS} for n in ("before", "after")}
    for _ in range(a.rounds):
        for name, code in (("before", a.base), ("after", ROOT)):
            for g, ms in json.loads(run_worker(code, [*common, "--worker", "time"])).items():
                passes[name][g].append(ms)
    timing = {}
    for g in GRAPHS:
        b, c = statistics.median(passes["before"][g]), statistics.median(passes["after"][g])
        timing[g] = {"n": len(golds(g)), "before_ms_median": round(b, 3), "after_ms_median": round(c, 3),
                     "after_over_before": round(c / b, 3),
                     "before_ms_passes": [round(x, 3) for x in passes["before"][g]],
                     "after_ms_passes": [round(x, 3) for x in passes["after"][g]]}
    result = {"equivalence": equivalence, "time": timing, "rounds": a.rounds}
    print(json.dumps({g: {k: v for k, v in t.items() if "passes" not in k} for g, t in timing.items()}))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    if differ:
        sys.exit(f"{len(differ)} checks differ")


if __name__ == "__main__":
    main()
