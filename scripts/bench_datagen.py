"""Generator throughput and construct coverage (development only; reads ../shared/bench).

    .venv/bin/python scripts/bench_datagen.py [--n 50000] [--seed 0] [--graphs movies northwind countries]
        [--home DIR] [--json docs/benchmarks/cpu/datagen.json]

Loads each graph (``../shared/bench/graphs/<name>.cypher``; ``countries`` from docs/benchmarks/heldout)
into an embedded FalkorDB in a temporary home (or ``--home``), runs ``finetune.synth.generate_pairs``
(timed from the first profiling query to the last kept pair), then re-runs every kept query once more
to confirm that it runs and returns the same rows. Prints markdown tables for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench" / "graphs"
SCRIPTS = {"countries": ROOT / "docs" / "benchmarks" / "heldout" / "countries.cypher"}


def main(argv: list[str] | None = None) -> int:
    from agent.core.env import library_defaults

    library_defaults()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--graphs", nargs="+", default=["movies", "northwind", "countries"])
    p.add_argument(
        "--home", type=Path, default=None, help="cypherloop home (default: a temporary one, removed after)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the raw reports here")
    args = p.parse_args(argv)
    import json

    from agent.core.cypher_text import same_result
    from agent.core.settings import Settings
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script
    from finetune.synth import generate_pairs

    tmp = None
    home = args.home
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="cl-bench-datagen-")
        home = Path(tmp.name)
    settings = Settings(_env_file=None, home=home, graph_backend="embedded")
    results = {}
    try:
        for name in args.graphs:
            script = SCRIPTS.get(name, BENCH / f"{name}.cypher")
            if not script.is_file():
                print(f"skip {name}: {script} not found", file=sys.stderr)
                continue
            graph = open_graph(settings, name)
            load = load_script(graph, script, replace=True)
            pairs, report = generate_pairs(graph, args.n, seed=args.seed)
            t = time.perf_counter()
            firsts = list({x.query_id: x for x in pairs}.values())
            bad = sum(1 for x in firsts if not _still_good(graph, x, same_result))
            verify_s = time.perf_counter() - t
            results[name] = (load, pairs, report, bad, verify_s)
            graph.close()
    finally:
        stop(settings)
        if tmp is not None:
            tmp.cleanup()

    print(f"Generator, `--n {args.n} --seed {args.seed}`, {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, embedded FalkorDB.\n")
    print(
        "| graph | nodes / rels | pairs | distinct queries | seconds | pairs/s | database queries | re-run "
        "check |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name, (load, pairs, report, bad, verify_s) in results.items():
        check = "all run, same rows" if not bad else f"{bad} failed"
        print(
            f"| {name} | {load.nodes:,} / {load.relationships:,} | {len(pairs):,} | {report.queries_kept:,} "
            "| "
            f"{report.seconds:.1f} | {report.pairs_per_second:.0f} | {report.db_queries:,} | {check} "
            f"({verify_s:.1f} s) |"
        )
    names = list(results)
    constructs = sorted({k for r in results.values() for k in r[2].coverage})
    print("\n| construct (queries) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for c in constructs:
        print(f"| {c} | " + " | ".join(str(results[n][2].coverage.get(c, 0)) for n in names) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    n: {**r[2].to_dict(), "rerun_failures": r[3], "rerun_seconds": round(r[4], 1)}
                    for n, r in results.items()
                },
                indent=1,
            )
        )
    return 0 if all(r[3] == 0 for r in results.values()) else 1


def _still_good(graph, pair, results_match) -> bool:
    try:
        a = graph.query(pair.cypher, timeout_s=10)
        b = graph.query(pair.cypher, timeout_s=10)
    except Exception:  # noqa: BLE001 - counted as a failure
        return False
    return bool(a.rows) and results_match(a.rows, b.rows)


if __name__ == "__main__":
    sys.exit(main())
