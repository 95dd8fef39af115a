"""LangGraph's own time per question in `CypherAgent`: the agent's nodes run with step events streamed live
(LangGraph's `custom` stream mode: what `stream` and the UI use, and what `ask` used until 53f9ef1) against
without (what `ask` uses now), interleaved in one process. A scripted generator (no model) and the tests' shop
graph on the embedded FalkorDB; overhead = the question's total minus its nodes' own times.

    PYTHONPATH=.:tests .venv/bin/python docs/benchmarks/cpu/langgraph-overhead/overhead.py > overhead.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from conftest import SHOP_SCRIPT, make_settings

from agent.factory import make_agent
from agent.graphdb import open_graph
from agent.graphdb.embedded import stop
from agent.graphdb.loader import load_script
from agent.models.base import ScriptedGenerator

QUESTION = "How many customers are there?"
N = 60


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="lg-overhead-"))
    settings = make_settings(home).model_copy(update={"candidates": 4})
    store = open_graph(settings, "shop")
    load_script(store, SHOP_SCRIPT, replace=True, progress=False)
    agent = make_agent(settings, graph_store=store,
                       generator=ScriptedGenerator({"*": "MATCH (c:Customer) RETURN count(c) AS customers"}))
    runs: dict[str, list[dict[str, float]]] = {"live events (custom mode)": [], "inline (ask)": []}
    try:
        for i in range(N + 5):
            for label, live in (("live events (custom mode)", True), ("inline (ask)", False)):
                answer = [e for e in agent._events(QUESTION, "", None, live=live) if e["step"] == "answer"][0]
                t = answer["output"].timings
                nodes = sum(v for k, v in t.items() if k != "total")
                if i >= 5:  # warm-ups
                    runs[label].append({"total": t["total"], "overhead": t["total"] - nodes})
    finally:
        agent.close()
        store.close()
        stop(settings)
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
           "cpus": os.cpu_count(), "load_average": os.getloadavg(), "n": N, "candidates": 4}
    for label, rs in runs.items():
        out[label] = {"total_median_ms": round(statistics.median(r["total"] for r in rs), 2),
                      "overhead_median_ms": round(statistics.median(r["overhead"] for r in rs), 2)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
