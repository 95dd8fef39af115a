"""The ground floor's shared definitions: the tokenizer, identifiers, normalised forms and "the same
result"."""

from __future__ import annotations

import pytest

from agent.core.cypher_text import (
    CYPHER_KEYWORDS,
    cypher_name,
    first_statement_end,
    mask_literals,
    node_labels,
    normalize_cypher,
    normalize_question,
    quote_ident,
    result_fingerprint,
    return_items,
    same_result,
    says_nothing,
    squash_spaces,
    strip_statement,
    tokenize,
    unquote_ident,
)

# --- the same result: the benchmark's rule ----------------------------------------------------------------
ALICE = {"name": "Alice", "age": 30}

MATCH_CASES = [
    # (gold, predicted, equal?)
    ([[1]], [[1]], True),
    ([[1]], [[2]], False),
    ([], [], True),
    ([[1]], [], False),
    # multisets: order of rows is ignored, multiplicity is not
    ([["a"], ["b"]], [["b"], ["a"]], True),
    ([["a"], ["a"]], [["a"]], False),
    ([["a"], ["a"], ["b"]], [["a"], ["b"], ["b"]], False),
    # column order inside a row is ignored
    ([["Alice", 30]], [[30, "Alice"]], True),
    # floats at 4 significant digits; ints and integral floats are the same number
    ([[3.14159]], [[3.1416]], True),
    ([[3.14159]], [[3.15]], False),
    ([[1234.4]], [[1234.3]], True),
    ([[1234.5678]], [[1236.0]], False),
    ([[12]], [[12.0]], True),
    ([[0.000123456]], [[0.0001235]], True),
    # bools are not numbers
    ([[True]], [[1]], False),
    ([[None]], [[None]], True),
    ([[None]], [[0]], False),
    # nodes (property dicts) compare by their properties, key order irrelevant
    ([[ALICE]], [[{"age": 30, "name": "Alice"}]], True),
    ([[ALICE]], [[{"name": "Alice", "age": 31}]], False),
    ([[ALICE]], [["Alice"]], False),
    ([[{"score": 0.33333}]], [[{"score": 0.3333}]], True),
    # lists inside a value keep their order (collect order is part of the value)
    ([[["a", "b"]]], [[["a", "b"]]], True),
    ([[["a", "b"]]], [[["b", "a"]]], False),
    # paths: lists of property dicts
    ([[[ALICE, {"since": 2020}]]], [[[{"age": 30, "name": "Alice"}, {"since": 2020}]]], True),
    # dict rows (as_dicts) compare by values
    ([{"n": 1, "m": "x"}], [["x", 1]], True),
]


@pytest.mark.parametrize("gold, pred, equal", MATCH_CASES)
def test_same_result(gold, pred, equal):
    assert same_result(gold, pred) is equal
    assert same_result(pred, gold) is equal
    # the feedback store's fingerprint follows the same rule exactly
    assert (result_fingerprint(gold) == result_fingerprint(pred)) is equal




def test_same_result_ignores_row_and_column_order_but_counts_rows():
    assert same_result([[1, "a"], [2.0, "b"]], [["b", 2], [1.0, "a"]])
    assert result_fingerprint([[1, "a"], [2.0, "b"]]) == result_fingerprint([[2, "b"], [1.0, "a"]])
    assert result_fingerprint([[{"b": 1, "a": 2}]]) == result_fingerprint([[{"a": 2, "b": 1}]])
    assert result_fingerprint([[1]]) != result_fingerprint([[1], [1]])
    assert same_result([[float("nan")]], [[float("nan")]])


def test_says_nothing():
    assert says_nothing([[None], [""]]) and says_nothing([[0, None]]) and says_nothing([])
    assert not says_nothing([[0], [0]]) and not says_nothing([[False]]) and not says_nothing([["x"]])


# --- tokenizer
# ------------------------------------------------------------------------------------------------
def test_tokenizer_round_trips_and_sees_comments_strings_and_identifiers():
    text = "MATCH (n:`My Label`) // a ; comment\nWHERE n.name = 'it\\'s; CREATE' RETURN n /* x */;"
    toks = tokenize(text)
    assert "".join(t.text for t in toks) == text
    kinds = {t.text: t.kind for t in toks}
    assert (
        kinds["`My Label`"] == "ident"
        and kinds["// a ; comment"] == "comment"
        and kinds["/* x */"] == "comment"
    )
    assert kinds["'it\\'s; CREATE'"] == "string" and kinds["MATCH"] == "word"
    assert [t.line for t in toks if t.text == "WHERE"] == [2]
    assert first_statement_end(text) == len(text) - 1  # not the ';' in the comment or the string


def test_unterminated_quotes_are_punctuation():
    assert [t.kind for t in tokenize("'abc")][0] == "punct"
    assert [t.kind for t in tokenize("`abc")][0] == "punct"


def test_mask_keeps_offsets():
    text = "RETURN 'CREATE' // DELETE\n"
    masked = mask_literals(text)
    assert len(masked) == len(text) and "CREATE" not in masked and "DELETE" not in masked
    assert mask_literals(text, comments=False).endswith("// DELETE\n")


# --- identifiers and keywords -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, quoted, written",
    [
        ("Customer", "`Customer`", "Customer"),
        ("my prop", "`my prop`", "`my prop`"),
        ("a`b", "`a``b`", "`a``b`"),
        ("1x", "`1x`", "`1x`"),
    ],
)
def test_identifier_quoting(name, quoted, written):
    assert quote_ident(name) == quoted and cypher_name(name) == written
    assert unquote_ident(quoted) == name and unquote_ident(name) == name


def test_keywords_are_lower_case_words():
    assert {"match", "return", "count", "profile"} <= CYPHER_KEYWORDS and all(
        k == k.lower() for k in CYPHER_KEYWORDS
    )


# --- normalised forms -------------------------------------------------------------------------------------
def test_normalize_question():
    assert normalize_question("  How MANY customers, in Köln?? ") == "how many customers in köln"


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("MATCH (c:Customer) RETURN c.name", "match (x:Customer)\n  return x.name;", True),
        # property keys keep case
        (
            "MATCH (c:Customer) RETURN c.name",
            "MATCH (c:Customer) RETURN c.Name",
            False,
        ),
        ("MATCH (c:Customer) RETURN c", "MATCH (c:customer) RETURN c", False),  # labels keep case
        ("RETURN 'x'", 'RETURN "x"', True),
        ("MATCH (`c`:`Customer`) RETURN COUNT(c)", "MATCH (n:Customer) RETURN count(n) // how many", True),
        ("MATCH (c {name: 'A'}) RETURN c", "MATCH (d {name: 'A'}) RETURN d", True),
        ("MATCH (c) WHERE c.x > 1.5 RETURN c", "MATCH (c) WHERE c.x > 2.5 RETURN c", False),
        # parameters keep names
        (
            "MATCH (c) WHERE c.x = $v RETURN c",
            "MATCH (d) WHERE d.x = $w RETURN d",
            False,
        ),
    ],
)
def test_normalize_cypher(a, b, same):
    assert (normalize_cypher(a) == normalize_cypher(b)) is same


def test_light_forms():
    assert (
        squash_spaces("  a \n b  ") == "a b"
        and strip_statement(" MATCH (n) RETURN n ; ") == "MATCH (n) RETURN n"
    )


# --- what a query returns ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query, items", [
    ("MATCH (c:Customer) RETURN DISTINCT c.name AS n, count(*) ORDER BY n LIMIT 3", ["c.name", "count(*)"]),
    ("MATCH (a:`Big Label`) WITH a, count(*) AS k WHERE k > 2 RETURN a.`full name`, k",
     ["a.`full name`", "k"]),
    ("CALL { MATCH (x:X) RETURN x } RETURN x.name", ["x.name"]),  # the subquery's RETURN is not the query's
    ("MATCH (p) WHERE exists { MATCH (p)-->(m) RETURN m } RETURN p, collect(p.name)[0..2]",
     ["p", "collect(p.name)[0..2]"]),
    ("MATCH (n) RETURN n UNION MATCH (m) RETURN m SKIP 1", ["m"]),
    ("MATCH (n) RETURN n; MATCH (m) RETURN m.x", ["n"]),
    ("MATCH (n) WITH n RETURN 'RETURN x' AS s", ["'RETURN x'"]),
    ("MATCH (n:Person) SET n.x = 1", []),
])
def test_return_items_are_the_last_top_level_returns(query, items):
    assert return_items(query) == items


def test_node_labels_are_the_variables_node_patterns_bind():
    q = ("MATCH (c:Customer {name: 'A'})-[:PLACED]->(o), (`my p`:`Big Label`) "
         "WHERE NOT (c)-->(:Category) AND size(o) > 0 RETURN c, o, count(x)")
    assert node_labels(q) == {"c": "Customer", "o": None, "my p": "Big Label"}
    assert node_labels("MATCH (o)<--(c:Customer) RETURN o") == {"o": None, "c": "Customer"}
    assert node_labels("MATCH (o) MATCH (o:Order) RETURN o") == {"o": "Order"}  # a later label counts
