import pytest

from agent.cleanup import clean_cypher

Q = "MATCH (c:Customer) RETURN count(c)"

CASES = [
    # plain
    (Q, Q),
    ("  " + Q + "  \n", Q),
    (Q + ";", Q),
    # code fences
    ("```cypher\n" + Q + "\n```", Q),
    ("```\n" + Q + "\n```", Q),
    ("```Cypher\n" + Q + ";\n```\nThis counts the customers.", Q),
    ("Here is the query:\n```cypher\n" + Q + "\n```\nIt returns the number of customers.", Q),
    ("```cypher\n" + Q, Q),  # unterminated fence (max_new_tokens hit)
    # special tokens and chat headers
    (Q + "<|im_end|>", Q),
    (Q + "<|im_end|>\n<|im_start|>user\nthanks", Q),
    (Q + "<|endoftext|>", Q),
    ("<|im_start|>assistant\n" + Q + "<|im_end|>", Q),
    ("<s>" + Q + "</s>", Q),
    # Gemma's turn format (the gemma3-270m base)
    (Q + "<end_of_turn>", Q),
    (Q + "<end_of_turn>\n<start_of_turn>user\nthanks<end_of_turn>", Q),
    ("<start_of_turn>model\n" + Q + "<end_of_turn><eos>", Q),
    ("model\n" + Q, Q),
    # prefixes
    ("Cypher: " + Q, Q),
    ("cypher: " + Q, Q),
    ("Query: " + Q, Q),
    ("Cypher query: " + Q, Q),
    ("cypher\n" + Q, Q),
    # leading prose
    ("Here is the query:\n" + Q, Q),
    ("Sure! To count customers you can run:\n\n" + Q, Q),
    ("The query is: " + Q, Q),
    # trailing prose
    (Q + "\n\nThis query counts all customers in the graph.", Q),
    (Q + "\nThis query counts all customers.", Q),
    (Q + "\nExplanation: it counts nodes.", Q),
    (Q + " This returns the number of customers.", Q),
    # several statements -> first
    (Q + ";\nMATCH (p:Product) RETURN count(p);", Q),
    (Q + "\n\nMATCH (p:Product) RETURN count(p)", Q),
    (Q + "\nMATCH (p:Product) RETURN count(p)", Q),
    ("```cypher\n" + Q + "\n```\n```cypher\nMATCH (p:Product) RETURN p\n```", Q),
    # multi-line queries are kept whole
    (
        "MATCH (c:Customer)-[:PLACED]->(o:Order)\nWHERE o.total > 100\nRETURN c.name, count(o) AS "
        "orders\nORDER BY orders DESC\nLIMIT 5",
        "MATCH (c:Customer)-[:PLACED]->(o:Order)\nWHERE o.total > 100\nRETURN c.name, count(o) AS "
        "orders\nORDER BY orders DESC\nLIMIT 5",
    ),
    (
        "MATCH (c:Customer)\nRETURN c.name AS name\nUNION\nMATCH (s:Supplier)\nRETURN s.name AS name",
        "MATCH (c:Customer)\nRETURN c.name AS name\nUNION\nMATCH (s:Supplier)\nRETURN s.name AS name",
    ),
    (
        "MATCH (c:Customer)\nWITH c, size([(c)-[:PLACED]->(o) | o]) AS n\n  AND n > 1\nRETURN c.name",
        "MATCH (c:Customer)\nWITH c, size([(c)-[:PLACED]->(o) | o]) AS n\n  AND n > 1\nRETURN c.name",
    ),
    ("UNWIND [1, 2] AS x RETURN x", "UNWIND [1, 2] AS x RETURN x"),
    ("CALL db.labels() YIELD label RETURN label", "CALL db.labels() YIELD label RETURN label"),
    ("optional match (c:Customer) return c.name", "optional match (c:Customer) return c.name"),
    # semicolons and keywords inside strings are not statement ends
    ("MATCH (p:Product {name: 'a;b'}) RETURN p", "MATCH (p:Product {name: 'a;b'}) RETURN p"),
    (
        'MATCH (p:Product) WHERE p.name = "MATCH (x) RETURN x" RETURN p',
        'MATCH (p:Product) WHERE p.name = "MATCH (x) RETURN x" RETURN p',
    ),
    # write clauses are kept, so the read-only gate can refuse them
    ("MATCH (n) DETACH DELETE n", "MATCH (n) DETACH DELETE n"),
    ("CREATE (c:Customer {name: 'x'})", "CREATE (c:Customer {name: 'x'})"),
    # a sentence's full stop after a literal, before the next clause; not one inside a string or a number
    (
        "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product) WHERE s.phone STARTS WITH '(171)'. RETURN p",
        "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product) WHERE s.phone STARTS WITH '(171)' RETURN p",
    ),
    ("MATCH (p:Product) WHERE p.price > 2.5 AND p.name = 'a. RETURN' RETURN p",
     "MATCH (p:Product) WHERE p.price > 2.5 AND p.name = 'a. RETURN' RETURN p"),
    ("MATCH (p:Product) WHERE p.stock > 3. AND p.price < 1.5 RETURN p",
     "MATCH (p:Product) WHERE p.stock > 3 AND p.price < 1.5 RETURN p"),
    # prose only -> nothing
    ("I'm sorry, I cannot help with that.", ""),
    ("The customers are stored as nodes, and you can match them by label.", ""),
    ("", ""),
    ("<|im_end|>", ""),
    ("<end_of_turn>", ""),
]


@pytest.mark.parametrize("raw, expected", CASES)
def test_clean_cypher(raw, expected):
    assert clean_cypher(raw) == expected


def test_idempotent():
    for raw, _ in CASES:
        once = clean_cypher(raw)
        assert clean_cypher(once) == once


TOP = "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.name, sum(o.total) AS "


@pytest.mark.parametrize(
    "raw, expected",
    [
        # an alias of two words, a syntax error, becomes one name wherever it is written (round 14's northwind
        # 603: ``AS totalFreight charges … ORDER BY totalFreight charges DESC``)
        (TOP + "totalFreight charges ORDER BY totalFreight charges DESC LIMIT 5",
         TOP + "totalFreightCharges ORDER BY totalFreightCharges DESC LIMIT 5"),
        (TOP + "total spent", TOP + "totalSpent"),
        ("MATCH (c:Customer)-[:PLACED]->(o:Order) WITH c, count(o) AS order count, 1 AS one\n"
         "WHERE order count > 1 RETURN c.name, order count",
         "MATCH (c:Customer)-[:PLACED]->(o:Order) WITH c, count(o) AS orderCount, 1 AS one\n"
         "WHERE orderCount > 1 RETURN c.name, orderCount"),
    ],
)
def test_a_two_word_alias_becomes_one_name(raw, expected):
    assert clean_cypher(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        TOP + "spent ORDER BY spent DESC LIMIT 5",
        "UNWIND [1, 2] AS x MATCH (n) RETURN n",
        "MATCH (c:Customer) RETURN c.name AS name\nUNION\nMATCH (s:Supplier) RETURN s.name AS name",
        "MATCH (c:Customer) RETURN 'AS total spent' AS s",
        TOP + "total spent, count(o) AS totalSpent",  # the joined name is taken: the model's to correct
    ],
)
def test_other_aliases_stay(raw):
    assert clean_cypher(raw) == raw


def test_a_joined_alias_runs_on_falkordb(shop):
    rows = shop.query(clean_cypher(TOP + "total spent ORDER BY total spent DESC LIMIT 2")).rows
    assert rows and rows == shop.query(TOP + "spent ORDER BY spent DESC LIMIT 2").rows


@pytest.mark.parametrize(
    "raw, expected",
    [
        # a column written twice, which FalkorDB refuses ("Multiple result columns with the same name"), is
        # kept once (round 12's movies 132: ``RETURN p.name, p.name ORDER BY p.name DESC``)
        ("MATCH (c:Customer) RETURN c.name, c.name ORDER BY c.name DESC LIMIT 5",
         "MATCH (c:Customer) RETURN c.name ORDER BY c.name DESC LIMIT 5"),
        ("MATCH (c:Customer) RETURN DISTINCT c.name, c.city, c.name",
         "MATCH (c:Customer) RETURN DISTINCT c.name, c.city"),
        ("MATCH (c:Customer) RETURN count(c) AS n, c.city, count(c) AS n",
         "MATCH (c:Customer) RETURN count(c) AS n, c.city"),
        ("MATCH (c:Customer) RETURN c.name, c.name\nUNION\nMATCH (s:Supplier) RETURN s.name, s.name",
         "MATCH (c:Customer) RETURN c.name\nUNION\nMATCH (s:Supplier) RETURN s.name"),
    ],
)
def test_a_column_written_twice_is_kept_once(raw, expected):
    assert clean_cypher(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "MATCH (c:Customer) RETURN c.name, c.name AS again",  # two names: the database runs it
        "MATCH (c:Customer) RETURN c.name AS n, c.city AS n",  # one name, two values: the model's to choose
        "MATCH (c:Customer) WITH c.name AS a, c.name AS b RETURN a, b",
        "MATCH (c:Customer) RETURN [x IN [c.name, c.name] | x] AS xs, c.city",
        "MATCH (c:Customer) RETURN 'c.name, c.name' AS s",
    ],
)
def test_other_columns_stay(raw):
    assert clean_cypher(raw) == raw


def test_a_column_kept_once_runs_on_falkordb(shop):
    twice = "MATCH (c:Customer) RETURN c.name, c.name ORDER BY c.name LIMIT 3"
    with pytest.raises(Exception, match="same name"):
        shop.query(twice)
    rows = shop.query(clean_cypher(twice)).rows
    assert rows and rows == shop.query("MATCH (c:Customer) RETURN c.name ORDER BY c.name LIMIT 3").rows
