"""`make bench`: every benchmark in one run, each writing JSON under bench-output/.

Reads ../shared/bench (graphs and dev question sets); never used by tests. Results are copied by
hand into docs/BENCHMARKS.md with the command, machine and date.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The agent table of docs/BENCHMARKS.md §0: 50 questions a graph, llama.cpp when installed (4x faster on a
# CPU).
_BACKEND = "llamacpp" if importlib.util.find_spec("llama_cpp") else "transformers"
_AGENT = [
    "scripts/bench_agent.py",
    "--backend",
    _BACKEND,
    "--limit",
    "50",
    "--max-new-tokens",
    "128",
    "--no-progress",
]
STEPS = [
    ["scripts/check_bench_graphs.py"],
    ["scripts/bench_datagen.py"],
    [*_AGENT, "--adapter", "none", "--out", "bench-output/agent-base.json"],
    [*_AGENT, "--adapter", "active", "--out", "bench-output/agent-shipped.json"],
    ["scripts/bench_latency.py", "--backends", "transformers,llamacpp"],
    ["scripts/bench_plots.py"],
]


def main() -> int:
    if not (ROOT.parent / "shared" / "bench").is_dir():
        print(
            "bench: ../shared/bench not found; the benchmarks need the dev graphs and question sets",
            file=sys.stderr,
        )
        return 2
    for step in STEPS:
        print(f"== {' '.join(step)}", flush=True)
        code = subprocess.call([sys.executable, *step], cwd=ROOT)
        if code:
            print(f"bench: {step[0]} failed with exit code {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
