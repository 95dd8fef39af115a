"""The Cypher script loader: splitting, loading into a real FalkorDB graph, errors with statement numbers."""

from __future__ import annotations

import pytest

from agent.core.errors import DataError, LoaderError
from agent.graphdb.loader import LoadReport, load_script, split_statements

GOOD = """\
// a tiny shop; comments and blank lines are skipped
CREATE (:Customer {customer_id: 'C1', name: 'Ann; the first', city: 'Berlin'});
CREATE (:Customer {customer_id: 'C2', name: "Bo \\"B;\\" Lee", city: 'Paris'}); // trailing comment

// a statement over several lines
UNWIND [{id: 'P1', price: 9.5}, {id: 'P2', price: 20.0}] AS r
CREATE (:Product {product_id: r.id, price: r.price});
MATCH (c:Customer {customer_id: 'C1'}), (p:Product)
CREATE (c)-[:REVIEWED {stars: 5, text: 'good;
really good'}]->(p);
MATCH (c:Customer {customer_id: 'C2'}), (p:Product {product_id: 'P1'})
CREATE (c)-[:REVIEWED {stars: 2, text: 'meh'}]->(p)
"""

BROKEN = """\
CREATE (:A {x: 1});
CREATE (:A {x: 2});
// the third statement is broken
MATCH (a:A) RETURN a.x +;
CREATE (:A {x: 3});
"""


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("RETURN 1;", [(1, "RETURN 1")]),
        ("// only a comment\n\n", []),
        ("RETURN 1;\nRETURN 2;\n", [(1, "RETURN 1"), (2, "RETURN 2")]),
        ("RETURN 'a;';\n", [(1, "RETURN 'a;'")]),
        ("RETURN 'a;\nb';\n", [(1, "RETURN 'a;\nb'")]),
        ('RETURN "x\\";" ;\n', [(1, 'RETURN "x\\";"')]),
        ("RETURN 1; // done\nRETURN 2;", [(1, "RETURN 1"), (2, "RETURN 2")]),
        ("RETURN 1; RETURN 2;\n", [(1, "RETURN 1; RETURN 2")]),  # ';' mid-line does not split
        ("MATCH (n)\n// inside\nRETURN n;", [(1, "MATCH (n)\n\nRETURN n")]),
        ("/* a; b */ RETURN 1;", [(1, "/* a; b */ RETURN 1")]),
        ("RETURN n.`a;`;\n", [(1, "RETURN n.`a;`")]),
        ("\n\n  RETURN 1\n", [(3, "RETURN 1")]),  # the last statement needs no ';'
        ("RETURN 'http://x';", [(1, "RETURN 'http://x'")]),  # '//' inside a string is not a comment
    ],
)
def test_split_statements(script, expected):
    assert split_statements(script) == expected


def test_load_good_script(tmp_path, scratch_graph):
    path = tmp_path / "good.cypher"
    path.write_text(GOOD, encoding="utf-8")
    report = load_script(scratch_graph, path, progress=True)
    assert isinstance(report, LoadReport)
    assert (report.statements, report.nodes, report.relationships) == (5, 4, 3)
    assert report.seconds >= 0
    names = scratch_graph.query("MATCH (c:Customer) RETURN c.name ORDER BY c.customer_id").rows
    assert names == [["Ann; the first"], ['Bo "B;" Lee']]
    texts = scratch_graph.query("MATCH ()-[r:REVIEWED]->() RETURN r.text ORDER BY r.text").rows
    assert ["good;\nreally good"] in texts and ["meh"] in texts


def test_broken_statement_is_reported_with_its_number(tmp_path, scratch_graph):
    path = tmp_path / "broken.cypher"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(LoaderError) as info:
        load_script(scratch_graph, path)
    err = info.value
    assert err.statement_no == 3
    msg = str(err)
    assert "statement 3" in msg and "line 4" in msg and "MATCH (a:A) RETURN a.x +" in msg
    assert err.db_message and " ".join(err.db_message.split()) in msg
    assert "\n" not in msg
    # statements before the failure stay applied
    assert scratch_graph.query("MATCH (a:A) RETURN count(a)").rows == [[2]]


def test_long_first_line_is_truncated(tmp_path, scratch_graph):
    path = tmp_path / "long.cypher"
    path.write_text("RETURN [" + ", ".join(str(i) for i in range(200)) + "] +;\n", encoding="utf-8")
    with pytest.raises(LoaderError) as info:
        load_script(scratch_graph, path)
    assert info.value.statement_no == 1 and "…" in str(info.value)


def test_replace(tmp_path, scratch_graph):
    path = tmp_path / "good.cypher"
    path.write_text(GOOD, encoding="utf-8")
    load_script(scratch_graph, path)
    twice = load_script(scratch_graph, path)
    # the second run's MATCHes see both copies
    assert (twice.nodes, twice.relationships) == (8, 3 + 2 * 4 + 2 * 2)
    replaced = load_script(scratch_graph, path, replace=True)
    assert (replaced.nodes, replaced.relationships) == (4, 3)


def test_missing_file(tmp_path, scratch_graph):
    with pytest.raises(DataError, match="no such Cypher script"):
        load_script(scratch_graph, tmp_path / "nope.cypher")


def test_empty_script(tmp_path, scratch_graph):
    path = tmp_path / "empty.cypher"
    path.write_text("// nothing here\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no Cypher statements"):
        load_script(scratch_graph, path)


def test_not_utf8(tmp_path, scratch_graph):
    path = tmp_path / "latin1.cypher"
    path.write_bytes("CREATE (:A {x: 'caf\xe9'});".encode("latin-1"))
    with pytest.raises(DataError, match="cannot read"):
        load_script(scratch_graph, path)
