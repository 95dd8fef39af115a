"""``cypherloop train | adapters | retrain | scheduler``: argument parsing only; the work is in
``finetune.train`` / ``registry`` / ``retrain`` / ``schedule``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from agent.core.adapters import describe, live_adapter
from agent.core.errors import ConfigError, DataError
from agent.core.settings import Settings, load_settings
from agent.models.local import base_display_name
from finetune.config import field_help, load_recipe, shipped_recipes
from finetune.dataset import FILES, dataset_hash
from finetune.decision import Verdict
from finetune.registry import AdapterRegistry
from finetune.retrain import default_recipe, retrain, round_estimate, train_device
from finetune.schedule import run_scheduler
from finetune.train import TrainResult, resolve_base_model, train

OVERRIDES_HELP = ("recipe overrides, field=value or --field value (e.g. max_steps=20 lora_r=8); "
                  "the fields: --list-fields")


def _settings(graph: str | None = None) -> Settings:
    return load_settings(graph=graph)


def _logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "chromadb", "urllib3", "filelock", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # optional CPU kernels it cannot find


def _recipe_names() -> str:
    """The LoRA recipes this command takes, and the full fine-tune ones `cypherloop bootstrap` takes."""
    return (f"{', '.join(shipped_recipes('lora'))}; full fine-tunes for `cypherloop bootstrap`: "
            f"{', '.join(shipped_recipes('full'))}")


def _parse(p: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The command's own options, and everything else as recipe overrides (``field=value`` or ``--field
    value``)."""
    args, rest = p.parse_known_args(argv)
    return args, [*rest, *args.overrides]


# ---------------------------------------------------------------------- train
def train_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="cypherloop train",
        description="Train a LoRA / QLoRA adapter with trl's SFT trainer from a YAML recipe.",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help=f"shipped recipe ({_recipe_names()}) or a YAML file; default tiny-cpu, fast-gpu on CUDA",
    )
    p.add_argument("--graph", help="graph whose dataset to train on (default: CYPHERLOOP_GRAPH)")
    p.add_argument("--data", help="dataset folder with train.jsonl (default: <home>/datasets/<graph>)")
    p.add_argument(
        "--output",
        help="run folder (default: <home>/runs/<graph>-<recipe>-<hash>; the same command resumes "
        "a killed run)",
    )
    p.add_argument("--base", help="base model directory (default: the recipe's model_name_or_path, else "
                   "CYPHERLOOP_BASE_MODEL)")
    p.add_argument(
        "--overwrite", action="store_true", help="start over instead of resuming / returning a finished run"
    )
    p.add_argument(
        "--register",
        action="store_true",
        help="add the adapter to the registry as a candidate version (not promoted)",
    )
    p.add_argument("--promote", action="store_true", help="register and make it live without the gate (use "
                   "`cypherloop retrain` for the gated path)")
    p.add_argument("--show-recipe", action="store_true", help="print the resolved recipe and exit")
    p.add_argument(
        "--list-fields", action="store_true", help="print every recipe field with its help and exit"
    )
    p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    args, overrides = _parse(p, argv)

    if args.list_fields:
        for key, text in field_help().items():
            print(f"{key:40s} {text}")
        return 0
    settings = _settings(args.graph)
    recipe = load_recipe(args.recipe or default_recipe(), overrides)
    if args.show_recipe:
        print(recipe.to_yaml())
        return 0
    _logging()
    data = Path(args.data or recipe.options.dataset_dir or settings.path("datasets", settings.graph))
    if not (data / FILES["train"]).is_file():
        raise DataError(f"no dataset at {data} (train.jsonl); build one with `cypherloop data build --graph "
                        f"{settings.graph}` or run `cypherloop retrain --graph {settings.graph}`")
    data_hash = dataset_hash(data)
    base = resolve_base_model(settings, args.base or recipe.model.model_name_or_path)
    out = Path(args.output) if args.output else settings.path(
        "runs", f"{settings.graph}-{recipe.name}-{recipe.fingerprint()[:8]}-{data_hash[:8]}")
    result = train(recipe, data_dir=data, output_dir=out, base_model=base, overwrite=args.overwrite,
                   device=train_device(settings))
    m = result.metrics
    print(f"adapter: {result.adapter_dir}")
    print(f"loss plot: {result.loss_plot}")
    print(
        f"steps {m.get('global_step')}, train loss {_r(m.get('train_loss'))}, eval loss "
        f"{_r(m.get('eval_loss'))}, "
        f"{m.get('tokens_per_second')} tokens/s, {m.get('samples_per_second')} samples/s, "
        f"peak memory {m.get('peak_memory_gb')} GB"
    )
    if args.register or args.promote:
        base_name = base_display_name(args.base or recipe.model.model_name_or_path or settings.base_model)
        version = _register(settings, recipe.name, result, base_name, recipe.to_dict(), promote=args.promote)
        print(f"registered {version}" + (" (live)" if args.promote else
                                         " (candidate; promote with `cypherloop adapters promote`)"))
    return 0


def _register(
    settings: Settings,
    recipe_name: str,
    result: TrainResult,
    base_name: str,
    recipe_config: dict[str, Any],
    *,
    promote: bool,
) -> str:
    """Add a trained adapter to the registry without the gate (``train --register / --promote``)."""
    reg = AdapterRegistry(settings.home_dir, settings)
    meta = {
        "graph": settings.graph,
        "base_model": base_name,
        "base_model_path": result.base_model,
        "recipe": recipe_name,
        "recipe_fingerprint": result.recipe_fingerprint,
        "recipe_config": recipe_config,
        "dataset_hash": result.dataset_hash,
        "metrics": result.metrics,
        "run_dir": result.output_dir,
        "gate": {"decision": Verdict.MANUAL if promote else Verdict.NOT_EVALUATED},
        "loss_plot": "loss.png" if result.loss_plot else None,
    }
    extra = {"loss.png": result.loss_plot, "loss.jsonl": result.loss_log}
    version = reg.add(result.adapter_dir, meta, extra_files={k: v for k, v in extra.items() if v})
    if promote:
        reg.promote(version, reason="cypherloop train --promote")
    return version


def _r(x: Any, n: int = 4) -> Any:
    return round(x, n) if isinstance(x, float) else x


# ---------------------------------------------------------------------- adapters
def adapters_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="cypherloop adapters",
        description="The adapter registry: versions, the live one, promote / rollback / export.",
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{list,show,promote,rollback,export}")
    ls = sub.add_parser("list", help="every version with its metrics, gate decision and status")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    sh = sub.add_parser("show", help="one version's meta.json")
    sh.add_argument("version", help="v3, 3, v0003, latest or active")
    pr = sub.add_parser("promote", help="make a version live (atomic switch; running agents follow it)")
    pr.add_argument("version")
    sub.add_parser("rollback", help="re-activate the previously promoted version (or the base model)")
    ex = sub.add_parser("export", help="export a version for llama.cpp / Ollama")
    ex.add_argument("version")
    ex.add_argument("--gguf", action="store_true", required=True, help="write a GGUF LoRA adapter")
    ex.add_argument("--out", help="output file (default: <version folder>/adapter-<version>.gguf)")
    ex.add_argument(
        "--converter",
        help="llama.cpp's convert_lora_to_gguf.py (default: $LLAMA_CPP_DIR/convert_lora_to_gguf.py if set, "
             "else the built-in writer)",
    )
    ex.add_argument(
        "--base", help="base model folder with config.json (default: the one recorded in meta.json)"
    )
    args = p.parse_args(argv)

    settings = _settings()
    reg = AdapterRegistry(settings.home_dir, settings)
    if args.cmd == "list":
        if args.json:
            print(json.dumps(reg.list(), indent=2, default=str))
            return 0
        rows = reg.summaries()
        print(adapters_table(rows) if rows else f"no adapter versions in {reg.root} yet; "
              "run `cypherloop retrain --graph NAME`")
        print(f"\nlive: {describe(live_adapter(settings.home_dir, settings.base_model))}")
        return 0
    if args.cmd == "show":
        print(json.dumps(reg.meta(args.version), indent=2, default=str))
        return 0
    if args.cmd == "promote":
        v = reg.promote(args.version, reason="cypherloop adapters promote")
        print(f"{v} is live; running agents switch at their next question")
        return 0
    if args.cmd == "rollback":
        reg.rollback(reason="cypherloop adapters rollback")
        print(f"rolled back: {describe(live_adapter(settings.home_dir, settings.base_model))} is live")
        return 0
    converter = args.converter
    if converter is None and os.environ.get("LLAMA_CPP_DIR"):
        candidate = Path(os.environ["LLAMA_CPP_DIR"]) / "convert_lora_to_gguf.py"
        converter = str(candidate) if candidate.is_file() else None
    out = reg.export_gguf(args.version, out=args.out, converter=converter, base_dir=args.base)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); llama.cpp: --lora {out} next to the base GGUF; "
          f"Ollama: ADAPTER {out} in a Modelfile")
    return 0


def adapters_table(rows: list[dict[str, Any]]) -> str:
    """The `adapters list` table from ``AdapterRegistry.summaries()``: live mark, version, time, recipe,
    losses,
    accuracies (and the live one's before), gate decision, status."""
    head = [
        "",
        "version",
        "created",
        "recipe",
        "base",
        "train loss",
        "eval loss",
        "heldout",
        "regression",
        "gate",
        "status",
    ]
    table = [head]
    for r in rows:
        table.append([
            "*" if r["live"] else "", r["version"], r["created"], str(r["recipe"]), str(r["base_model"]),
            _fmt(r["train_loss"]), _fmt(r["eval_loss"]), _pct(r["heldout"], r["heldout_before"]),
            _pct(r["regression"], r["regression_before"]), str(r["gate"]), str(r["status"]),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    )


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, int | float) else "–"


def _pct(x: Any, before: Any = None) -> str:
    if not isinstance(x, int | float):
        return "–"
    return f"{x:.0%}" + (f" (was {before:.0%})" if isinstance(before, int | float) else "")


# ---------------------------------------------------------------------- retrain
def retrain_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="cypherloop retrain",
        description="Build dataset → train → evaluate → gate → promote, once, under a lock; writes a report.",
    )
    p.add_argument("--graph", help="graph to retrain for (default: CYPHERLOOP_GRAPH)")
    p.add_argument(
        "--recipe",
        default=None,
        help=f"shipped recipe ({_recipe_names()}) or a YAML file; default tiny-cpu, fast-gpu on CUDA",
    )
    p.add_argument("--data", help="use this built dataset folder instead of building one")
    p.add_argument(
        "--margin",
        type=float,
        help="the candidate must beat the live adapter's held-out accuracy by at least this much (default: "
             "the recipe's gate_margin, 0: any win; a tie never promotes)",
    )
    p.add_argument(
        "--no-promote", action="store_true", help="evaluate and register, but leave the live adapter as it is"
    )
    p.add_argument(
        "--force", action="store_true", help="train even if a version with the same data and recipe exists"
    )
    wait = p.add_mutually_exclusive_group()
    wait.add_argument(
        "--no-wait", action="store_true", help="exit at once (code 3) if another retrain is running"
    )
    wait.add_argument(
        "--wait-timeout",
        type=float,
        help="wait at most this many seconds for another retrain (default: wait until it ends)",
    )
    p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    args, overrides = _parse(p, argv)

    _logging()
    settings = _settings(args.graph)
    recipe = args.recipe or default_recipe()
    print(f"retrain of graph {settings.graph!r} with recipe {recipe}: "
          f"{round_estimate(settings.home_dir, settings.graph, Path(recipe).stem)}", flush=True)
    report = retrain(
        settings,
        settings.graph,
        recipe,
        overrides=overrides,
        dataset_dir=Path(args.data) if args.data else None,
        promote=not args.no_promote,
        force=args.force,
        margin=args.margin,
        wait=not args.no_wait,
        lock_timeout=args.wait_timeout,
    )
    print(f"{report.status}: {report.message}")
    g = report.gate
    if g:
        for name in ("heldout", "regression"):
            c, a = (g.get("candidate") or {}).get(name), (g.get("active") or {}).get(name)
            if c:
                print(f"  {name:<10} live {a['accuracy']:.1%} -> candidate {c['accuracy']:.1%} (n={c['n']})")
    print(f"report: {report.report_dir}/report.md")
    if report.loss_plot:
        print(f"loss plot: {report.loss_plot}")
    return 0


# ---------------------------------------------------------------------- scheduler
def scheduler_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="cypherloop scheduler",
        description="Run `retrain` on a cron schedule or after N new approved corrections (survives "
                    "restarts).",
    )
    trig = p.add_mutually_exclusive_group()
    trig.add_argument("--cron", help='crontab expression, e.g. "0 3 * * *" (03:00 every day, local time)')
    trig.add_argument(
        "--every-n-corrections", type=int, metavar="N", help="retrain after N new approved corrections"
    )
    p.add_argument("--watch-schema", action="store_true",
                   help="when the graph's schema changes, re-check the stored examples and bootstrap the "
                        "graph")
    p.add_argument("--graph", help="graph to retrain for (default: CYPHERLOOP_GRAPH)")
    p.add_argument(
        "--recipe", default=None, help="recipe for each round (default: tiny-cpu, fast-gpu on CUDA)"
    )
    p.add_argument(
        "--poll-seconds",
        type=float,
        default=60.0,
        help="how often the correction count is checked (default 60)",
    )
    p.add_argument(
        "--max-runs", type=int, help="stop after this many rounds (default: run until interrupted)"
    )
    p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    args, overrides = _parse(p, argv)

    _logging()
    recipe = args.recipe or default_recipe()
    load_recipe(recipe, overrides)  # fail now, not at 3 am
    settings = _settings(args.graph)
    if not (args.cron or args.every_n_corrections or args.watch_schema):
        raise ConfigError("give --cron EXPR or --every-n-corrections N, and/or --watch-schema")
    trigger = (f"cron {args.cron}" if args.cron else f"every {args.every_n_corrections} approved corrections"
               if args.every_n_corrections else "schema changes")
    print(
        f"scheduler for graph {settings.graph} ({trigger}); Ctrl-C stops it",
        file=sys.stderr,
    )
    run_scheduler(
        settings,
        recipe=recipe,
        cron=args.cron,
        every_n=args.every_n_corrections,
        poll_s=args.poll_seconds,
        overrides=overrides,
        max_runs=args.max_runs,
        watch_schema=args.watch_schema,
    )
    return 0
