"""The feedback store on Chroma: interactions, feedback and verified examples.

Three collections, each record's document is its *question* (the only text that is embedded):

- ``interactions``: every answered question (the full ``Interaction`` as JSON in metadata).
- ``feedback``: 👍/👎 on an interaction, with the correction and its result fingerprint.
- ``examples``: verified question → Cypher pairs (from 👍 or from corrections that ran), each
  ``pending`` until reviewed unless the store was built with ``review_*=False``.

Ids are content hashes (``stable_id``) and every write is get-then-add, so writing the same thing
twice changes nothing (and never resets a review). Each public write is complete when it returns;
where one call writes two records (a 👍 or a correction also writes its example), the example is
written first, so a process killed in between leaves a pending example and no dangling feedback,
and repeating the call completes it.

Embedded mode (``PersistentClient``) and several processes (the UI and ``cypherloop feedback``):
Chroma's SQLite log is safe across processes, but each process keeps its own in-memory HNSW
index and flushes it to the shared folder every ``sync_threshold`` writes. Measured here (chromadb
1.5.9): a process whose index went stale while another process flushed and purged the log later
flushed its stale index over the other's, and ~900 of 3,000 records vanished from similarity
search (``get`` still found them). So in embedded mode every operation holds a file lock in the
store folder, and a process that sees another writer's token (``.generation``) reopens its client
before touching the index (~10 ms). Without the reopen the same test fails (lost vectors, or Chroma's
"Error finding id"); with it, two processes hammering one folder lose nothing, and a writer killed
with SIGKILL at any point (mid index flush included) loses no write that had returned: Chroma's
SQLite log is committed before ``add`` returns and replayed into the index on the next open.
Caveat: the reopen only refreshes if this module holds the folder's only ``PersistentClient`` in
the process (Chroma shares one system per path); do not open raw clients on a live store folder.
A Chroma server (``HttpClient``) serialises writers itself; no lock is taken there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agent.core.cypher_text import clip, result_fingerprint, squash_spaces, strip_statement, valid_text
from agent.core.drift import SnapshotStore
from agent.core.errors import CypherloopError, InvalidCorrection, StoreError
from agent.core.feedback import (
    REVIEW_STATUSES,
    Drift,
    Feedback,
    FeedbackRow,
    ImportReport,
    Interaction,
    ReadOnlyQuery,
    ReviewStatus,
    VerifiedExample,
    stable_id,
)
from agent.core.files import atomic_write_text, jsonl_text
from agent.core.prompt import Example
from agent.core.settings import Settings, load_settings
from feedback_store.embeddings import embedding_function

log = logging.getLogger(__name__)

COLLECTIONS = ("interactions", "feedback", "examples")
LOCK_TIMEOUT_S = 60.0
HNSW: dict[str, Any] = {"space": "cosine"}
"""Index settings for new collections. Tests lower ``sync_threshold`` so flushes happen every few writes."""
_PAGE = 500


# --- pure helpers -------------------------------------------------------------------------------


def _run_verified(graph_store: ReadOnlyQuery, cypher: str, what: str) -> Any:
    """Run ``cypher`` through the read-only ``graph_store.query``; ``InvalidCorrection`` when it fails or
    writes."""
    try:
        return graph_store.query(cypher)
    except CypherloopError as e:
        msg = getattr(e, "db_message", None) or str(e)
        raise InvalidCorrection(f"{what} refused ({type(e).__name__}): {msg}") from e
    except Exception as e:  # noqa: BLE001 - any failure to run means: not verified
        raise InvalidCorrection(f"{what} refused: {type(e).__name__}: {e}") from e


def _example_id(graph: str, question: str, cypher: str) -> str:
    return stable_id(
        "example", graph, squash_spaces(question).lower(), squash_spaces(strip_statement(cypher))
    )


def _from_record(cls: type, meta: dict[str, Any]) -> Any:
    data = json.loads(meta["record"])
    names = {f.name for f in fields(cls)}
    obj = cls(**{k: v for k, v in data.items() if k in names})
    if hasattr(obj, "status") and "status" in meta:
        obj.status = meta["status"]  # the review may have changed it since the record was written
    return obj


def _updated(meta: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with ``change`` applied to its fields and to the JSON record it carries (kept in step)."""
    record = json.loads(meta["record"])
    record.update({k: v for k, v in change.items() if k != "checked_at"})
    return {**meta, **change, "record": json.dumps(record, ensure_ascii=False)}


# --- connection: one per store folder per process -------------------------------------------------


class _Embedded:
    """A ``PersistentClient`` shared by every store on one folder in this process, plus the lock."""

    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(path / ".cypherloop.lock"), timeout=LOCK_TIMEOUT_S)
        self._token_file = path / ".generation"
        self._seen: str | None = None
        self._client: Any = None
        self._thread_lock = threading.RLock()

    def _read_token(self) -> str | None:
        try:
            return self._token_file.read_text() or None
        except FileNotFoundError:
            return None

    def _open(self) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self._client = chromadb.PersistentClient(
            path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False)
        )

    def reopen(self) -> None:
        if self._client is not None:
            with suppress(Exception):  # a failed close must not block the reopen
                self._client.close()
        self._open()

    @contextmanager
    def session(self, write: bool) -> Iterator[Any]:
        """Hold the folder lock; reopen if another process wrote; on writes, leave our token."""
        from filelock import Timeout

        with self._thread_lock:
            try:
                # Short polls: the holder drops the lock between writes only while it embeds the next
                # question (~10 ms), and filelock's default 50 ms poll would starve the other process.
                self._lock.acquire(poll_interval=0.002)
            except Timeout as e:
                raise StoreError(
                    f"feedback store {self.path} is locked by another process for over {LOCK_TIMEOUT_S:.0f} s"
                ) from e
            try:
                token = self._read_token()
                if self._client is None:
                    self._open()
                    self._seen = token
                elif token != self._seen:
                    self.reopen()
                    self._seen = token
                if write:
                    # Written before the Chroma call: a writer killed in between only costs others a reopen.
                    new = uuid.uuid4().hex
                    atomic_write_text(self._token_file, new, durable=False)  # only live processes read it
                    self._seen = new
                yield self._client
            finally:
                self._lock.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class _Remote:
    """An ``HttpClient`` to a Chroma server (the server serialises concurrent writers)."""

    def __init__(self, url: str) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        u = urlparse(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise StoreError(f"chroma_url must look like http://host:8000, got {url!r}")
        self.path = url
        try:
            self._client = chromadb.HttpClient(
                host=u.hostname,
                port=u.port or (443 if u.scheme == "https" else 8000),
                ssl=u.scheme == "https",
                settings=ChromaSettings(anonymized_telemetry=False),
            )
        except Exception as e:  # noqa: BLE001 - connection errors come in many types
            raise StoreError(f"cannot reach the Chroma server at {url}: {e}") from e

    @contextmanager
    def session(self, write: bool) -> Iterator[Any]:
        yield self._client

    def close(self) -> None:
        pass


_EMBEDDED: dict[Path, _Embedded] = {}
_EMBEDDED_LOCK = threading.Lock()


def _embedded(path: Path) -> _Embedded:
    path = path.expanduser().resolve()
    with _EMBEDDED_LOCK:
        if path not in _EMBEDDED:
            _EMBEDDED[path] = _Embedded(path)
        return _EMBEDDED[path]


# --- the store ----------------------------------------------------------------------------------------


class ChromaFeedbackStore:
    """``FeedbackStore`` on Chroma (embedded by default, a server when ``chroma_url`` is set).

    ``source`` is a ``Settings`` (uses ``chroma_url`` or ``<home>/feedback/chroma``), a folder, or
    an ``http(s)://`` URL. ``review_thumbs_up`` / ``review_corrections``: whether pairs from 👍 /
    from corrections start ``pending`` (True, the default) or ``approved``. ``snapshots``: where the schema
    of each verified pair is recorded (``<home>/schemas`` when built from ``Settings``; None: fingerprints
    only).
    """

    def __init__(
        self,
        source: Settings | Path | str | None = None,
        *,
        review_thumbs_up: bool = True,
        review_corrections: bool = True,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        if source is None:
            source = load_settings()
        if isinstance(source, (str, Path)):
            text = str(source)
            remote = text.startswith(("http://", "https://"))
            self._conn: _Embedded | _Remote = _Remote(text) if remote else _embedded(Path(text))
        elif isinstance(source, Settings):
            if not source.chroma_url:
                source.private_home()
            self._conn = (
                _Remote(source.chroma_url)
                if source.chroma_url
                else _embedded(source.path("feedback", "chroma"))
            )
        else:
            raise StoreError(
                f"ChromaFeedbackStore needs Settings, a folder or a URL, got {type(source).__name__}"
            )
        self.review_thumbs_up = review_thumbs_up
        self.review_corrections = review_corrections
        limits = source if isinstance(source, Settings) else Settings.model_construct()
        self.max_question_chars = limits.max_question_chars
        """Longest question stored (longer ones are refused at import, clipped in the log)."""
        self.max_cypher_chars = limits.max_query_chars
        """Longest Cypher stored (corrections and imports refused beyond it, the log clipped)."""
        if snapshots is None and isinstance(source, Settings):
            snapshots = SnapshotStore(source.home_dir)
        self.snapshots = snapshots
        self._ef = embedding_function()
        self._handles: tuple[Any, dict[str, Any]] | None = (
            None  # (client, collections), refetched after a reopen
        )

    @property
    def location(self) -> str:
        """The folder or server URL (for messages)."""
        return str(self._conn.path)

    def close(self) -> None:
        self._conn.close()

    def warm_up(self) -> None:
        """Load the embedding model and open the collections now (the UI calls this at start-up)."""
        self._ef(["warm up"])
        self.counts()

    # --- plumbing -----------------------------------------------------------------------------------

    @contextmanager
    def _cols(self, write: bool = False) -> Iterator[dict[str, Any]]:
        with self._conn.session(write) as client:
            try:
                if self._handles is None or self._handles[0] is not client:
                    self._handles = (
                        client,
                        {
                            name: client.get_or_create_collection(
                                name, embedding_function=self._ef, configuration={"hnsw": dict(HNSW)}
                            )
                            for name in COLLECTIONS
                        },
                    )
                yield self._handles[1]
            except (StoreError, InvalidCorrection):
                raise
            except Exception as e:
                if type(e).__module__.startswith("chromadb") or "chroma" in type(e).__name__.lower():
                    raise StoreError(f"feedback store {self.location}: {type(e).__name__}: {e}") from e
                raise

    @staticmethod
    def _get_all(
        col: Any, where: dict[str, Any] | None = None, ids: list[str] | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        if ids is not None:
            got = col.get(ids=ids, include=["metadatas"])
            return list(zip(got["ids"], got["metadatas"], strict=True))
        offset = 0
        while True:
            got = col.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            out += list(zip(got["ids"], got["metadatas"], strict=True))
            if len(got["ids"]) < _PAGE:
                return out
            offset += _PAGE

    def _embed(self, question: str) -> tuple[str, Any]:
        """(document, vector) for a question, computed *before* taking the lock (it holds no lock)."""
        doc = squash_spaces(question) or "(empty)"
        return doc, self._ef([doc])[0]

    @staticmethod
    def _add_if_absent(col: Any, rid: str, doc: tuple[str, Any], meta: dict[str, Any]) -> bool:
        if col.get(ids=[rid], include=[])["ids"]:
            return False
        col.add(ids=[rid], documents=[doc[0]], embeddings=[doc[1]], metadatas=[meta])
        return True

    # --- interactions ----------------------------------------------------------------------------------

    def log_interaction(self, interaction: Interaction) -> str:
        """Store an interaction (fills ``created_at`` and ``id`` when empty); returns its id."""
        it = self._bounded(interaction)
        if not it.created_at:
            it.created_at = time.time()
        if not it.id:
            it.id = stable_id(
                "interaction",
                it.graph,
                it.session_id,
                it.question,
                it.final_cypher or "",
                it.answer,
                repr(it.created_at),
            )
        meta = {
            "graph": it.graph,
            "session_id": it.session_id,
            "created_at": float(it.created_at),
            "ok": bool(it.ok),
            "model_version": it.model_version,
            "row_count": int(it.row_count),
            "record": json.dumps(asdict(it), default=str, ensure_ascii=False),
        }
        doc = self._embed(it.question)
        with self._cols(write=True) as c:
            self._add_if_absent(c["interactions"], it.id, doc, meta)
        return it.id

    def _bounded(self, it: Interaction) -> Interaction:
        """The interaction as the log keeps it: valid UTF-8, each text clipped to the store's limits."""
        q, c = self.max_question_chars, self.max_cypher_chars
        it.question = clip(valid_text(it.question), q)
        it.final_cypher = clip(valid_text(it.final_cypher), c) if it.final_cypher else it.final_cypher
        it.answer = clip(valid_text(it.answer), 4 * c)
        it.attempts = [{k: clip(valid_text(v), c) if isinstance(v, str) else v for k, v in a.items()}
                       for a in it.attempts[:16]]
        return it

    def _too_long(self, question: str, cypher: str) -> str | None:
        """Why a question/Cypher pair may not be stored (too long, invalid characters), or None."""
        if len(question) > self.max_question_chars:
            return (f"the question is {len(question)} characters long, the limit is "
                    f"{self.max_question_chars} (CYPHERLOOP_MAX_QUESTION_CHARS)")
        if len(cypher) > self.max_cypher_chars:
            return (f"the Cypher is {len(cypher)} characters long, the limit is {self.max_cypher_chars} "
                    "(CYPHERLOOP_MAX_QUERY_CHARS)")
        if valid_text(question) != question or valid_text(cypher) != cypher:
            return "the text holds an invalid character (a lone surrogate such as \\ud800)"
        return None

    def get_interaction(self, interaction_id: str) -> Interaction | None:
        with self._cols() as c:
            got = self._get_all(c["interactions"], ids=[interaction_id])
        return _from_record(Interaction, got[0][1]) if got else None

    def iter_interactions(self, graph: str | None = None) -> Iterator[Interaction]:
        with self._cols() as c:
            got = self._get_all(c["interactions"], where={"graph": graph} if graph else None)
        items = sorted((_from_record(Interaction, m) for _, m in got), key=lambda x: (x.created_at, x.id))
        yield from items

    # --- feedback ------------------------------------------------------------------------------------------

    def _feedback_meta(self, fb: Feedback, it: Interaction | None, example_id: str) -> dict[str, Any]:
        return {
            "interaction_id": fb.interaction_id,
            "verdict": fb.verdict,
            "status": fb.status,
            "has_correction": bool(fb.corrected_cypher),
            "graph": it.graph if it else "",
            "question": it.question if it else "",
            "example_id": example_id,
            "created_at": float(fb.created_at),
            "record": json.dumps(asdict(fb), ensure_ascii=False),
        }

    def _stamp(self, graph_store: ReadOnlyQuery) -> str:
        """The graph's schema fingerprint now (its shape recorded in ``snapshots``); "" when unreadable."""
        try:
            schema = graph_store.schema()
            if self.snapshots is None:
                return schema.fingerprint()
            return self.snapshots.record(graph_store.name, schema.shape(), "example")
        except (CypherloopError, OSError) as e:  # the pair is verified; a missing stamp must not lose it
            log.warning("could not read the schema of %s to stamp the example: %s", graph_store.name, e)
            return ""

    def _example_meta(self, ex: VerifiedExample) -> dict[str, Any]:
        return {
            "graph": ex.graph,
            "status": ex.status,
            "drift": ex.drift,
            "schema_fingerprint": ex.schema_fingerprint,
            "source": ex.source,
            "interaction_id": ex.interaction_id or "",
            "created_at": float(ex.created_at),
            "record": json.dumps(asdict(ex), ensure_ascii=False),
        }

    def _write_feedback(
        self, fb: Feedback, it: Interaction | None, example: VerifiedExample | None
    ) -> Feedback:
        now = time.time()
        fb.created_at = fb.created_at or now
        if not fb.id:
            fb.id = stable_id(
                "feedback",
                fb.interaction_id,
                fb.verdict,
                strip_statement(fb.corrected_cypher or ""),
                fb.comment,
            )
        doc = self._embed(it.question if it else "(unknown interaction)")
        with self._cols(write=True) as c:
            existing = self._get_all(c["feedback"], ids=[fb.id])
            if existing:  # the same feedback again: a no-op, and its review status is kept
                return _from_record(Feedback, existing[0][1])
            if example is not None:
                example.created_at = example.created_at or now
                self._add_if_absent(c["examples"], example.id, doc, self._example_meta(example))
            self._add_if_absent(
                c["feedback"], fb.id, doc, self._feedback_meta(fb, it, example.id if example else "")
            )
        return fb

    def add_feedback(self, feedback: Feedback) -> str:
        """Store 👍/👎. A 👍 on an answered interaction also records its pair as a verified example.

        A 👎 carrying ``corrected_cypher`` must go through ``add_correction`` (it has to run first).
        """
        if feedback.corrected_cypher:
            raise InvalidCorrection(
                "a corrected query must be stored with add_correction(), which runs it first"
            )
        if feedback.verdict not in ("up", "down"):
            raise StoreError(f"verdict must be 'up' or 'down', got {feedback.verdict!r}")
        it = self.get_interaction(feedback.interaction_id)
        if it is None:
            raise StoreError(f"no interaction {feedback.interaction_id!r} in the feedback store")
        example = None
        if feedback.verdict == "up" and it.ok and it.final_cypher:
            example = VerifiedExample(
                question=it.question,
                cypher=strip_statement(it.final_cypher),
                graph=it.graph,
                source="thumbs_up",
                status="pending" if self.review_thumbs_up else "approved",
                interaction_id=it.id,
                schema_fingerprint=it.schema_fingerprint,
            )
            example.id = _example_id(it.graph, it.question, it.final_cypher)
        return self._write_feedback(feedback, it, example).id

    def withdraw_feedback(self, interaction_id: str, verdict: str) -> int:
        """Undo a 👍/👎 (Gradio sends ``liked == ""`` when a thumb is clicked again).

        Deletes that verdict's plain feedback (corrections stay) and the still-pending example a
        👍 created; a pair a reviewer already approved stays. Returns how many records went.
        """
        with self._cols(write=True) as c:
            got = self._get_all(
                c["feedback"],
                where={
                    "$and": [
                        {"interaction_id": interaction_id},
                        {"verdict": verdict},
                        {"has_correction": False},
                    ]
                },
            )
            ids = [i for i, _ in got]
            ex_ids = [m["example_id"] for _, m in got if m.get("example_id")]
            drop_ex = (
                [i for i, m in self._get_all(c["examples"], ids=ex_ids) if m.get("status") == "pending"]
                if ex_ids
                else []
            )
            if ids:
                c["feedback"].delete(ids=ids)
            if drop_ex:
                c["examples"].delete(ids=drop_ex)
        return len(ids) + len(drop_ex)

    def add_correction(self, interaction_id: str, corrected_cypher: str, graph_store: ReadOnlyQuery,
                       comment: str = "") -> Feedback:
        """Run the correction read-only through ``graph_store.query``; store it (👎 + example) only if it ran.

        Raises ``InvalidCorrection`` (and stores nothing) when it is empty, fails, or is a write.
        """
        cypher = strip_statement(corrected_cypher or "")
        if not cypher:
            raise InvalidCorrection("the corrected query is empty")
        it = self.get_interaction(interaction_id)
        if it is None:
            raise StoreError(f"no interaction {interaction_id!r} in the feedback store")
        result = self._verified_on(graph_store, it.graph, "", cypher, "correction")
        fp = result_fingerprint(result.rows)
        status: ReviewStatus = "pending" if self.review_corrections else "approved"
        example = VerifiedExample(
            question=it.question,
            cypher=cypher,
            graph=it.graph,
            source="correction",
            status=status,
            result_fingerprint=fp,
            interaction_id=it.id,
            schema_fingerprint=self._stamp(graph_store),
        )
        example.id = _example_id(it.graph, it.question, cypher)
        fb = Feedback(
            interaction_id=it.id,
            verdict="down",
            corrected_cypher=cypher,
            comment=comment,
            result_fingerprint=fp,
            status=status,
        )
        return self._write_feedback(fb, it, example)

    def _verified_on(self, graph_store: ReadOnlyQuery, graph: str, question: str, cypher: str,
                     what: str) -> Any:
        """The result of ``cypher`` run read-only on ``graph_store``, which must be ``graph``'s; else
        ``InvalidCorrection`` (too long, another graph, fails or writes)."""
        why = self._too_long(question, cypher)
        if why:
            raise InvalidCorrection(f"{what} refused: {why}")
        store_graph = getattr(graph_store, "name", None)
        if store_graph and graph and store_graph != graph:
            raise InvalidCorrection(f"the {what} ran on graph {store_graph!r}, but the question belongs to "
                                    f"{graph!r}")
        return _run_verified(graph_store, cypher, what)

    def add_example(self, example: VerifiedExample) -> str:
        """Store a verified example as given (the escalated model's answer, a pending example); its id is
        filled when empty; a no-op when present. Returns the id."""
        ex = example
        ex.id = ex.id or _example_id(ex.graph, ex.question, ex.cypher)
        ex.created_at = ex.created_at or time.time()
        doc = self._embed(ex.question)
        with self._cols(write=True) as c:
            self._add_if_absent(c["examples"], ex.id, doc, self._example_meta(ex))
        return ex.id

    def import_examples(self, pairs: Sequence[tuple[str, str]], graph_store: ReadOnlyQuery,
                        status: ReviewStatus = "approved") -> ImportReport:
        """Verified examples from the user's own question → Cypher pairs (``source="import"``).

        Each query is run read-only through ``graph_store.query`` first, as a correction is: one that is
        empty, fails or writes is refused (and reported), never stored. Pairs already present are skipped.
        """
        graph = getattr(graph_store, "name", None) or ""
        report = ImportReport()
        stamp = self._stamp(graph_store) if pairs else ""
        ready: list[tuple[VerifiedExample, tuple[str, Any]]] = []
        for n, (question, cypher) in enumerate(pairs, 1):
            question, cypher = squash_spaces(question or ""), strip_statement(cypher or "")
            if not question or not cypher:
                report.refused.append((n, "a question and a Cypher query are both needed"))
                continue
            why = self._too_long(question, cypher)
            if why:
                report.refused.append((n, why))
                continue
            try:
                result = _run_verified(graph_store, cypher, "query")
            except InvalidCorrection as e:
                report.refused.append((n, str(e)))
                continue
            ex = VerifiedExample(
                question=question,
                cypher=cypher,
                graph=graph,
                source="import",
                status=status,
                result_fingerprint=result_fingerprint(result.rows),
                created_at=time.time(),
                schema_fingerprint=stamp,
            )
            ex.id = _example_id(graph, question, cypher)
            ready.append((ex, self._embed(question)))
        with self._cols(write=True) as c:
            for ex, doc in ready:
                if self._add_if_absent(c["examples"], ex.id, doc, self._example_meta(ex)):
                    report.added += 1
                else:
                    report.present += 1
        return report

    # --- review ---------------------------------------------------------------------------------------------

    def resolve_id(self, prefix: str) -> str:
        """The full id of a feedback record or example from a unique prefix (for the CLI)."""
        prefix = prefix.strip()
        with self._cols() as c:
            ids = {i for name in ("feedback", "examples") for i, _ in self._get_all(c[name])}
        if prefix in ids:
            return prefix
        hits = sorted(i for i in ids if i.startswith(prefix)) if len(prefix) >= 4 else []
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise StoreError(f"no feedback or example with id {prefix!r}")
        raise StoreError(f"id prefix {prefix!r} is ambiguous ({len(hits)} matches); give more characters")

    def review(self, item_id: str, status: ReviewStatus) -> None:
        """Approve or reject a feedback record or example; its linked example/feedback follow."""
        if status not in REVIEW_STATUSES:
            raise StoreError(f"status must be one of {', '.join(REVIEW_STATUSES)}, got {status!r}")
        with self._cols(write=True) as c:
            fb = dict(self._get_all(c["feedback"], ids=[item_id]))
            ex: dict[str, dict[str, Any]] = {}
            if item_id in fb:
                ex_id = fb[item_id].get("example_id") or ""
            elif self._get_all(c["examples"], ids=[item_id]):
                ex_id = item_id
            else:
                raise StoreError(f"no feedback or example with id {item_id!r}")
            if ex_id:
                ex = dict(self._get_all(c["examples"], ids=[ex_id]))
                fb.update(self._get_all(c["feedback"], where={"example_id": ex_id}))
            failing = [(i, m) for i, m in ex.items() if m.get("drift") == "failing"]
            if status == "approved" and failing:
                # Approving would put a query that fails on the live schema back into retrieval and
                # training; only a passing re-check (finetune.drift.approve) or a correction clears it.
                i, m = failing[0]
                why = " ".join(str(m.get("drift_error") or "").split())[:200]
                raise StoreError(
                    f"example {i[:12]} was not approved: its query fails on the current schema"
                    f"{f' ({why})' if why else ''}; correct its Cypher or reject it (an approval is "
                    "accepted once the query passes a re-check on the live schema)"
                )
            for name, items in (("examples", ex), ("feedback", fb)):  # one call per collection, example first
                if items:
                    ids = list(items)
                    # A rejection settles a failing re-check: the example stays out for good.
                    metas = [_updated(items[i], {"status": status, **({"drift": ""} if items[i].get("drift")
                                                                        == "failing" else {})}) for i in ids]
                    c[name].update(ids=ids, metadatas=metas)

    def approve_revised(self, item_id: str, question: str, cypher: str,
                        graph_store: ReadOnlyQuery) -> VerifiedExample:
        """A reviewer's edit of the example behind ``item_id`` (an example id, or a feedback id with one).

        The edited query is run read-only through ``graph_store.query`` on the example's graph, as a
        correction is; only if it runs is the edited pair stored, approved, with ``revised_from`` naming the
        original; then the original is rejected (its record unchanged otherwise, so the log keeps what was
        first proposed). An edit that changes nothing is a plain approval."""
        with self._cols() as c:
            linked = dict(self._get_all(c["feedback"], ids=[item_id]))
            ex_id = linked[item_id].get("example_id", "") if item_id in linked else item_id
            found = self._get_all(c["examples"], ids=[ex_id]) if ex_id else []
        if not found:
            raise StoreError(f"no verified example with id {item_id!r} (only examples can be edited)")
        original = _from_record(VerifiedExample, found[0][1])
        question, cypher = squash_spaces(question or ""), strip_statement(cypher or "")
        if not question or not cypher:
            raise InvalidCorrection("the edited example needs a question and a Cypher query")
        result = self._verified_on(graph_store, original.graph, question, cypher, "edited query")
        new_id = _example_id(original.graph, question, cypher)
        if new_id == original.id:  # unchanged: it just ran on the live graph, so a failing mark is stale
            if original.drift == "failing":
                self.mark_drift({original.id: ("valid" if result.rows else "empty", "")},
                                self._stamp(graph_store))
            self.review(original.id, "approved")
            original.status, original.drift = "approved", ""
            return original
        revised = VerifiedExample(
            question=question, cypher=cypher, graph=original.graph, source=original.source,
            status="approved", result_fingerprint=result_fingerprint(result.rows),
            interaction_id=original.interaction_id, created_at=time.time(), id=new_id,
            schema_fingerprint=self._stamp(graph_store), revised_from=original.id,
        )
        self.add_example(revised)  # first: a crash between the two leaves the original pending, not lost
        self.review(original.id, "rejected")
        return revised

    # --- schema drift -----------------------------------------------------------------------------------

    def mark_drift(self, verdicts: dict[str, tuple[Drift, str]], checked_fingerprint: str) -> int:
        """Record a re-check: ``{example id: (drift, error message)}`` against the schema
        ``checked_fingerprint``. Only metadata changes (nothing is deleted); an id deleted meanwhile stays
        deleted. Returns how many examples were marked."""
        if not verdicts:
            return 0
        now = time.time()
        with self._cols(write=True) as c:
            current = dict(self._get_all(c["examples"], ids=list(verdicts)))
            ids = [i for i in verdicts if i in current]
            if ids:
                metas = [
                    _updated(current[i], {"drift": verdicts[i][0], "drift_error": verdicts[i][1],
                                          "checked_fingerprint": checked_fingerprint, "checked_at": now})
                    for i in ids
                ]
                c["examples"].update(ids=ids, metadatas=metas)
        return len(ids)

    # --- reading
    # ------------------------------------------------------------------------------------------------

    def similar_examples(
        self, question: str, graph: str, k: int = 3, approved_only: bool = False, min_similarity: float = -1.0
    ) -> list[Example]:
        """Up to ``k`` verified examples of ``graph`` most similar to ``question``, none less similar than
        ``min_similarity`` (cosine; the collections use the cosine space, distance = 1 - similarity);
        rejected ones never."""
        return [ex for ex, _ in self.scored_examples(question, graph, k, approved_only, min_similarity)]

    def scored_examples(
        self, question: str, graph: str, k: int = 3, approved_only: bool = False, min_similarity: float = -1.0
    ) -> list[tuple[Example, float]]:
        """``similar_examples`` with each example's cosine similarity to ``question``, best first."""
        if k <= 0 or not question.strip():
            return []
        status = {"status": "approved"} if approved_only else {"status": {"$ne": "rejected"}}
        with self._cols() as c:
            col = c["examples"]
            if col.count() == 0:
                return []
            res = col.query(
                query_texts=[squash_spaces(question)],
                n_results=k,
                where={"$and": [{"graph": graph}, status, {"drift": {"$ne": "failing"}}]},
                include=["metadatas", "distances"],
            )
        metas = (res.get("metadatas") or [[]])[0]
        distances = (res.get("distances") or [[]])[0]
        out = []
        for m, distance in zip(metas, distances, strict=True):
            similarity = 1.0 - float(distance)
            if similarity < min_similarity:
                continue
            ex = _from_record(VerifiedExample, m)
            out.append((Example(question=ex.question, cypher=ex.cypher), similarity))
        return out

    def list_feedback(self, status: ReviewStatus | None = None, limit: int = 200) -> list[Feedback]:
        """Feedback, newest first."""
        with self._cols() as c:
            got = self._get_all(c["feedback"], where={"status": status} if status else None)
        items = sorted((_from_record(Feedback, m) for _, m in got), key=lambda f: (-f.created_at, f.id))
        return items[:limit] if limit else items

    def feedback_rows(self, status: ReviewStatus | None = None, limit: int = 200) -> list[FeedbackRow]:
        """Feedback with the interaction's question, graph and example id (for the UI and CLI tables)."""
        with self._cols() as c:
            got = self._get_all(c["feedback"], where={"status": status} if status else None)
        rows = []
        for fid, m in got:
            fb = _from_record(Feedback, m)
            rows.append(
                {
                    **asdict(fb),
                    "id": fid,
                    "question": m.get("question", ""),
                    "graph": m.get("graph", ""),
                    "example_id": m.get("example_id", ""),
                }
            )
        rows.sort(key=lambda r: (-r["created_at"], r["id"]))
        return rows[:limit] if limit else rows

    def list_examples(
        self, graph: str | None = None, status: ReviewStatus | None = None
    ) -> list[VerifiedExample]:
        """Verified examples, oldest first (a stable order for exports)."""
        conds: list[dict[str, Any]] = [
            x for x in ({"graph": graph} if graph else None, {"status": status} if status else None) if x
        ]
        where = None if not conds else conds[0] if len(conds) == 1 else {"$and": conds}
        with self._cols() as c:
            got = self._get_all(c["examples"], where=where)
        return sorted((_from_record(VerifiedExample, m) for _, m in got), key=lambda e: (e.created_at, e.id))

    def export_examples(self, path: Path | str, graph: str | None = None,
                        status: Sequence[ReviewStatus] = ("approved",)) -> int:
        """Write verified examples as JSONL (question, cypher, graph, source, status, result_fingerprint,
        id)."""
        wanted = (status,) if isinstance(status, str) else tuple(status)
        bad = [s for s in wanted if s not in REVIEW_STATUSES]
        if bad:
            raise StoreError(f"unknown status {bad[0]!r}; choose from {', '.join(REVIEW_STATUSES)}")
        items = [e for e in self.list_examples(graph=graph) if e.status in wanted]
        fields_ = ("question", "cypher", "graph", "source", "status", "result_fingerprint", "id")
        try:
            atomic_write_text(Path(path), jsonl_text({k: getattr(e, k) for k in fields_} for e in items))
        except OSError as e:
            raise StoreError(f"cannot write {path}: {e.strerror or e}") from e
        return len(items)

    def counts(self) -> dict[str, int]:
        """interactions, up, down (answers with that verdict), corrections, examples,
        examples_pending/approved/rejected, feedback_pending."""
        with self._cols() as c:
            n_inter = c["interactions"].count()
            fb = [m for _, m in self._get_all(c["feedback"])]
            ex = [m for _, m in self._get_all(c["examples"])]
        # an answer counts once per verdict: a 👎 and the correction saved for it are one "down"
        out = {
            "interactions": n_inter,
            "up": len({m["interaction_id"] for m in fb if m["verdict"] == "up"}),
            "down": len({m["interaction_id"] for m in fb if m["verdict"] == "down"}),
            "corrections": sum(1 for m in fb if m.get("has_correction")),
            "feedback_pending": sum(1 for m in fb if m.get("status") == "pending"),
            "examples": len(ex),
        }
        for s in REVIEW_STATUSES:
            out[f"examples_{s}"] = sum(1 for m in ex if m.get("status") == s)
        out["examples_failing"] = sum(1 for m in ex if m.get("drift") == "failing")
        return out
