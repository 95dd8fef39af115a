"""The Training tab: dataset counts, adapter versions with scores and loss curves, retrain / promote / rollback.

Reads what finetune writes (``<home>/adapters/v*/meta.json`` and ``loss.png``) straight from disk, so
the tab works before and without the training code. The buttons go through ``TrainingHooks``, which
imports finetune lazily and says "available once training lands" when the import fails:

- Retrain:  ``finetune.retrain.retrain_once(settings)`` in a background thread (one at a time); its
  return value (``RetrainReport``: status, version, message, error; or any dict/object) is shown.
  ``finetune.retrain.retrain_running(home)`` tells the tab a round runs elsewhere (scheduler, CLI).
- Promote:  ``finetune.registry.AdapterRegistry(settings.home_dir).promote(version, reason="ui")``.
- Rollback: ``finetune.registry.AdapterRegistry(settings.home_dir).rollback(reason="ui")``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NOT_YET = "available once training lands"
_SCALARS = (str, int, float, bool)
_PREFERRED = ("version", "active", "status", "created_at", "base_model", "recipe")
_SCORE_KEYS = ("metrics", "eval", "evaluation", "scores")


def adapter_versions(home: Path) -> list[dict[str, Any]]:
    """One flat row per ``<home>/adapters/v*/meta.json``: identity, status, active flag and numeric scores."""
    root = Path(home) / "adapters"
    if not root.is_dir():
        return []
    try:
        active = json.loads((root / "ACTIVE").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        active = None
    rows = []
    for d in sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("v") and (p / "meta.json").is_file()), key=_version_key):
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {"error": "unreadable meta.json"}
        row: dict[str, Any] = {"version": d.name, "active": d.name == active}
        for k in _PREFERRED[2:]:
            if isinstance(meta.get(k), _SCALARS):
                row[k] = meta[k]
        if isinstance(meta.get("gate"), dict) and isinstance(meta["gate"].get("decision"), str):
            row["gate"] = meta["gate"]["decision"]
        for k in _SCORE_KEYS:
            if isinstance(meta.get(k), dict):
                for name, value in meta[k].items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        row[name] = round(float(value), 4)
        for name, value in meta.items():  # top-level numbers (e.g. execution_accuracy) too
            if name not in row and isinstance(value, (int, float)) and not isinstance(value, bool) and not name.endswith(("_ts", "_at")):
                row[name] = round(float(value), 4)
        rows.append(row)
    return rows


def _version_key(p: Path) -> tuple[int, str]:
    digits = p.name[1:]
    return (int(digits), p.name) if digits.isdigit() else (1 << 30, p.name)


def loss_images(home: Path) -> list[tuple[Any, str]]:
    """(image, caption) for every ``<home>/adapters/v*/loss.png``, oldest version first.

    Images are loaded with PIL (not passed as paths), so the app needs no allowed_paths for the home.
    """
    from PIL import Image

    root = Path(home) / "adapters"
    out = []
    if root.is_dir():
        for png in sorted(root.glob("v*/loss.png"), key=lambda p: _version_key(p.parent)):
            try:
                with Image.open(png) as im:
                    out.append((im.copy(), f"{png.parent.name} loss"))
            except OSError:
                continue
    return out


def _describe(result: Any) -> str:
    if result is None:
        return "done"
    if hasattr(result, "__dict__") and not isinstance(result, dict):
        result = {k: v for k, v in vars(result).items() if not k.startswith("_")}
    if isinstance(result, dict):
        if result.get("message") or result.get("error"):  # finetune.retrain.RetrainReport
            head = ", ".join(f"{k}: {result[k]}" for k in ("status", "version") if result.get(k))
            return "; ".join(x for x in (head, result.get("message"), result.get("error")) if x)
        return ", ".join(f"{k}: {v}" for k, v in result.items() if isinstance(v, _SCALARS) or v is None) or "done"
    return str(result)


class TrainingHooks:
    """The Training tab's buttons, with finetune imported only when a button is pressed."""

    def __init__(self, settings: Any, retrain_fn: Callable[[Any], Any] | None = None, registry: Any | None = None) -> None:
        self.settings = settings
        self._retrain_fn = retrain_fn
        self._registry = registry
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.retrain_status = "idle"

    @property
    def home(self) -> Path:
        return Path(self.settings.home_dir)

    def registry(self) -> Any | None:
        if self._registry is not None:
            return self._registry
        try:
            from finetune.registry import AdapterRegistry
        except ImportError:
            return None
        return AdapterRegistry(self.home)

    def _retrain_callable(self) -> Callable[[Any], Any] | None:
        if self._retrain_fn is not None:
            return self._retrain_fn
        try:
            from finetune.retrain import retrain_once
        except ImportError:
            return None
        return retrain_once

    def retrain(self) -> str:
        """Start one retrain run in the background; returns a status line."""
        fn = self._retrain_callable()
        if fn is None:
            return f"Retrain is {NOT_YET}."
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return f"A retrain is already running ({self.retrain_status})."
            self.retrain_status = f"running since {time.strftime('%H:%M:%S')}"
            self._thread = threading.Thread(target=self._run_retrain, args=(fn,), name="cypherloop-retrain", daemon=True)
            self._thread.start()
        return f"Retrain started ({self.retrain_status}); press Refresh to follow it."

    def _run_retrain(self, fn: Callable[[Any], Any]) -> None:
        try:
            result = fn(self.settings)
            self.retrain_status = f"finished at {time.strftime('%H:%M:%S')}: {_describe(result)}"
        except Exception as e:  # noqa: BLE001 - shown in the tab, never a traceback
            self.retrain_status = f"failed at {time.strftime('%H:%M:%S')}: {e}"

    def running_elsewhere(self) -> bool:
        """A round holds the retrain lock but not from this tab (``finetune.retrain.retrain_running``)."""
        if self._thread is not None and self._thread.is_alive():
            return False
        try:
            from finetune.retrain import retrain_running
        except ImportError:
            return False
        try:
            return bool(retrain_running(self.home))
        except Exception:  # noqa: BLE001 - a status hint only
            return False

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running retrain ends (tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def promote(self, version: str | None) -> str:
        reg = self.registry()
        if reg is None:
            return f"Promote is {NOT_YET}."
        if not version:
            return "Choose a version to promote."
        try:
            return f"Promoted {reg.promote(version, reason='ui')}: the agent follows it from the next question."
        except Exception as e:  # noqa: BLE001
            return f"Promote failed: {e}"

    def rollback(self) -> str:
        reg = self.registry()
        if reg is None:
            return f"Rollback is {NOT_YET}."
        try:
            live = reg.rollback(reason="ui")
        except Exception as e:  # noqa: BLE001
            return f"Rollback failed: {e}"
        return f"Rolled back: {live} is live." if live else "Rolled back: the base model answers (no adapter)."


def build_training_tab(hooks: TrainingHooks, store: Any) -> tuple[Callable[[], tuple[Any, ...]], list[Any]]:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab``; returns (refresh function, its outputs)."""
    import gradio as gr

    def view() -> tuple[Any, ...]:
        import pandas as pd

        try:
            counts = store.counts()
            counts_df = pd.DataFrame({"what": list(counts), "count": list(counts.values())})
        except Exception as e:  # noqa: BLE001
            counts_df = pd.DataFrame({"what": [f"feedback store unavailable: {e}"], "count": [0]})
        rows = adapter_versions(hooks.home)
        versions_df = pd.DataFrame(rows) if rows else pd.DataFrame({"version": [], "status": []})
        choices = [r["version"] for r in rows]
        status = f"Retrain: {hooks.retrain_status}." if hooks._retrain_callable() else f"Retrain: {NOT_YET}."
        if hooks.running_elsewhere():
            status += " A retrain round is running (scheduler or CLI)."
        if hooks.registry() is None:
            status += f" Promote / rollback: {NOT_YET}."
        return counts_df, versions_df, loss_images(hooks.home), gr.update(choices=choices, value=choices[-1] if choices else None), status

    gr.Markdown("Verified examples enter training once approved (Review tab). Versions, scores and loss curves come from `<home>/adapters`.")
    with gr.Row():
        counts = gr.Dataframe(label="Dataset (feedback store)", elem_id="training-counts", interactive=False)
        versions = gr.Dataframe(label="Adapter versions", elem_id="training-versions", interactive=False)
    gallery = gr.Gallery(label="Loss curves", elem_id="training-loss", columns=3, height="auto")
    with gr.Row():
        version = gr.Dropdown(label="Version", choices=[], elem_id="training-version", allow_custom_value=True)
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
