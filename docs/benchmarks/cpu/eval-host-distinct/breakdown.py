"""Where the host side of one eval run goes, by part, under cProfile: host.py's ``--one`` (100 movies dev
questions, 4 distinct candidates, 1 worker, no decoding) with its measured run profiled, for ``--before`` (a
git revision, exported) and for this working tree, one process each. The profile of the main thread is cut
into the parts below by the time each function spent when called from its caller (pstats' per-caller
cumulative time). cProfile slows Python (not the database) about 2x, so the shares matter more than the
milliseconds. Since this folder's change a batched eval runs the gold queries in a thread, which cProfile
does not see: the main thread's wait for them is in "run_eval's own".

    .venv/bin/python docs/benchmarks/cpu/eval-host-distinct/breakdown.py --before REV > breakdown.json
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
HOST = HERE.with_name("host.py")
sys.path.insert(0, str(HERE.parent))
import host  # noqa: E402 - this folder's benchmark, for its trees


def parts(path: Path, n: int) -> dict:
    """Milliseconds a question by part, from a cProfile file of one ``run_eval``."""
    st = pstats.Stats(str(path)).stats

    def fn(file_end: str, name: str) -> tuple:
        found = [k for k in st if k[0].endswith(file_end) and k[2] == name]
        assert len(found) == 1, (file_end, name, found)
        return found[0]

    def cum(k: tuple) -> float:
        return st[k][3]

    def edge(callee: tuple, caller: tuple) -> float:  # callee's cumulative time when called from caller
        return st[callee][4].get(caller, (0, 0, 0, 0))[3]

    ev, g = "agent/evaluation.py", "agent/graph.py"
    run_eval, predict, ask, prefetch = fn(ev, "run_eval"), fn(ev, "predict"), fn(g, "ask"), fn(g, "prefetch")
    node_names = ("check_scope_node", "retrieve", "generate", "vote", "validate", "execute", "assess",
                  "answer")
    nodes = {name: cum(fn(g, name)) for name in node_names}
    nodes["retrieve"] -= edge(fn(g, "retrieve"), prefetch)
    query, explain = fn("agent/graphdb/falkor.py", "query"), fn("agent/graphdb/falkor.py", "explain")
    vote, checked, grounding = fn(g, "vote"), fn(g, "_checked"), fn(g, "grounded_literals")
    schema_check = fn("agent/schema_check.py", "check_cypher")
    read_only = fn("agent/graphdb/readonly.py", "check_read_only")
    clean = fn("agent/cleanup.py", "clean_cypher")
    out = {
        "prefetch (each question's prompt: retrieve; the scripted generator)": cum(prefetch),
        "gold query (in predict, main thread)": edge(query, predict),
        "vote: the candidates run on the database": edge(query, vote),
        "vote: grounding (probes on the database, ground_literals)": edge(grounding, vote),
        "vote: schema check": edge(schema_check, vote),
        "vote: read-only check": edge(read_only, vote),
        "vote: clean_cypher": edge(clean, vote),
        "validate: EXPLAIN": edge(explain, checked),
        "validate: grounding again": edge(grounding, checked),
        "validate: schema check again": edge(schema_check, checked),
        "validate: read-only check and clean_cypher again": edge(read_only, checked) + edge(clean, checked),
        "execute, assess, answer, check_scope, retrieve, generate": sum(
            nodes[k] for k in node_names if k not in ("vote", "validate")),
    }
    out["vote: the rest (fingerprints, ranking)"] = nodes["vote"] - sum(
        v for k, v in out.items() if k.startswith("vote:"))
    out["validate: the rest"] = nodes["validate"] - sum(
        v for k, v in out.items() if k.startswith("validate:"))
    out["LangGraph (ask less its nodes)"] = cum(ask) - sum(nodes.values())
    out["run_eval's own and predict's record (report, JSON line, progress bar, waits)"] = (
        cum(run_eval) - cum(prefetch) - cum(predict) + cum(predict) - cum(ask) - edge(query, predict))
    total = cum(run_eval)
    guard = fn("agent/graphdb/readonly.py", "guard_query")
    trips = sum(st[k][3] for k in st if k[0].endswith("redis/client.py") and k[2] == "execute_command")
    return {"profiled_ms_per_question": round(total / n * 1000, 3),
            "ms_per_question": {k: round(v / n * 1000, 3) for k, v in out.items()},
            "share": {k: f"{v / total:.1%}" for k, v in out.items()},
            "across parts, ms per question": {
                "guard_query (the backend's gate on every read)": round(cum(guard) / n * 1000, 3),
                "database round trips (redis execute_command)": round(trips / n * 1000, 3)}}


def main(before: str) -> None:
    work, trees, rev, head = host.measured_trees(before, "eval-host-distinct-profile-")
    result = {"script": "docs/benchmarks/cpu/eval-host-distinct/breakdown.py", "before_rev": rev,
              "after_rev": head,
              "load_average_at_start": os.getloadavg()}
    for name, tree in trees.items():
        out = work / name
        out.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": f"{tree}:{tree / 'tests'}"}
        prof = out / "run.prof"
        with open(out / "stderr.txt", "w") as err:
            cmd = [sys.executable, str(HOST), "--one", str(out), "--workers", "1", "--profile", str(prof)]
            done = subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                  check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        result[name] = {"wall_s_under_cprofile": row["wall_s"], **parts(prof, row["n"])}
    result["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="git revision profiled as 'before'")
    main(parser.parse_args().before)
