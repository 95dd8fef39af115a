"""Host-side cost of `cypherloop eval --batch-size 64` without a model, round 11's path against today's,
interleaved: a ScriptedGenerator answers each question with its gold query (4 candidates, the same reply, so
the vote runs one query), 100 movies dev questions, 1 and 8 workers.

- "round 11": each question's nodes in LangGraph worker threads (the live step events of the `custom` stream
  mode, as `ask` ran until 53f9ef1) and the chosen query run again by `execute` (`reuse_vote_run` off);
- "now": `ask` inline, and `execute` answering from the vote's run.

Run from the repository root (BENCH_DIR: movies.cypher and dev_movies.jsonl, as scripts/gpu_run.py's ``bench``
phase stages them):

    PYTHONPATH=.:tests .venv/bin/python docs/benchmarks/cpu/eval-host-inline/host.py BENCH_DIR > host.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from conftest import make_settings

from agent.evaluation import load_dataset, run_eval
from agent.factory import make_agent
from agent.graphdb import open_graph
from agent.graphdb.embedded import stop
from agent.graphdb.loader import load_script
from agent.models.base import ScriptedGenerator


def main(bench: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="eval-host-"))
    s = make_settings(home, graph="movies", candidates=4, max_attempts=1)
    store = open_graph(s, "movies")
    load_script(store, bench / "movies.cypher", replace=True, progress=False)
    items = load_dataset(bench / "dev_movies.jsonl")[2:102]
    gold = {i.question: i.cypher for i in items}
    gen = ScriptedGenerator(lambda q, fb, n: gold.get(q, "MATCH (n) RETURN n LIMIT 1"))
    rows = []
    try:
        with make_agent(s, graph_store=store, generator=gen) as agent:
            inline = agent.ask

            def live(question, session_id="", draft=None):  # ask as it was: every event streamed live
                events = agent._events(question, session_id, draft, live=True)
                return [e for e in events if e["step"] == "answer"][0]["output"]

            run_eval(agent, items[:8], progress=False, batch_size=8)  # warm
            for rnd in range(3):
                for path in ("round 11", "now"):
                    agent.ask = live if path == "round 11" else inline
                    agent.context.reuse_vote_run = path == "now"
                    for w in (1, 8):
                        load = os.getloadavg()[0]
                        rep = run_eval(agent, items, progress=False, batch_size=64, workers=w)
                        rows.append({"round": rnd, "path": path, "workers": w, "n": rep.n,
                                     "correct": rep.correct, "wall_s": round(rep.wall_s, 3),
                                     "questions_per_s": round(rep.n / rep.wall_s, 1),
                                     "load_1min": round(load, 2)})
                        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        store.close()
        stop(s)
    medians = {}
    for path in ("round 11", "now"):
        for w in (1, 8):
            qps = sorted(r["questions_per_s"] for r in rows if r["path"] == path and r["workers"] == w)
            medians[f"{path}, {w} worker(s)"] = qps[len(qps) // 2]
    print(json.dumps({"script": "docs/benchmarks/cpu/eval-host-inline/host.py",
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "machine": f"{os.cpu_count()} cores", "median_questions_per_s": medians, "rows": rows},
                     indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
