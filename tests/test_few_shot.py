"""The few-shot selection rule (agent.few_shot): which retrieved examples a question is shown."""

from agent.core.prompt import Example
from agent.few_shot import foreign_literal, foreign_name, literals, select_examples, why_not_shown, words
from agent.schema_check import used_names
from tests.test_schema_check import SHOP

# The cases are the dev sets' (movies, northwind) that turned a right answer wrong, moved onto the shop graph.
VENDETTA = Example(
    "Who are the top 3 customers from Berlin who reviewed 'Laptop Pro 14'?",
    "MATCH (c:Customer {city: 'Berlin'})-[:REVIEWED]->(p:Product {name: 'Laptop Pro 14'}) RETURN c LIMIT 3",
)
MOST_ORDERS = Example(
    "Who placed the most orders?",
    "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.name, count(o) AS n ORDER BY n DESC LIMIT 1",
)
JOINED_1990S = Example(
    "Which customers joined in the 1990s?",
    "MATCH (c:Customer) WHERE c.joined >= 1990 AND c.joined < 2000 RETURN c.name",
)


def test_literals_reads_strings_numbers_and_limits():
    strings, numbers = literals("MATCH (p:Product {name: \"Chai\"}) WHERE p.price > 12.5 AND p.stock < 3 "
                                "RETURN p // 'not a literal'\nSKIP 2 LIMIT 10")
    assert strings == ["Chai"]
    assert numbers == [("12.5", False), ("3", False), ("2", True), ("10", True)]


def test_an_example_about_another_entity_is_not_shown():
    # The model answered "Who was born in 1965 and directed a movie?" about 'V for Vendetta', born > 1960.
    assert foreign_literal(VENDETTA, "Which customers from Paris reviewed a product?") == "'Berlin'"
    assert foreign_literal(VENDETTA, "Which 3 customers from berlin reviewed 'laptop pro 14'?") is None
    assert foreign_literal(VENDETTA, "Name three customers from Berlin who reviewed Laptop Pro 14") is None
    assert foreign_literal(VENDETTA, "Name two customers from Berlin who reviewed Laptop Pro 14") == "3"


def test_a_limit_one_goes_with_a_superlative_question_only():
    assert foreign_literal(MOST_ORDERS, "Which customer spent the most?") is None
    assert foreign_literal(MOST_ORDERS, "Who is the newest customer?") is None
    assert foreign_literal(MOST_ORDERS, "List the orders placed by customers from Berlin") == "1"
    # a 1 that is not a LIMIT's count needs the question's own 1
    assert foreign_literal(Example("q", "MATCH (c:Customer) WHERE c.stock > 1 RETURN c"),
                           "Which customer is the newest?") == "1"


def test_a_decade_in_the_question_covers_its_bounds():
    assert foreign_literal(JOINED_1990S, "Who joined in the 1990s?") is None
    assert foreign_literal(JOINED_1990S, "Who joined in 1995?") == "1990"


def test_an_example_that_does_not_fit_the_live_schema_is_not_shown():
    votes = Example("Which products have the most votes?",
                    "MATCH (p:Product) RETURN p.name ORDER BY p.votes DESC LIMIT 1")
    assert "votes" in why_not_shown(votes, "Which product has the most votes?", SHOP)
    reversed_ = Example("Who placed orders?", "MATCH (o:Order)-[:PLACED]->(c:Customer) RETURN c.name")
    assert "PLACED" in why_not_shown(reversed_, "Who placed orders?", SHOP)
    assert why_not_shown(MOST_ORDERS, "Who placed the most orders?", SHOP) is None


def test_select_keeps_the_order_and_fills_k_from_the_candidates_behind():
    fits = Example("How many orders did each customer place?",
                   "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.name, count(o)")
    candidates = [VENDETTA, MOST_ORDERS, JOINED_1990S, fits]
    got = select_examples("Which customer placed the most orders?", candidates, SHOP, k=2)
    assert got == [MOST_ORDERS, fits]
    assert select_examples("Who placed the most orders?", [MOST_ORDERS, fits], SHOP, k=1) == [MOST_ORDERS]
    assert select_examples("Who placed the most orders?", [], SHOP, k=3) == []


# northwind: "the three products with the highest units on order" shown for "… the highest units in stock".
MOST_STOCK = Example(
    "Which 3 products have the most stock?",
    "MATCH (p:Product) RETURN p.name, p.stock ORDER BY p.stock DESC LIMIT 3",
)


def test_used_names_reads_pattern_keys_and_bound_properties_only():
    types, props = used_names("MATCH (s:Supplier {country: 'UK'})-[c:CONTAINS]->(p) WHERE c.unit_price > 2 "
                              "WITH p, apoc.x(p) AS x RETURN p.name, x.total // p.rating")
    assert types == {"CONTAINS"}
    assert props == {"country", "unit_price", "name"}  # not apoc's, an alias's, or a comment's


def test_words_split_identifiers_drop_glue_and_compare_stems():
    assert words("unitsOnOrder") == words("units on order") == {"unit", "order"}
    assert words("unit_price") <= words("Which orders have the highest unit prices?")
    assert words("shipCity") <= words("the cities orders were shipped to")
    assert words("countries") == words("country")


def test_an_example_whose_question_names_another_property_is_not_shown():
    assert foreign_name(MOST_STOCK, "Which 3 products have the highest price?") == "stock"
    assert "'stock'" in why_not_shown(MOST_STOCK, "Which 3 products have the highest price?", SHOP)
    assert foreign_name(MOST_STOCK, "List the top three products by stock") is None
    # a property the example's question only implies (the product's name) is not asked of the question
    assert foreign_name(MOST_STOCK, "Which 3 products have the most stock in the shop?") is None
    by_price = Example(
        "Which orders have the highest unit price?",
        "MATCH (o:Order)-[c:CONTAINS]->(:Product) RETURN o.order_id ORDER BY c.unit_price DESC",
    )
    assert foreign_name(by_price, "Which orders contain the most units?") == "unit_price"
    assert foreign_name(by_price, "Which orders have the highest unit prices?") is None
    # relationship types are not held to it: "reviewed" need not be in the question
    reviews = Example(
        "Who reviewed the most products?",
        "MATCH (c:Customer)-[:REVIEWED]->(p:Product) RETURN c.name, count(p) ORDER BY count(p) DESC",
    )
    assert foreign_name(reviews, "Which customer rated the most products?") is None


def test_select_prefers_fewer_examples_to_one_about_another_property():
    assert select_examples("Which 3 products have the highest price?", [MOST_STOCK], SHOP, k=3) == []


def test_a_lone_example_is_shown_only_when_it_paraphrases_the_question():
    # movies: "List all movies reviewed with a summary containing 'journey'" (0.895, alone) made "… the movies
    # reviewed with the summary 'An amazing journey'" return its RETURN m.title, p.name
    asked = []

    def paraphrase(answer: bool):
        def is_paraphrase(example: Example) -> bool:
            asked.append(example)
            return answer
        return is_paraphrase

    question, candidates = "Which customer placed the most orders?", [VENDETTA, MOST_ORDERS]
    assert select_examples(question, [MOST_ORDERS], SHOP, k=3) == []
    assert select_examples(question, candidates, SHOP, k=3, is_paraphrase=paraphrase(False)) == []
    assert asked == [MOST_ORDERS]  # only the one that passed is looked at
    assert select_examples(question, candidates, SHOP, k=3, is_paraphrase=paraphrase(True)) == [MOST_ORDERS]


def test_two_examples_that_pass_are_shown_without_asking_whether_they_paraphrase():
    fits = Example("How many orders did each customer place?",
                   "MATCH (c:Customer)-[:PLACED]->(o:Order) RETURN c.name, count(o)")

    def never(example: Example) -> bool:
        raise AssertionError("asked for a pair")

    question, pair = "Which customer placed the most orders?", [MOST_ORDERS, fits]
    assert select_examples(question, pair, SHOP, k=3, is_paraphrase=never) == pair
    assert select_examples(question, pair, SHOP, k=1, is_paraphrase=never) == [MOST_ORDERS]
