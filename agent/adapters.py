"""Where the live adapter is: the registry's ``active`` pointer, read by the agent, written by finetune.

Layout under ``<home>/adapters/``: one folder per version (``v0001`` …) holding the PEFT files and
``meta.json``; the file ``ACTIVE`` holds ``{"version": "v0003"}`` or ``{"version": null}``. The pointer
is replaced atomically (write temp + fsync + ``os.replace``), so a reader sees the old or the new
version, never a torn file, and a crashed promotion leaves the old one live.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

ACTIVE_FILE = "ACTIVE"
# Adapters that ship inside the package, per packaged base model: what serves until one is promoted.
SHIPPED_ADAPTERS = {"smollm2-135m-instruct": "general-v1"}
SHIPPED_PREFIX = "shipped-"


@dataclass(frozen=True)
class ActiveAdapter:
    """The version that is live and its folder."""

    version: str
    path: Path


def adapters_dir(home: Path) -> Path:
    return Path(home) / "adapters"


def read_active(home: Path) -> ActiveAdapter | None:
    """The live adapter, or None when none was promoted (or the pointer names a missing folder)."""
    pointer = adapters_dir(home) / ACTIVE_FILE
    try:
        version = json.loads(pointer.read_text()).get("version")
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return None
    if not version:
        return None
    path = adapters_dir(home) / version
    return ActiveAdapter(version, path) if path.is_dir() else None


def shipped_adapter(base_model: str) -> ActiveAdapter | None:
    """The adapter shipped in the package for ``base_model`` (a packaged base's name), or None.

    ``agent/data/adapters/<name>/`` holds the PEFT files and TRAINING.md (how it was trained, its scores).
    """
    name = SHIPPED_ADAPTERS.get(str(base_model))
    if not name:
        return None
    path = Path(__file__).resolve().parent / "data" / "adapters" / name
    return ActiveAdapter(SHIPPED_PREFIX + name, path) if (path / "adapter_config.json").is_file() else None


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see either the old or the new content, even across a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(tmp: Path, target: Path) -> None:
    """Put the complete folder ``tmp`` at ``target``: the old one is renamed aside first and removed last, so a
    crash leaves either the old folder or the new one (or, between the two renames, ``target.old``)."""
    import shutil

    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def write_active(home: Path, version: str | None) -> None:
    """Switch the live adapter atomically (``None``: serve the base model)."""
    atomic_write_text(adapters_dir(home) / ACTIVE_FILE, json.dumps({"version": version}))
