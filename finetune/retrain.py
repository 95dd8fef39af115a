"""One retraining round: build dataset → train → evaluate → gate → promote, under a lock, with a report.

    cypherloop retrain --graph demo --recipe tiny-cpu

Only one round runs at a time per home (``<home>/locks/retrain.lock``): a second one waits (``wait=True``,
optionally up to ``lock_timeout`` seconds) or stops at once with ``LockBusy`` (``wait=False``).
Training goes to a run folder named after the graph, recipe and dataset hash, so a killed round
resumes its training when started again. The candidate becomes a registry version only when it is
complete, with the gate's decision in its meta.json, and ACTIVE changes only if the gate says so.
Before the dataset is built, the graph's bootstrap pool is generated again when the return style asked for
now differs from its pairs' (``finetune.bootstrap.refresh_pool``); a graph without a pool gets offline pairs
generated in that style, again when it changes (``refresh_offline``); the report's ``pool`` says so. A
dataset without held-out questions (a pool too small to hold any out) ends the round before training:
skipped, with one line saying why, and the live model stays.
The report (``<home>/reports/<time>-<graph>-<version>/report.json``, ``report.md``, ``loss.png``)
holds the data counts, the loss curve, before/after accuracy and the decision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.core.adapters import AdapterRef, live_adapter
from agent.core.errors import CypherloopError
from agent.core.files import atomic_write_text, count_jsonl
from agent.core.prompt import PROMPT_VERSION
from agent.core.settings import Settings
from agent.graphdb import GraphStore, open_graph
from agent.models.local import base_display_name
from finetune import gate as gatemod
from finetune.bootstrap import refresh_offline, refresh_pool
from finetune.config import Recipe, load_recipe
from finetune.dataset import FILES, BuildSpec, build_dataset, dataset_hash
from finetune.decision import Outcome, Verdict, read_outcome
from finetune.drift import stamp
from finetune.gate import GateDecision, GeneratorFactoryMaker
from finetune.lock import retrain_lock
from finetune.registry import AdapterRegistry, kept_note
from finetune.train import TrainResult, resolve_base_model, train

log = logging.getLogger("cypherloop.retrain")


@dataclass
class RetrainReport:
    """What one round did (report.json)."""

    graph: str
    recipe: str
    status: str = Outcome.RUNNING
    """An ``Outcome``: promoted | rejected | trained (not promoted on request) | skipped (same data and recipe
    as a version) | failed"""
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    active_before: str | None = None
    """The live adapter before the round (``agent.core.adapters.live_adapter``; None: the bare base model)."""
    active_after: str | None = None
    """The live adapter after the round."""
    report_dir: str | None = None
    loss_plot: str | None = None
    error: str | None = None
    message: str = ""
    pool: dict[str, Any] | None = None
    """When the round generated the bootstrap pool again in another return style (or failed to):
    ``finetune.bootstrap.refresh_pool``'s account (had, wanted, why, status, message); on a graph without a
    pool, when it generated its own offline pairs (first, or again in another style): ``refresh_offline``'s,
    the same fields with ``source: offline``."""


# ---------------------------------------------------------------------- the round
@dataclass(kw_only=True)
class RoundOptions:
    """How one round runs (``retrain``'s keyword arguments, minus the lock)."""

    dataset_dir: Path | None = None
    """Use this built dataset (train/heldout/feedback_regression.jsonl) instead of building one."""
    dataset_options: dict[str, Any] = field(default_factory=dict)
    """BuildSpec fields for the build (e.g. auto_offline_n)."""
    promote: bool = True
    """Make the candidate live when the gate allows."""
    force: bool = False
    """Train even when a version with the same dataset hash, recipe and base exists."""
    margin: float | None = None
    """Overrides the recipe's gate_margin."""
    generator_factory: GeneratorFactoryMaker | None = None
    """How the gate builds a generator for an adapter folder (default: the local transformers generator)."""
    device: str | None = None
    """Training device: auto, cpu or cuda (default: from settings.device)."""


def retrain(
    settings: Settings,
    graph: str | None = None,
    recipe: str | Path | Recipe = "tiny-cpu",
    *,
    overrides: Sequence[str] = (),
    wait: bool = True,
    lock_timeout: float | None = None,
    graph_store: GraphStore | None = None,
    **options: Any,
) -> RetrainReport:
    """Run one round (see the module doc). Returns the report; raises LockBusy when another round holds the
    lock.

    ``options`` are ``RoundOptions`` fields (dataset_dir, dataset_options, promote, force, margin,
    generator_factory, device); ``graph_store`` is the graph to build and gate on (opened when not given).
    """
    opts = RoundOptions(**options)
    graph = graph or settings.graph
    settings = settings.model_copy(update={"graph": graph})
    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    with retrain_lock(settings.home_dir, wait=wait, timeout=lock_timeout):
        report = RetrainReport(graph=graph, recipe=rec.name)
        store = open_graph(settings, graph) if graph_store is None else graph_store
        try:
            _round(settings, rec, report, store, opts)
        except CypherloopError as e:
            report.status, report.error = Outcome.FAILED, str(e)
            raise
        except Exception as e:  # noqa: BLE001 - recorded, then re-raised for the caller
            report.status, report.error = Outcome.FAILED, f"{type(e).__name__}: {e}"
            raise
        finally:
            if graph_store is None:
                store.close()
            if report.pool:
                report.message = "; ".join(x for x in (report.pool["message"], report.message) if x)
            report.finished_at = time.time()
            write_report(settings, report)
        return report


def _round(
    settings: Settings, rec: Recipe, report: RetrainReport, store: GraphStore, opts: RoundOptions
) -> None:
    """Dataset → train → gate → register (→ promote); fills ``report`` as it goes."""
    registry = AdapterRegistry(settings.home_dir, settings)
    base_name = base_display_name(rec.model.model_name_or_path or settings.base_model)
    live = live_adapter(settings.home_dir, base_name)
    report.active_before = report.active_after = live.version if live else None

    # 0. The bootstrap pool, in the return style asked for now (generated again when that changed).
    if opts.dataset_dir is None:
        report.pool = refresh_pool(settings, settings.graph, store)
    # 1. Dataset: built from the graph (the pool or offline pairs in the style asked for now + approved
    # feedback) unless one is given.
    data_dir = opts.dataset_dir or build_round_dataset(settings, store, opts.dataset_options, report)
    report.dataset = {**dataset_counts(data_dir), "hash": dataset_hash(data_dir)}
    log.info("dataset %s: %s", data_dir, report.dataset.get("counts"))
    if not report.dataset["counts"].get("heldout"):  # nothing the gate could judge a candidate on
        report.status = Outcome.SKIPPED
        report.message = _no_heldout_note(report.dataset, live)
        log.warning("%s: %s", settings.graph, report.message)
        return
    same = [m for m in registry.list() if m.get("dataset_hash") == report.dataset["hash"]
            and m.get("recipe_fingerprint") == rec.fingerprint() and m.get("base_model") == base_name]
    if same and not opts.force and _unsettled(same[-1], live):
        # the round that registered it was killed before it acted on the gate's verdict: act on it now
        version, gate = same[-1]["version"], same[-1]["gate"]
        report.version, report.gate = version, dict(gate)
        log.info("%s was registered by a round that stopped before acting on its gate; acting on it now",
                 version)
        _settle(settings, registry, report, version, gate["decision"], gate.get("reason", ""), opts.promote,
                base_name)
        return
    if same and not opts.force:
        report.status, report.version = Outcome.SKIPPED, same[-1]["version"]
        report.message = (
            f"{same[-1]['version']} was trained on the same data with the same recipe; nothing to do "
            "(use --force)"
        )
        log.info(report.message)
        return

    # 2. Train (resumes a killed round: the run folder is named after graph, recipe and data).
    base_dir = resolve_base_model(settings, rec.model.model_name_or_path)
    run_dir = settings.path(
        "runs", f"{settings.graph}-{rec.name}-{rec.fingerprint()[:8]}-{report.dataset['hash'][:8]}"
    )
    result = train(
        rec,
        data_dir=data_dir,
        output_dir=run_dir,
        base_model=base_dir,
        device=opts.device or train_device(settings),
    )
    report.train = {
        "run_dir": result.output_dir,
        "metrics": result.metrics,
        "resumed_from": result.resumed_from,
    }
    report.loss_plot = result.loss_plot

    # 3. Evaluate and gate: candidate vs the live adapter on held-out + feedback regression.
    decision = _gate(settings, rec, store, data_dir, result, base_dir, base_name, live, opts)
    report.gate = decision.to_dict()

    # 4. Register the complete candidate (with its decision), then promote if the gate allows.
    report.version = version = registry.add(
        result.adapter_dir,
        {**_meta(settings, rec, report, result, base_dir, base_name, decision),
         "schema_fingerprint": stamp(settings, store, "retrain")["schema_fingerprint"]},
        extra_files=_run_files(result),
    )
    _settle(settings, registry, report, version, decision.decision, decision.reason, opts.promote, base_name)


def _settle(settings: Settings, registry: AdapterRegistry, report: RetrainReport, version: str,
            verdict: Verdict, reason: str, promote: bool, base_name: str) -> None:
    """Act on the gate's verdict for the registered ``version`` and say so in ``report``."""
    report.status = registry.settle(version, verdict, promote=promote, reason=f"gate: {reason}")
    after = live_adapter(settings.home_dir, base_name)
    report.active_after = after.version if after else None
    if report.status == Outcome.PROMOTED:
        report.message = f"{version} is live: {reason}"
    elif report.status == Outcome.TRAINED:
        report.message = f"{version} {reason}; not promoted on request: {kept_note(version)}"
    else:
        report.message = f"{version} {reason}; {kept_note(version)}"
    log.info(report.message)


def _unsettled(meta: dict[str, Any], live: AdapterRef | None) -> bool:
    """A version registered with a gate verdict that nothing acted on yet (its round was killed between the
    registry's add and the promotion), gated against the adapter that is still live."""
    gate = meta.get("gate") or {}
    return (meta.get("status") == "candidate" and gate.get("decision") in (Verdict.PROMOTE, Verdict.REJECT)
            and gate.get("active_version") == (live.version if live else None))


def _gate(
    settings: Settings,
    rec: Recipe,
    store: GraphStore,
    data_dir: Path,
    result: TrainResult,
    base_dir: Path,
    base_name: str,
    live: AdapterRef | None,
    opts: RoundOptions,
) -> GateDecision:
    """The candidate against the live adapter (or the bare base) on this dataset's held-out and regression
    sets."""
    g = rec.gate
    eval_settings = gatemod.gate_settings(settings.model_copy(update={"base_model": str(base_dir)}),
                                          g.gate_max_attempts, g.gate_max_new_tokens)
    make = opts.generator_factory or gatemod.adapter_generator
    return gatemod.run_gate(
        make(eval_settings, Path(result.adapter_dir)),
        make(eval_settings, live.path if live else None),
        store,
        gatemod.load_questions(data_dir / FILES["heldout"], g.gate_max_heldout),
        gatemod.load_questions(data_dir / FILES["feedback_regression"], g.gate_max_regression),
        settings=eval_settings,
        margin=g.gate_margin if opts.margin is None else opts.margin,
        active_version=live.version if live else None,
        score_cache=settings.path("cache", "gate_scores.json"),
        active_cache_id=f"{base_name}+{live.version if live else 'base'}"
        if opts.generator_factory is None
        else None,
    )


def _meta(
    settings: Settings,
    rec: Recipe,
    report: RetrainReport,
    result: TrainResult,
    base_dir: Path,
    base_name: str,
    decision: GateDecision,
) -> dict[str, Any]:
    """The candidate's meta.json: provenance, training metrics and the gate's decision with its numbers."""
    def acc(side: dict[str, Any], name: str) -> float | None:
        score = side.get(name)
        return None if score is None else score.accuracy

    return {
        "graph": settings.graph,
        "base_model": base_name,
        "base_model_path": str(base_dir),
        "recipe": rec.name,
        "recipe_fingerprint": rec.fingerprint(),
        "recipe_config": rec.to_dict(),
        "dataset_hash": report.dataset["hash"],
        "dataset": report.dataset,
        "metrics": result.metrics,
        "eval": {
            side: {k: (asdict(v) if v else None) for k, v in getattr(decision, side).items()}
            for side in ("candidate", "active")
        },
        "gate": {
            "decision": decision.decision,
            "reason": decision.reason,
            "margin": decision.margin,
            "active_version": decision.active_version,
            "heldout": acc(decision.candidate, "heldout"),
            "regression": acc(decision.candidate, "regression"),
            "active_heldout": acc(decision.active, "heldout"),
            "active_regression": acc(decision.active, "regression"),
        },
        "heldout_accuracy": acc(decision.candidate, "heldout"),
        "regression_accuracy": acc(decision.candidate, "regression"),
        "loss_plot": "loss.png" if result.loss_plot else None,
        "run_dir": result.output_dir,
        "prompt_version": PROMPT_VERSION,
    }


def _run_files(result: TrainResult) -> dict[str, Path]:
    """The run's files copied next to the adapter in the registry."""
    files = {"loss.jsonl": Path(result.loss_log)}
    if result.loss_plot:
        files["loss.png"] = Path(result.loss_plot)
    return files


def default_recipe() -> str:
    """The recipe a plain ``cypherloop retrain`` uses: fast-gpu on a CUDA machine, tiny-cpu elsewhere."""
    try:
        import torch

        return "fast-gpu" if torch.cuda.is_available() else "tiny-cpu"
    except ImportError:  # pragma: no cover - training needs torch anyway
        return "tiny-cpu"


def retrain_once(settings: Settings, recipe: str | None = None) -> RetrainReport:
    """One round for the UI's Retrain button: the settings' graph, the default recipe, never waits for a
    lock."""
    return retrain(settings, settings.graph, recipe or default_recipe(), wait=False)


def train_device(settings: Settings) -> str:
    """The training device for ``settings.device``: cpu, cuda or auto."""
    d = (settings.device or "auto").lower()
    return "cpu" if d == "cpu" else ("cuda" if d.startswith("cuda") else "auto")


# ---------------------------------------------------------------------- dataset
def build_round_dataset(settings: Settings, graph_store: GraphStore | None = None,
                        options: dict[str, Any] | None = None, report: RetrainReport | None = None) -> Path:
    """This round's dataset via finetune.dataset (the bootstrap pool's training pairs, else offline pairs
    generated in the return style asked for now: ``finetune.bootstrap.refresh_offline``; teacher data when
    reviewed; approved feedback) in ``<home>/datasets/<graph>``; returns the folder. When the offline pairs
    were generated, ``report.pool`` says so."""
    spec = BuildSpec.for_retrain(settings, settings.graph, **(options or {}))
    if not spec.offline and spec.auto_offline_n > 0:  # no bootstrap pool: the round's own pairs
        store = open_graph(settings, settings.graph) if graph_store is None else graph_store
        try:
            path, generated = refresh_offline(settings, store, spec.auto_offline_n, spec.seed)
        finally:
            if graph_store is None:
                store.close()
        spec = replace(spec, offline=[path], auto_offline_n=0)
        if report is not None and generated:
            report.pool = generated
    summary = build_dataset(settings, spec, graph_store=graph_store)
    log.info("dataset built in %s: %s", summary.out_dir, summary.counts)
    return Path(summary.out_dir)


def _no_heldout_note(dataset: dict[str, Any], live: AdapterRef | None) -> str:
    """The one line a round without held-out questions ends with: why there are none, and that nothing was
    trained and the live model stays."""
    split = (dataset.get("summary") or {}).get("split") or {}
    groups, least = split.get("groups"), split.get("min_groups")
    if groups is not None and least is not None and groups < least:
        why = (f"the data holds {groups} distinct question/query group(s), fewer than the {least} a held-out "
               "split needs; generate more pairs (`cypherloop bootstrap --pairs N`) or approve more "
               "corrections")
    else:
        why = "heldout.jsonl is empty"
    return (f"no held-out questions for the gate ({why}): nothing trained, "
            f"{live.version if live else 'the base model'} stays live")


def dataset_counts(folder: Path) -> dict[str, Any]:
    """Counts per split (and summary.json's details when present) for the report."""
    counts = {split: count_jsonl(folder / name) for split, name in FILES.items()}
    out: dict[str, Any] = {"dir": str(folder), "counts": counts}
    summary = folder / "summary.json"
    if summary.is_file():
        with contextlib.suppress(json.JSONDecodeError):
            out["summary"] = json.loads(summary.read_text())
    return out


# ---------------------------------------------------------------------- report
def write_report(settings: Settings, report: RetrainReport) -> Path:
    """report.json + report.md (+ a copy of loss.png) in
    ``<home>/reports/<time>-<graph>-<version|status>/``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(report.started_at))
    folder = settings.path("reports", f"{stamp}-{report.graph}-{report.version or report.status}")
    folder.mkdir(parents=True, exist_ok=True)
    report.report_dir = str(folder)
    if report.loss_plot and Path(report.loss_plot).is_file():
        shutil.copy2(report.loss_plot, folder / "loss.png")
        report.loss_plot = str(folder / "loss.png")
    atomic_write_text(folder / "report.json", json.dumps(asdict(report), indent=2, default=str))
    atomic_write_text(folder / "report.md", report_markdown(report))
    return folder


def _pct(x: Any) -> str:
    return "–" if x is None else f"{x:.1%}"


def report_markdown(r: RetrainReport) -> str:
    """The human-readable report."""
    lines = [f"# Retraining report: {r.graph} / {r.recipe}", ""]
    lines.append(f"- **Status:** {r.status}" + (f" — {r.message}" if r.message else ""))
    if r.error:
        lines.append(f"- **Error:** {r.error}")
    if r.pool:
        lines.append(f"- **Pool:** {r.pool['message']}")
    lines.append(f"- **Started:** {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.started_at))}; "
                 f"**took:** {((r.finished_at or time.time()) - r.started_at):.0f} s")
    bare = "the base model (no adapter)"
    lines.append(f"- **Version:** {r.version or '–'}; **live before:** {r.active_before or bare}; "
                 f"**live after:** {r.active_after or bare}")
    counts = r.dataset.get("counts", {})
    if counts:
        by_source = (r.dataset.get("summary") or {}).get("by_source") or {}
        lines += ["", "## Data", "", "| split | examples | by source |", "|---|---:|---|"]
        for split, n in counts.items():
            src = by_source.get(split) if isinstance(by_source, dict) else None
            src_text = ", ".join(f"{k} {v}" for k, v in src.items()) if isinstance(src, dict) else ""
            lines.append(f"| {split} | {n} | {src_text} |")
    m = r.train.get("metrics") or {}
    if m:
        lines += [
            "",
            "## Training",
            "",
            f"- steps {m.get('global_step')} ({m.get('n_train')} train / {m.get('n_eval')} eval examples), "
            f"train loss {m.get('train_loss') and round(m['train_loss'], 4)}, eval loss "
            f"{m.get('eval_loss') and round(m['eval_loss'], 4)}",
            f"- {m.get('tokens_per_second')} tokens/s, {m.get('samples_per_second')} samples/s, "
            f"{m.get('train_seconds')} s, "
            f"peak memory {m.get('peak_memory_gb')} GB ({m.get('device')}, "
            f"{m.get('quantization') or 'no 4-bit'}, {m.get('dtype')})",
        ]
        if r.train.get("resumed_from"):
            lines.append(f"- resumed from {r.train['resumed_from']}")
    if r.loss_plot:
        lines += ["", "![loss](loss.png)"]
    g = r.gate
    if g:
        lines += ["", "## Gate", "", f"**{g.get('decision')}** — {g.get('reason')}", "",
                  "| set | live (before) | candidate (after) | n |", "|---|---:|---:|---:|"]
        for name in ("heldout", "regression"):
            c, a = (g.get("candidate") or {}).get(name), (g.get("active") or {}).get(name)
            if c or a:
                lines.append(
                    f"| {name} | {_pct(a and a['accuracy'])} | {_pct(c and c['accuracy'])} | {(c or a)['n']} "
                    "|"
                )
        lines.append("")
        lines.append(f"Margin {g.get('margin')}; evaluation settings {g.get('settings')}.")
    return "\n".join(lines) + "\n"


def round_estimate(home: Path, graph: str, recipe: str) -> str:
    """What to expect before a round starts: how long the last finished round of this recipe on this graph
    took (its report), or that the training bar will show an ETA."""
    finished = (Outcome.PROMOTED, Outcome.REJECTED, Outcome.TRAINED)
    for r in list_reports(home):
        if (r.get("graph"), r.get("recipe")) == (graph, recipe) and read_outcome(r.get("status")) in finished:
            took = float(r.get("finished_at") or 0) - float(r.get("started_at") or 0)
            if took > 0:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started_at"]))
                return f"the last {recipe} round on {graph} ({when}) took {took / 60:.0f} min; expect as long"
    return (f"no earlier {recipe} round on {graph} to go by: on a 2-core CPU a tiny-cpu round takes about a "
            "quarter of an hour (building the data, training, the gate asking both models); the training bar "
            "shows its ETA")


def list_reports(home: Path) -> list[dict[str, Any]]:
    """Every report.json under ``<home>/reports``, newest first (for the UI's Training tab)."""
    out = []
    for f in sorted((Path(home) / "reports").glob("*/report.json"), reverse=True):
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return out
