"""``cypherloop bootstrap``: profile → generate → index → build → train → evaluate → promote, resumable."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict

from agent.core.settings import load_settings
from finetune.bootstrap import STYLES, Bootstrap
from finetune.config import shipped_recipes
from finetune.decision import Outcome
from finetune.full import FullConfig


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="cypherloop bootstrap",
        description="Make a graph answerable: generate training pairs from it, fine-tune the model, index "
                    "the "
        "pairs for retrieval and promote the new model if it beats the live one. Resumes after an "
        "interruption; --fresh starts over.",
    )
    p.add_argument("--graph", help="graph name (default: CYPHERLOOP_GRAPH)")
    p.add_argument(
        "--budget-minutes", type=float, help="time for the whole run (default: 10 on a GPU, 30 on a CPU)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--pairs", type=int, help="generated pairs (default: from the device and budget)")
    p.add_argument(
        "--general-rows", type=int, help="general multi-schema rows mixed in (default: from the plan)"
    )
    p.add_argument("--eval-n", type=int, help="held-out generated questions the gate scores")
    p.add_argument("--return-style", choices=STYLES,
                   help="how the generated queries return an entity a question asks for: mixed (as the "
                        "public text2cypher queries, the whole node for 'Which …' three times in four), "
                        "names (its name), nodes (the whole node), or auto (as the graph's approved "
                        "corrections do when 3 or more agree two to one, else mixed); default: the "
                        "return_style setting (auto); kept by later runs, and one that resolves to another "
                        "style than the generated pairs' generates them again")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--recipe",
        help=f"full fine-tune recipe (shipped: {', '.join(shipped_recipes('full'))}; default full-gpu on "
        "CUDA, full-cpu otherwise) or a YAML file; a resumed run takes a new one (and new --set) until it "
        "trains",
    )
    p.add_argument("--set", dest="train_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training setting of the recipe, e.g. --set epochs=1 (repeatable)")
    p.add_argument(
        "--fresh", action="store_true", help="discard an earlier (finished or interrupted) run and start over"
    )
    p.add_argument(
        "--no-promote", action="store_true", help="train and evaluate, but leave the live model as it is"
    )
    p.add_argument("--stop-after", choices=("profile", "generate", "index", "build", "train", "evaluate"),
                   help="stop after this stage (the next run goes on from there)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(graph=args.graph)
    run = Bootstrap(
        settings,
        settings.graph,
        budget_minutes=args.budget_minutes,
        device=args.device,
        pairs=args.pairs,
        general_rows=args.general_rows,
        eval_n=args.eval_n,
        fresh=args.fresh,
        promote=not args.no_promote,
        seed=args.seed,
        progress=not args.quiet,
        stop_after=args.stop_after,
        recipe=args.recipe,
        train_overrides=args.train_overrides,
        return_style=args.return_style,
    )
    plan = run.plan
    if args.recipe or args.train_overrides:
        # a bad recipe or setting fails now, not after generation
        FullConfig.load(plan.recipe, plan.train_overrides)
    if not args.json:
        print(f"bootstrap of graph {settings.graph!r} on {plan.device}: budget {plan.budget_s / 60:.0f} min, "
              f"{plan.pairs} pairs, {plan.general_rows} general rows, recipe {plan.recipe}"
              + {"mixed": "", "auto": ", entities returned as the approved corrections do (auto)"}.get(
                  plan.return_style, f", entities returned as {plan.return_style}")
              + (" (resuming)" if run.state["stages"] else ""))
    report = run.run()
    if args.json:
        print(json.dumps(asdict(report), indent=2, default=str))
    else:
        print(report.table())
    return 0 if report.status in (Outcome.PROMOTED, Outcome.TRAINED, Outcome.REJECTED, Outcome.PAUSED) else 1
