"""The Training tab: dataset counts, the live adapter, versions with scores, loss and accuracy plots,
retrain / bootstrap / promote / rollback.

Versions and their numbers come from the registry (``finetune.registry.AdapterRegistry.summaries``: the
fields retrain and bootstrap write into each ``meta.json``); the shipped adapter is listed while it
serves. Loss curves are drawn from each version's ``loss.jsonl`` (matplotlib, at the figure's own
aspect ratio), accuracy from the gate's held-out scores. The buttons go through ``TrainingHooks``:

- Retrain: ``finetune.retrain.retrain_once(settings)`` in a background thread (one at a time); its
  ``RetrainReport`` (status, version, message, error) is shown. ``retrain_running(home)`` tells the tab
  a round runs elsewhere (scheduler, CLI).
- Bootstrap: ``cypherloop bootstrap --graph G`` as a child process (it trains for minutes and must not
  hold the app's interpreter); its progress is ``<home>/bootstrap/<graph>/progress.json``, its output
  ``ui-run.log`` beside it.
- The status names how the graph's bootstrap pool returns entities (``pool_status``), and when a retrain
  round or a bootstrap generated it again because the return style asked for changed; before a round, that
  the next one will (``restyle_note``: the pool, or a graph's own offline pairs when it has no pool).
- Promote / Rollback: ``AdapterRegistry(settings.home_dir).promote(version)`` / ``.rollback()``; the tab
  then names the live adapter (``agent.core.adapters.live_adapter``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import SecretStr

from agent.core.adapters import SHIPPED_PREFIX, describe, live_adapter, version_dirs
from agent.core.feedback import FeedbackStore
from agent.core.settings import Settings
from finetune.bootstrap import coming_restyle
from finetune.lock import retrain_running
from finetune.registry import AdapterRegistry
from finetune.retrain import RetrainReport, retrain_once
from finetune.train import LOSS_LOG, read_loss_log

_SCALARS = (str, int, float, bool)
VERSION_COLUMNS = ["live", "version", "created", "status", "gate", "heldout", "heldout_before", "train_loss",
                   "recipe"]
VERSION_WIDTHS = ["6%", "14%", "14%", "9%", "8%", "8%", "10%", "9%", "22%"]
BOOTSTRAP_LOG = "ui-run.log"
STYLES: tuple[str, ...] = get_args(Settings.model_fields["return_style"].annotation)
STYLE_CHOICES = [("names (France, Spain)", "names"), ("whole records", "nodes"),
                 ("as public text2cypher data (mixed)", "mixed"),
                 ("as my approved corrections (auto)", "auto")]
"""The bootstrap's ``--return-style`` choices, in words."""


def adapter_versions(home: Path) -> list[dict[str, Any]]:
    """One row per registry version (``AdapterRegistry.summaries``), oldest first."""
    return AdapterRegistry(home).summaries()


def versions_table(home: Path, base_model: str) -> list[dict[str, Any]]:
    """The registry's versions, with the shipped adapter first while it is the live one."""
    rows = adapter_versions(home)
    live = live_adapter(home, base_model)
    if live is not None and live.version.startswith(SHIPPED_PREFIX):
        rows.insert(0, {"live": True, "version": live.version, "status": "shipped", "recipe": "shipped with "
                        "cypherloop (see its TRAINING.md)"})
    return rows


def _figure(width: float = 6.4, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.grid(alpha=0.3)
    return fig, ax


def loss_figure(home: Path) -> Any | None:
    """Training loss against the step, one line per version with a ``loss.jsonl``; None when none has."""
    curves = []
    for version in version_dirs(home):
        recs = read_loss_log(version / LOSS_LOG)
        points = sorted((r["step"], r["loss"]) for r in recs if "loss" in r and "step" in r)
        if points:
            curves.append((version.name, points))
    if not curves:
        return None
    fig, ax = _figure()
    for name, points in curves:
        ax.plot([s for s, _ in points], [v for _, v in points], label=name, linewidth=1.5)
    ax.set(xlabel="step", ylabel="training loss", title="Training loss per version")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def accuracy_points(rows: list[dict[str, Any]]) -> list[tuple[str, float, float | None]]:
    """(version, held-out accuracy, the live adapter's on the same questions) for every scored version."""
    return [(r["version"], float(r["heldout"]), r.get("heldout_before"))
            for r in rows if isinstance(r.get("heldout"), (int, float))]


def accuracy_figure(rows: list[dict[str, Any]]) -> Any | None:
    """Held-out accuracy per version (and the adapter it was gated against); None before any is scored."""
    points = accuracy_points(rows)
    if not points:
        return None
    fig, ax = _figure()
    xs = list(range(len(points)))
    ax.plot(xs, [100 * a for _, a, _ in points], marker="o", label="version")
    before = [(x, 100 * b) for x, (_, _, b) in zip(xs, points, strict=True) if isinstance(b, (int, float))]
    if before:
        ax.plot([x for x, _ in before], [b for _, b in before], marker="x", linestyle="none",
                label="live adapter on the same questions")
    ax.set_xticks(xs, [v for v, _, _ in points])
    ax.set(ylabel="held-out accuracy (%)", title="Accuracy per version", ylim=(0, 100))
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _describe(result: RetrainReport | dict[str, Any] | None) -> str:
    """One line for what a retrain returned."""
    if result is None:
        return "done"
    data = asdict(result) if is_dataclass(result) else dict(result)
    if data.get("message") or data.get("error"):
        head = ", ".join(f"{k}: {data[k]}" for k in ("status", "version") if data.get(k))
        return "; ".join(x for x in (head, data.get("message"), data.get("error")) if x)
    return ", ".join(f"{k}: {v}" for k, v in data.items() if isinstance(v, _SCALARS) or v is None) or "done"


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment variables that give them to a child ``cypherloop`` process."""
    env = {}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        alias = info.validation_alias
        key = alias.choices[0] if alias is not None else f"CYPHERLOOP_{name.upper()}"
        if name == "home":
            value = settings.home_dir
        env[str(key)] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


def bootstrap_progress(home: Path, graph: str) -> str:
    """The bootstrap's state in words, from its ``progress.json`` / ``report.json``; "" when none ran."""
    folder = Path(home) / "bootstrap" / graph
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        report = None
    try:
        p = json.loads((folder / "progress.json").read_text())
    except (OSError, json.JSONDecodeError):
        p = None
    if p is None:
        return ""
    finished = report is not None and report.get("status") != "running"
    if finished and (folder / "report.json").stat().st_mtime >= (folder / "progress.json").stat().st_mtime:
        return f"Bootstrap of `{graph}`: {report['status']}: {report.get('message', '')}"
    when = time.strftime("%H:%M:%S", time.localtime(p.get("at", 0)))
    return (f"Bootstrap of `{graph}`: stage {p.get('stage_no')}/{p.get('stages')} **{p.get('stage')}** "
            f"{float(p.get('fraction', 0)):.0%} ({p.get('message') or 'working'}; at {when})")


def pool_status(home: Path, graph: str) -> str:
    """How the graph's bootstrap pool returns entities and why, and whether a run generated (or generates) it
    again in another style, from ``<home>/bootstrap/<graph>/state.json``; "" before any pool."""
    try:
        state = json.loads((Path(home) / "bootstrap" / graph / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return ""
    stages, plan = state.get("stages", {}), state.get("plan", {})
    restyled = state.get("restyled") or {}
    if restyled.get("run_id") != state.get("run_id"):
        restyled = {}
    if restyled and not stages.get("build", {}).get("done"):
        return (f"Pool of `{graph}`: being generated again with entities returned as {restyled['wanted']} "
                f"({restyled['why']}); the {restyled['had']} one serves and trains until then.")
    generated = stages.get("generate", {})
    if not generated.get("done"):
        return ""
    style = generated.get("return_style") or plan.get("return_style", "mixed")
    flag = plan.get("return_style_flag")
    why = plan.get("return_style_reason") or (f"--return-style {flag}" if flag else
                                              "the return_style setting")
    text = f"Pool of `{graph}`: entities returned as {style} ({why})"
    if restyled:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(restyled.get("at", 0)))
        text += f"; generated again on {when}, instead of {restyled['had']}"
    return text + "."


def restyle_note(settings: Settings) -> str:
    """What the next retrain round generates again first because the return style asked for changed
    (``finetune.bootstrap.coming_restyle``); "" when nothing, or when that cannot be told now."""
    try:
        return coming_restyle(settings, settings.graph)
    except Exception:  # noqa: BLE001 - a status hint only; the round's report says what it did
        return ""


class TrainingHooks:
    """The Training tab's buttons."""

    def __init__(self, settings: Settings, retrain_fn: Callable[[Settings], Any] | None = None,
                 bootstrap_cmd: Callable[[Settings, float], list[str]] | None = None) -> None:
        self.settings = settings
        self.retrain_fn = retrain_fn or retrain_once
        self.bootstrap_cmd = bootstrap_cmd or _bootstrap_cmd
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.retrain_status = "idle"
        self._bootstrap: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return Path(self.settings.home_dir)

    def registry(self) -> AdapterRegistry:
        return AdapterRegistry(self.home, self.settings)

    def live(self) -> str:
        """The adapter that serves now, in words."""
        return describe(live_adapter(self.home, self.settings.base_model))

    def retrain(self) -> str:
        """Start one retrain run in the background; returns a status line."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return f"A retrain is already running ({self.retrain_status})."
            coming = restyle_note(self.settings)
            self.retrain_status = f"running since {time.strftime('%H:%M:%S')}"
            self._thread = threading.Thread(target=self._run_retrain, name="cypherloop-retrain", daemon=True)
            self._thread.start()
        return (f"Retrain started ({self.retrain_status}); press Refresh to follow it."
                + (f" {coming[0].upper()}{coming[1:]}." if coming else ""))

    def _run_retrain(self) -> None:
        try:
            result = self.retrain_fn(self.settings)
            self.retrain_status = f"finished at {time.strftime('%H:%M:%S')}: {_describe(result)}"
        except Exception as e:  # noqa: BLE001 - shown in the tab, never a traceback
            self.retrain_status = f"failed at {time.strftime('%H:%M:%S')}: {e}"

    def retrain_busy(self) -> bool:
        """A round runs (from this tab, or elsewhere: scheduler, CLI)."""
        return (self._thread is not None and self._thread.is_alive()) or self.running_elsewhere()

    def running_elsewhere(self) -> bool:
        """A round holds the retrain lock but not from this tab."""
        if self._thread is not None and self._thread.is_alive():
            return False
        if self.bootstrap_running():
            return False
        try:
            return retrain_running(self.home)
        except Exception:  # noqa: BLE001 - a status hint only
            return False

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running retrain (and a bootstrap started here) ends (tests)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self._bootstrap is not None:
            self._bootstrap.wait(timeout)

    # --- bootstrap --------------------------------------------------------------------------------------
    def bootstrap_running(self) -> bool:
        return self._bootstrap is not None and self._bootstrap.poll() is None

    def bootstrap(self, budget_minutes: float | None, return_style: str | None = None) -> str:
        """Start ``cypherloop bootstrap`` for the settings' graph as a child process (with ``--return-style``
        when one is chosen); returns a status line."""
        minutes = float(budget_minutes or 0)
        if minutes < 1:
            return "Give the bootstrap a budget of at least 1 minute."
        if return_style and return_style not in STYLES:
            return f"Choose how answers list things: one of {', '.join(STYLES)}."
        extra = ["--return-style", return_style] if return_style else []
        with self._lock:
            if self.bootstrap_running():
                return "A bootstrap is already running; press Refresh to follow it."
            if self._thread is not None and self._thread.is_alive():
                return "A retrain is running; start the bootstrap when it has finished."
            folder = self.home / "bootstrap" / self.settings.graph
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / BOOTSTRAP_LOG).open("wb") as out:
                self._bootstrap = subprocess.Popen(
                    self.bootstrap_cmd(self.settings, minutes) + extra, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env={**os.environ, **settings_env(self.settings)},
                )
        return (f"Bootstrap of `{self.settings.graph}` started (budget {minutes:g} min); press Refresh to "
                "follow it.")

    def bootstrap_status(self) -> str:
        """Progress of the graph's bootstrap, and how a run started here ended."""
        text = bootstrap_progress(self.home, self.settings.graph)
        proc = self._bootstrap
        if proc is not None and proc.poll() not in (None, 0):
            log = self.home / "bootstrap" / self.settings.graph / BOOTSTRAP_LOG
            try:
                lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
            except OSError:
                lines = []
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            text = (text + "\n\n" if text else "") + f"⚠️ The bootstrap stopped: {last} (log: {log})"
        elif self.bootstrap_running() and not text:
            text = f"Bootstrap of `{self.settings.graph}`: starting…"
        return text

    # --- registry ---------------------------------------------------------------------------------------
    def promote(self, version: str | None) -> str:
        if not version:
            return "Choose a version to promote."
        try:
            promoted = self.registry().promote(version, reason="ui")
            return f"Promoted {promoted}: the agent follows it from the next question."
        except Exception as e:  # noqa: BLE001
            return f"Promote failed: {e}"

    def rollback(self) -> str:
        try:
            self.registry().rollback(reason="ui")
        except Exception as e:  # noqa: BLE001
            return f"Rollback failed: {e}"
        return f"Rolled back: {self.live()} is live."


def _bootstrap_cmd(settings: Settings, minutes: float) -> list[str]:
    return [sys.executable, "-m", "ui.cli", "bootstrap", "--graph", settings.graph, "--quiet",
            "--budget-minutes", f"{minutes:g}"]


def training_view(hooks: TrainingHooks, store: FeedbackStore | None) -> tuple[Any, ...]:
    """What the tab shows now, in the order of ``build_training_tab``'s outputs: the store's counts, the
    versions table, the live adapter, the two plots, the no-plots note, the version choices, the bootstrap's
    and the retrain's status."""
    import gradio as gr
    import matplotlib.pyplot as plt
    import pandas as pd

    try:
        counts = store.counts() if store is not None else {"no feedback store": 0}
        counts_df = pd.DataFrame({"what": list(counts), "count": list(counts.values())})
    except Exception as e:  # noqa: BLE001
        counts_df = pd.DataFrame({"what": [f"feedback store unavailable: {e}"], "count": [0]})
    rows = versions_table(hooks.home, hooks.settings.base_model)
    cells = [["✅" if c == "live" and r.get(c) else "" if c == "live" or r.get(c) is None else
              round(r[c], 4) if isinstance(r[c], float) else r[c] for c in VERSION_COLUMNS] for r in rows]
    versions_df = pd.DataFrame(cells, columns=VERSION_COLUMNS)
    choices = [r["version"] for r in rows if not r["version"].startswith(SHIPPED_PREFIX)]
    live = f"**Live adapter:** {hooks.live()}"
    status = f"Retrain: {hooks.retrain_status}."
    if hooks.running_elsewhere():
        status += " A retrain round is running (scheduler or CLI)."
    pool = pool_status(hooks.home, hooks.settings.graph)
    if pool:
        status += f"\n\n{pool}"
    coming = "" if hooks.retrain_busy() else restyle_note(hooks.settings)
    if coming:
        status += f"\n\nℹ️ {coming[0].upper()}{coming[1:]}."
    loss, accuracy = loss_figure(hooks.home), accuracy_figure(rows)
    plots = []
    for fig in (loss, accuracy):
        plots.append(gr.update(value=fig, visible=fig is not None))
        if fig is not None:
            plt.close(fig)  # out of pyplot's registry; Gradio still saves the Figure object itself
    empty = "" if loss is not None or accuracy is not None else (
        "No loss or accuracy yet: the plots appear after the first retrain or bootstrap.")
    return (
        counts_df,
        versions_df,
        live,
        *plots,
        empty,
        gr.update(choices=choices, value=choices[-1] if choices else None),
        hooks.bootstrap_status(),
        status,
    )


def build_training_tab(
    hooks: TrainingHooks, store: FeedbackStore | None
) -> tuple[Callable[[], tuple[Any, ...]], list[Any]]:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab``; returns (refresh function, its
    outputs)."""
    import gradio as gr

    def view() -> tuple[Any, ...]:
        return training_view(hooks, store)

    gr.Markdown(
        "Verified examples enter training once approved (Review tab). **Retrain now** trains on them (and "
        "the graph's generated pairs); **Bootstrap** makes a new graph answerable from scratch (generates "
        "pairs, fine-tunes, indexes them for retrieval). Versions, scores and curves: `<home>/adapters`."
    )
    live = gr.Markdown(elem_id="training-live")
    with gr.Row():
        counts = gr.Dataframe(label="Dataset (feedback store)", elem_id="training-counts", interactive=False,
                              scale=1)
        versions = gr.Dataframe(label="Adapter versions", elem_id="training-versions", interactive=False,
                                wrap=True, column_widths=VERSION_WIDTHS, scale=3)
    empty = gr.Markdown(elem_id="training-empty")
    with gr.Row():
        loss = gr.Plot(label="Loss curves", elem_id="training-loss", visible=False, format="png")
        accuracy = gr.Plot(label="Accuracy per version", elem_id="training-accuracy", visible=False,
                           format="png")
    with gr.Row():
        version = gr.Dropdown(
            label="Version", choices=[], elem_id="training-version", allow_custom_value=True
        )
        promote = gr.Button("Promote", elem_id="training-promote")
        rollback = gr.Button("Roll back", elem_id="training-rollback")
        retrain = gr.Button("Retrain now", variant="primary", elem_id="training-retrain")
        refresh = gr.Button("Refresh", elem_id="training-refresh")
    with gr.Row():
        budget = gr.Number(value=30, minimum=1, label="Bootstrap budget (minutes)",
                           elem_id="bootstrap-budget", scale=1)
        style = gr.Dropdown(label="Answers list what they find as", choices=STYLE_CHOICES,
                            value=hooks.settings.return_style, elem_id="bootstrap-return-style", scale=1,
                            info="Which countries border France? → their names, or whole records. Choose "
                                 "what your users expect: the wrong one cost 8-19 points of accuracy.")
        start_bootstrap = gr.Button("Bootstrap this graph", elem_id="training-bootstrap", scale=1)
        bootstrap_status = gr.Markdown(elem_id="bootstrap-status")
    status = gr.Markdown(elem_id="training-status")
    outputs = [counts, versions, live, loss, accuracy, empty, version, bootstrap_status, status]

    def after(message: str) -> tuple[Any, ...]:
        *rest, _ = view()
        return (*rest, message)

    refresh.click(view, outputs=outputs)
    promote.click(lambda v: after(hooks.promote(v)), inputs=[version], outputs=outputs)
    rollback.click(lambda: after(hooks.rollback()), outputs=outputs)
    retrain.click(lambda: after(hooks.retrain()), outputs=outputs)
    start_bootstrap.click(lambda b, r: after(hooks.bootstrap(b, r)), inputs=[budget, style], outputs=outputs)
    return view, outputs
