"""The Neo4j backend: langchain-neo4j's connection, the neo4j driver's READ sessions, EXPLAIN-checked queries.

Every model-written query passes three gates, as neo4j-graphrag's text2cypher retriever does:
1. ``readonly.guard_query``, the same gate as the FalkorDB backend's: the static clause check, the
   bounds (``QueryLimits``: length, nesting, hops, ``range()`` size) and the procedure allow-list; the
   driver only ever sees the canonical text it returns;
2. ``EXPLAIN`` in a READ session, refused unless the summary's query type is read (``"r"``); a
   missing query type is refused too (FalkorDB's Bolt port, for one, reports none);
3. the query itself in a READ session (``default_access_mode=READ_ACCESS``: a cluster routes it to a
   reader, and Neo4j refuses writes in it) with a per-transaction timeout (``neo4j.Query(timeout=)``).

Schema: ``apoc.meta.data`` (neo4j-graphrag's queries, as langchain-neo4j uses them) when APOC is
installed; otherwise ``db.schema.nodeTypeProperties()``, ``db.schema.relTypeProperties()`` and
``db.schema.visualization()``. Low-cardinality string properties get a few sample values.

Driver errors become ``agent.core.errors`` with one actionable line ("check NEO4J_URI"); the password never
appears in a message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import neo4j
from neo4j import exceptions as nx

from agent.core.cypher_text import quote_ident as quote_name
from agent.core.cypher_text import unquote_ident
from agent.core.errors import (
    ConfigError,
    CypherExecutionError,
    CypherSyntaxError,
    GraphAuthError,
    GraphError,
    GraphUnavailable,
    QueryTimeout,
    UnknownGraph,
    WriteRefused,
)
from agent.core.settings import Settings, redact_url
from agent.graphdb.base import GraphSchema, NodeLabel, Pattern, Property, QueryResult, RelType
from agent.graphdb.readonly import QueryLimits, guard_query

log = logging.getLogger(__name__)

# Value of neo4j.ResultSummary.query_type for a read-only statement. The server reports one of
# "r" (read), "w" (write), "rw" (read and write) and "s" (schema write); anything else, or nothing
# at all, is refused.
READ_ONLY_QUERY_TYPE = "r"

CONNECT_TIMEOUT_S = 10.0
SAMPLE_SCAN = 1000
"""Values read per string property when looking for low-cardinality strings."""
LOW_CARDINALITY = 10
"""A string property with at most this many distinct values among those read gets sample values."""
MAX_SAMPLES = 5
"""Sample values kept, most frequent first (as the FalkorDB backend does)."""

_SYNTAX_CODES = (
    "Neo.ClientError.Statement.SyntaxError",
    "Neo.ClientError.Statement.SemanticError",
    "Neo.ClientError.Statement.ParameterMissing",
    "Neo.ClientError.Statement.TypeError",
    "Neo.ClientError.Statement.ArgumentError",
    "Neo.ClientError.Statement.EntityNotFound",
    "Neo.ClientError.Procedure.ProcedureNotFound",
    "Neo.ClientError.Statement.UnsupportedOperationError",
)
_TIMEOUT_CODES = (
    "Neo.ClientError.Transaction.TransactionTimedOut",
    "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
)
_WRITE_CODES = (
    "Neo.ClientError.Statement.AccessMode",
    "Neo.ClientError.Cluster.NotALeader",
    "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase",
)
PROCEDURE_NOT_FOUND = "Neo.ClientError.Procedure.ProcedureNotFound"

# Type names from db.schema.*Properties() (Java names) and apoc.meta.data (upper case) → ours.
_TYPE_NAMES = {
    "STRING": "STRING", "LONG": "INTEGER", "INTEGER": "INTEGER", "INT": "INTEGER", "DOUBLE": "FLOAT",
    "FLOAT": "FLOAT", "BOOLEAN": "BOOLEAN", "DATE": "DATE", "DATETIME": "DATETIME", "DATE_TIME": "DATETIME",
    "LOCALDATETIME": "DATETIME", "LOCAL_DATE_TIME": "DATETIME", "ZONED DATETIME": "DATETIME",
    "LOCAL DATETIME": "DATETIME", "TIME": "TIME", "LOCALTIME": "TIME", "LOCAL_TIME": "TIME",
    "ZONED TIME": "TIME", "LOCAL TIME": "TIME", "DURATION": "DURATION", "POINT": "POINT", "MAP": "MAP",
    "LIST": "LIST",
}


class Neo4jGraph:
    """``GraphStore`` over Neo4j (or anything speaking Bolt).

    ``driver`` is for tests: a protocol-conforming stand-in for ``neo4j.Driver`` (``session(**config)``
    returning an object with ``run(query, parameters)``); without it, langchain-neo4j's ``Neo4jGraph``
    opens and verifies the connection.
    """

    backend = "neo4j"

    def __init__(
        self,
        uri: str,
        username: str | None = "neo4j",
        password: str | None = None,
        *,
        database: str | None = None,
        name: str | None = None,
        timeout_s: float | None = 10.0,
        max_rows: int = 1000,
        schema_max_chars: int = 6000,
        driver: Any = None,
        driver_config: dict[str, Any] | None = None,
        limits: QueryLimits | None = None,
    ) -> None:
        self.uri = redact_url(uri)
        self.username = username
        self.database = database or None
        self.name = name or database or "neo4j"
        self.default_timeout_s = timeout_s
        self.default_max_rows = max_rows
        self.schema_max_chars = schema_max_chars
        self.limits = limits or QueryLimits()
        self._schema: GraphSchema | None = None
        self._apoc: bool | None = None  # unknown until the first schema read
        self._lc = None
        if driver is None:
            self._lc = _connect(uri, username, password, database, driver_config)
            driver = self._lc._driver  # langchain-neo4j exposes no public accessor for its driver
        self._driver = driver
        if self._lc is not None:
            try:
                self._check_database()
            except GraphError:
                self.close()
                raise

    @classmethod
    def from_settings(cls, settings: Settings, name: str | None = None) -> Neo4jGraph:
        """The backend for ``graph_backend=neo4j`` (``NEO4J_URI`` / ``NEO4J_USERNAME`` /
        ``NEO4J_PASSWORD``)."""
        if not settings.neo4j_uri:
            raise ConfigError("NEO4J_URI is not set: set it to your Neo4j address, e.g. neo4j://localhost:7687")
        password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
        return cls(
            settings.neo4j_uri,
            settings.neo4j_username,
            password,
            database=settings.neo4j_database,
            name=name or settings.graph,
            timeout_s=settings.query_timeout_s,
            max_rows=settings.max_rows,
            schema_max_chars=settings.schema_max_chars,
            limits=settings.query_limits(),
        )

    # --- sessions and errors ------------------------------------------------------------------
    @contextmanager
    def _session(self, mode: str = neo4j.READ_ACCESS, database: str | None = None) -> Iterator[Any]:
        try:
            with self._driver.session(
                database=database or self.database, default_access_mode=mode
            ) as session:
                yield session
        except GraphError:
            raise
        except (nx.Neo4jError, nx.DriverError) as e:
            raise self._map_error(e) from e

    def _map_error(self, e: Exception, *, phase: str = "run") -> GraphError:
        """One actionable line for a driver error; the database's own message stays in ``db_message``."""
        return map_driver_error(e, uri=self.uri, username=self.username, database=self.database, phase=phase)

    def _check_database(self) -> None:
        """Fail at connect time, not at the first question, when the database is missing or down."""
        with self._session() as s:
            s.run(neo4j.Query("RETURN 1 AS ok", timeout=CONNECT_TIMEOUT_S)).consume()

    def _read(
        self, cypher: str, params: dict[str, Any] | None = None, *, database: str | None = None
    ) -> list[dict[str, Any]]:
        """Trusted internal reads (schema, stats): READ session, no gate, plain values."""
        with self._session(neo4j.READ_ACCESS, database) as s:
            try:
                result = s.run(neo4j.Query(cypher, timeout=self.default_timeout_s), params or {})
                keys = list(result.keys())
                return [dict(zip(keys, (to_plain(v) for v in rec.values()), strict=False)) for rec in result]
            except (nx.Neo4jError, nx.DriverError) as e:
                raise self._map_error(e) from e

    # --- read-only queries ----------------------------------------------------------------------
    def _explain_summary(self, session: Any, cypher: str, params: dict[str, Any] | None) -> Any:
        try:
            return session.run(
                neo4j.Query(f"EXPLAIN {cypher}", timeout=self.default_timeout_s), params or {}
            ).consume()
        except (nx.Neo4jError, nx.DriverError) as e:
            raise self._map_error(e, phase="explain") from e

    @staticmethod
    def _require_read(summary: Any) -> None:
        query_type = getattr(summary, "query_type", None)
        if query_type != READ_ONLY_QUERY_TYPE:
            shown = "no query type" if query_type is None else f"query type {query_type!r}"
            raise WriteRefused(
                f"write refused: EXPLAIN reported {shown}, not read-only ({READ_ONLY_QUERY_TYPE!r}); "
                "only read-only queries may run"
            )

    def explain(self, cypher: str, params: dict[str, Any] | None = None) -> str:
        text = guard_query(cypher, self.limits)
        with self._session(neo4j.READ_ACCESS) as s:
            summary = self._explain_summary(s, text, params)
        self._require_read(summary)
        return render_plan(getattr(summary, "plan", None))

    def query(
        self,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        text = guard_query(cypher, self.limits)
        timeout = self.default_timeout_s if timeout_s is None else timeout_s
        cap = self.default_max_rows if max_rows is None else max_rows
        started = time.perf_counter()
        with self._session(neo4j.READ_ACCESS) as s:
            summary = self._explain_summary(s, text, params)
            self._require_read(summary)
            try:
                result = s.run(neo4j.Query(text, timeout=timeout), params or {})
                columns = list(result.keys())
                rows: list[list[Any]] = []
                truncated = False
                for record in result:
                    if len(rows) >= cap:
                        truncated = True
                        break
                    rows.append([to_plain(v) for v in record.values()])
            except (nx.Neo4jError, nx.DriverError) as e:
                raise self._map_error(e) from e
        elapsed = (time.perf_counter() - started) * 1000
        return QueryResult(
            columns, rows, truncated, elapsed, plan=render_plan(getattr(summary, "plan", None)) or None
        )

    # --- writes (loaders and admin only) -------------------------------------------------------
    def write(self, cypher: str, params: dict[str, Any] | None = None) -> QueryResult:
        started = time.perf_counter()
        with self._session(neo4j.WRITE_ACCESS) as s:
            try:
                result = s.run(neo4j.Query(cypher), params or {})
                columns = list(result.keys())
                rows = [[to_plain(v) for v in rec.values()] for rec in result]
            except (nx.Neo4jError, nx.DriverError) as e:
                raise self._map_error(e, phase="write") from e
        self._schema = None
        return QueryResult(columns, rows, False, (time.perf_counter() - started) * 1000)

    def delete_graph(self) -> None:
        """Delete every node and relationship in batches, then drop indexes and constraints."""
        statements = (
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",  # Neo4j 5.21+
            "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",  # Neo4j 4.4-5.20
            "MATCH (n) DETACH DELETE n",  # anything else (FalkorDB's Bolt port)
        )
        for i, statement in enumerate(statements):
            try:
                self.write(statement)
                break
            except (CypherSyntaxError, CypherExecutionError):
                if i == len(statements) - 1:
                    raise
        for kind, show in (
            ("CONSTRAINT", "SHOW CONSTRAINTS YIELD name"),
            ("INDEX", "SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP'"),
        ):
            try:
                names = [r["name"] for r in self._read(show)]
            except GraphError:
                continue
            for n in names:
                self.write(f"DROP {kind} {quote_name(n)} IF EXISTS")
        self._schema = None

    # --- schema and stats ----------------------------------------------------------------------
    def schema(self, refresh: bool = False) -> GraphSchema:
        if self._schema is None or refresh:
            self._schema = self._read_schema()
        return self._schema

    def schema_text(self, question: str | None = None) -> str:
        return self.schema().to_text(question, max_chars=self.schema_max_chars)

    def _read_schema(self) -> GraphSchema:
        raw = None
        if self._apoc is not False:
            try:
                raw = self._apoc_schema()
                self._apoc = True
            except GraphError as e:
                if not _is_procedure_missing(e):
                    raise
                self._apoc = False
                log.warning(
                    "APOC is not installed on %s: reading the schema through db.schema.* instead", self.uri
                )
        if raw is None:
            raw = self._builtin_schema()
        node_props, rel_props, patterns = raw
        counts = self.stats()
        labels = tuple(
            NodeLabel(label, self._with_samples("node", label, props), counts["nodes"].get(label))
            for label, props in sorted(node_props.items())
        )
        rels = tuple(
            RelType(rel, self._with_samples("rel", rel, props), counts["relationships"].get(rel))
            for rel, props in sorted(rel_props.items())
        )
        return GraphSchema(labels, rels, tuple(sorted(set(patterns), key=lambda p: (p.start, p.type, p.end))))

    def _apoc_schema(
        self,
    ) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]], list[Pattern]]:
        from neo4j_graphrag.schema import (
            BASE_ENTITY_LABEL,
            BASE_KG_BUILDER_LABEL,
            EXCLUDED_LABELS,
            EXCLUDED_RELS,
            NODE_PROPERTIES_QUERY,
            REL_PROPERTIES_QUERY,
            REL_QUERY,
        )

        excluded = [*EXCLUDED_LABELS, BASE_ENTITY_LABEL, BASE_KG_BUILDER_LABEL]
        node_rows = self._read(NODE_PROPERTIES_QUERY, {"EXCLUDED_LABELS": excluded, "SAMPLE": SAMPLE_SCAN})
        rel_rows = self._read(REL_PROPERTIES_QUERY, {"EXCLUDED_LABELS": EXCLUDED_RELS, "SAMPLE": SAMPLE_SCAN})
        pat_rows = self._read(REL_QUERY, {"EXCLUDED_LABELS": excluded, "SAMPLE": SAMPLE_SCAN})
        nodes = {
            r["output"]["label"]: [(p["property"], _type_name(p["type"])) for p in r["output"]["properties"]]
            for r in node_rows
        }
        rels = {
            r["output"]["type"]: [(p["property"], _type_name(p["type"])) for p in r["output"]["properties"]]
            for r in rel_rows
        }
        patterns = [Pattern(r["output"]["start"], r["output"]["type"], r["output"]["end"]) for r in pat_rows]
        for p in patterns:
            rels.setdefault(p.type, [])
        return nodes, rels, patterns

    def _builtin_schema(
        self,
    ) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]], list[Pattern]]:
        nodes: dict[str, list[tuple[str, str]]] = {}
        for r in self._read(
            "CALL db.schema.nodeTypeProperties() YIELD nodeLabels, propertyName, propertyTypes "
            "RETURN nodeLabels, propertyName, propertyTypes"
        ):
            for label in r["nodeLabels"] or ():
                props = nodes.setdefault(label, [])
                if r["propertyName"] and all(p[0] != r["propertyName"] for p in props):
                    props.append((r["propertyName"], _type_name((r["propertyTypes"] or ["STRING"])[0])))
        rels: dict[str, list[tuple[str, str]]] = {}
        for r in self._read("CALL db.schema.relTypeProperties() YIELD relType, propertyName, propertyTypes "
                            "RETURN relType, propertyName, propertyTypes"):
            rel = _strip_rel_type(r["relType"])
            props = rels.setdefault(rel, [])
            if r["propertyName"] and all(p[0] != r["propertyName"] for p in props):
                props.append((r["propertyName"], _type_name((r["propertyTypes"] or ["STRING"])[0])))
        patterns = []
        with self._session(neo4j.READ_ACCESS) as s:
            try:
                for record in s.run(
                    neo4j.Query("CALL db.schema.visualization()", timeout=self.default_timeout_s)
                ):
                    names = {n.element_id: _viz_name(n) for n in record["nodes"]}
                    for rel in record["relationships"]:
                        start = names.get(rel.start_node.element_id) or _viz_name(rel.start_node)
                        end = names.get(rel.end_node.element_id) or _viz_name(rel.end_node)
                        patterns.append(Pattern(start, rel.type, end))
                        rels.setdefault(rel.type, [])
            except (nx.Neo4jError, nx.DriverError) as e:
                raise self._map_error(e) from e
        return nodes, rels, patterns

    def _with_samples(self, kind: str, name: str, props: list[tuple[str, str]]) -> tuple[Property, ...]:
        out = []
        match = f"MATCH (x:{quote_name(name)})" if kind == "node" else f"MATCH ()-[x:{quote_name(name)}]->()"
        for prop, type_ in props:
            samples: tuple[Any, ...] = ()
            more = 0
            if type_ == "STRING":
                rows = self._read(
                    f"{match} WHERE x.{quote_name(prop)} IS NOT NULL WITH x.{quote_name(prop)} AS v LIMIT "
                    "$scan "
                    "RETURN v, count(*) AS c ORDER BY c DESC, v LIMIT $k",
                    {"scan": SAMPLE_SCAN, "k": LOW_CARDINALITY + 1},
                )
                if len(rows) <= LOW_CARDINALITY:
                    samples = tuple(r["v"] for r in rows[:MAX_SAMPLES] if isinstance(r["v"], str))
                    more = max(0, len(rows) - MAX_SAMPLES)
            out.append(Property(prop, type_, samples, more))
        return tuple(out)

    def stats(self) -> dict[str, dict[str, int]]:
        nodes = {}
        for r in self._read("CALL db.labels() YIELD label RETURN label"):
            rows = self._read(f"MATCH (n:{quote_name(r['label'])}) RETURN count(n) AS c")
            nodes[r["label"]] = int(rows[0]["c"]) if rows else 0
        rels = {}
        for r in self._read("CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType"):
            t = r["relationshipType"]
            rows = self._read(f"MATCH ()-[r:{quote_name(t)}]->() RETURN count(r) AS c")
            rels[t] = int(rows[0]["c"]) if rows else 0
        return {"nodes": {k: v for k, v in sorted(nodes.items()) if v},
                "relationships": {k: v for k, v in sorted(rels.items()) if v}}

    def list_graphs(self) -> list[str]:
        try:
            rows = self._read(
                "SHOW DATABASES YIELD name, type WHERE type <> 'system' RETURN DISTINCT name",
                database="system",
            )
            return sorted(r["name"] for r in rows)
        except GraphError:
            return [self.database or self.name]

    def close(self) -> None:
        driver, self._driver = self._driver, None
        if self._lc is not None:
            self._lc.close()
        elif driver is not None and hasattr(driver, "close"):
            driver.close()

    def __enter__(self) -> Neo4jGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Neo4jGraph(uri={self.uri!r}, database={self.database!r}, name={self.name!r})"


# --- connecting ---------------------------------------------------------------------------------
def _connect(
    uri: str,
    username: str | None,
    password: str | None,
    database: str | None,
    driver_config: dict[str, Any] | None,
):
    """langchain-neo4j's ``Neo4jGraph`` without its schema refresh; its errors mapped to ours."""
    from langchain_neo4j import Neo4jGraph as LangchainNeo4jGraph

    config = {
        "connection_timeout": CONNECT_TIMEOUT_S,
        "connection_acquisition_timeout": 2 * CONNECT_TIMEOUT_S,
        "max_transaction_retry_time": 0,
        **(driver_config or {}),
    }
    no_auth = password is None
    try:
        return LangchainNeo4jGraph(
            url=uri,
            username="" if no_auth else (username or "neo4j"),
            password="" if no_auth else password,
            database=database
            or "neo4j",  # only used by langchain's own helpers; our sessions pass `database`
            refresh_schema=False,
            driver_config=config,
        )
    except (ValueError, nx.Neo4jError, nx.DriverError) as e:
        cause = e if isinstance(e, (nx.Neo4jError, nx.DriverError)) else (e.__cause__ or e.__context__)
        if isinstance(cause, (nx.Neo4jError, nx.DriverError)):
            raise map_driver_error(
                cause, uri=redact_url(uri), username=username, database=database, phase="connect"
            ) from e
        raise ConfigError(
            f"invalid NEO4J_URI {redact_url(uri)!r}: {_one_line(str(e))}; check NEO4J_URI"
        ) from e


def map_driver_error(
    e: BaseException, *, uri: str, username: str | None, database: str | None, phase: str = "run"
) -> GraphError:
    """A neo4j driver exception as one of ours, with a one-line, actionable message and no secret."""
    where = f"Neo4j at {uri}"
    db = f"database {database!r}" if database else "the default database"
    if isinstance(e, nx.AuthError) or (
        isinstance(e, nx.Neo4jError) and (e.code or "").startswith("Neo.ClientError.Security.Unauthorized")
    ):
        return GraphAuthError(
            f"{where} refused the credentials of user {username!r}: check NEO4J_USERNAME/NEO4J_PASSWORD",
            db_message=_db_message(e),
        )
    if isinstance(e, (nx.ServiceUnavailable, nx.SessionExpired)):
        return GraphUnavailable(f"cannot reach {where}: check NEO4J_URI and that the server is running",
                                db_message=_db_message(e))
    if isinstance(e, nx.ConfigurationError):
        return GraphUnavailable(
            f"cannot connect to {where}: {_one_line(str(e))}; check NEO4J_URI", db_message=_db_message(e)
        )
    if isinstance(e, nx.Neo4jError):
        code = e.code or ""
        msg = _db_message(e)
        if code == "Neo.ClientError.Database.DatabaseNotFound":
            return UnknownGraph(f"{where} has no {db}: check NEO4J_DATABASE", db_message=msg)
        if code in (
            "Neo.TransientError.General.DatabaseUnavailable",
            "Neo.TransientError.Database.DatabaseUnavailable",
        ) or isinstance(e, nx.DatabaseUnavailable):
            return GraphUnavailable(
                f"{db} on {where} is unavailable (stopped or starting): start it, or check NEO4J_DATABASE",
                db_message=msg,
            )
        if code in _TIMEOUT_CODES or "TimedOut" in code:
            return QueryTimeout(
                f"the query ran past its time limit and was stopped: {_one_line(msg)}", db_message=msg
            )
        if code in _WRITE_CODES:
            return WriteRefused(f"write refused by Neo4j: {_one_line(msg)}", db_message=msg)
        if code in _SYNTAX_CODES or isinstance(e, nx.CypherSyntaxError):
            return CypherSyntaxError(f"Neo4j rejected the query: {_one_line(msg)}", db_message=msg)
        if phase == "explain" and code.startswith("Neo.ClientError."):
            return CypherSyntaxError(f"Neo4j rejected the query: {_one_line(msg)}", db_message=msg)
        if phase == "connect":
            return GraphUnavailable(
                f"cannot use {where}: {_one_line(msg)}; check NEO4J_URI/NEO4J_DATABASE", db_message=msg
            )
        return CypherExecutionError(f"the query failed in Neo4j: {_one_line(msg)}", db_message=msg)
    return GraphError(f"{where}: {_one_line(str(e))}", db_message=_db_message(e))


def _db_message(e: BaseException) -> str:
    msg = getattr(e, "message", None)
    return str(msg) if msg else str(e)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _is_procedure_missing(e: GraphError) -> bool:
    cause = e.__cause__
    return isinstance(cause, nx.Neo4jError) and cause.code == PROCEDURE_NOT_FOUND


# --- values -------------------------------------------------------------------------------------
def to_plain(value: Any) -> Any:
    """A driver value as plain JSON-able Python (the ``QueryResult.rows`` contract)."""
    from neo4j.graph import Node, Path, Relationship

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (Node, Relationship)):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        out: list[Any] = [to_plain(value.start_node)]
        for rel, node in zip(value.relationships, value.nodes[1:], strict=False):
            out += [to_plain(rel), to_plain(node)]
        return out
    if hasattr(value, "iso_format"):  # neo4j.time Date / DateTime / Time / Duration (a tuple subclass)
        return value.iso_format()
    if hasattr(value, "srid"):  # neo4j.spatial.Point (a tuple subclass)
        return {"srid": value.srid, "coordinates": [float(c) for c in value]}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def render_plan(plan: Any, indent: int = 0) -> str:
    """EXPLAIN's plan tree (a dict from the driver) as indented text; "" when the server sent none."""
    if not plan:
        return ""
    if not isinstance(plan, dict):
        plan = {"operatorType": getattr(plan, "operator_type", str(plan)),
                "identifiers": getattr(plan, "identifiers", []),
                "children": getattr(plan, "children", [])}
    op = str(plan.get("operatorType", "?")).split("@")[0]
    ids = plan.get("identifiers") or []
    line = "  " * indent + op + (f" ({', '.join(map(str, ids))})" if ids else "")
    return "\n".join([line, *(render_plan(c, indent + 1) for c in plan.get("children") or ())])


def _type_name(raw: Any) -> str:
    text = str(raw).strip()
    upper = text.upper()
    if upper.endswith("ARRAY") or upper.startswith("LIST"):
        return "LIST"
    return _TYPE_NAMES.get(upper, upper or "STRING")


def _strip_rel_type(raw: str) -> str:
    return unquote_ident(str(raw).lstrip(":"))


def _viz_name(node: Any) -> str:
    try:
        name = node.get("name")
    except AttributeError:
        name = None
    return str(name) if name else next(iter(sorted(getattr(node, "labels", ()) or ())), "?")

