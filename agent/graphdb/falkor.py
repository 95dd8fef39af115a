"""FalkorDB backend (embedded or external by URL) of the ``GraphStore`` protocol.

Reads go through ``GRAPH.RO_QUERY`` (the database refuses writes) behind the static gate in
``agent.graphdb.readonly``; validation through ``GRAPH.EXPLAIN``; the per-query timeout through
FalkorDB's ``timeout`` argument. Every client has a socket timeout: a connection can hang after a
Bolt client disconnects, and a timed-out query takes a moment to abort.

FalkorDB treats a missing key as an empty graph, so reads check ``GRAPH.LIST`` first and raise
``UnknownGraph`` naming the graphs that do exist; ``write`` (loaders) may create the graph.

Hardening (issue 14): every read passes ``guard_query`` (bounds, procedure allow-list) and the database
gets its canonical text; the row cap travels into the query as a ``LIMIT`` (``with_row_limit``); the
client never re-sends a command (redis-py's retries off: a timed-out query is not run again). With a
``reconnect`` callable (the embedded backend passes ``ensure_running``) a lost connection re-reads where
the server is, restarting it when it is gone, and the call is made once more, unless the query was
running when the server died: that query is remembered and refused from then on, so a query that kills
the server cannot do it twice.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

from agent.core.cypher_text import quote_ident as _quote
from agent.core.cypher_text import with_row_limit
from agent.core.errors import (
    ConfigError,
    CypherExecutionError,
    CypherloopError,
    CypherSyntaxError,
    GraphAuthError,
    GraphError,
    GraphUnavailable,
    QueryRefused,
    QueryTimeout,
    UnknownGraph,
    WriteRefused,
)
from agent.core.settings import redact_url
from agent.graphdb.base import GraphSchema, NodeLabel, Pattern, Property, QueryResult, RelType
from agent.graphdb.readonly import QueryLimits, guard_query

SOCKET_TIMEOUT_S = 60.0
"""Socket timeout of read/admin connections; a query's own timeout plus a margin when longer."""
WRITE_SOCKET_TIMEOUT_S = 3600.0
"""Write queries ignore FalkorDB's timeout; a loader statement may legitimately run long."""
TIMEOUT_MARGIN_S = 15.0
"""A timed-out query takes a while to abort (200 ms took ~1.4 s): the socket must wait longer."""
SAMPLE_SIZE = 300
"""Nodes/relationships sampled per label/type to infer property types and sample values."""
LOW_CARDINALITY = 10
"""A string property with at most this many distinct values in the sample gets sample values."""
MAX_SAMPLES = 5
MAX_SAMPLE_LEN = 60
"""Properties holding longer strings (descriptions, blobs) get no sample values: they would bloat prompts."""
PATTERN_SCAN_TIMEOUT_MS = 5000
"""Exact DISTINCT pattern scan per relationship type; on timeout fall back to a LIMITed scan."""
PATTERN_FALLBACK_LIMIT = 10000

Endpoint = tuple[str, int, str]
"""(host, port, password) of a server: what a ``reconnect`` callable returns."""

RO_REFUSED = "to be executed only on read-only queries"
TIMED_OUT = "timed out"
EMPTY_KEY = "empty key"


# --- values -----------------------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """FalkorDB client values → plain JSON-able Python (nodes/edges → property dicts, paths → lists)."""
    from falkordb import Edge, Node, Path

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (Node, Edge)):
        return {k: to_plain(v) for k, v in (value.properties or {}).items()}
    if isinstance(value, Path):
        nodes, edges = value.nodes(), value.edges()
        out: list[Any] = []
        for i, node in enumerate(nodes):
            out.append(to_plain(node))
            if i < len(edges):
                out.append(to_plain(edges[i]))
        return out
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if type(value).__name__ == "relativedelta":
        return _iso_duration(value)
    return str(value)


def _iso_duration(d: Any) -> str:
    date_part = "".join(f"{int(n)}{u}" for n, u in ((d.years, "Y"), (d.months, "M"), (d.days, "D")) if n)
    seconds = d.seconds + d.microseconds / 1e6
    secs = f"{seconds:g}S" if seconds else ""
    time_part = "".join(f"{int(n)}{u}" for n, u in ((d.hours, "H"), (d.minutes, "M")) if n) + secs
    return "P" + date_part + ("T" + time_part if time_part else "") if (date_part or time_part) else "PT0S"


def value_type(value: Any) -> str:
    """The Cypher type name used in the schema for a (client-parsed) property value."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, (list, tuple)):
        return "LIST"
    if isinstance(value, datetime):
        return "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, dtime):
        return "TIME"
    if isinstance(value, dict):
        return "POINT" if {"latitude", "longitude"} <= set(value) else "MAP"
    if type(value).__name__ == "relativedelta":
        return "DURATION"
    return type(value).__name__.upper()


def infer_properties(records: list[dict[str, Any]]) -> tuple[Property, ...]:
    """Property names (first-seen order), types (most common; INTEGER+FLOAT → FLOAT) and samples."""
    values: dict[str, list[Any]] = {}
    for rec in records:
        for key, val in rec.items():
            if val is not None:
                values.setdefault(key, []).append(val)
    props = []
    for key, vals in values.items():
        types = Counter(value_type(v) for v in vals)
        typ = "FLOAT" if set(types) == {"INTEGER", "FLOAT"} else types.most_common(1)[0][0]
        samples: tuple[Any, ...] = ()
        more = 0
        if typ == "STRING":
            counts = Counter(v for v in vals if isinstance(v, str))
            if len(counts) <= LOW_CARDINALITY and all(len(v) <= MAX_SAMPLE_LEN for v in counts):
                samples = tuple(
                    v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_SAMPLES]
                )
                more = len(counts) - len(samples)
        props.append(Property(key, typ, samples, more))
    return tuple(props)


# --- the backend ------------------------------------------------------------------------------


class FalkorGraph:
    """One named graph on a FalkorDB server (``GraphStore``)."""

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: str | None = None,
        url: str | None = None,
        backend: str = "embedded",
        default_timeout_s: float = 10.0,
        default_max_rows: int = 1000,
        schema_max_chars: int = 6000,
        limits: QueryLimits | None = None,
        write_timeout_s: float = 3600.0,
        reconnect: Callable[[], Endpoint] | None = None,
    ) -> None:
        if not name:
            raise ConfigError("a graph name is required (set CYPHERLOOP_GRAPH or pass --graph)")
        self.name = name
        self.backend = backend
        self.default_timeout_s = default_timeout_s
        self.default_max_rows = default_max_rows
        self.schema_max_chars = schema_max_chars
        if url and password is None:
            from urllib.parse import urlparse

            with contextlib.suppress(ValueError):
                password = urlparse(url).password  # kept only to scrub it from error messages
        self._host, self._port, self._password, self._url = host, port, password, url
        self.limits = limits or QueryLimits()
        self.write_timeout_s = write_timeout_s
        self._reconnect = reconnect
        self._lock = threading.Lock()
        self._suspects: set[str] = set()  # queries that were running when the server died
        self._clients: dict[float, Any] = {}
        self._schema: GraphSchema | None = None
        self._known_to_exist = False

    def __repr__(self) -> str:
        return f"FalkorGraph(name={self.name!r}, backend={self.backend!r}, at={self._where})"

    # --- connections --------------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return redact_url(self._url) if self._url else f"{self._host}:{self._port}"

    def _unavailable(self, e: Exception) -> GraphUnavailable:
        detail = str(e).replace(self._password, "***") if self._password else str(e)
        if self._url:
            detail = detail.replace(self._url, self._where)
            hint = "check CYPHERLOOP_FALKORDB_URL and that the server is up"
            return GraphUnavailable(f"cannot reach FalkorDB at {self._where}: {detail}; {hint}")
        hint = "is the server running? try `cypherloop graph stop` then retry"
        return GraphUnavailable(f"cannot reach the embedded FalkorDB at {self._where}: {detail}; {hint}")

    def _auth_error(self) -> GraphAuthError:
        if self._url:
            return GraphAuthError(
                f"FalkorDB at {self._where} refused the password; check CYPHERLOOP_FALKORDB_URL"
            )
        return GraphAuthError(
            f"the embedded FalkorDB at {self._where} refused the password in "
            "<home>/falkordb/credentials.json; "
            "run `cypherloop graph stop` then retry"
        )

    def _db(self, socket_timeout: float = SOCKET_TIMEOUT_S):
        """A FalkorDB client whose sockets time out after ``socket_timeout`` (cached per timeout)."""
        key = float(socket_timeout)
        if key in self._clients:
            return self._clients[key]
        import redis
        from falkordb import FalkorDB
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        no_retry = Retry(NoBackoff(), 0)  # a command is sent once: never re-run a query that timed out
        try:
            if self._url:
                url = self._url
                if url.startswith("falkor://"):
                    url = "redis://" + url[len("falkor://") :]
                elif url.startswith("falkors://"):
                    url = "rediss://" + url[len("falkors://") :]
                pool = redis.ConnectionPool.from_url(
                    url, decode_responses=True, socket_timeout=key, socket_connect_timeout=10.0,
                    retry=no_retry,
                )
                db = FalkorDB(connection_pool=pool)
            else:
                db = FalkorDB(
                    host=self._host,
                    port=self._port,
                    password=self._password,
                    socket_timeout=key,
                    socket_connect_timeout=10.0,
                    retry=no_retry,
                )
        except ValueError as e:  # a malformed URL
            raise ConfigError(f"CYPHERLOOP_FALKORDB_URL {self._where!r} is not a redis:// URL") from e
        except redis.TimeoutError as e:  # connecting timed out: the server is down or hung
            raise self._unavailable(e) from e
        except Exception as e:  # noqa: BLE001 - mapped to the error tree
            raise self._map(e) from e
        self._clients[key] = db
        return db

    def _graph(self, socket_timeout: float = SOCKET_TIMEOUT_S):
        return self._db(socket_timeout).select_graph(self.name)

    def _execute(self, *args: Any) -> Any:
        def run() -> Any:
            try:
                return self._db().connection.execute_command(*args)
            except Exception as e:  # noqa: BLE001
                raise self._map(e) from e

        return self._reconnecting(run)

    def _reconnecting(self, run: Callable[[], Any], query: str | None = None) -> Any:
        """``run()``; when the server is unreachable and a ``reconnect`` is set, find (or restart) the
        server and run once more. A ``query`` that was in flight when the connection dropped is not run
        again: it is remembered and refused from then on."""
        try:
            return run()
        except GraphUnavailable as e:
            if self._reconnect is None:
                raise
            lost_midway = query is not None and not _while_connecting(e)
            self._reconnect_now()
            if lost_midway:
                assert query is not None
                self._suspects.add(query)
                raise CypherExecutionError(
                    "the database stopped while this query ran (it was restarted); the query is not run "
                    "again",
                    db_message="the database stopped while this query ran; write a simpler query",
                ) from e
            return run()

    def _reconnect_now(self) -> None:
        """Re-read where the server listens (restarting it when it is gone) and drop the old clients."""
        assert self._reconnect is not None
        with self._lock:
            host, port, password = self._reconnect()
            self.close()
            self._host, self._port, self._password = host, port, password
            self._known_to_exist = False

    # --- errors ---------------------------------------------------------------------------------
    def _map(self, e: Exception, *, syntax: bool = False) -> CypherloopError:
        """A client/database exception → the error tree. ``syntax``: a plan-time failure."""
        import redis

        if isinstance(e, CypherloopError):
            return e
        msg = readable_error(str(e))  # one line: the CLI prints it as is
        if self._password:
            msg = msg.replace(self._password, "***")
        low = msg.lower()
        if (
            isinstance(e, redis.AuthenticationError)
            or "wrongpass" in low
            or "noauth" in low
            or "invalid password" in low
        ):
            return self._auth_error()
        if isinstance(e, redis.TimeoutError):
            return QueryTimeout(f"FalkorDB at {self._where} did not answer in time: {msg}", db_message=msg)
        if isinstance(e, (redis.ConnectionError, ConnectionError, OSError)):
            return self._unavailable(e)
        if isinstance(e, redis.ResponseError):
            if RO_REFUSED in low:
                return WriteRefused(f"refused: the query would write to the graph ({msg})", db_message=msg)
            if TIMED_OUT in low:
                return QueryTimeout(
                    f"the query ran past its time limit and was stopped ({msg})", db_message=msg
                )
            if EMPTY_KEY in low:
                return self._unknown()
            if syntax:
                return CypherSyntaxError(f"invalid Cypher: {msg}", db_message=msg)
            return CypherExecutionError(f"the query failed: {msg}", db_message=msg)
        return CypherExecutionError(f"the query failed: {type(e).__name__}: {msg}", db_message=msg)

    def _unknown(self) -> UnknownGraph:
        try:
            existing = self.list_graphs()
        except GraphError:
            existing = []
        have = (
            ", ".join(sorted(existing))
            if existing
            else "none; load one with `cypherloop graph load FILE --graph NAME`"
        )
        return UnknownGraph(f"graph {self.name!r} does not exist on {self._where}; existing graphs: {have}")

    def _require_graph(self) -> None:
        if self._known_to_exist:
            return
        if self.name not in self.list_graphs():
            raise self._unknown()
        self._known_to_exist = True

    # --- GraphStore -----------------------------------------------------------------------------
    def _guarded(self, cypher: str) -> str:
        text = guard_query(cypher, self.limits)
        if text in self._suspects:
            raise QueryRefused("query refused: it was running when the database stopped earlier; write a "
                               "simpler query")
        return text

    def list_graphs(self) -> list[str]:
        return sorted(self._execute("GRAPH.LIST") or [])

    def exists(self) -> bool:
        """True when the graph exists on the server."""
        return self.name in self.list_graphs()

    def explain(self, cypher: str, params: dict[str, Any] | None = None) -> str:
        text = self._guarded(cypher)
        self._require_graph()

        def run() -> Any:
            try:
                return self._graph().explain(text, params)
            except Exception as e:  # noqa: BLE001
                raise self._map(e, syntax=True) from e

        return str(self._reconnecting(run, text))

    def query(
        self,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        text = self._guarded(cypher)
        self._require_graph()
        timeout_s = self.default_timeout_s if timeout_s is None else timeout_s
        max_rows = self.default_max_rows if max_rows is None else max_rows
        timeout_ms = max(1, math.ceil(timeout_s * 1000))
        limited = with_row_limit(text, max_rows + 1)  # one more row than the cap says "truncated"

        def run() -> Any:
            graph = self._graph(max(SOCKET_TIMEOUT_S, timeout_s + TIMEOUT_MARGIN_S))
            try:
                return graph.ro_query(limited, params, timeout=timeout_ms)
            except Exception as e:  # noqa: BLE001
                raise self._classify(e, text, params) from e

        start = time.perf_counter()
        res = self._reconnecting(run, text)
        elapsed = (time.perf_counter() - start) * 1000
        rows = res.result_set or []
        return QueryResult(
            columns=_columns(res.header),
            rows=[[to_plain(v) for v in row] for row in rows[:max_rows]],
            truncated=len(rows) > max_rows,
            elapsed_ms=round(elapsed, 3),
        )

    def _classify(self, e: Exception, cypher: str, params: dict[str, Any] | None) -> CypherloopError:
        """A failed run: a plan-time error (EXPLAIN fails too) or a runtime error."""
        import redis

        err = self._map(e)
        if isinstance(err, CypherExecutionError) and isinstance(e, redis.ResponseError):
            try:
                self._graph().explain(cypher, params)
            except redis.ResponseError:
                return self._map(e, syntax=True)
            except Exception:  # noqa: BLE001 - keep the original classification
                pass
        return err

    def write(self, cypher: str, params: dict[str, Any] | None = None) -> QueryResult:
        start = time.perf_counter()

        def run() -> Any:
            try:
                graph = self._graph(max(WRITE_SOCKET_TIMEOUT_S, self.write_timeout_s + TIMEOUT_MARGIN_S))
                return graph.query(cypher, params, timeout=max(1, math.ceil(self.write_timeout_s * 1000)))
            except Exception as e:  # noqa: BLE001
                raise self._classify(e, cypher, params) from e

        res = self._reconnecting(run, cypher)
        self._schema = None
        self._known_to_exist = False
        elapsed = (time.perf_counter() - start) * 1000
        return QueryResult(
            columns=_columns(res.header),
            rows=[[to_plain(v) for v in row] for row in res.result_set or []],
            elapsed_ms=round(elapsed, 3),
        )

    def delete_graph(self) -> None:
        self._schema = None
        self._known_to_exist = False
        if self.name in self.list_graphs():
            self._execute("GRAPH.DELETE", self.name)

    def close(self) -> None:
        for db in self._clients.values():
            with contextlib.suppress(Exception):  # best effort
                db.close()
        self._clients.clear()

    def __enter__(self) -> FalkorGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema -----------------------------------------------------------------------------------
    def _ro(self, cypher: str, timeout_ms: int | None = None) -> list[list[Any]]:
        """An internal read (schema, stats): no gate (the text is ours), raw client values."""
        def run() -> list[list[Any]]:
            try:
                return self._graph().ro_query(cypher, timeout=timeout_ms).result_set or []
            except Exception as e:  # noqa: BLE001
                raise self._map(e, syntax=True) from e

        return self._reconnecting(run)

    def stats(self) -> dict[str, dict[str, int]]:
        self._require_graph()
        labels = [r[0] for r in self._ro("CALL db.labels()")]
        types = [r[0] for r in self._ro("CALL db.relationshipTypes()")]
        nodes = {x: int(self._ro(f"MATCH (n:{_quote(x)}) RETURN count(n)")[0][0]) for x in labels}
        rels = {t: int(self._ro(f"MATCH ()-[r:{_quote(t)}]->() RETURN count(r)")[0][0]) for t in types}
        return {"nodes": nodes, "relationships": rels}

    def schema(self, refresh: bool = False) -> GraphSchema:
        if self._schema is not None and not refresh:
            return self._schema
        self._require_graph()
        counts = self.stats()
        labels = []
        for label, count in counts["nodes"].items():
            rows = self._ro(f"MATCH (n:{_quote(label)}) WITH n LIMIT {SAMPLE_SIZE} RETURN properties(n)")
            labels.append(NodeLabel(label, infer_properties([r[0] for r in rows]), count))
        rels, patterns = [], []
        for rtype, count in counts["relationships"].items():
            q = _quote(rtype)
            rows = self._ro(f"MATCH ()-[r:{q}]->() WITH r LIMIT {SAMPLE_SIZE} RETURN properties(r)")
            rels.append(RelType(rtype, infer_properties([r[0] for r in rows]), count))
            patterns += self._patterns(rtype)
        self._schema = GraphSchema(tuple(labels), tuple(rels), tuple(patterns))
        return self._schema

    def _patterns(self, rtype: str) -> list[Pattern]:
        q = _quote(rtype)
        exact = f"MATCH (a)-[:{q}]->(b) RETURN DISTINCT labels(a), labels(b)"
        try:
            rows = self._ro(exact, timeout_ms=PATTERN_SCAN_TIMEOUT_MS)
        except QueryTimeout:  # a huge graph: patterns among the first edges only
            rows = self._ro(
                f"MATCH (a)-[:{q}]->(b) WITH a, b LIMIT {PATTERN_FALLBACK_LIMIT} RETURN DISTINCT labels(a), "
                "labels(b)"
            )
        found = {Pattern(s, rtype, e) for la, lb in rows for s in la or () for e in lb or ()}
        return sorted(found, key=lambda p: (p.start, p.end))

    def schema_text(self, question: str | None = None) -> str:
        return self.schema().to_text(question, max_chars=self.schema_max_chars)


_FALKOR_SYNTAX = re.compile(
    r"errMsg:\s*(?P<msg>.*?)\s+line:\s*(?P<line>\d+),\s*column:\s*(?P<col>\d+),\s*offset:\s*\d+\s+"
    r"errCtx:\s*(?P<ctx>.*?)\s+errCtxOffset:\s*(?P<off>\d+)\s*$",
    re.DOTALL,
)


def readable_error(message: str) -> str:
    """A database message on one line; FalkorDB's parser errors (``errMsg: … line: 1, column: 10, offset:
    9 errCtx: … errCtxOffset: 9``) as ``Invalid input 'x': expected … (line 1, column 10, at 'x) RETURN
    n')``."""
    m = _FALKOR_SYNTAX.search(message)
    if m is None:
        return " ".join(message.split())
    ctx, off = m["ctx"], int(m["off"])
    near = " ".join(ctx[off:off + 30].split()) or "the end of the query"
    near = repr(near) if ctx[off:] else near
    head = " ".join((message[:m.start()] + m["msg"]).split())
    return f"{head} (line {m['line']}, column {m['col']}, at {near})"


def _while_connecting(e: GraphUnavailable) -> bool:
    """True when the connection failed before the command was sent (nothing ran)."""
    text = str(e).lower()
    return "connecting to" in text or "connection refused" in text


def _columns(header: Any) -> list[str]:
    """Column names from the client's header ([[type, name], ...] or [name, ...])."""
    cols = []
    for h in header or []:
        cols.append(str(h[1]) if isinstance(h, (list, tuple)) and len(h) == 2 else str(h))
    return cols
