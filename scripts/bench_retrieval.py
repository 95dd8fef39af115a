"""Does few-shot retrieval from the feedback store ever lower accuracy? Dev-set accuracy with retrieval on
(the product's default: k=3 above the similarity floor) against k=0, after 1, 10 and 100 approved examples.

    .venv/bin/python scripts/bench_retrieval.py --graphs movies northwind --limit 40

For each graph in ../shared/bench/dev/ the questions are split as ``scripts/bench_agent.py`` splits them
(one in five, by id hash, may become an approved example; the rest are asked), so an example is never
the question being asked. The asked questions are split once more, by another id hash, into two halves:
``--part choose`` (the questions a similarity floor may be chosen on) and ``--part report`` (the default:
the questions whose numbers are reported, never used to choose). The examples go into a real Chroma
feedback store through ``import_examples`` (each run read-only first, stored as approved), exactly as a
user's approved corrections would; the agent is ``make_agent`` with the shipped adapter on the product's
default backend (``auto``: CTranslate2 float32 on a CPU, which writes the transformers backend's greedy
replies), greedy, one attempt (so retrieval's effect is not hidden by repair rounds), shown what ``retrieve``
picks (above the floor, then ``agent.few_shot``'s rule). ``--floor`` overrides
the similarity floor (``-1`` turns it off; several values run one set of configurations each).

Writes ``bench-output/retrieval.json``: per graph and configuration accuracy, correct, n and each
question's predicted Cypher and correctness; per store size each asked question's nearest stored examples
with their similarity (the floor and the selection rule not applied), and per configuration the examples
each question was shown (``agent.graph.store_examples``: above the floor, kept by ``agent.few_shot``); plus
command, machine, load and date. Quote it in
docs/BENCHMARKS.md with the raw JSON beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agent import BENCH, OUT_DIR, ensure_graph, is_pool, machine  # noqa: E402


def in_choose_part(item_id: str) -> bool:
    """The half of the asked questions a floor may be chosen on (the other half is reported)."""
    return int(hashlib.sha256(f"retrieval-floor:{item_id}".encode()).hexdigest(), 16) % 2 == 0


class SameReplies:
    """The generator, remembering each prompt's greedy replies: a configuration whose prompt for a question
    is the same as one asked before (no example above the floor, the same examples) gets the same reply
    without the model writing it again. With ``path`` the replies are kept in a JSONL file, keyed by the
    model version too, so a later run (another floor) writes only the prompts it has not seen."""

    def __init__(self, generator, path: Path | None = None) -> None:
        from agent.models.base import Generation

        self.generator = generator
        self.path = path
        self.replies: dict[str, list] = {}
        self.written = self.reused = 0
        if path and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.replies[row["key"]] = [Generation(**g) for g in row["replies"]]

    def __getattr__(self, name: str):
        return getattr(self.generator, name)

    def generate_batch(self, prompts, on_ready=None, **kw):  # on_ready kept out of the recorded keys
        keys = [json.dumps([self.generator.version, p.messages(), sorted(kw.items())], default=str)
                for p in prompts]
        new = list({key: p for key, p in zip(keys, prompts, strict=True) if key not in self.replies}.items())
        if new:
            written = self.generator.generate_batch([p for _, p in new], **kw)
            for (key, _), replies in zip(new, written, strict=True):
                self.replies[key] = replies
                if self.path:
                    with self.path.open("a", encoding="utf-8") as f:
                        f.write(json.dumps({"key": key, "replies": [vars(g) for g in replies]}) + "\n")
        self.written += len(new)
        self.reused += len(prompts) - len(new)
        from agent.models.base import tell_each

        return tell_each([self.replies[key] for key in keys], on_ready)


def against_k0(right: set[str], right_k0: set[str], ids: list[str]) -> dict[str, object]:
    """A configuration against k=0 on the same questions: the ones it turned right (gains) and wrong
    (losses), the exact (Clopper-Pearson) 95 % interval of each rate, and McNemar's exact two-sided p."""
    from scipy.stats import binomtest

    asked = set(ids)
    gains, losses = sorted((right - right_k0) & asked), sorted((right_k0 - right) & asked)

    def ci(count: int) -> list[float]:
        interval = binomtest(count, len(ids)).proportion_ci(confidence_level=0.95, method="exact")
        return [round(interval.low, 4), round(interval.high, 4)]

    changed = len(gains) + len(losses)
    p = binomtest(len(gains), changed).pvalue if changed else 1.0
    return {"n": len(ids), "gains": gains, "losses": losses, "gain_rate_ci95": ci(len(gains)),
            "loss_rate_ci95": ci(len(losses)), "mcnemar_p": round(p, 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=OUT_DIR / "home", help="cypherloop home (graphs, model)")
    p.add_argument("--graphs", nargs="+", default=["movies", "northwind"])
    p.add_argument("--limit", type=int, default=40, help="questions asked per graph and part (default 40)")
    p.add_argument("--examples", default="1,10,100", help="approved examples in the store, comma-separated")
    p.add_argument("--floor", type=float, nargs="+", default=None,
                   help="few_shot_min_similarity, one or more (default: the setting)")
    p.add_argument("--part", choices=["choose", "report", "all"], default="report",
                   help="asked: the half a floor is chosen on, the half reported (default), or both")
    p.add_argument("--batch-size", type=int, default=8, help="first replies generated per batched call")
    p.add_argument("--out", type=Path, default=OUT_DIR / "retrieval.json")
    p.add_argument("--replies", type=Path, default=None,
                   help="JSONL of the replies per prompt, read and extended (a later run reuses them)")
    args = p.parse_args(argv)

    from agent.core.env import quiet_libraries

    quiet_libraries()
    from agent.core.settings import load_settings
    from agent.evaluation import load_dataset, run_eval
    from agent.factory import make_agent
    from agent.graph import store_examples
    from agent.models.factory import make_generator
    from feedback_store.chroma import ChromaFeedbackStore

    base = load_settings(home=args.home, temperature=0.0, max_attempts=1, device="cpu")
    floors = args.floor if args.floor is not None else [base.few_shot_min_similarity]
    model = make_generator(base)  # one model for every configuration
    serving = model.serving() if hasattr(model, "serving") else model
    generator = SameReplies(model, args.replies)
    counts = [int(x) for x in args.examples.split(",") if x.strip()]
    load_before = os.getloadavg()
    results: dict[str, dict[str, object]] = {}

    def write() -> None:  # after each configuration: a run stopped early keeps what it measured
        out = {
            "command": "scripts/bench_retrieval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "backend": type(serving).__name__,
            "model_version": generator.version,
            "replies_written": generator.written,
            "replies_reused": generator.reused,
            "part": args.part,
            "few_shot_min_similarity": floors,
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))

    for name in args.graphs:
        graph = ensure_graph(base, name)
        items = load_dataset(BENCH / "dev" / f"{name}.jsonl")
        pool = sorted((i for i in items if is_pool(i.id)), key=lambda i: i.id)
        rest = sorted((i for i in items if not is_pool(i.id)), key=lambda i: i.id)
        halves = {part: [i for i in rest if in_choose_part(i.id) == (part == "choose")][: args.limit]
                  for part in ("choose", "report") if args.part in (part, "all")}
        asked = [i for half in halves.values() for i in half]
        settings = base.model_copy(update={"graph": name})
        parts = {part: [i.id for i in half] for part, half in halves.items()}
        results[name] = {"asked": len(asked), "pool": len(pool), "parts": parts, "neighbours": {}}
        configs = [("k=0", 0, 0, None)] + [
            (f"k=3 after {n} approved" + (f", floor {f:g}" if len(floors) > 1 else ""), 3, n, f)
            for f in floors for n in counts
        ]
        for label, k, n, floor in configs:
            store = ChromaFeedbackStore(args.home / "retrieval-stores" / f"{name}-{n}-{time.time_ns()}")
            report = store.import_examples([(i.question, i.cypher) for i in pool[:n]], graph)
            if n and str(n) not in results[name]["neighbours"]:
                results[name]["neighbours"][str(n)] = {
                    i.id: [[round(s, 4), ex.question] for ex, s in store.scored_examples(i.question, name)]
                    for i in asked
                }
            update = {"few_shot_k": k} | ({"few_shot_min_similarity": floor} if floor is not None else {})
            agent = make_agent(settings.model_copy(update=update), graph_store=graph,
                               generator=generator, feedback_store=store)
            schema = graph.schema()
            shown = {i.id: [e.question for e in store_examples(agent.context, i.question, schema)]
                     for i in asked} if k else {}
            rep = run_eval(agent, asked, label=f"{name} {label}", batch_size=args.batch_size)
            right = {x["id"] for x in rep.predictions if x.get("correct")}
            if k == 0:
                right_k0 = right
            results[name][label] = {
                "examples_stored": report.added,
                "correct_per_part": {part: len(right & set(ids)) for part, ids in parts.items()},
                "examples_refused": len(report.refused),
                "floor": floor,
                "accuracy": round(rep.accuracy, 4),
                "correct": rep.correct,
                "n": rep.n,
                "wall_s": round(rep.wall_s, 1),
                "correct_ids": sorted(x["id"] for x in rep.predictions if x.get("correct")),
                "predicted": {x["id"]: x["predicted_cypher"] for x in rep.predictions},
                "shown": {i: qs for i, qs in shown.items() if qs},
                "vs_k0": {part: against_k0(right, right_k0, ids) for part, ids in parts.items()} if k else {},
            }
            print(f"{name:10s} {label:34s} {rep.correct:3d}/{rep.n} = {rep.accuracy:.1%}  "
                  + "  ".join(f"{part} {len(right & set(ids))}/{len(ids)}" for part, ids in parts.items())
                  + f"  (replies written {generator.written}, reused {generator.reused})", flush=True)
            store.close()
            write()
        graph.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
