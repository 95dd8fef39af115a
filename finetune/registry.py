"""Adapter registry: versions under ``<home>/adapters/vNNNN/``, the atomic ACTIVE pointer, promote / rollback
/ export.

Layout::

    <home>/adapters/
        v0001/  adapter_config.json  adapter_model.safetensors  loss.png  loss.jsonl  meta.json
        v0002/  ...
        ACTIVE        {"version": "v0002"}        (agent.core.adapters.write_active: temp + fsync + rename)
        HISTORY.json  {"stack": ["v0001", "v0002"], "events": [...]}   (written atomically)

A version is copied into ``.tmp-vNNNN-*`` and renamed into place only when complete, so a killed
run never leaves half a version and never touches ACTIVE. ``stack`` lists promotions in order;
rollback pops the live one and re-activates the one before it (or the base model when none is left).
Every change happens under ``<home>/locks/registry.lock``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from agent.core.adapters import (
    HISTORY_FILE,
    META_FILE,
    VERSION_RE,
    adapters_dir,
    read_active,
    read_meta,
    version_dirs,
    write_active,
)
from agent.core.errors import CypherloopError, LockBusy, TrainingError
from agent.core.files import atomic_write_text
from agent.core.settings import Settings
from agent.models.ctranslate import prepare_live
from agent.models.gguf_lora import write_gguf_lora
from finetune.decision import Outcome, Verdict, read_verdict

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)
"""A full fine-tuned model (``finetune.full``) is a version too: these files, served instead of the base."""


log = logging.getLogger(__name__)


class UnknownVersion(CypherloopError):
    """The named adapter version does not exist in the registry."""

    exit_code = 2


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AdapterRegistry:
    """The versions of one cypherloop home. Cheap to build; every call reads the disk afresh.

    Given the ``settings`` that serve, a promotion or a rollback also prepares the new live version for the
    serving backend (``agent.models.ctranslate.prepare_live``: on a CPU the merged copy of the base with the
    live LoRA and its CTranslate2 conversion), so the first question after it does not wait for that.
    """

    def __init__(self, home: Path | str, settings: Settings | None = None) -> None:
        self.home = Path(home)
        self.root = adapters_dir(self.home)
        self.settings = settings

    def _prepare_live(self) -> None:
        """Merge and convert the live version for the serving backend; any failure is one warning line and
        no more: the pointer has switched, and the server prepares it on its first question (``auto``
        falling back to transformers, as it does there)."""
        if self.settings is None:
            return
        try:
            prepare_live(self.settings.model_copy(update={"home": self.home}))
        except Exception as e:  # noqa: BLE001 - the promotion stands whatever the preparation did
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            log.warning("the live version was not prepared ahead (%s); its first question does it", reason)

    # ------------------------------------------------------------------ reading
    def versions(self) -> list[str]:
        """Complete versions, oldest first (temp folders of killed runs are not versions)."""
        return [p.name for p in version_dirs(self.home)]

    def resolve(self, version: str) -> str:
        """``v3``, ``3``, ``v0003``, ``latest`` or ``active`` → ``v0003`` (UnknownVersion if absent)."""
        v = str(version).strip()
        versions = self.versions()
        if v == "latest":
            if not versions:
                raise UnknownVersion(
                    "the registry has no versions yet; run `cypherloop retrain` or `cypherloop train`"
                )
            return versions[-1]
        if v == "active":
            active = self.active()
            if active is None:
                raise UnknownVersion("no adapter is active (the base model answers)")
            return active
        m = re.fullmatch(r"v?(\d+)", v)
        name = f"v{int(m.group(1)):04d}" if m else v
        if name not in versions:
            raise UnknownVersion(f"no adapter version {version!r}; have: {', '.join(versions) or 'none'}")
        return name

    def path(self, version: str) -> Path:
        return self.root / self.resolve(version)

    def meta(self, version: str) -> dict[str, Any]:
        name = self.resolve(version)
        return json.loads((self.root / name / META_FILE).read_text())

    def active(self) -> str | None:
        a = read_active(self.home)
        return a.version if a else None

    def list(self) -> list[dict[str, Any]]:
        """meta.json of every version with ``active`` added, oldest first."""
        active = self.active()
        return [_read_decision({**read_meta(d), "active": d.name == active}) for d in version_dirs(self.home)]

    def summaries(self) -> list[dict[str, Any]]:
        """Every version as a table row (``version_summary``), oldest first: ``adapters list`` and the UI."""
        return [version_summary(m) for m in self.list()]

    def history(self) -> dict[str, Any]:
        try:
            h = json.loads((self.root / HISTORY_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            h = {}
        return {"stack": list(h.get("stack", [])), "events": list(h.get("events", []))}

    # ------------------------------------------------------------------ writing
    @contextmanager
    def lock(self, timeout: float = 60.0) -> Iterator[None]:
        lock_path = self.home / "locks" / "registry.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(lock_path), timeout=timeout):
                yield
        except Timeout as e:
            raise LockBusy(f"the adapter registry is locked by another process ({lock_path})") from e

    def add(
        self,
        adapter_dir: Path | str,
        meta: dict[str, Any],
        extra_files: dict[str, Path | str] | None = None,
        *,
        run_key: str | None = None,
    ) -> str:
        """Copy a trained adapter (or a full fine-tuned model) in as the next version; returns its name.

        Nothing is visible until complete. A full model's meta gets ``kind: full``, an adapter's ``kind:
        lora``. With ``run_key`` (what identifies the run that trained it, kept in meta.json) the add is
        idempotent: a version of that run already in the registry is returned as it is, so a run killed
        after its add and resumed does not add it twice.
        """
        src = Path(adapter_dir)
        if (src / "adapter_config.json").is_file():
            files = [src / f for f in ADAPTER_FILES if (src / f).is_file()]
            meta = {"kind": "lora", **meta}
        else:
            files = [src / f for f in MODEL_FILES if (src / f).is_file()]
            meta = {"kind": "full", **meta}
        names = {f.name for f in files}
        if not (
            {"adapter_config.json", "adapter_model.safetensors"} <= names
            or {"config.json", "model.safetensors"} <= names
        ):
            raise TrainingError(
                f"{src} is neither a PEFT adapter (adapter_config.json + adapter_model.safetensors) nor a "
                "model (config.json + model.safetensors)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        with self.lock():
            if run_key is not None:
                meta = {**meta, "run_key": run_key}
                for d in version_dirs(self.home):
                    if read_meta(d).get("run_key") == run_key:
                        log.info("%s is already in the registry as %s", run_key, d.name)
                        return d.name
            for stale in self.root.glob(".tmp-*"):  # left by a killed add (adds only run under this lock)
                shutil.rmtree(stale, ignore_errors=True)
            numbers = [int(v[1:]) for v in self.versions()]
            # incomplete dirs too
            numbers += [int(p.name[1:]) for p in self.root.iterdir() if VERSION_RE.match(p.name)]
            version = f"v{(max(numbers) + 1 if numbers else 1):04d}"
            tmp = self.root / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                for f in files:
                    shutil.copy2(f, tmp / f.name)
                for name, path in (extra_files or {}).items():
                    if path and Path(path).is_file():
                        shutil.copy2(path, tmp / name)
                full = {
                    "version": version,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "created_ts": time.time(),
                    "status": "candidate",
                    **meta,
                    "files": sorted(p.name for p in tmp.iterdir()),
                }
                full["version"] = version
                (tmp / META_FILE).write_text(json.dumps(full, indent=2, default=str))
                _fsync_tree(tmp)
                os.rename(tmp, self.root / version)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return version

    def update_meta(self, version: str, **updates: Any) -> dict[str, Any]:
        """Merge fields into a version's meta.json (atomic replace)."""
        with self.lock():
            name = self.resolve(version)
            meta = self.meta(name)
            meta.update(updates)
            atomic_write_text(self.root / name / META_FILE, json.dumps(meta, indent=2, default=str))
            return meta

    def settle(self, version: str, verdict: Verdict, *, promote: bool, reason: str) -> Outcome:
        """Act on the gate's ``verdict`` for a registered version: make it live (PROMOTED), or mark it
        approved but left out on request (TRAINED) or rejected (REJECTED); either way it stays a version.
        Idempotent: settling a version again (a resumed run) changes nothing more."""
        if verdict == Verdict.PROMOTE and promote:
            self.promote(version, reason=reason)
            return Outcome.PROMOTED
        if verdict == Verdict.PROMOTE:
            self.update_meta(version, status="approved_not_promoted")
            return Outcome.TRAINED
        self.update_meta(version, status="rejected")
        return Outcome.REJECTED

    def promote(self, version: str, reason: str = "manual") -> str:
        """Make ``version`` live (ACTIVE switched atomically) and push it on the history stack."""
        with self.lock():
            name = self.resolve(version)
            hist = self._reconciled_history()
            current = self.active()
            if current == name:
                return name
            hist["stack"].append(name)
            hist["events"].append(
                {
                    "at": time.time(),
                    "action": "promote",
                    "version": name,
                    "previous": current,
                    "reason": reason,
                }
            )
            self._write_history(hist)
            write_active(self.home, name)
            self._set_status(name, "promoted", promoted_at=time.time())
        self._prepare_live()
        return name

    def rollback(self, reason: str = "manual") -> str | None:
        """Re-activate the previously promoted version (None: back to the base model); returns the new live
        one."""
        with self.lock():
            hist = self._reconciled_history()
            current = self.active()
            if not hist["stack"] and current is None:
                raise TrainingError("nothing to roll back: no adapter was promoted")
            if hist["stack"]:
                hist["stack"].pop()
            while hist["stack"] and hist["stack"][-1] not in self.versions():
                hist["stack"].pop()  # a version deleted by hand
            previous = hist["stack"][-1] if hist["stack"] else None
            hist["events"].append(
                {
                    "at": time.time(),
                    "action": "rollback",
                    "version": previous,
                    "previous": current,
                    "reason": reason,
                }
            )
            self._write_history(hist)
            write_active(self.home, previous)
            if current:
                self._set_status(current, "rolled_back", rolled_back_at=time.time())
        self._prepare_live()
        return previous

    def _reconciled_history(self) -> dict[str, Any]:
        """HISTORY.json, with a promotion that crashed before ACTIVE switched dropped from the stack."""
        hist = self.history()
        current, stack = self.active(), hist["stack"]
        if current is None:
            stack.clear()  # the base model is live only when nothing is left on the stack
        elif current in stack:
            del stack[len(stack) - stack[::-1].index(current):]  # entries above it never went live
        else:
            stack.append(current)  # ACTIVE was set by hand (write_active): adopt it
        return hist

    def _write_history(self, hist: dict[str, Any]) -> None:
        hist["events"] = hist["events"][-500:]
        atomic_write_text(self.root / HISTORY_FILE, json.dumps(hist, indent=2))

    def _set_status(self, name: str, status: str, **more: Any) -> None:
        meta_path = self.root / name / META_FILE
        meta = json.loads(meta_path.read_text())
        meta.update(status=status, **more)
        atomic_write_text(meta_path, json.dumps(meta, indent=2, default=str))

    # ------------------------------------------------------------------ export
    def export_gguf(self, version: str, out: Path | str | None = None, converter: Path | str | None = None,
                    base_dir: Path | str | None = None) -> Path:
        """A GGUF LoRA that llama.cpp / Ollama load next to the base model's GGUF.

        With ``converter`` (llama.cpp's ``convert_lora_to_gguf.py``) and a base-model folder, that script
        writes it; otherwise the ``gguf`` package does, with the same names, shapes and keys (llama and
        qwen2 architectures; q/k rows permuted for llama as llama.cpp's converter does).
        """
        name = self.resolve(version)
        src = self.root / name
        meta = self.meta(name)
        out_path = Path(out) if out else src / f"adapter-{name}.gguf"
        base = Path(base_dir) if base_dir else Path(meta.get("base_model_path") or "")
        if converter:
            if not base.is_dir():
                raise TrainingError(
                    f"the llama.cpp converter needs the base model folder (config.json); {base} is missing"
                )
            cmd = [
                sys.executable,
                str(converter),
                str(src),
                "--base",
                str(base),
                "--outfile",
                str(out_path),
                "--outtype",
                "f32",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise TrainingError(f"convert_lora_to_gguf.py failed: {tail[0]}")
            return out_path
        config_path = base / "config.json"
        if not config_path.is_file():
            raise TrainingError(
                f"export needs the base model's config.json (looked in {base}); pass --base DIR"
            )
        write_gguf_lora(src, json.loads(config_path.read_text()), out_path)
        return out_path


def _read_decision(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with its gate decision in ``Verdict``'s spelling (versions a bootstrap registered before both
    took it say "rejected" / "promoted"); an unknown one is left as written."""
    gate = meta.get("gate")
    verdict = read_verdict(gate.get("decision")) if isinstance(gate, dict) else None
    return {**meta, "gate": {**gate, "decision": verdict}} if verdict is not None else meta


def kept_note(version: str) -> str:
    """What a person can do with a version the gate (or --no-promote) left out: nothing of it is lost."""
    return f"{version} stays in the registry; `cypherloop adapters promote {version}` makes it live by hand"


def version_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """One version as a table row, from the meta.json fields ``retrain`` and ``train --register`` write."""
    metrics, gate = meta.get("metrics") or {}, meta.get("gate") or {}
    return {
        "live": bool(meta.get("active")),
        "version": meta.get("version", "?"),
        "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(meta["created_ts"]))
        if meta.get("created_ts")
        else "",
        "recipe": meta.get("recipe", ""),
        "base_model": meta.get("base_model", ""),
        "train_loss": metrics.get("train_loss"),
        "eval_loss": metrics.get("eval_loss"),
        # retrain's gate writes heldout / active_heldout; the bootstrap, the same scores in its metrics
        "heldout": gate.get("heldout", metrics.get("heldout_accuracy")),
        "heldout_before": gate.get("active_heldout", metrics.get("live_heldout_accuracy")),
        "regression": gate.get("regression"),
        "regression_before": gate.get("active_regression"),
        "gate": gate.get("decision", ""),
        "status": meta.get("status", ""),
    }

