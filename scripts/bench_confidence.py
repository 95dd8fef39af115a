"""Dev benchmark: is the answer's confidence worth trusting, and what does escalating unsure questions buy?

    .venv/bin/python scripts/bench_confidence.py --graphs movies northwind --limit 40 --candidates 5
    .venv/bin/python scripts/bench_confidence.py … --escalate-model NAME --escalate-base-url http://127.0.0.1:8000/v1
    .venv/bin/python scripts/bench_confidence.py --graphs movies --dataset FILE --graph-file FILE …

Runs the product's own path (``agent.factory.make_agent`` + ``agent.evaluation.run_eval``, batched first
replies) on a deterministic subset of each dev set in ../shared/bench (the first ``--limit`` questions by
the hash of their id; loaded into a bench home like ``scripts/bench_agent.py``), with the live model of
that home (the shipped adapter until one is promoted), no few-shot retrieval, ``--candidates`` replies per
question and the correction loop.

1. **small**: the model alone, every answer with its confidence (``agent.graph.confidence_of``). The
   accuracy-vs-coverage curve: answer only when the confidence is at least t — what share is answered,
   how many of those are right.
2. with ``--escalate-model`` (an OpenAI-compatible server, e.g. ``transformers serve``): the **cascade**
   (small, and the large model for answers below ``--threshold``) and **large** alone (one candidate), in
   that order (a run cut short keeps the cascade), with the share escalated and each one's accuracy.
   ``scripts/gpu_run.py``'s ``cascade:G`` phase serves a second base's live model this way on the GPU.

Writes ``--out`` (JSON: command, machine, date, settings, the curve, per-question predictions) and prints
a markdown table.

3. ``--from-predictions FILE …``: the same curve (the same function) from predictions already written by
   ``cypherloop eval`` / ``run_eval`` (JSONL, ``.gz`` too; each line with ``correct``, ``confidence`` and
   ``gold_error``): no model, no graph, no cascade. The GPU rounds keep theirs under docs/benchmarks/gpu/:

       cd docs/benchmarks/gpu/bootstrap-r3
       ../../../../.venv/bin/python ../../../../scripts/bench_confidence.py \
           --out confidence.json --from-predictions pred-*-bootstrap_plus_{candidates,both}_rp_1.0.jsonl.gz
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import sys
import time
from pathlib import Path

from bench_agent import BENCH, OUT_DIR, ROOT, ensure_graph, machine

sys.path.insert(0, str(ROOT))  # this checkout's packages, not the ones the venv was installed from

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def subset(items: list, limit: int | None) -> list:
    ordered = sorted(items, key=lambda x: hashlib.sha256(x.id.encode()).hexdigest())
    return ordered[:limit] if limit else ordered


def curve(preds: list[dict]) -> list[dict]:
    """For each threshold t: the share of questions answered with confidence ≥ t and their accuracy."""
    scored = [p for p in preds if p["gold_error"] is None]
    out = []
    for t in THRESHOLDS:
        kept = [p for p in scored if (p["confidence"] or 0.0) >= t]
        right = sum(p["correct"] for p in kept)
        out.append({"threshold": t, "answered": len(kept),
                    "coverage": round(len(kept) / max(1, len(scored)), 4), "correct": right,
                    "accuracy": round(right / len(kept), 4) if kept else None})
    return out


def read_predictions(path: Path) -> list[dict]:
    """One stored prediction file (JSONL, gzipped when it ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def stored_run(path: Path) -> dict:
    """The curve of one stored prediction file; graph and configuration from its name (pred-GRAPH-CONFIG)."""
    preds = read_predictions(path)
    lacking = sorted({k for x in preds for k in ("correct", "confidence", "gold_error") if k not in x})
    if lacking or not preds:
        raise ValueError(f"{path}: no predictions with {', '.join(lacking or ['any line'])}")
    stem = path.name.removesuffix(".gz").removesuffix(".jsonl").removeprefix("pred-")
    graph, _, config = stem.partition("-")
    scored = [x for x in preds if x["gold_error"] is None]
    right = sum(x["correct"] for x in scored)
    agreements = sorted({x.get("agreement") for x in scored}, key=lambda a: (a is None, a or 0.0))
    return {"graph": graph, "config": config or stem, "file": str(path), "n": len(scored), "correct": right,
            "accuracy": right / len(scored) if scored else 0.0,
            "escalated": sum(bool(x.get("escalated")) for x in preds),
            "agreement": {str(a): sum(x.get("agreement") == a for x in scored) for a in agreements},
            "curve": curve(preds)}


def print_runs(runs: list[dict], out: Path) -> None:
    for r in runs:
        print(f"\n### {r['graph']} / {r['config']}: {r['correct']}/{r['n']} = {r['accuracy']:.1%}"
              f" (escalated {r['escalated']})")
        if r["curve"]:
            print("| confidence ≥ | answered | accuracy |\n|---:|---:|---:|")
            for c in r["curve"]:
                acc = "–" if c["accuracy"] is None else f"{c['accuracy']:.1%}"
                print(f"| {c['threshold']:.1f} | {c['answered']} ({c['coverage']:.0%}) | {acc} |")
    print(f"\nJSON: {out}")


def from_predictions(args, argv: list[str] | None) -> int:
    try:
        runs = [stored_run(path) for path in args.from_predictions]
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not predictions
        print(f"bench_confidence: {e}", file=sys.stderr)
        return 2
    doc = {
        "benchmark": "confidence: accuracy vs coverage, from stored predictions (no cascade)",
        "command": "scripts/bench_confidence.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print_runs(runs, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=OUT_DIR / "home")
    p.add_argument("--graphs", nargs="+", default=["movies", "northwind"])
    p.add_argument("--dataset", type=Path, help="the one graph's question set (default: the bench's dev set)")
    p.add_argument("--graph-file", type=Path, help="the Cypher script that loads the one graph when missing")
    p.add_argument("--limit", type=int, default=40, help="questions per graph (deterministic subset)")
    p.add_argument("--candidates", type=int, default=5)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threshold", type=float, default=0.5, help="the cascade's confidence threshold")
    p.add_argument("--escalate-model", default=None)
    p.add_argument("--escalate-base-url", default=None)
    p.add_argument("--out", type=Path, default=OUT_DIR / "confidence.json")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--from-predictions", nargs="+", type=Path, metavar="FILE",
                   help="the curve of stored prediction files (JSONL or .jsonl.gz) instead of a live run")
    args = p.parse_args(argv)
    if args.from_predictions:
        return from_predictions(args, argv)

    from agent.core.env import library_defaults

    library_defaults()
    if (args.dataset or args.graph_file) and len(args.graphs) != 1:
        print("bench_confidence: --dataset and --graph-file name one graph's files: give one --graphs",
              file=sys.stderr)
        return 2
    missing = [str(f) for f in (args.dataset, args.graph_file) if f is not None and not f.is_file()]
    if missing or (not args.dataset and not BENCH.is_dir()):
        print(f"bench_confidence: {', '.join(missing) or BENCH} not found (dev graphs and question sets)",
              file=sys.stderr)
        return 2
    from agent.core.settings import Settings
    from agent.evaluation import load_dataset, run_eval
    from agent.factory import make_agent
    from agent.graphdb.embedded import stop
    from agent.models.factory import make_escalation_generator, make_generator

    base = Settings(_env_file=None, home=args.home, graph_backend="embedded", few_shot_k=0, pool_k=0,
                    candidates=args.candidates, max_attempts=args.max_attempts, confidence_threshold=0.0)
    small = make_generator(base)
    big = None
    if args.escalate_model:
        big = make_escalation_generator(base.model_copy(update={
            "escalate_model": args.escalate_model, "escalate_base_url": args.escalate_base_url}))
    started = time.time()
    runs: list[dict] = []
    command = "scripts/bench_confidence.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def write() -> None:
        """The JSON so far, after every configuration: a run stopped or failed later keeps what it did."""
        doc = {
            "benchmark": "confidence: accuracy vs coverage, and the cascade",
            "command": command.strip(),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "small": small.version,
            "large": big.version if big else None,
            "settings": {"candidates": args.candidates, "max_attempts": args.max_attempts, "few_shot_k": 0,
                         "threshold": args.threshold, "limit": args.limit, "batch_size": args.batch_size},
            "wall_s": round(time.time() - started, 1),
            "runs": runs,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2, default=str))

    try:
        for name in args.graphs:
            items = subset(load_dataset(args.dataset or BENCH / "dev" / f"{name}.jsonl"), args.limit)
            settings = base.model_copy(update={"graph": name})
            store = ensure_graph(settings, name, args.graph_file)
            configs = [("small", settings, small, None)]
            if big is not None:
                one = settings.model_copy(update={"candidates": 1})
                cascade = settings.model_copy(update={"confidence_threshold": args.threshold})
                configs += [("cascade", cascade, small, big), ("large", one, big, None)]
            try:
                for label, s, gen, escalation in configs:
                    agent = make_agent(s, graph_store=store, generator=gen, escalation=escalation)
                    rep = run_eval(agent, items, progress=not args.no_progress, label=f"{name}/{label}",
                                   dataset=str(args.dataset or f"dev/{name}.jsonl"),
                                   batch_size=args.batch_size,
                                   predictions_path=args.out.with_name(f"{args.out.stem}-{name}-{label}.jsonl"))
                    preds = rep.predictions
                    runs.append({
                        "graph": name, "config": label, **rep.summary(),
                        "escalated": sum(bool(x.get("escalated")) for x in preds),
                        "answered_by": sorted({x.get("answered_by") or "" for x in preds}),
                        "curve": curve(preds) if label == "small" else None,
                        "predictions": [{k: x.get(k) for k in ("id", "correct", "confidence", "agreement",
                                                                "attempts", "status", "escalated",
                                                                "answered_by", "latency_ms")} for x in preds],
                    })
                    print(f"{name}/{label}: {rep.correct}/{rep.n} = {rep.accuracy:.1%}", file=sys.stderr)
                    write()
            finally:
                store.close()
    finally:
        stop(base)

    write()
    print_runs(runs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
