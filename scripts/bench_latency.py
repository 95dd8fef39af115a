"""Dev benchmark: question -> answer latency through the real agent on this machine (never a test).

    .venv/bin/python scripts/bench_latency.py [--n 30] [--backends transformers,llamacpp] [--adapters
    shipped,none]
    .venv/bin/python scripts/bench_latency.py --adapters shipped-unmerged,shipped --temperature 0   # merge
    A/B

``shipped-unmerged`` serves the shipped adapter without folding it into the weights (transformers
backend; what it did before adapters were merged), for an A/B at equal outputs (``--temperature 0``).

Warm agent (model loaded, three warm-up questions not counted) on the demo graph of a scratch home;
questions are offline-generated demo questions (fixed seed), so anyone can re-run it without
../shared. Reports p50 / p95 / mean of ``CypherAgent.ask`` wall time and the per-node medians, per
backend and adapter, and writes ``bench-output/latency.json``. max_attempts is the default (3): a wrong
first query that the database rejects costs a repair round, as it does for users.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench-output"


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench_latency")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--backends", default="transformers")
    ap.add_argument("--adapters", default="shipped,none")
    ap.add_argument("--home", type=Path, default=Path("/tmp/cl-bench-latency"))
    ap.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="default: the product's (0.1); 0 for equal outputs across configurations",
    )
    args = ap.parse_args()
    from agent.core.env import library_defaults

    library_defaults()

    from agent.core.settings import Settings
    from agent.demo import build_demo
    from agent.evaluation import percentile
    from agent.factory import make_agent
    from agent.graphdb import open_graph
    from agent.models.factory import make_generator
    from finetune.synth import generate_pairs

    base_settings = Settings(home=args.home, graph="demo")
    store = open_graph(base_settings, "demo")
    try:
        store.query("MATCH (n) RETURN count(n)")
    except Exception:  # noqa: BLE001 - not built yet
        build_demo(store, replace=True)
    pairs, _ = generate_pairs(store, args.n + 3, seed=11)
    questions = [p.question for p in pairs]
    results = {}
    for backend in args.backends.split(","):
        for adapter in args.adapters.split(","):
            upd = {"model_backend": backend, "adapter": "active" if adapter.startswith("shipped") else "none"}
            if args.temperature is not None:
                upd["temperature"] = args.temperature
            s = base_settings.model_copy(update=upd)
            try:
                generator = make_generator(s)
                if adapter == "shipped-unmerged":
                    generator._merge = lambda: None  # keep the LoRA layers separate
                agent = make_agent(s, graph_store=store, generator=generator)
                for q in questions[:3]:
                    agent.ask(q)
            except Exception as e:  # noqa: BLE001 - report the configuration as unavailable
                results[f"{backend}/{adapter}"] = {"error": f"{type(e).__name__}: {e}"}
                print(f"{backend}/{adapter}: unavailable ({e})", flush=True)
                continue
            lat, nodes, statuses, attempts = [], {}, {}, []
            for q in questions[3:]:
                t0 = time.perf_counter()
                r = agent.ask(q)
                lat.append((time.perf_counter() - t0) * 1000)
                statuses[r.status] = statuses.get(r.status, 0) + 1
                attempts.append(len(r.attempts))
                for k, v in r.timings.items():
                    nodes.setdefault(k, []).append(v)
            one = [x for x, a in zip(lat, attempts, strict=True) if a == 1]
            results[f"{backend}/{adapter}"] = {
                "model_version": agent.ask(questions[0]).model_version,
                "n": len(lat),
                "p50_ms": round(percentile(lat, 50), 1),
                "p95_ms": round(percentile(lat, 95), 1),
                "mean_ms": round(statistics.mean(lat), 1),
                "one_attempt_n": len(one),
                "one_attempt_p50_ms": round(percentile(one, 50), 1) if one else None,
                "statuses": statuses,
                "node_median_ms": {k: round(statistics.median(v), 1) for k, v in nodes.items()},
            }
            print(f"{backend}/{adapter}: {json.dumps(results[f'{backend}/{adapter}'])}", flush=True)
    OUT.mkdir(exist_ok=True)
    report = {
        "command": " ".join(["scripts/bench_latency.py", *sys.argv[1:]]),
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "results": results,
    }
    (OUT / "latency.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
