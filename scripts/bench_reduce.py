"""Does FalkorDB stop one expression that works quadratically over collected values (issue 14): a reduce()
that builds a string, a list searched once per item of another? And does the gate?

    .venv/bin/python scripts/bench_reduce.py [--sizes 50000,100000,200000] [--timeout 2] [--shapes a,b]
        [--out docs/benchmarks/cpu/reduce.json]

A scratch home's embedded server, started with the product's limits (``server_limits``: the read time limit
``--timeout``, 1 GB per query), holds N nodes with names of about 11 characters. For each N every shape
runs twice: on the raw database (``GRAPH.RO_QUERY`` with the time limit, the gate bypassed: what the
server does) and through the product's read path (``GraphStore.query``: what the gate lets through). A
sampler reads the server's resident memory every 20 ms. A shape whose database run took over --skip-after
seconds is not run at larger N (its cost grows with N squared). Prints a table and writes the raw JSON
after every row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_soak import rss_mb, run_header  # noqa: E402

SHAPES = {
    # a string accumulator: each step copies the string built so far
    "string": "MATCH (n:S) WITH collect(n.name) AS xs RETURN size(reduce(s = '', x IN xs | s + x))",
    # a "numeric" one: 0 + 'name-1' is '0name-1', so the same quadratic copying
    "number+string": "MATCH (n:S) WITH collect(n.name) AS xs RETURN size(reduce(t = 0, x IN xs | t + x))",
    # a list accumulator the same way: 0 + ['a'] is [0, 'a']
    "number+list": "MATCH (n:S) WITH collect([n.name]) AS xs RETURN size(reduce(t = 0, x IN xs | t + x))",
    # what the gate lets through over collected values: only numbers are added
    "number+number": "MATCH (n:S) WITH collect(n.name) AS xs RETURN reduce(t = 0, x IN xs | t + size(x))",
    # a collected list iterated, or searched, once per item of another: every pair compared in one row
    "nested": "MATCH (n:S) WITH collect(n.name) AS xs "
              "RETURN size([x IN xs WHERE size([y IN xs WHERE y = x]) > 1])",
    "membership": "MATCH (n:S) WITH collect(n.name) AS xs RETURN size([x IN xs WHERE NOT x IN xs])",
    # the same pairs as rows: the timeout applies between them
    "pairs as rows": "MATCH (n:S) WITH collect(n.name) AS xs UNWIND xs AS x UNWIND xs AS y "
                     "WITH x, y WHERE x = y RETURN count(*)",
}


def timed(run, pid: int) -> dict:
    """Run ``run()``; its seconds, outcome and the server's largest sampled RSS meanwhile."""
    peak = [rss_mb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    try:
        value = run()
        outcome = f"answered {str(value)[:40]}"
    except Exception as e:  # noqa: BLE001 - the outcome is what is measured
        outcome = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"s": round(seconds, 3), "outcome": outcome, "server_rss_max_mb": round(peak[0], 1)}


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench_reduce")
    ap.add_argument("--sizes", default="50000,100000,200000")
    ap.add_argument("--timeout", type=float, default=2.0, help="the read time limit, seconds")
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"some of {', '.join(SHAPES)}")
    ap.add_argument("--skip-after", type=float, default=30.0)
    ap.add_argument("--home", type=Path, default=Path("/tmp/cl-bench-reduce"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cpu" / "reduce.json")
    args = ap.parse_args()

    from agent.core.env import library_defaults

    library_defaults()
    from agent.core.settings import Settings
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import running, stop

    load_start = os.getloadavg()
    settings = Settings(_env_file=None, home=args.home, graph="names", graph_backend="embedded",
                        query_timeout_s=args.timeout)
    stop(settings)
    store = open_graph(settings)
    info = running(settings)
    raw = store._graph(3600)  # the same server, without the gate: what the database itself does
    timeout_ms = round(args.timeout * 1000)
    client = info.redis()
    config = dict(client.execute_command("GRAPH.CONFIG", "GET", "*"))
    client.close()
    rows: list[dict] = []
    too_slow: set[str] = set()
    for n in (int(x) for x in args.sizes.split(",")):
        store.delete_graph()
        store.write("UNWIND range(1, $n) AS i CREATE (:S {name: 'name-' + toString(i)})", {"n": n})
        for shape in args.shapes.split(","):
            cypher = SHAPES[shape]
            if shape in too_slow:
                rows.append({"n": n, "shape": shape, "skipped": f"over {args.skip_after} s at a smaller N"})
                continue
            db = timed(lambda c=cypher: raw.ro_query(c, timeout=timeout_ms).result_set[0][0], info.pid)
            gate = timed(lambda c=cypher: store.query(c).rows[0][0], info.pid)
            if db["s"] > args.skip_after:
                too_slow.add(shape)
            rows.append({"n": n, "shape": shape, "database": db, "product": gate})
            print(f"{n:>8} {shape:<14} database {db['s']:>7.2f} s {db['server_rss_max_mb']:>7.1f} MB "
                  f"{db['outcome'][:50]:<50} | product {gate['s']:>6.2f} s {gate['outcome'][:60]}",
                  flush=True)
            write(args.out, load_start, config, args, rows)
    store.close()
    stop(settings)
    return 0


def write(out: Path, load_start: tuple[float, ...], config: dict, args: argparse.Namespace,
          rows: list[dict]) -> None:
    record = {
        **run_header("bench_reduce", load_start),
        "server_config": {k: config[k] for k in ("TIMEOUT_DEFAULT", "QUERY_MEM_CAPACITY", "THREAD_COUNT")},
        "timeout_s": args.timeout,
        "shapes": SHAPES,
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
