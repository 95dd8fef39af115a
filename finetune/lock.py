"""The retrain lock: one training job (a retrain round, a bootstrap) at a time per home.

``<home>/locks/retrain.lock`` (a ``filelock.FileLock``), with ``retrain.owner.json`` beside it naming the
process that holds it. Its own module so that ``finetune.retrain`` can run a bootstrap's stages (a pool
regenerated in another return style) while ``finetune.bootstrap`` takes the same lock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from agent.core.errors import LockBusy
from agent.core.files import atomic_write_text


@contextmanager
def retrain_lock(home: Path, wait: bool = True, timeout: float | None = None) -> Iterator[None]:
    """Hold ``<home>/locks/retrain.lock``: wait (forever or ``timeout`` s) or fail at once with LockBusy."""
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
            since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
            who = f" (pid {info.get('pid')}, since {since})"
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
