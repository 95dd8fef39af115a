"""Files that other processes read while we write them: one atomic writer (a file, a folder), one JSONL reader
and writer.

``atomic_write_text`` writes a temporary file in the same folder and renames it over the target, so a
reader sees the old or the new content, never a torn file; ``durable`` also fsyncs the file and its
folder, so the new content survives a power cut (the registry's ACTIVE pointer, datasets, reports).
``read_jsonl`` turns every problem into a ``DataError`` that names the file and the line.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agent.core.errors import DataError


def atomic_write_text(path: Path | str, text: str, *, durable: bool = True, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` atomically (``mode``: permission bits, e.g. 0o600 for a secret)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(tmp: Path, target: Path) -> None:
    """Put the complete folder ``tmp`` at ``target``: the old one is renamed aside first and removed last, so
    a
    crash leaves either the old folder or the new one (or, between the two renames, ``target.old``)."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def jsonl_text(records: Iterable[Any], *, sort_keys: bool = False) -> str:
    """One JSON document per line (UTF-8 kept as is), each line ending in a newline."""
    return "".join(
        json.dumps(r, ensure_ascii=False, sort_keys=sort_keys, default=str) + "\n" for r in records
    )


def write_jsonl(path: Path | str, records: Iterable[Any], *, sort_keys: bool = False) -> int:
    """Write ``records`` as JSONL atomically; returns how many were written."""
    items = list(records)
    atomic_write_text(Path(path), jsonl_text(items, sort_keys=sort_keys))
    return len(items)


def iter_jsonl(path: Path | str, *, tolerant: bool = False) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line; ``tolerant`` skips lines that do not parse
    (a log whose last line a kill cut short) instead of raising ``DataError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield no, json.loads(line)
        except json.JSONDecodeError as e:
            if tolerant:
                continue
            raise DataError(f"{path}:{no}: not valid JSON ({e.msg})") from None


def read_jsonl(path: Path | str, *, tolerant: bool = False) -> list[Any]:
    """Every value of a JSONL file (see ``iter_jsonl``)."""
    return [value for _, value in iter_jsonl(path, tolerant=tolerant)]


def count_jsonl(path: Path | str) -> int:
    """Non-blank lines of a JSONL file; 0 when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
