"""One retraining round: build dataset → train → evaluate → gate → promote, under a lock, with a report.

    cypherloop retrain --graph demo --recipe tiny-cpu

Only one round runs at a time per home (``<home>/locks/retrain.lock``): a second one waits (``wait=True``,
optionally up to ``lock_timeout`` seconds) or stops at once with ``LockBusy`` (``wait=False``).
Training goes to a run folder named after the graph, recipe and dataset hash, so a killed round
resumes its training when started again. The candidate becomes a registry version only when it is
complete, with the gate's decision in its meta.json, and ACTIVE changes only if the gate says so.
The report (``<home>/reports/<time>-<graph>-<version>/report.json``, ``report.md``, ``loss.png``)
holds the data counts, the loss curve, before/after accuracy and the decision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.adapters import atomic_write_text
from agent.errors import CypherloopError, LockBusy
from finetune.config import Recipe, load_recipe

log = logging.getLogger("cypherloop.retrain")

# (settings, adapter folder or None) -> generator factory; tests pass scripted ones
GeneratorFactoryMaker = Callable[[Any, "Path | None"], Callable[[], Any]]


@dataclass
class RetrainReport:
    """What one round did (report.json)."""

    graph: str
    recipe: str
    status: str = "running"
    """promoted | rejected | trained (not promoted on request) | skipped (same data and recipe as a version) | failed"""
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    active_before: str | None = None
    active_after: str | None = None
    report_dir: str | None = None
    loss_plot: str | None = None
    error: str | None = None
    message: str = ""


# ---------------------------------------------------------------------- the lock
@contextmanager
def retrain_lock(home: Path, wait: bool = True, timeout: float | None = None) -> Iterator[None]:
    """Hold ``<home>/locks/retrain.lock``: wait (forever or ``timeout`` s) or fail at once with LockBusy."""
    from filelock import FileLock, Timeout

    path = Path(home) / "locks" / "retrain.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = path.with_suffix(".owner.json")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=(-1 if timeout is None else timeout) if wait else 0)
    except Timeout:
        who = ""
        try:
            info = json.loads(owner.read_text())
            who = f" (pid {info.get('pid')}, since {time.strftime('%H:%M:%S', time.localtime(info.get('since', 0)))})"
        except (OSError, json.JSONDecodeError):
            pass
        raise LockBusy(f"another retrain is running{who}; try later or wait for it (--wait)") from None
    try:
        atomic_write_text(owner, json.dumps({"pid": os.getpid(), "since": time.time()}))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def retrain_running(home: Path) -> bool:
    """True while some process holds the retrain lock (for the UI)."""
    from filelock import FileLock, Timeout

    path = Path(home) / "locks" / "retrain.lock"
    if not path.exists():
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


# ---------------------------------------------------------------------- the round
def retrain(
    settings: Any,
    graph: str | None = None,
    recipe: str | Path | Recipe = "tiny-cpu",
    *,
    overrides: Sequence[str] = (),
    dataset_dir: Path | str | None = None,
    dataset_options: dict[str, Any] | None = None,
    promote: bool = True,
    force: bool = False,
    margin: float | None = None,
    wait: bool = True,
    lock_timeout: float | None = None,
    graph_store: Any | None = None,
    generator_factory: GeneratorFactoryMaker | None = None,
    device: str | None = None,
) -> RetrainReport:
    """Run one round (see the module doc). Returns the report; raises LockBusy when another round holds the lock.

    ``dataset_dir``: use this built dataset instead of building one (train.jsonl, heldout.jsonl,
    feedback_regression.jsonl); ``dataset_options``: BuildSpec fields for the build (e.g. auto_offline_n). ``margin``: overrides the recipe's gate margin. ``force``: train even
    when a version with the same dataset hash and recipe exists. ``generator_factory``: how the gate
    builds a generator for an adapter folder (default: the local transformers generator).
    """
    graph = graph or settings.graph
    settings = settings.model_copy(update={"graph": graph})
    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    with retrain_lock(settings.home_dir, wait=wait, timeout=lock_timeout):
        report = RetrainReport(graph=graph, recipe=rec.name)
        try:
            _round(settings, rec, report, dataset_dir, dataset_options, promote, force, margin, graph_store, generator_factory, device)
        except CypherloopError as e:
            report.status, report.error = "failed", str(e)
            raise
        except Exception as e:  # noqa: BLE001 - recorded, then re-raised for the caller
            report.status, report.error = "failed", f"{type(e).__name__}: {e}"
            raise
        finally:
            report.finished_at = time.time()
            write_report(settings, report)
        return report


def _round(settings, rec, report, dataset_dir, dataset_options, promote, force, margin, graph_store, generator_factory, device) -> None:
    from finetune.registry import AdapterRegistry

    registry = AdapterRegistry(settings.home_dir)
    report.active_before = report.active_after = registry.active()
    own_store = graph_store is None
    store = _open_graph(settings) if own_store else graph_store
    try:
        _steps(settings, rec, report, registry, store, dataset_dir, dataset_options, promote, force, margin, generator_factory, device)
    finally:
        if own_store:
            store.close()


def _steps(settings, rec, report, registry, store, dataset_dir, dataset_options, promote, force, margin, generator_factory, device) -> None:
    from agent.models.local import base_display_name
    from finetune import gate as gatemod
    from finetune.train import read_records, resolve_base_model, train

    # 1. Dataset: built from the graph (offline generator + approved feedback) unless one is given.
    data_dir = Path(dataset_dir) if dataset_dir else build_round_dataset(settings, store, dataset_options)
    report.dataset = dataset_counts(data_dir)
    log.info("dataset %s: %s", data_dir, report.dataset.get("counts"))

    # 2. Train (resumes a killed round: the run folder is named after graph, recipe and data).
    _, data_hash = read_records(data_dir / "train.jsonl")
    report.dataset["hash"] = data_hash
    base_dir = resolve_base_model(settings, rec.model.base)
    base_name = base_display_name(rec.model.base or settings.base_model)
    same = [m for m in registry.list() if m.get("dataset_hash") == data_hash and m.get("recipe_fingerprint") == rec.fingerprint()
            and m.get("base_model") == base_name]
    if same and not force:
        report.status, report.version = "skipped", same[-1]["version"]
        report.message = f"{same[-1]['version']} was trained on the same data with the same recipe; nothing to do (use --force)"
        log.info(report.message)
        return
    run_dir = settings.path("runs", f"{settings.graph}-{rec.name}-{rec.fingerprint()[:8]}-{data_hash[:8]}")
    result = train(rec, data_dir=data_dir, output_dir=run_dir, base_model=base_dir, device=device or _train_device(settings))
    report.train = {"run_dir": result.output_dir, "metrics": result.metrics, "resumed_from": result.resumed_from}
    report.loss_plot = result.loss_plot

    # 3. Evaluate and gate: candidate vs the live adapter (or the base model) on held-out + feedback regression.
    g = rec.gate
    eval_settings = gatemod.gate_settings(settings.model_copy(update={"base_model": str(base_dir)}), g.max_attempts, g.max_new_tokens)
    heldout = gatemod.load_questions(data_dir / "heldout.jsonl", g.max_heldout)
    regression = gatemod.load_questions(data_dir / "feedback_regression.jsonl", g.max_regression)
    active = registry.active()
    make = generator_factory or gatemod.adapter_generator
    decision = gatemod.run_gate(
        make(eval_settings, Path(result.adapter_dir)),
        make(eval_settings, registry.path(active) if active else _shipped_path(base_name)),
        store,
        heldout,
        regression,
        settings=eval_settings,
        margin=g.margin if margin is None else margin,
        active_version=active,
        score_cache=settings.path("cache", "gate_scores.json"),
        active_cache_id=f"{base_name}+{active or 'base'}" if generator_factory is None else None,
    )
    report.gate = decision.to_dict()

    # 4. Register the complete candidate (with its decision), then promote if the gate allows.
    meta = {
        "graph": settings.graph,
        "base_model": base_name,
        "base_model_path": str(base_dir),
        "recipe": rec.name,
        "recipe_fingerprint": rec.fingerprint(),
        "recipe_config": rec.to_dict(),
        "dataset_hash": data_hash,
        "dataset": report.dataset,
        "metrics": result.metrics,
        "eval": {side: {k: (asdict(v) if v else None) for k, v in getattr(decision, side).items()} for side in ("candidate", "active")},
        "gate": {"decision": decision.decision, "reason": decision.reason, "margin": decision.margin, "active_version": active,
                 "heldout": _acc(decision.candidate.get("heldout")), "regression": _acc(decision.candidate.get("regression")),
                 "active_heldout": _acc(decision.active.get("heldout")), "active_regression": _acc(decision.active.get("regression"))},
        "heldout_accuracy": _acc(decision.candidate.get("heldout")),
        "regression_accuracy": _acc(decision.candidate.get("regression")),
        "loss_plot": "loss.png" if result.loss_plot else None,
        "run_dir": result.output_dir,
        "prompt_version": _prompt_version(),
    }
    extra = {"loss.png": Path(result.loss_plot) if result.loss_plot else None, "loss.jsonl": Path(result.loss_log)}
    version = registry.add(result.adapter_dir, meta, extra_files={k: v for k, v in extra.items() if v})
    report.version = version
    if decision.promote and promote:
        registry.promote(version, reason=f"gate: {decision.reason}")
        report.status = "promoted"
    elif decision.promote:
        report.status = "trained"
        registry.update_meta(version, status="approved_not_promoted")
    else:
        report.status = "rejected"
        registry.update_meta(version, status="rejected")
    report.active_after = registry.active()
    report.message = f"{version}: {decision.decision} ({decision.reason})"
    log.info(report.message)


def default_recipe() -> str:
    """The recipe a plain ``cypherloop retrain`` uses: fast-gpu on a CUDA machine, tiny-cpu elsewhere."""
    try:
        import torch

        return "fast-gpu" if torch.cuda.is_available() else "tiny-cpu"
    except ImportError:  # pragma: no cover - training needs torch anyway
        return "tiny-cpu"


def retrain_once(settings: Any, recipe: str | None = None) -> RetrainReport:
    """One round for the UI's Retrain button: the settings' graph, the default recipe, never waits for a lock."""
    return retrain(settings, settings.graph, recipe or default_recipe(), wait=False)


def _shipped_path(base_name: str) -> Path | None:
    """What serves while nothing is promoted: the adapter shipped for a packaged base (else the base itself)."""
    from agent.adapters import shipped_adapter

    shipped = shipped_adapter(base_name)
    return shipped.path if shipped else None


def _acc(score: Any) -> float | None:
    return None if score is None else score.accuracy


def _prompt_version() -> str:
    from agent.prompt import PROMPT_VERSION

    return PROMPT_VERSION


def _train_device(settings: Any) -> str:
    d = (settings.device or "auto").lower()
    return "cpu" if d == "cpu" else ("cuda" if d.startswith("cuda") else "auto")


def _open_graph(settings: Any) -> Any:
    from agent.graphdb import open_graph

    return open_graph(settings, settings.graph)


# ---------------------------------------------------------------------- dataset
def build_round_dataset(settings: Any, graph_store: Any = None, options: dict[str, Any] | None = None) -> Path:
    """This round's dataset via finetune.dataset (offline pairs generated once, teacher data when reviewed,
    approved feedback) in ``<home>/datasets/<graph>``; returns the folder."""
    from finetune.dataset import BuildSpec, build_dataset

    spec = BuildSpec.for_retrain(settings, settings.graph, **(options or {}))
    summary = build_dataset(settings, spec, graph_store=graph_store)
    log.info("dataset built in %s: %s", summary.out_dir, summary.counts)
    return Path(summary.out_dir)


def dataset_counts(folder: Path) -> dict[str, Any]:
    """Counts per split (and summary.json's details when present) for the report."""
    counts = {}
    for name in ("train", "heldout", "feedback_regression"):
        f = folder / f"{name}.jsonl"
        counts[name] = sum(1 for line in f.read_text().splitlines() if line.strip()) if f.is_file() else 0
    out: dict[str, Any] = {"dir": str(folder), "counts": counts}
    summary = folder / "summary.json"
    if summary.is_file():
        with contextlib.suppress(json.JSONDecodeError):
            out["summary"] = json.loads(summary.read_text())
    return out


# ---------------------------------------------------------------------- report
def write_report(settings: Any, report: RetrainReport) -> Path:
    """report.json + report.md (+ a copy of loss.png) in ``<home>/reports/<time>-<graph>-<version|status>/``."""
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
    lines.append(f"- **Started:** {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.started_at))}; "
                 f"**took:** {((r.finished_at or time.time()) - r.started_at):.0f} s")
    lines.append(f"- **Version:** {r.version or '–'}; **live before:** {r.active_before or 'base model'}; **live after:** {r.active_after or 'base model'}")
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
        lines += ["", "## Training", "",
                  f"- steps {m.get('global_step')} ({m.get('n_train')} train / {m.get('n_eval')} eval examples), "
                  f"train loss {m.get('train_loss') and round(m['train_loss'], 4)}, eval loss {m.get('eval_loss') and round(m['eval_loss'], 4)}",
                  f"- {m.get('tokens_per_second')} tokens/s, {m.get('samples_per_second')} samples/s, {m.get('train_seconds')} s, "
                  f"peak memory {m.get('peak_memory_gb')} GB ({m.get('device')}, {m.get('quantization') or 'no 4-bit'}, {m.get('dtype')})"]
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
                lines.append(f"| {name} | {_pct(a and a['accuracy'])} | {_pct(c and c['accuracy'])} | {(c or a)['n']} |")
        lines.append("")
        lines.append(f"Margin {g.get('margin')}; evaluation settings {g.get('settings')}.")
    return "\n".join(lines) + "\n"


def list_reports(home: Path) -> list[dict[str, Any]]:
    """Every report.json under ``<home>/reports``, newest first (for the UI's Training tab)."""
    out = []
    for f in sorted((Path(home) / "reports").glob("*/report.json"), reverse=True):
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return out
