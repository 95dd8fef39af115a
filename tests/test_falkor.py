"""FalkorGraph against the real embedded FalkorDB (the session server and the shop graph)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from agent.core.errors import (
    ConfigError,
    CypherExecutionError,
    CypherSyntaxError,
    GraphAuthError,
    GraphUnavailable,
    QueryTimeout,
    UnknownGraph,
    WriteRefused,
)
from agent.graphdb import GraphStore, Pattern, open_graph
from agent.graphdb.embedded import ensure_running
from agent.graphdb.falkor import FalkorGraph, infer_properties

SLOW = "MATCH (a), (b), (c), (d), (e), (f) RETURN count(*)"  # 51^6 rows of the shop graph


# --- schema ---------------------------------------------------------------------------------------


def test_shop_is_a_graph_store(shop):
    assert isinstance(shop, GraphStore)
    assert shop.name == "shop" and shop.backend == "embedded"


def test_schema_labels_types_and_counts(shop):
    schema = shop.schema()
    assert {x.label: x.count for x in schema.labels} == {
        "Category": 4,
        "Supplier": 3,
        "Customer": 12,
        "Product": 12,
        "Order": 20,
    }
    assert {x.type for x in schema.relationships} == {
        "PLACED",
        "CONTAINS",
        "IN_CATEGORY",
        "SUPPLIES",
        "REVIEWED",
        "REFERRED",
    }
    product = {p.name: p.type for p in schema.label("Product").properties}
    assert product == {
        "product_id": "STRING",
        "name": "STRING",
        "price": "FLOAT",
        "stock": "INTEGER",
        "rating": "FLOAT",
    }
    customer = [p.name for p in schema.label("Customer").properties]
    assert customer == ["customer_id", "name", "email", "city", "country", "segment", "joined"]
    contains = {p.name: p.type for p in schema.rel("CONTAINS").properties}
    assert contains == {"quantity": "INTEGER", "unit_price": "FLOAT"}
    assert schema.rel("REFERRED").properties == () and schema.rel("REFERRED").count == 5


def test_schema_patterns(shop):
    assert set(shop.schema().patterns) == {
        Pattern("Customer", "PLACED", "Order"),
        Pattern("Order", "CONTAINS", "Product"),
        Pattern("Product", "IN_CATEGORY", "Category"),
        Pattern("Supplier", "SUPPLIES", "Product"),
        Pattern("Customer", "REVIEWED", "Product"),
        Pattern("Customer", "REFERRED", "Customer"),
    }


def test_sample_values_only_for_low_cardinality_strings(shop):
    schema = shop.schema()
    props = {p.name: p for p in schema.label("Order").properties}
    assert set(props["status"].samples) == {"delivered", "shipped", "pending", "cancelled"}
    assert props["order_id"].samples == ()  # 20 distinct ids: not low-cardinality
    assert props["total"].samples == ()  # not a string
    category = schema.label("Category").properties[0]
    assert sorted(category.samples) == ["Books", "Electronics", "Home", "Sports"]
    cities = {p.name: p for p in schema.label("Customer").properties}["city"].samples
    assert 0 < len(cities) <= 5 and cities[0] in {
        "Berlin",
        "London",
        "Madrid",
        "New York",
    }  # most frequent first


def test_schema_is_cached_and_refreshable(shop):
    first = shop.schema()
    assert shop.schema() is first
    again = shop.schema(refresh=True)
    assert again is not first and again.fingerprint() == first.fingerprint()


def test_schema_text(shop):
    text = shop.schema_text()
    assert text.startswith("Node properties:")
    assert "(:Customer)-[:PLACED]->(:Order)" in text
    assert 'status: STRING ["delivered"' in text


def test_infer_properties_types():
    props = {
        p.name: p
        for p in infer_properties(
            [{"a": 1, "b": "x", "c": True}, {"a": 2.5, "b": "y", "d": [1]}, {"a": None}]
        )
    }
    assert props["a"].type == "FLOAT" and props["b"].type == "STRING" and props["c"].type == "BOOLEAN"
    assert props["d"].type == "LIST" and props["b"].samples == ("x", "y")
    blob = infer_properties([{"p": "x" * 500}, {"p": "y" * 500}])[0]
    assert blob.type == "STRING" and blob.samples == ()  # long strings would bloat prompts


def test_schema_of_empty_new_graph(scratch_graph):
    scratch_graph.write("CREATE (:Lonely {n: 1})")
    schema = scratch_graph.schema()
    assert (
        [x.label for x in schema.labels] == ["Lonely"]
        and schema.relationships == ()
        and schema.patterns == ()
    )


# --- explain ----------------------------------------------------------------------------------------


def test_explain_returns_plan(shop):
    plan = shop.explain("MATCH (c:Customer) RETURN c.name")
    assert "Node By Label Scan" in plan or "Scan" in plan


def test_explain_syntax_error_carries_database_message(shop):
    with pytest.raises(CypherSyntaxError) as e:
        shop.explain("MATCH (c:) RETURN c")
    assert e.value.db_message == "Invalid input ')': expected a label (line 1, column 10, at ') RETURN c')"
    assert "\n" not in str(e.value) and "errCtx" not in str(e.value)


def test_explain_unknown_function(shop):
    with pytest.raises(CypherSyntaxError) as e:
        shop.explain("RETURN foo.bar(1)")
    assert "Unknown function 'foo.bar'" in e.value.db_message


def test_explain_refuses_writes(shop):
    with pytest.raises(WriteRefused):
        shop.explain("MATCH (n) DETACH DELETE n")


# --- query -------------------------------------------------------------------------------------------


def test_query_rows_params_and_elapsed(shop):
    res = shop.query(
        "MATCH (c:Customer {city: $city}) RETURN c.name AS name ORDER BY name", {"city": "Berlin"}
    )
    assert res.columns == ["name"]
    assert res.rows == [["Alice Meyer"], ["Felix Wagner"]]
    assert res.truncated is False and res.elapsed_ms > 0


def test_values_become_plain_json(shop):
    res = shop.query(
        "MATCH p = (c:Customer {customer_id: 'C01'})-[r:PLACED]->(o:Order {order_id: 'O01'}) "
        "RETURN c, r, p, o.total, date('2024-01-31') AS d, point({latitude: 52.5, longitude: 13.4}) AS pt, "
        "duration({days: 2, hours: 3}) AS dur, [1, 'a'] AS l, {k: 1} AS m"
    )
    row = res.as_dicts()[0]
    assert row["c"]["name"] == "Alice Meyer" and row["r"] == {}
    assert row["p"] == [
        row["c"],
        {},
        {"order_id": "O01", "date": "2023-01-15", "status": "delivered", "total": 1323.99},
    ]
    assert row["d"] == "2024-01-31" and row["pt"] == pytest.approx(
        {"latitude": 52.5, "longitude": 13.4}
    )  # float32
    assert row["dur"] == "P2DT3H" and row["l"] == [1, "a"] and row["m"] == {"k": 1}
    json.dumps(res.rows)  # JSON-able


def test_missing_property_is_null(shop):
    res = shop.query("MATCH (p:Product) WHERE p.rating IS NULL RETURN p.product_id ORDER BY p.product_id")
    assert res.rows == [["P04"], ["P10"]]


def test_row_cap_sets_truncated(shop):
    capped = shop.query("MATCH (n) RETURN n", max_rows=5)
    assert len(capped.rows) == 5 and capped.truncated is True
    full = shop.query("MATCH (n) RETURN n", max_rows=51)
    assert len(full.rows) == 51 and full.truncated is False


def test_slow_query_is_stopped_by_timeout(shop):
    start = time.monotonic()
    with pytest.raises(QueryTimeout) as e:
        shop.query(SLOW, timeout_s=0.5)
    assert time.monotonic() - start < 5
    assert "timed out" in e.value.db_message.lower()


def test_static_gate_refuses_writes(shop):
    before = shop.stats()
    for q in [
        "CREATE (:X)",
        "MATCH (n) DETACH DELETE n",
        "MATCH (c:Customer) SET c.name = 'x'",
        "MERGE (:Y)",
    ]:
        with pytest.raises(WriteRefused):
            shop.query(q)
    assert shop.stats() == before


def test_database_read_only_mode_is_mapped(scratch_graph, monkeypatch):
    """With the static gate switched off, GRAPH.RO_QUERY itself refuses the write."""
    import agent.graphdb.falkor as falkor

    scratch_graph.write("CREATE (:Keep)")
    monkeypatch.setattr(falkor, "guard_query", lambda cypher, limits: cypher)
    with pytest.raises(WriteRefused) as e:
        scratch_graph.query("CREATE (:Intruder)")
    assert "read-only" in e.value.db_message
    assert scratch_graph.stats()["nodes"] == {"Keep": 1}


def test_syntax_error_in_query(shop):
    with pytest.raises(CypherSyntaxError) as e:
        shop.query("MATCH (c:Customer RETURN c")
    assert "(line 1, column 19" in e.value.db_message


def test_runtime_error_in_query(shop):
    with pytest.raises(CypherExecutionError) as e:
        shop.query("MATCH (p:Product) RETURN 10 / (p.stock - p.stock)")
    assert "Division by zero" in e.value.db_message
    assert not isinstance(e.value, CypherSyntaxError)


def test_unknown_graph_lists_existing(settings, shop):
    store = open_graph(settings, "no_such_graph")
    with pytest.raises(UnknownGraph) as e:
        store.query("MATCH (n) RETURN n")
    assert "no_such_graph" in str(e.value) and "shop" in str(e.value)
    with pytest.raises(UnknownGraph):
        store.schema()
    assert "no_such_graph" not in store.list_graphs()  # reading did not create it
    store.close()


# --- write / admin --------------------------------------------------------------------------------------


def test_write_stats_list_and_delete(scratch_graph):
    assert scratch_graph.name not in scratch_graph.list_graphs()
    scratch_graph.write("CREATE (:A {x: 1})-[:R]->(:B), (:A {x: 2})")
    assert scratch_graph.name in scratch_graph.list_graphs()
    assert scratch_graph.stats() == {"nodes": {"A": 2, "B": 1}, "relationships": {"R": 1}}
    assert scratch_graph.schema().patterns == (Pattern("A", "R", "B"),)
    scratch_graph.write("CREATE (:C)")
    assert {x.label for x in scratch_graph.schema().labels} == {"A", "B", "C"}  # writes drop the cache
    scratch_graph.delete_graph()
    assert scratch_graph.name not in scratch_graph.list_graphs()


def test_write_errors_are_typed(scratch_graph):
    with pytest.raises(CypherSyntaxError):
        scratch_graph.write("CREATE (:A")


# --- connections ------------------------------------------------------------------------------------------


def test_wrong_password(settings, shop):
    info = ensure_running(settings)
    store = FalkorGraph("shop", host=info.host, port=info.port, password="wrong-password")
    with pytest.raises(GraphAuthError) as e:
        store.query("RETURN 1")
    assert "wrong-password" not in str(e.value) and info.password not in str(e.value)


def test_unreachable_server_is_actionable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = FalkorGraph("shop", port=port, password="pw")
    start = time.monotonic()
    with pytest.raises(GraphUnavailable) as e:
        store.query("RETURN 1")
    assert time.monotonic() - start < 5
    assert "cypherloop graph stop" in str(e.value) and "pw" not in str(e.value).replace("pwd", "")


def test_external_falkordb_by_url(settings, shop):
    info = ensure_running(settings)
    ext = settings.model_copy(
        update={
            "graph_backend": "falkordb",
            "falkordb_url": f"redis://:{info.password}@127.0.0.1:{info.port}",
        }
    )
    store = open_graph(ext, "shop")
    assert store.backend == "falkordb"
    assert store.query("MATCH (c:Customer) RETURN count(c)").rows == [[12]]
    assert info.password not in repr(store)
    store.close()
    bad = settings.model_copy(
        update={"graph_backend": "falkordb", "falkordb_url": f"redis://:nope-secret@127.0.0.1:{info.port}"}
    )
    with pytest.raises(GraphAuthError) as e:
        open_graph(bad, "shop").query("RETURN 1")
    assert "nope-secret" not in str(e.value) and "CYPHERLOOP_FALKORDB_URL" in str(e.value)


def test_external_backend_needs_url(settings):
    with pytest.raises(ConfigError):
        open_graph(settings.model_copy(update={"graph_backend": "falkordb", "falkordb_url": None}))


def test_external_url_errors_are_config_or_unavailable_without_secret(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = settings.model_copy(update={"graph_backend": "falkordb", "falkordb_url": f"redis://:hush-secret@127.0.0.1:{port}"})
    with pytest.raises(GraphUnavailable) as e:
        open_graph(down, "shop").query("RETURN 1")
    assert "hush-secret" not in str(e.value) and "CYPHERLOOP_FALKORDB_URL" in str(e.value)
    bad = settings.model_copy(update={"graph_backend": "falkordb", "falkordb_url": "http://:hush-secret@host:1"})
    with pytest.raises(ConfigError) as e:
        open_graph(bad, "shop").query("RETURN 1")
    assert "hush-secret" not in str(e.value)
