"""The demo graph generator: deterministic, the schema of docs/HELPERS.md, plausible values."""

from __future__ import annotations

import pytest

from agent.core.errors import GraphError
from agent.demo import ORDERS_FROM, ORDERS_TO, build_demo, generate
from agent.graphdb.base import Pattern

SCALE = 0.05

# docs/HELPERS.md, "share one schema"
EXPECTED_LABELS = {
    "Customer": {
        "customer_id": "STRING",
        "name": "STRING",
        "email": "STRING",
        "city": "STRING",
        "country": "STRING",
        "segment": "STRING",
        "joined": "STRING",
    },
    "Product": {
        "product_id": "STRING",
        "name": "STRING",
        "price": "FLOAT",
        "stock": "INTEGER",
        "rating": "FLOAT",
    },
    "Category": {"name": "STRING"},
    "Supplier": {"supplier_id": "STRING", "name": "STRING", "country": "STRING"},
    "Order": {"order_id": "STRING", "date": "STRING", "status": "STRING", "total": "FLOAT"},
}
EXPECTED_RELS = {
    "PLACED": {},
    "CONTAINS": {"quantity": "INTEGER", "unit_price": "FLOAT"},
    "IN_CATEGORY": {},
    "SUPPLIES": {},
    "REVIEWED": {"stars": "INTEGER", "text": "STRING", "date": "STRING"},
    "REFERRED": {},
}
EXPECTED_PATTERNS = {
    Pattern("Customer", "PLACED", "Order"), Pattern("Order", "CONTAINS", "Product"),
    Pattern("Product", "IN_CATEGORY", "Category"), Pattern("Supplier", "SUPPLIES", "Product"),
    Pattern("Customer", "REVIEWED", "Product"), Pattern("Customer", "REFERRED", "Customer"),
}

SAMPLE_QUERIES = [
    "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.customer_id, o.order_id, o.date, o.status, o.total "
    "ORDER BY o.order_id LIMIT 10",
    "MATCH (o:Order)-[l:CONTAINS]->(p:Product) RETURN o.order_id, p.product_id, l.quantity, l.unit_price "
    "ORDER BY o.order_id, p.product_id LIMIT 10",
    "MATCH (c:Customer)-[r:REVIEWED]->(p:Product) RETURN c.customer_id, p.product_id, r.stars, r.text, "
    "r.date "
    "ORDER BY c.customer_id, p.product_id LIMIT 10",
    "MATCH (p:Product) RETURN p.product_id, p.name, p.price, p.stock, p.rating ORDER BY p.product_id",
]


def test_generate_is_deterministic():
    a, b = generate(7, 0.2), generate(7, 0.2)
    assert a == b
    assert generate(8, 0.2) != a
    assert a.counts() == b.counts()


def test_full_scale_sizes_and_distributions():
    data = generate()
    counts = data.counts()
    assert counts["labels"] == {
        "Category": 12,
        "Customer": 600,
        "Order": 2500,
        "Product": 250,
        "Supplier": 20,
    }
    assert 3000 < counts["nodes"] < 4000 and counts["relationships"] > 7000
    # a few big cities hold many customers; prices log-normal with a long tail; popularity is skewed
    from collections import Counter

    cities = Counter(c["city"] for c in data.customers).most_common()
    assert cities[0][1] > 8 * cities[-1][1]
    prices = sorted(p["price"] for p in data.products)
    median = prices[len(prices) // 2]
    assert 15 < median < 120 and prices[-1] > 10 * median and prices[0] < 10
    lines = Counter(x["product_id"] for x in data.contains).most_common()
    assert lines[0][1] > 20 * lines[-1][1]
    months = Counter(o["date"][5:7] for o in data.orders)
    assert months["12"] > 1.4 * months["02"]  # seasonal
    years = Counter(o["date"][:4] for o in data.orders)
    assert set(years) == {"2022", "2023", "2024", "2025"} and years["2025"] > years["2022"]
    emails = [c["email"] for c in data.customers]
    assert len(set(emails)) == len(emails)


def test_generated_invariants():
    data = generate(11, 0.3)
    joined = {c["customer_id"]: c["joined"] for c in data.customers}
    order_date = {o["order_id"]: o["date"] for o in data.orders}
    for o in data.orders:
        assert ORDERS_FROM.isoformat() <= o["date"] <= ORDERS_TO.isoformat()
        assert joined[o["customer_id"]] <= o["date"]
    totals: dict[str, float] = {}
    for line in data.contains:
        totals[line["order_id"]] = totals.get(line["order_id"], 0.0) + line["quantity"] * line["unit_price"]
    assert all(abs(o["total"] - round(totals[o["order_id"]], 2)) < 0.011 for o in data.orders)
    bought = {}
    for line in data.contains:
        cust = next(o["customer_id"] for o in data.orders if o["order_id"] == line["order_id"])
        d = order_date[line["order_id"]]
        bought[(cust, line["product_id"])] = min(d, bought.get((cust, line["product_id"]), d))
    for r in data.reviewed:
        assert (r["customer_id"], r["product_id"]) in bought and r["date"] > bought[
            (r["customer_id"], r["product_id"])
        ]
        assert 1 <= r["stars"] <= 5 and r["text"]
    for ref in data.referred:
        assert joined[ref["from"]] < joined[ref["to"]]
    for p in data.products:
        assert p["price"] > 0 and p["stock"] >= 0 and ("rating" not in p or 1.0 <= p["rating"] <= 5.0)


def _sample(store) -> list:
    return [store.query(q, max_rows=10_000).rows for q in SAMPLE_QUERIES]


def test_build_into_graph_is_deterministic(scratch_graph):
    counts = build_demo(scratch_graph, seed=7, scale=SCALE)
    stats = scratch_graph.stats()
    assert stats["nodes"] == counts["labels"] and stats["relationships"] == {
        k: v for k, v in counts["types"].items() if v
    }
    assert sum(stats["nodes"].values()) == counts["nodes"]
    first = _sample(scratch_graph)
    assert first[0] and first[1] and first[3]

    with pytest.raises(GraphError, match="not empty"):
        build_demo(scratch_graph, seed=7, scale=SCALE)
    again = build_demo(scratch_graph, seed=7, scale=SCALE, replace=True)
    assert again == counts and scratch_graph.stats() == stats
    assert _sample(scratch_graph) == first

    build_demo(scratch_graph, seed=99, scale=SCALE, replace=True)
    assert _sample(scratch_graph) != first


def test_schema_matches_helpers(scratch_graph):
    build_demo(scratch_graph, seed=3, scale=0.1)
    schema = scratch_graph.schema(refresh=True)
    labels = {x.label: {p.name: p.type for p in x.properties} for x in schema.labels}
    assert labels == EXPECTED_LABELS
    rels = {x.type: {p.name: p.type for p in x.properties} for x in schema.relationships}
    assert rels == EXPECTED_RELS
    assert set(schema.patterns) == EXPECTED_PATTERNS
    segment = next(p for p in schema.label("Customer").properties if p.name == "segment")
    assert set(segment.samples) <= {"Consumer", "Corporate", "Home Office"} and segment.samples
    status = next(p for p in schema.label("Order").properties if p.name == "status")
    assert set(status.samples) <= {"delivered", "cancelled", "returned", "shipped", "pending"}
    # ids are indexed
    indexed = {
        (r[0], r[1][0] if isinstance(r[1], list) else r[1])
        for r in scratch_graph.query("CALL db.indexes()").rows
    }
    for pair in [
        ("Customer", "customer_id"),
        ("Product", "product_id"),
        ("Order", "order_id"),
        ("Supplier", "supplier_id"),
    ]:
        assert pair in indexed
