"""Soak benchmark (issue 14, never a test): eight concurrent askers mix normal and pathological queries.

    .venv/bin/python scripts/bench_soak.py [--minutes 5] [--askers 8] [--attack-share 0.3]
        [--out docs/benchmarks/cpu/soak.json]

Each asker is a real agent (``make_agent``: the embedded FalkorDB of a scratch home with the shop graph,
a real Chroma feedback store that logs every answer) whose scripted generator answers a question either
with a normal query or with one from the attack corpus (``tests/attacks.py``). Meanwhile a probe client
asks a normal count every 0.5 s through its own store (how long a normal query waits while attacks run),
and a sampler reads the server's resident memory every 0.5 s. At the end every logged interaction id is
read back from the feedback store (nothing lost), the graph is compared with its snapshot (no write) and
the server's pid with the first one (no crash). Prints a summary and writes the raw JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb(pid: int, key: str = "VmRSS:") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_header(script: str, load_start: tuple[float, ...]) -> dict[str, object]:
    """The command, the date and the machine (with its load at the start and now) of a benchmark run."""
    return {
        "command": f"scripts/{script}.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg_start": load_start,
                    "loadavg_end": os.getloadavg()},
    }


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench_soak")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--askers", type=int, default=8)
    ap.add_argument("--attack-share", type=float, default=0.3)
    ap.add_argument("--home", type=Path, default=Path("/tmp/cl-bench-soak"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cpu" / "soak.json")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--db-threads", type=int, default=None,
                    help="the embedded server's query threads (default: CYPHERLOOP_DB_QUERY_THREADS)")
    args = ap.parse_args()

    from agent.core.env import library_defaults

    library_defaults()
    from agent.core.settings import Settings
    from agent.factory import make_agent
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import running, stop
    from agent.graphdb.loader import load_script
    from agent.models.base import ScriptedGenerator
    from feedback_store.chroma import ChromaFeedbackStore
    from tests.attacks import NORMAL, attack_corpus
    from tests.test_readonly import snapshot

    load_start = os.getloadavg()
    settings = Settings(_env_file=None, home=args.home, graph="shop", graph_backend="embedded")
    if args.db_threads is not None:
        settings = settings.model_copy(update={"db_query_threads": args.db_threads})
    stop(settings)
    graph = open_graph(settings)
    load_script(graph, ROOT / "tests" / "data" / "shop.cypher", replace=True)
    before = snapshot(graph)
    pid = running(settings).pid
    store = ChromaFeedbackStore(settings)
    attacks = attack_corpus()
    normal = [q for q, _ in NORMAL] + [
        "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.name, count(o) AS n ORDER BY n DESC LIMIT 5",
        "MATCH (p:Product)-[:IN_CATEGORY]->(c:Category) RETURN c.name, count(p) ORDER BY c.name",
        "MATCH (c:Customer) RETURN c.city, count(*) ORDER BY count(*) DESC",
    ]

    deadline = time.monotonic() + args.minutes * 60
    results: list[dict] = []
    logged: list[str] = []
    lock = threading.Lock()
    stop_probe = threading.Event()

    def asker(n: int) -> None:
        rng = random.Random(args.seed + n)
        plan: dict[str, str] = {}

        def reply(question: str, feedback, call_no: int) -> str:
            return plan[question]

        gen = ScriptedGenerator(reply)
        with make_agent(settings, generator=gen, feedback_store=store) as agent:
            k = 0
            while time.monotonic() < deadline:
                attack = rng.random() < args.attack_share
                family, cypher = rng.choice(attacks) if attack else ("normal", rng.choice(normal))
                question = f"asker {n} question {k}: what does this return?"
                plan[question] = cypher
                start = time.perf_counter()
                out = agent.ask(question)
                seconds = time.perf_counter() - start
                iid = agent.log(out)
                with lock:
                    results.append({"asker": n, "family": family, "status": out.status,
                                    "s": round(seconds, 3), "error": (out.error or "")[:120]})
                    if iid:
                        logged.append(iid)
                k += 1

    probe_s: list[float] = []
    rss: list[float] = []

    def probe() -> None:
        other = open_graph(settings)
        while not stop_probe.is_set():
            start = time.perf_counter()
            other.query("MATCH (c:Customer) RETURN count(c)")
            probe_s.append(time.perf_counter() - start)
            rss.append(rss_mb(pid))
            stop_probe.wait(0.5)
        other.close()

    threads = [threading.Thread(target=asker, args=(n,)) for n in range(args.askers)]
    prober = threading.Thread(target=probe)
    started = time.monotonic()
    prober.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop_probe.set()
    prober.join()
    wall = time.monotonic() - started

    missing = [i for i in logged if store.get_interaction(i) is None]
    after_pid = running(settings).pid
    unchanged = snapshot(graph) == before
    peak = rss_mb(pid, "VmHWM:")
    graph.close()
    store.close()

    def outcome(r: dict) -> str:
        if r["status"] in ("ok", "no_data"):
            return "answered"
        if r["status"] == "error":
            return "error"
        return "refused"  # scope refusals, gate refusals, timeouts and queries the database rejected

    by_kind = {kind: Counter(outcome(r) for r in results if (r["family"] == "normal") == (kind == "normal"))
               for kind in ("normal", "attack")}
    latencies = [r["s"] for r in results]
    summary = {
        "questions": len(results),
        "outcomes": dict(Counter(outcome(r) for r in results)),
        "by_kind": {k: dict(v) for k, v in by_kind.items()},
        "status": dict(Counter(r["status"] for r in results)),
        "latency_s": {"p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99), "max": max(latencies or [0])},
        "normal_latency_s": {"p50": pct([r["s"] for r in results if r["family"] == "normal"], 0.5),
                             "p99": pct([r["s"] for r in results if r["family"] == "normal"], 0.99)},
        "probe_query_s": {"n": len(probe_s), "p50": pct(probe_s, 0.5), "p99": pct(probe_s, 0.99),
                          "max": round(max(probe_s or [0]), 3),
                          "over_1s": sum(s > 1 for s in probe_s)},
        "server_rss_mb": {"median": round(statistics.median(rss), 1) if rss else None,
                          "max_sampled": round(max(rss or [0]), 1), "peak_vmhwm": round(peak, 1)},
        "feedback_store": {"logged": len(logged), "missing": len(missing)},
        "graph_unchanged": unchanged,
        "server_restarted": after_pid != pid,
        "errors": sorted({r["error"] for r in results if outcome(r) == "error"})[:10],
    }
    record = {
        **run_header("bench_soak", load_start),
        "config": {"minutes": args.minutes, "askers": args.askers, "attack_share": args.attack_share,
                   "query_timeout_s": settings.query_timeout_s, "max_attempts": settings.max_attempts,
                   "db_query_memory_mb": settings.db_query_memory_mb, "attack_corpus": len(attacks),
                   "db_query_threads": settings.db_query_threads},
        "wall_s": round(wall, 1),
        "summary": summary,
        "results": results,
        "probe_s": [round(s, 4) for s in probe_s],
        "rss_mb": rss,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    stop(settings)
    return 0 if not missing and unchanged and after_pid == pid else 1


if __name__ == "__main__":
    sys.exit(main())
