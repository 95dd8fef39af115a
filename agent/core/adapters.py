"""The adapter registry's layout on disk, and which adapter serves now (the "live adapter").

Layout under ``<home>/adapters/``::

    v0001/  adapter_config.json  adapter_model.safetensors  meta.json  loss.png  loss.jsonl
    v0002/  ...
    ACTIVE        {"version": "v0002"}   or {"version": null}: nothing promoted
    HISTORY.json  the promotion stack (finetune.registry)

The agent reads this layout (``live_adapter``, ``resolve_adapter``); ``finetune.registry`` writes it. The
pointer is replaced atomically (``write_active``), so a reader sees the old or the new version, never
a torn file, and a crashed promotion leaves the old one live.

**Live adapter**: what serves now under the default setting ``adapter=active`` — the promoted version
when there is one, else the adapter shipped in the package for the packaged base model (until the
first promotion), else none (the bare base model). ``live_adapter`` is the one definition.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.core.errors import ModelError
from agent.core.files import atomic_write_text

ACTIVE_FILE = "ACTIVE"
META_FILE = "meta.json"
HISTORY_FILE = "HISTORY.json"
VERSION_RE = re.compile(r"^v(\d{4,})$")
SHIPPED_ADAPTERS = {"smollm2-135m-instruct": "general-v1"}
"""Adapters shipped in ``agent/data/adapters/<name>/`` per packaged base model (PEFT files + TRAINING.md)."""
SHIPPED_PREFIX = "shipped-"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "adapters"
BASE_ONLY = ("none", "base", "off", "")
"""Values of the ``adapter`` setting that serve the bare base model."""


@dataclass(frozen=True)
class AdapterRef:
    """A version to serve: its label (``v0003``, ``shipped-general-v1``, a folder's name) and its folder. A
    folder
    with ``config.json`` and no ``adapter_config.json`` is a whole fine-tuned model (a full fine-tune), served
    instead of the base; otherwise a PEFT adapter."""

    version: str
    path: Path

    @property
    def full_model(self) -> bool:
        return (self.path / "config.json").is_file() and not (self.path / "adapter_config.json").is_file()


def adapters_dir(home: Path | str) -> Path:
    return Path(home) / "adapters"


def version_dirs(home: Path | str) -> list[Path]:
    """Complete registry versions (a ``vNNNN`` folder with its meta.json), oldest first."""
    root = adapters_dir(home)
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and VERSION_RE.match(p.name) and (p / META_FILE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[1:]))


def read_meta(version_dir: Path) -> dict[str, Any]:
    """A version's meta.json (``{"error": …}`` when it cannot be read)."""
    try:
        meta = json.loads((version_dir / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {"version": version_dir.name, "error": "unreadable meta.json"}
    return (
        meta
        if isinstance(meta, dict)
        else {"version": version_dir.name, "error": "meta.json is not an object"}
    )


def read_active(home: Path | str) -> AdapterRef | None:
    """The promoted version, or None when none is (or the pointer names a missing folder)."""
    pointer = adapters_dir(home) / ACTIVE_FILE
    try:
        version = json.loads(pointer.read_text()).get("version")
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return None
    if not version:
        return None
    path = adapters_dir(home) / version
    return AdapterRef(version, path) if path.is_dir() else None


def write_active(home: Path | str, version: str | None) -> None:
    """Switch the promoted version atomically (``None``: nothing promoted)."""
    atomic_write_text(adapters_dir(home) / ACTIVE_FILE, json.dumps({"version": version}))


def shipped_adapter(base_model: str) -> AdapterRef | None:
    """The adapter shipped in the package for ``base_model`` (a packaged base's name), or None."""
    name = SHIPPED_ADAPTERS.get(str(base_model))
    if not name:
        return None
    path = SHIPPED_DIR / name
    return AdapterRef(SHIPPED_PREFIX + name, path) if (path / "adapter_config.json").is_file() else None


def live_adapter(home: Path | str, base_model: str) -> AdapterRef | None:
    """The adapter that serves now (``adapter=active``): promoted, else shipped for the base, else None."""
    return read_active(home) or shipped_adapter(base_model)


def resolve_adapter(setting: str, home: Path | str, base_model: str) -> AdapterRef | None:
    """The adapter the ``adapter`` setting asks for: ``active`` (the live adapter), ``none``, a folder or a
    registry version name. ``ModelError`` when a folder or version does not exist."""
    s = (setting or "none").strip()
    if s.lower() in BASE_ONLY:
        return None
    if s.lower() == "active":
        return live_adapter(home, base_model)
    path = Path(s).expanduser()
    if not path.is_dir():
        path = adapters_dir(home) / s  # a version name from the registry
    if not path.is_dir():
        raise ModelError(f"adapter {s!r} not found (a directory, a registry version, 'active' or 'none')")
    return AdapterRef(path.name, path)


def describe(ref: AdapterRef | None) -> str:
    """How messages and reports name an adapter: its version, the shipped one said so, or the bare base."""
    if ref is None:
        return "the base model (no adapter)"
    if ref.version.startswith(SHIPPED_PREFIX):
        return f"{ref.version} (shipped with cypherloop; serves until a version is promoted)"
    return ref.version
