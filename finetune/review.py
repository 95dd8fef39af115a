"""The teacher's review file: every generated question → Cypher pair with its result and review status.

One JSON object per line in ``<home>/data/teacher/<graph>/review.jsonl``::

    {"id", "graph", "theme", "question", "cypher", "result": "pass" | "no_data" | "error", "error",
     "row_count", "status": "pending" | "approved" | "rejected", "paraphrases": [...], "model",
     "created_at", "reviewed_at"}

The seeds' rule: Pass goes on, No data and Error wait for a person. ``cypherloop data review`` (and
later the UI's Review tab) approves or rejects items by id (a unique prefix is enough) or approves
every Pass at once. Writes take a lock and replace the file atomically, so the CLI, the UI and a
running teacher never lose each other's decisions.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.core.errors import DataError
from agent.core.files import iter_jsonl, write_jsonl
from agent.core.settings import Settings

RESULTS = ("pass", "no_data", "error")
STATUSES = ("pending", "approved", "rejected")
REVIEW_FILE = "review.jsonl"


def teacher_dir(settings: Settings, graph: str) -> Path:
    """Default output directory of the teacher pipeline for a graph."""
    return settings.path("data", "teacher", graph)


def review_path(settings: Settings, graph: str) -> Path:
    return teacher_dir(settings, graph) / REVIEW_FILE


class ReviewFile:
    """Read and update a review file (JSONL) safely."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / REVIEW_FILE

    # --- reading ------------------------------------------------------------------------------
    def load(self) -> list[dict[str, Any]]:
        """All items (empty when the file does not exist yet)."""
        if not self.path.exists():
            return []
        items = []
        for i, item in iter_jsonl(self.path):
            if not isinstance(item, dict) or "id" not in item or "question" not in item:
                raise DataError(f"{self.path}:{i}: a review item needs at least 'id' and 'question'")
            items.append(item)
        return items

    def items(self, status: str | None = None, result: str | None = None) -> list[dict[str, Any]]:
        if status is not None and status not in STATUSES:
            raise DataError(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
        if result is not None and result not in RESULTS:
            raise DataError(f"unknown result {result!r}; choose from {', '.join(RESULTS)}")
        return [x for x in self.load() if (status is None or x.get("status") == status)
                and (result is None or x.get("result") == result)]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {
            "result": dict.fromkeys(RESULTS, 0),
            "status": dict.fromkeys(STATUSES, 0),
        }
        for x in self.load():
            out["result"][x.get("result", "error")] = out["result"].get(x.get("result", "error"), 0) + 1
            out["status"][x.get("status", "pending")] = out["status"].get(x.get("status", "pending"), 0) + 1
        return out

    # --- writing ------------------------------------------------------------------------------
    @contextmanager
    def _locked(self):
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=60):
            yield

    def _save(self, items: list[dict[str, Any]]) -> None:
        write_jsonl(self.path, items)

    def merge(self, new_items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add or refresh items; a person's decision survives unless the query itself changed."""
        with self._locked():
            current = {x["id"]: x for x in self.load()}
            for item in new_items:
                old = current.get(item["id"])
                if old is not None and old.get("cypher") == item.get("cypher"):
                    item = {
                        **item,
                        "status": old.get("status", "pending"),
                        "reviewed_at": old.get("reviewed_at"),
                        "paraphrases": item.get("paraphrases") or old.get("paraphrases", []),
                        "created_at": old.get("created_at", item.get("created_at")),
                    }
                current[item["id"]] = item
            items = list(current.values())
            self._save(items)
            return items

    def update(self, updates: dict[str, dict[str, Any]]) -> None:
        """Set fields on existing items by exact id."""
        with self._locked():
            items = self.load()
            for x in items:
                if x["id"] in updates:
                    x.update(updates[x["id"]])
            self._save(items)

    def resolve(self, ids: Iterable[str], items: list[dict[str, Any]] | None = None) -> list[str]:
        """Full ids from ids or unique prefixes; a clear error for unknown or ambiguous ones."""
        items = self.load() if items is None else items
        known = [x["id"] for x in items]
        out = []
        for given in ids:
            matches = [k for k in known if k == given] or [k for k in known if k.startswith(given)]
            if not matches:
                raise DataError(f"no review item with id {given!r} in {self.path}")
            if len(matches) > 1:
                raise DataError(f"id prefix {given!r} matches {len(matches)} items; give more characters")
            out.append(matches[0])
        return out

    def set_status(self, ids: Iterable[str], status: str) -> int:
        """Approve/reject items by id or unique prefix; returns how many changed."""
        if status not in STATUSES:
            raise DataError(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
        with self._locked():
            items = self.load()
            chosen = set(self.resolve(ids, items))
            changed = 0
            now = time.time()
            for x in items:
                if x["id"] in chosen and x.get("status") != status:
                    x["status"], x["reviewed_at"] = status, now
                    changed += 1
            self._save(items)
            return changed

    def approve_all_pass(self) -> int:
        """Approve every pending item whose query ran and returned rows."""
        with self._locked():
            items = self.load()
            changed = 0
            now = time.time()
            for x in items:
                if x.get("result") == "pass" and x.get("status") == "pending":
                    x["status"], x["reviewed_at"] = "approved", now
                    changed += 1
            self._save(items)
            return changed


def trainable(item: dict[str, Any], include_pending_pass: bool = True) -> bool:
    """Whether a review item may enter training: approved, or (the seeds' default) a pending Pass."""
    status = item.get("status", "pending")
    if status == "rejected":
        return False
    if status == "approved":
        return True
    return include_pending_pass and item.get("result") == "pass"
