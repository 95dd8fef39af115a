"""The read-only gate: a corpus of writes and abuse is refused, statically and by the real database.

Each write query must (1) be refused by ``check_read_only`` and (2) fail through the FalkorDB
backend's ``query()`` on the ``shop`` fixture; afterwards node and relationship counts, a checksum of
every property, the indexes and the list of graphs are unchanged. Legitimate reads must pass. The
database's own read-only mode (``GRAPH.RO_QUERY``) is shown to be a second layer by sending writes
past the static gate.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from agent.core.errors import GraphError, WriteRefused
from agent.graphdb.readonly import check_read_only, is_read_only

WRITES = [
    # plain write clauses, any case, any spacing
    "CREATE (:Hacked {x: 1})",
    "create (:Hacked)",
    "  \n\n  CREATE (:Hacked)  \n",
    "UNWIND range(1, 3) AS i CREATE (:Hacked {i: i})",
    "INSERT (:Hacked)",
    "MERGE (:Hacked {x: 1})",
    "MATCH (c:Customer) WITH c MERGE (c)-[:REFERRED]->(c)",
    "MATCH (c:Customer {customer_id: 'C01'}) SET c.name = 'Mallory'",
    "MATCH (c:Customer) SET c:Hacked",
    "MATCH (c:Customer) SET c += {name: 'x'}",
    "MATCH (n)\n\tSET\n\tn.x = 1",
    "MATCH (n) SET n.`name` = 'x'",
    'MATCH (n) WHERE n.name = "a\\"b" SET n.x = 1',
    "MATCH (p:Product) DELETE p",
    "MATCH (n) DETACH DELETE n",
    "match (n) detach\ndelete n",
    "MATCH (n) WITH n DeLeTe n",
    "MATCH (c:Customer) REMOVE c.email",
    "MATCH (c:Customer) REMOVE c:Customer",
    "MATCH (c:Customer) FOREACH (x IN [1] | SET c.name = 'x')",
    "WITH 1 AS x CALL { CREATE (:Hacked) } RETURN x",
    # schema and data import
    "DROP INDEX ON :Customer(customer_id)",
    "CREATE INDEX FOR (c:Customer) ON (c.name)",
    "DROP GRAPH shop",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "LOAD CSV WITH HEADERS FROM 'https://example.com/x.csv' AS row CREATE (:Hacked)",
    # write and admin procedures
    "CALL db.idx.fulltext.createNodeIndex('Customer', 'name')",
    "CALL db.idx.fulltext.drop('Customer')",
    "CALL `db`.`idx`.`fulltext`.`createNodeIndex`('Customer', 'name')",
    "MATCH (n:Product) CALL db.create.setNodeVectorProperty(n, 'v', [1.0]) RETURN n",
    "CALL apoc.create.node(['Hacked'], {x: 1})",
    "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {batchSize: 100})",
    "CALL apoc.cypher.runWrite('CREATE (:Hacked)', {})",
    "CALL apoc.load.json('file:///etc/passwd')",
    "CALL dbms.security.createUser('eve', 'pw', false)",
    "CALL gds.pageRank.write('g', {writeProperty: 'pr'})",
    "CALL graph.delete('shop')",
    # CALL {} IN TRANSACTIONS
    "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 100 ROWS",
    "CALL { MATCH (n:Customer) RETURN n } IN TRANSACTIONS RETURN n",
    # more than one statement
    "MATCH (n) RETURN n; MATCH (m) DETACH DELETE m",
    "MATCH (n) RETURN n;CREATE (:Hacked)",
    "MATCH (n) RETURN n;\n\nCREATE (:Hacked)",
    "RETURN 1; RETURN 2",
    # comments
    "MATCH (n) RETURN n // harmless\nDETACH DELETE n",
    "MATCH (n) /* comment */ DETACH /* x */ DELETE n",
    "CRE/* hidden */ATE (:Hacked)",
    "C/**/R/**/E/**/A/**/T/**/E (:Hacked)",
    "// CREATE is only in this comment\nMERGE (:Hacked)",
    # unicode tricks: fullwidth, zero-width, homoglyphs, BOM, escapes
    "ＣＲＥＡＴＥ (:Hacked)",
    "CRE\u200bATE (:Hacked)",
    "D\u200dELETE",
    "\u041cERGE (:Hacked)",  # Cyrillic Em
    "MATCH (n) S\u0415T n.x = 1",  # Cyrillic Ie
    "\ufeffCREATE (:Hacked)",
    "MATCH (n) \\u0053ET n.x = 1",
    # administration
    "SHOW DATABASES",
    "USE system MATCH (n) RETURN n",
    "GRANT ALL ON DATABASE * TO eve",
    "ALTER USER neo4j SET PASSWORD 'x'",
    "STOP DATABASE neo4j",
]

READS = [
    "MATCH (c:Customer) RETURN c.name ORDER BY c.name LIMIT 3",
    "MATCH (p:Product) WHERE p.name CONTAINS 'create' RETURN p.name",
    "RETURN 'CREATE (n) SET n.x = 1; DROP INDEX' AS s",
    'MATCH (c:Customer) WHERE c.name = "Merge Delete" RETURN count(c) AS n',
    "MATCH (o:Order) WHERE o.set_id IS NULL RETURN count(o) AS n",
    "MATCH (p:Product) RETURN p.deleted, p.name LIMIT 2",
    "CALL db.labels()",
    "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType",
    "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.name, count(o) AS orders ORDER BY orders DESC LIMIT 5",
    "// create a report\nMATCH (n) RETURN count(n) /* delete nothing */",
    "MATCH (p:Product) RETURN p.`set`, p.`delete` LIMIT 1",
    "MATCH (c:Customer) WITH c.city AS city, count(*) AS n RETURN city, n ORDER BY n DESC",
    "MATCH p = (a:Customer)-[:REFERRED*1..3]->(b:Customer) RETURN length(p) AS hops ORDER BY hops DESC LIMIT "
    "1",
    "UNWIND ['create', 'merge', 'set'] AS word RETURN toUpper(word) AS w",
    "MATCH (c:Customer) WHERE c.email STARTS WITH 'alice' RETURN c.email;",
    "MATCH (start:Customer)-[:PLACED]->(o:Order) RETURN start.name, o.order_id LIMIT 3",
    "OPTIONAL MATCH (x:Supplier {country: 'Drop Country'}) RETURN x",
    "MATCH (:Customer)-[rv:REVIEWED]->(:Product) WHERE rv.text <> 'REMOVE me' RETURN avg(rv.stars) AS stars",
    "MATCH (o:Order) WHERE o.date >= '2024-01-01' RETURN o.status, count(*) AS n ORDER BY o.status",
    "MATCH (n:Customer) RETURN n.name AS `create`, n.city AS `delete` LIMIT 1",
    'RETURN "it\'s a \\"set\\" of things; really" AS s',
    "MATCH (c:Customer) RETURN c.name AS name, c.joined AS since ORDER BY since LIMIT 2",
]


def snapshot(store) -> dict:
    """Counts, a checksum of every id/label/type/property, the indexes and the graphs on the server."""
    nodes = store.query(
        "MATCH (n) RETURN id(n), labels(n), properties(n) ORDER BY id(n)", max_rows=100_000
    ).rows
    rels = store.query(
        "MATCH (a)-[r]->(b) RETURN id(r), type(r), id(a), id(b), properties(r) ORDER BY id(r)",
        max_rows=100_000,
    ).rows
    indexes = store.query("CALL db.indexes()", max_rows=10_000).rows
    blob = json.dumps([nodes, rels], sort_keys=True, default=str).encode()
    return {
        "nodes": len(nodes),
        "relationships": len(rels),
        "checksum": hashlib.sha256(blob).hexdigest(),
        "indexes": json.dumps(indexes, sort_keys=True, default=str),
        "graphs": store.list_graphs(),
    }


@pytest.fixture(scope="module")
def baseline(shop) -> dict:
    snap = snapshot(shop)
    assert snap["nodes"] > 40 and snap["relationships"] > 40  # the shop fixture is loaded
    return snap


def test_corpus_is_big_enough():
    assert len(WRITES) >= 30 and len(READS) >= 15


@pytest.mark.parametrize("cypher", WRITES)
def test_write_is_refused_and_graph_unchanged(cypher, shop, baseline):
    with pytest.raises(WriteRefused) as info:
        check_read_only(cypher)
    assert str(info.value).startswith("write refused:") and "\n" not in str(info.value)
    with pytest.raises(GraphError):
        shop.query(cypher)
    assert snapshot(shop) == baseline


@pytest.mark.parametrize("cypher", READS)
def test_read_passes_gate_and_runs(cypher, shop):
    check_read_only(cypher)
    assert is_read_only(cypher)
    result = shop.query(cypher)
    assert result.columns


@pytest.mark.parametrize(
    ("cypher", "named"),
    [
        ("MATCH (n) DETACH DELETE n", "DETACH DELETE"),
        ("MATCH (n)\nRETURN n\nSET n.x = 1", "SET (line 3)"),
        ("CRE/**/ATE (n)", "hidden by a comment"),
        ("ＭＥＲＧＥ (n)", "after Unicode normalisation"),
        ("CALL apoc.refactor.mergeNodes([])", "apoc.refactor.mergeNodes"),
        ("RETURN 1; RETURN 2", "more than one statement"),
        ("LOAD CSV FROM 'x' AS r RETURN r", "LOAD CSV"),
        ("CALL { RETURN 1 } IN TRANSACTIONS", "IN TRANSACTIONS"),
    ],
)
def test_message_names_the_clause(cypher, named):
    with pytest.raises(WriteRefused, match=None) as info:
        check_read_only(cypher)
    assert named in str(info.value)


# Reads whose identifiers look like keywords (not all valid on FalkorDB, so checked statically only).
KEYWORD_NAMES = [
    "MATCH (s:Set) RETURN s",
    "MATCH (set:Product) RETURN set.name",
    "RETURN {delete: 1, merge: 2, grant: 3} AS m",
    "MATCH (n) WHERE n.x = $set RETURN n",
    "MATCH ()-[r:CREATE]->() RETURN r",
    "MATCH (n) RETURN n.set, n.remove, n.drop",
    "MATCH p = (start)-[*]->(stop) RETURN p",
]


@pytest.mark.parametrize("cypher", KEYWORD_NAMES)
def test_keyword_like_names_pass(cypher):
    check_read_only(cypher)


def test_read_procedures_in_refused_namespaces_pass():
    check_read_only("CALL db.idx.fulltext.queryNodes('Product', 'lamp') YIELD node RETURN node")
    check_read_only("CALL db.index.fulltext.queryNodes('idx', 'x') YIELD node RETURN node")
    check_read_only("MATCH (n) RETURN apoc.coll.set([1, 2], 0, 3)")  # a pure function, `set` after a dot


def test_database_read_only_mode_is_a_second_layer(shop, baseline):
    """Bypass the static gate and send writes straight to GRAPH.RO_QUERY: FalkorDB refuses them."""
    import redis

    graph = shop._graph()  # the FalkorDB client's graph handle; its ro_query is GRAPH.RO_QUERY
    for cypher in [
        "CREATE (:Hacked)",
        "MATCH (n) DETACH DELETE n",
        "MATCH (c:Customer) SET c.name = 'x'",
        "MERGE (:Hacked)",
        "MATCH (c:Customer) REMOVE c.email",
        "CREATE INDEX FOR (c:Customer) ON (c.name)",
    ]:
        with pytest.raises(redis.ResponseError, match="read-only"):
            graph.ro_query(cypher)
    # the backend's internal read path (no static gate) maps the same refusal to WriteRefused
    with pytest.raises(WriteRefused) as info:
        shop._ro("MATCH (n) DETACH DELETE n")
    assert "read-only" in info.value.db_message
    assert snapshot(shop) == baseline


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError):
        check_read_only(None)  # type: ignore[arg-type]


def test_remembered_verdicts_are_the_verdicts():
    """The gate remembers the texts it checked (``MEMO_TEXTS``): a refusal is refused again, a read still
    reads, and a ``str`` subclass that claims to equal a remembered read is checked for what it is."""
    from agent.graphdb.readonly import guard_query

    read, write = "MATCH (n) RETURN n.name", "MATCH (n) DETACH DELETE n"
    for _ in range(2):
        assert guard_query(read) == read
        check_read_only(read)
        with pytest.raises(WriteRefused):
            guard_query(write)
        with pytest.raises(WriteRefused):
            check_read_only(write)

    class LooksLikeTheRead(str):
        __hash__ = read.__hash__

        def __eq__(self, other: object) -> bool:
            return True

    with pytest.raises(WriteRefused):
        check_read_only(LooksLikeTheRead(write))
    with pytest.raises(WriteRefused):
        guard_query(LooksLikeTheRead(write))
