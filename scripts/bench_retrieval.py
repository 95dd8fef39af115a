"""Does few-shot retrieval from the feedback store ever lower accuracy? Dev-set accuracy with retrieval on
(the product's default: k=3 above the similarity floor) against k=0, after 1, 10 and 100 approved examples.

    .venv/bin/python scripts/bench_retrieval.py --graphs movies northwind --limit 40

For each graph in ../shared/bench/dev/ the questions are split as ``scripts/bench_agent.py`` splits them
(one in five, by id hash, may become an approved example; the rest are asked), so an example is never
the question being asked. The examples go into a real Chroma feedback store through
``import_examples`` (each run read-only first, stored as approved), exactly as a user's approved
corrections would; the agent is ``make_agent`` with the shipped adapter on the transformers backend,
greedy, one attempt (so retrieval's effect is not hidden by repair rounds). ``--floor`` overrides the
similarity floor (``-1`` turns it off) to show what the floor does.

Writes ``bench-output/retrieval.json`` (per graph and configuration: accuracy, correct, n, p50 latency;
plus command, machine and date). Quote it in docs/BENCHMARKS.md with the raw JSON beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agent import BENCH, OUT_DIR, ensure_graph, is_pool, machine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=OUT_DIR / "home", help="cypherloop home (graphs, model)")
    p.add_argument("--graphs", nargs="+", default=["movies", "northwind"])
    p.add_argument("--limit", type=int, default=40, help="questions asked per graph (default 40)")
    p.add_argument("--examples", default="1,10,100", help="approved examples in the store, comma-separated")
    p.add_argument("--floor", type=float, default=None, help="few_shot_min_similarity (default: the setting)")
    p.add_argument("--batch-size", type=int, default=8, help="first replies generated per batched call")
    p.add_argument("--out", type=Path, default=OUT_DIR / "retrieval.json")
    args = p.parse_args(argv)

    from agent.core.env import quiet_libraries

    quiet_libraries()
    from agent.core.settings import load_settings
    from agent.evaluation import load_dataset, run_eval
    from agent.factory import make_agent
    from agent.models.factory import make_generator
    from feedback_store.chroma import ChromaFeedbackStore

    base = load_settings(home=args.home, temperature=0.0, max_attempts=1, device="cpu")
    if args.floor is not None:
        base = base.model_copy(update={"few_shot_min_similarity": args.floor})
    generator = make_generator(base)  # one model for every configuration
    counts = [int(x) for x in args.examples.split(",") if x.strip()]
    results: dict[str, dict[str, object]] = {}
    for name in args.graphs:
        graph = ensure_graph(base, name)
        items = load_dataset(BENCH / "dev" / f"{name}.jsonl")
        pool = sorted((i for i in items if is_pool(i.id)), key=lambda i: i.id)
        asked = sorted((i for i in items if not is_pool(i.id)), key=lambda i: i.id)[: args.limit]
        settings = base.model_copy(update={"graph": name})
        results[name] = {"asked": len(asked), "pool": len(pool)}
        configs = [("k=0", 0, 0)] + [(f"k=3 after {n} approved", 3, n) for n in counts]
        for label, k, n in configs:
            store = ChromaFeedbackStore(args.home / "retrieval-stores" / f"{name}-{n}-{time.time_ns()}")
            report = store.import_examples([(i.question, i.cypher) for i in pool[:n]], graph)
            agent = make_agent(settings.model_copy(update={"few_shot_k": k}), graph_store=graph,
                               generator=generator, feedback_store=store)
            rep = run_eval(agent, asked, label=f"{name} {label}", batch_size=args.batch_size)
            results[name][label] = {
                "examples_stored": report.added,
                "examples_refused": len(report.refused),
                "accuracy": round(rep.accuracy, 4),
                "correct": rep.correct,
                "n": rep.n,
                "wall_s": round(rep.wall_s, 1),
                "correct_ids": sorted(x["id"] for x in rep.predictions if x.get("correct")),
            }
            print(f"{name:10s} {label:24s} {rep.correct:3d}/{rep.n} = {rep.accuracy:.1%}", flush=True)
            store.close()
        graph.close()
    out = {
        "command": "scripts/bench_retrieval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "model_version": generator.version,
        "few_shot_min_similarity": base.few_shot_min_similarity,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
