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
