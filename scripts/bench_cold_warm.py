"""Cold vs warm question latency: a fresh ``cypherloop ask`` process against a question in a process that has
answered before (as the chat serves every question after its first).

    .venv/bin/python scripts/bench_cold_warm.py --home bench-output/home --graph movies --runs 3

Cold: the wall time of ``python -m ui.cli ask QUESTION --no-log --no-server`` (a new interpreter each run:
imports, graph, model and embedding model loaded, the question answered), after ``cypherloop warm`` has
converted the packaged model once. With ``--server`` also the wall time of the same fresh ``ask`` process
while a ``cypherloop serve`` (started here, waited for by its ready line) answers it, each such run right
after an in-process one. With ``--baseline DIR`` (a checkout of the code before a change; ``warm`` runs for
it too) also a fresh ``ask`` of that code, each right after this code's. Warm: ``make_agent`` in this
process, the same question asked ``--runs`` more times after a first one; the agent's own latency. Writes
``bench-output/cold_warm.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agent import OUT_DIR, ROOT, machine  # noqa: E402

# This checkout's packages, in this process as in the ``ask`` processes (run from ROOT): without it, the
# in-process half imports whatever checkout the venv was installed from (an editable install).
sys.path.insert(0, str(ROOT))

QUESTION = "How many movies are there?"


def _start_server(base: list[str], common: list[str]) -> subprocess.Popen:
    """``cypherloop serve`` in the background, returned once its ready line says it listens."""
    proc = subprocess.Popen([*base, "serve", *common, "--json"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    if not proc.stdout.readline():
        raise SystemExit(f"cypherloop serve exited {proc.wait()} before it was ready")
    return proc


def _cold_ask(base: list[str], common: list[str], question: str, *extra: str, cwd: Path = ROOT) -> dict:
    """One fresh ``cypherloop ask`` process (of the code in ``cwd``): its wall time, the agent's latency
    inside it and who answered."""
    t = time.perf_counter()
    run = subprocess.run([*base, "ask", question, *common, "--no-log", "--json", *extra], capture_output=True,
                         text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(cwd)})
    wall = time.perf_counter() - t
    answer = json.loads(run.stdout)
    return {"wall_s": round(wall, 2), "agent_latency_s": round(answer["latency_ms"] / 1000, 2),
            "status": answer["status"], "served_by": answer.get("served_by", {}).get("process")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=OUT_DIR / "home")
    p.add_argument("--graph", default="movies")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--question", default=QUESTION)
    p.add_argument("--out", type=Path, default=OUT_DIR / "cold_warm.json")
    p.add_argument("--baseline", type=Path, default=None,
                   help="another checkout (the code before a change): its cold asks interleaved with these")
    p.add_argument("--server", action="store_true",
                   help="also time each cold ask against a running `cypherloop serve` (interleaved)")
    args = p.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    base = [sys.executable, "-m", "ui.cli"]
    common = ["--home", str(args.home), "--graph", args.graph]
    t = time.perf_counter()
    warm_cmd = subprocess.run([*base, "warm", *common, "--json"], capture_output=True, text=True, cwd=ROOT)
    if warm_cmd.returncode != 0:
        print(warm_cmd.stderr, file=sys.stderr)
        return 1
    warm_report = {"wall_s": round(time.perf_counter() - t, 2), **json.loads(warm_cmd.stdout)}
    if args.baseline is not None:  # its own conversion (the adapter's files differ by path and time)
        subprocess.run([*base, "warm", *common, "--json"], capture_output=True, text=True, check=True,
                       cwd=args.baseline, env={**os.environ, "PYTHONPATH": str(args.baseline)})
    server = _start_server(base, common) if args.server else None
    cold, served, baseline = [], [], []
    try:
        for _ in range(args.runs):
            cold.append(_cold_ask(base, common, args.question, "--no-server"))
            if server is not None:
                served.append(_cold_ask(base, common, args.question))
            if args.baseline is not None:
                baseline.append(_cold_ask(base, common, args.question, cwd=args.baseline))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    from agent.core.env import quiet_libraries

    quiet_libraries()
    from agent.core.settings import load_settings
    from agent.factory import make_agent
    from feedback_store.chroma import ChromaFeedbackStore

    settings = load_settings(home=args.home, graph=args.graph)
    warm = []
    with make_agent(settings, feedback_store=ChromaFeedbackStore(settings)) as agent:
        first = agent.ask(args.question).latency_ms / 1000
        for _ in range(args.runs):
            warm.append(round(agent.ask(args.question).latency_ms / 1000, 2))
    cold_med = statistics.median(c["wall_s"] for c in cold)
    warm_med = statistics.median(warm)
    served_med = statistics.median(c["wall_s"] for c in served) if served else None

    def start_up(runs: list[dict]) -> float | None:
        """Median wall time a fresh process spends besides the agent's own latency (Python, imports, model
        load, or the request to the server): less at the mercy of a busy CPU than the generation."""
        return round(statistics.median(c["wall_s"] - c["agent_latency_s"] for c in runs), 2) if runs else None

    out = {
        "command": "scripts/bench_cold_warm.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_avg_1_5_15": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "question": args.question,
        "warm_command": warm_report,
        "cold_cli": cold,
        **({"cold_cli_with_server": served, "median_cold_cli_with_server_s": served_med,
            "ratio_cold_with_server_to_warm": round(served_med / warm_med, 2)} if served else {}),
        **({"baseline": str(args.baseline), "cold_cli_baseline": baseline,
            "median_cold_cli_baseline_s": statistics.median(c["wall_s"] for c in baseline)}
           if baseline else {}),
        "median_start_up_s": {"cold_cli": start_up(cold), "cold_cli_with_server": start_up(served),
                              "cold_cli_baseline": start_up(baseline)},
        "warm_in_process_first_s": round(first, 2),
        "warm_in_process_s": warm,
        "median_cold_cli_s": cold_med,
        "median_warm_s": warm_med,
        "ratio_cold_to_warm": round(cold_med / warm_med, 2) if warm_med else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k.startswith(("median", "ratio"))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
