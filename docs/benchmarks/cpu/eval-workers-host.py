"""Host-side cost of `cypherloop eval --batch-size 64` without a model (ScriptedGenerator answers each
question with its gold query; 4 candidates, the same reply): workers 1 vs 4 vs 8, interleaved, 100 movies dev
questions, on this machine. Run from the repository root: PYTHONPATH=. .venv/bin/python
docs/benchmarks/cpu/eval-workers-host.py BENCH_DIR (a staged bench/ folder: movies.cypher, dev_movies.jsonl;
scripts/gpu_run.py's ``bench`` phase writes one)."""
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, "tests")
from conftest import make_settings
from agent.evaluation import load_dataset, run_eval
from agent.factory import make_agent
from agent.graphdb import open_graph
from agent.graphdb.loader import load_script
from agent.models.base import ScriptedGenerator

bench = Path(sys.argv[1])
home = Path("/tmp/eval-workers-host")
s = make_settings(home, graph="movies", candidates=4, max_attempts=1)
store = open_graph(s, "movies")
load_script(store, bench / "movies.cypher", replace=True, progress=False)
items = load_dataset(bench / "dev_movies.jsonl")[2:102]
gold = {i.question: i.cypher for i in items}
gen = ScriptedGenerator(lambda q, fb, n: gold.get(q, "MATCH (n) RETURN n LIMIT 1"))
rows = []
with make_agent(s, graph_store=store, generator=gen) as agent:
    run_eval(agent, items[:8], progress=False, batch_size=8)  # warm
    for rnd in range(2):
        for w in (1, 4, 8):
            load = os.getloadavg()[0]
            rep = run_eval(agent, items, progress=False, batch_size=64, workers=w)
            rows.append({"round": rnd, "workers": w, "n": rep.n, "correct": rep.correct, "wall_s": round(rep.wall_s, 3),
                         "questions_per_s": round(rep.n / rep.wall_s, 1), "load_1min": load})
            print(json.dumps(rows[-1]), flush=True)
store.close()
json.dump({"script": "docs/benchmarks/cpu/eval-workers-host.py", "date": "2026-12-03 09:30 UTC", "machine": f"{os.cpu_count()} cores, shared", "rows": rows},
          open("docs/benchmarks/cpu/eval-workers-host.json", "w"), indent=1)
