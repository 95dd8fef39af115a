"""The Training tab: dataset counts, adapter versions with scores and loss curves, retrain / promote /
rollback.

Versions and their numbers come from the registry (``finetune.registry.AdapterRegistry.summaries``: the
fields retrain writes into each ``meta.json``), loss curves from ``<home>/adapters/v*/loss.png``. The
buttons go through ``TrainingHooks``:

- Retrain:  ``finetune.retrain.retrain_once(settings)`` in a background thread (one at a time); its
  ``RetrainReport`` (status, version, message, error) is shown. ``retrain_running(home)`` tells the tab
  a round runs elsewhere (scheduler, CLI).
- Promote / Rollback: ``AdapterRegistry(settings.home_dir).promote(version)`` / ``.rollback()``; the tab
  then names the live adapter (``agent.core.adapters.live_adapter``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from agent.core.adapters import describe, live_adapter, version_dirs
from agent.core.feedback import FeedbackStore
from agent.core.settings import Settings
from finetune.registry import AdapterRegistry
from finetune.retrain import RetrainReport, retrain_once, retrain_running

_SCALARS = (str, int, float, bool)


def adapter_versions(home: Path) -> list[dict[str, Any]]:
    """One row per registry version (``AdapterRegistry.summaries``), oldest first."""
    return AdapterRegistry(home).summaries()


def loss_images(home: Path) -> list[tuple[Any, str]]:
    """(image, caption) for every ``<home>/adapters/v*/loss.png``, oldest version first.

    Images are loaded with PIL (not passed as paths), so the app needs no allowed_paths for the home.
    """
    from PIL import Image

    out = []
    for version in version_dirs(home):
        png = version / "loss.png"
        if not png.is_file():
            continue
        try:
            with Image.open(png) as im:
                out.append((im.copy(), f"{version.name} loss"))
        except OSError:
            continue
    return out


def _describe(result: RetrainReport | dict[str, Any] | None) -> str:
    """One line for what a retrain returned."""
    if result is None:
        return "done"
    data = asdict(result) if is_dataclass(result) else dict(result)
    if data.get("message") or data.get("error"):
        head = ", ".join(f"{k}: {data[k]}" for k in ("status", "version") if data.get(k))
        return "; ".join(x for x in (head, data.get("message"), data.get("error")) if x)
    return ", ".join(f"{k}: {v}" for k, v in data.items() if isinstance(v, _SCALARS) or v is None) or "done"


class TrainingHooks:
    """The Training tab's buttons."""

    def __init__(self, settings: Settings, retrain_fn: Callable[[Settings], Any] | None = None) -> None:
        self.settings = settings
        self.retrain_fn = retrain_fn or retrain_once
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.retrain_status = "idle"

    @property
    def home(self) -> Path:
        return Path(self.settings.home_dir)

    def registry(self) -> AdapterRegistry:
        return AdapterRegistry(self.home)

    def live(self) -> str:
        """The adapter that serves now, in words."""
        return describe(live_adapter(self.home, self.settings.base_model))

    def retrain(self) -> str:
        """Start one retrain run in the background; returns a status line."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return f"A retrain is already running ({self.retrain_status})."
            self.retrain_status = f"running since {time.strftime('%H:%M:%S')}"
            self._thread = threading.Thread(target=self._run_retrain, name="cypherloop-retrain", daemon=True)
            self._thread.start()
        return f"Retrain started ({self.retrain_status}); press Refresh to follow it."

    def _run_retrain(self) -> None:
        try:
            result = self.retrain_fn(self.settings)
            self.retrain_status = f"finished at {time.strftime('%H:%M:%S')}: {_describe(result)}"
        except Exception as e:  # noqa: BLE001 - shown in the tab, never a traceback
            self.retrain_status = f"failed at {time.strftime('%H:%M:%S')}: {e}"

    def running_elsewhere(self) -> bool:
        """A round holds the retrain lock but not from this tab."""
        if self._thread is not None and self._thread.is_alive():
            return False
        try:
            return retrain_running(self.home)
        except Exception:  # noqa: BLE001 - a status hint only
            return False

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running retrain ends (tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

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


def build_training_tab(
    hooks: TrainingHooks, store: FeedbackStore | None
) -> tuple[Callable[[], tuple[Any, ...]], list[Any]]:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab``; returns (refresh function, its
    outputs)."""
    import gradio as gr

    def view() -> tuple[Any, ...]:
        import pandas as pd

        try:
            counts = store.counts() if store is not None else {"no feedback store": 0}
            counts_df = pd.DataFrame({"what": list(counts), "count": list(counts.values())})
        except Exception as e:  # noqa: BLE001
            counts_df = pd.DataFrame({"what": [f"feedback store unavailable: {e}"], "count": [0]})
        rows = adapter_versions(hooks.home)
        versions_df = pd.DataFrame(rows) if rows else pd.DataFrame({"version": [], "status": []})
        choices = [r["version"] for r in rows]
        status = f"Retrain: {hooks.retrain_status}. Live: {hooks.live()}."
        if hooks.running_elsewhere():
            status += " A retrain round is running (scheduler or CLI)."
        return (
            counts_df,
            versions_df,
            loss_images(hooks.home),
            gr.update(choices=choices, value=choices[-1] if choices else None),
            status,
        )

    gr.Markdown(
        "Verified examples enter training once approved (Review tab). Versions, scores and loss curves come "
        "from `<home>/adapters`."
    )
    with gr.Row():
        counts = gr.Dataframe(label="Dataset (feedback store)", elem_id="training-counts", interactive=False)
        versions = gr.Dataframe(label="Adapter versions", elem_id="training-versions", interactive=False)
    gallery = gr.Gallery(label="Loss curves", elem_id="training-loss", columns=3, height="auto")
    with gr.Row():
        version = gr.Dropdown(
            label="Version", choices=[], elem_id="training-version", allow_custom_value=True
        )
        promote = gr.Button("Promote", elem_id="training-promote")
        rollback = gr.Button("Roll back", elem_id="training-rollback")
        retrain = gr.Button("Retrain now", variant="primary", elem_id="training-retrain")
        refresh = gr.Button("Refresh", elem_id="training-refresh")
    status = gr.Markdown(elem_id="training-status")
    outputs = [counts, versions, gallery, version, status]

    def after(message: str) -> tuple[Any, ...]:
        *rest, _ = view()
        return (*rest, message)

    refresh.click(view, outputs=outputs)
    promote.click(lambda v: after(hooks.promote(v)), inputs=[version], outputs=outputs)
    rollback.click(lambda: after(hooks.rollback()), outputs=outputs)
    retrain.click(lambda: after(hooks.retrain()), outputs=outputs)
    return view, outputs
