"""The bootstrap pool of one graph: generated, executed question → Cypher pairs the agent retrieves from.

``cypherloop bootstrap`` writes it once per run into ``<home>/bootstrap/<graph>/pool/``:

    pool.jsonl      one {"question", "cypher", "query_id"} a line
    vectors.npy     the questions' MiniLM embeddings (float16, L2-normalised), one row per line
    meta.json       count, graph, schema fingerprint, embedding model, created_at

It is read-only at question time and small enough to hold in memory (50k pairs: 37 MB), so retrieval
is one matrix product: a Chroma collection would spend minutes adding 50k records and gains nothing
for a set that is rebuilt whole, never edited. Corrections and 👍 examples stay in the Chroma store.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.core.errors import StoreError
from agent.core.files import replace_dir
from agent.core.prompt import Example
from agent.core.settings import Settings
from feedback_store.embeddings import embed

POOL_FILE = "pool.jsonl"
VECTORS_FILE = "vectors.npy"
META_FILE = "meta.json"


def pool_dir(home: Path, graph: str) -> Path:
    return Path(home) / "bootstrap" / graph / "pool"


def _norm(text: str) -> str:
    return " ".join((text or "").split()).lower()


def build_pool(folder: Path, pairs: Sequence[dict[str, Any]], *, graph: str, schema_fingerprint: str = "",
               batch_size: int = 256) -> int:
    """Embed the pairs' questions and write the pool atomically (a temp folder renamed into place)."""
    import numpy as np

    folder = Path(folder)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows = [
        {"question": p["question"], "cypher": p["cypher"], "query_id": p.get("query_id", "")} for p in pairs
    ]
    vectors = []
    for start in range(0, len(rows), batch_size):
        vectors += embed([_norm(r["question"]) for r in rows[start:start + batch_size]])
    matrix = np.asarray(vectors, dtype=np.float16).reshape(len(rows), -1)
    np.save(tmp / VECTORS_FILE, matrix)
    (tmp / POOL_FILE).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    meta = {"graph": graph, "count": len(rows), "schema_fingerprint": schema_fingerprint,
            "embedding": "all-MiniLM-L6-v2", "created_at": time.time()}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    replace_dir(tmp, folder)
    return len(rows)


class ExamplePool:
    """Nearest pool questions to a question (cosine similarity of MiniLM embeddings), above a floor."""

    def __init__(self, folder: Path, graph: str, min_similarity: float = 0.0) -> None:
        self.folder = Path(folder)
        self.graph = graph
        self.min_similarity = min_similarity
        self._rows: list[dict[str, Any]] | None = None
        self._matrix: Any = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, home: Path, graph: str, min_similarity: float = 0.0) -> ExamplePool | None:
        """The graph's pool, or None when no bootstrap has indexed one."""
        folder = pool_dir(home, graph)
        return cls(folder, graph, min_similarity) if (folder / META_FILE).is_file() else None

    @classmethod
    def for_settings(cls, settings: Settings) -> ExamplePool | None:
        """The pool the agent retrieves from under these settings (``pool_k`` > 0), or None."""
        if settings.pool_k <= 0:
            return None
        return cls.open(settings.home_dir, settings.graph, settings.pool_min_similarity)

    def meta(self) -> dict[str, Any]:
        return json.loads((self.folder / META_FILE).read_text())

    def __len__(self) -> int:
        self._load()
        return len(self._rows or [])

    def _load(self) -> None:
        if self._rows is not None:
            return
        import numpy as np

        with self._lock:
            if self._rows is not None:
                return
            try:
                rows = [
                    json.loads(x)
                    for x in (self.folder / POOL_FILE).read_text(encoding="utf-8").splitlines()
                    if x
                ]
                matrix = np.load(self.folder / VECTORS_FILE).astype(np.float32)
            except (OSError, ValueError) as e:
                raise StoreError(f"cannot read the example pool in {self.folder}: {e}") from e
            if matrix.shape[0] != len(rows):
                raise StoreError(
                    f"the example pool in {self.folder} is inconsistent; run `cypherloop bootstrap` again"
                )
            self._matrix, self._rows = matrix, rows

    def search(
        self, question: str, k: int, *, exclude: set[str] | None = None, min_similarity: float | None = None
    ) -> list[tuple[float, dict[str, Any]]]:
        """(similarity, row) of the ``k`` nearest questions at or above the floor (the pool's own, or
        ``min_similarity`` when that is higher), best first."""
        import numpy as np

        if k <= 0 or not question.strip():
            return []
        self._load()
        assert self._matrix is not None and self._rows is not None
        if not self._rows:
            return []
        q = np.asarray(embed([_norm(question)])[0], dtype=np.float32)
        sims = self._matrix @ q
        want = min(len(sims), k + len(exclude or ()) * 4 + 8)
        top = np.argpartition(-sims, want - 1)[:want]
        floor = max(self.min_similarity, -1.0 if min_similarity is None else min_similarity)
        out = []
        for i in top[np.argsort(-sims[top])]:
            row = self._rows[int(i)]
            if float(sims[i]) < floor:
                break
            if exclude and (row.get("query_id") in exclude or _norm(row["question"]) in exclude):
                continue
            out.append((float(sims[i]), row))
            if len(out) >= k:
                break
        return out

    def neighbours(self, indexes: Sequence[int], k: int, chunk: int = 512) -> list[list[dict[str, Any]]]:
        """For pool rows ``indexes``: their ``k`` nearest other rows of another query (no re-embedding).

        What the agent would retrieve for that question, minus the question's own query: the few-shot
        examples a training record carries so training prompts look like serving prompts.
        """
        import numpy as np

        self._load()
        assert self._matrix is not None and self._rows is not None
        rows, m = self._rows, self._matrix
        out: list[list[dict[str, Any]]] = []
        for start in range(0, len(indexes), chunk):
            part = list(indexes[start:start + chunk])
            sims = m[part] @ m.T
            want = min(sims.shape[1], k * 4 + 8)
            top = np.argpartition(-sims, want - 1, axis=1)[:, :want]
            for r, i in enumerate(part):
                order = top[r][np.argsort(-sims[r, top[r]])]
                own = rows[i].get("query_id")
                found = [rows[int(j)] for j in order if int(j) != i and rows[int(j)].get("query_id") != own][
                    :k
                ]
                out.append(found)
        return out

    def similar_examples(self, question: str, graph: str, k: int = 3, approved_only: bool = False,
                         min_similarity: float = -1.0) -> list[Example]:
        """The ``ExampleSource`` contract: the ``k`` most similar pool pairs above the floor as few-shot
        examples (every pair in a pool counts as approved)."""
        if graph != self.graph:
            return []
        found = self.search(question, k, min_similarity=min_similarity)
        return [Example(r["question"], r["cypher"]) for _, r in found]
