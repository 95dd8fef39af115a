"""The routers as conditional edges (the graph before they ran in their nodes' tasks) against today's graph,
in one process, question by question alternately, so that the machine's other load falls on both alike.

    .venv/bin/python docs/benchmarks/cpu/ask-overhead/interleaved.py --passes 5 --out interleaved.json

Both graphs are compiled from today's nodes and routers (``agent.graph``); only the wiring differs. Per ask:
the process's CPU and LangGraph's own time (the answer's total less its nodes' timings). The two must give the
same answers (all but their timings), checked on every question first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_ask_overhead import BENCH, bench_agent, machine, questions  # noqa: E402


def conditional_edges_graph():
    """The agent's graph with each router a conditional edge after its node."""
    from langgraph.graph import END, START, StateGraph

    import agent.graph as g
    from agent.state import InputState, OutputState, State

    b = StateGraph(State, context_schema=g.AgentContext, input_schema=InputState, output_schema=OutputState)
    for name, step, retried in (("check_scope", g.check_scope_node, False), ("retrieve", g.retrieve, True),
                                ("generate", g.generate, False), ("vote", g.vote, True),
                                ("correct", g.correct, False), ("validate", g.validate, True),
                                ("execute", g.execute, True), ("assess", g.assess, False),
                                ("escalate", g.escalate, True), ("answer", g.answer, False),
                                ("give_up", g.give_up, False)):
        b.add_node(name, step, retry_policy=g.DB_RETRY if retried else None)
    b.add_edge(START, "check_scope")
    for source, router in (("check_scope", g.route_after_scope), ("generate", g.route_after_generate),
                           ("validate", g.route_after_validate), ("execute", g.route_after_execute),
                           ("assess", g.route_after_assess), ("escalate", g.route_after_escalate),
                           ("give_up", g.route_after_give_up)):
        b.add_conditional_edges(source, router)
    for a, z in (("retrieve", "generate"), ("vote", "validate"), ("correct", "validate"), ("answer", END)):
        b.add_edge(a, z)
    return b.compile()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    items, drafts = questions(BENCH / "dev" / "movies.jsonl", 100)
    graphs = {}
    cpu: dict[str, list[list[float]]] = {}
    langgraph: dict[str, list[float]] = {}
    with bench_agent("movies", BENCH / "graphs" / "movies.cypher", 4) as asker:
        graphs = {"conditional edges": conditional_edges_graph(), "routed (today)": asker.graph}
        for item, draft in zip(items, drafts, strict=True):  # the same answers; also the warm-up
            seen = []
            for compiled in graphs.values():
                asker.graph = compiled
                out = asker.ask(item.question, draft=draft).to_dict()
                seen.append({k: v for k, v in out.items() if k not in ("timings", "latency_ms")})
            assert seen[0] == seen[1], item.id
        cpu = {name: [[] for _ in items] for name in graphs}
        langgraph = {name: [] for name in graphs}
        for p in range(args.passes):
            for i, (item, draft) in enumerate(zip(items, drafts, strict=True)):
                order = list(graphs.items()) if (i + p) % 2 == 0 else list(graphs.items())[::-1]
                for name, compiled in order:
                    asker.graph = compiled
                    c = time.process_time()
                    answer = asker.ask(item.question, draft=draft)
                    cpu[name][i].append((time.process_time() - c) * 1000)
                    nodes = {k: v for k, v in answer.timings.items() if k != "total"}
                    langgraph[name].append(answer.timings["total"] - sum(nodes.values()))
    doc = {"benchmark": "ask overhead: routers as conditional edges vs in their nodes' tasks, interleaved",
           "command": "docs/benchmarks/cpu/ask-overhead/interleaved.py " + " ".join(sys.argv[1:]),
           "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
           "questions": len(items), "passes": args.passes, "same_answers": True, "graphs": {}}
    for name in graphs:
        every = [x for per in cpu[name] for x in per]
        least = [min(per) for per in cpu[name]]
        doc["graphs"][name] = {"cpu_ms_median": round(statistics.median(every), 3),
                               "cpu_ms_least_median": round(statistics.median(least), 3),
                               "cpu_ms_least_total": round(sum(least), 1),
                               "langgraph_ms_median": round(statistics.median(langgraph[name]), 3)}
    a, b = (doc["graphs"][n] for n in graphs)
    doc["ratio_cpu_median"] = round(b["cpu_ms_median"] / a["cpu_ms_median"], 3)
    doc["ratio_langgraph_median"] = round(b["langgraph_ms_median"] / a["langgraph_ms_median"], 3)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
