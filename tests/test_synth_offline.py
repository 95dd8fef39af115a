"""The offline generator on the real ``shop`` graph: valid, executed, de-duplicated pairs across its shapes."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from finetune.dataset import normalize_cypher, normalize_question
from finetune.synth_offline import SHAPES, generate_pairs, pluralize, rel_phrase, split_words


@pytest.fixture(scope="module")
def shop_pairs(shop):
    return generate_pairs(shop, 500, seed=1)


def test_pairs_run_return_rows_and_are_stable(shop, shop_pairs):
    from agent.evaluation import results_match

    pairs, report = shop_pairs
    assert len(pairs) >= 400, report.table()
    for p in pairs:
        first = shop.query(p.cypher, timeout_s=5)
        second = shop.query(p.cypher, timeout_s=5)
        assert first.rows, p
        assert len(first.rows) == p.row_count
        assert results_match(first.rows, second.rows), p
        assert p.graph == "shop" and p.source == "offline" and p.category in SHAPES


def test_pairs_cover_the_shapes_and_are_balanced(shop_pairs):
    pairs, report = shop_pairs
    counts = Counter(p.category for p in pairs)
    # every shape this schema supports produces pairs (shop has nulls, ISO dates, a self-loop, rel properties)
    assert set(counts) == set(SHAPES), set(SHAPES) - set(counts)
    # round-robin: no shape crowds out the others while they still have candidates
    assert max(counts.values()) <= 3 * (len(pairs) / len(SHAPES))
    assert report.kept == len(pairs) and sum(s.kept for s in report.shapes.values()) == len(pairs)
    assert "| lookup |" in report.table()


def test_no_duplicate_questions_or_queries(shop_pairs):
    pairs, _ = shop_pairs
    assert len({normalize_question(p.question) for p in pairs}) == len(pairs)
    assert len({normalize_cypher(p.cypher) for p in pairs}) == len(pairs)


def test_questions_read_like_people_ask(shop_pairs):
    pairs, _ = shop_pairs
    for p in pairs:
        q = p.question
        assert q[0].isupper() and q[-1] in "?.", q
        assert "  " not in q and "None" not in q and "_" not in q.split("'")[0], q
        assert not re.search(r"\b(nodes?|label|property|count of)\b", q, re.I), q
    qs = {p.question for p in pairs}
    # relationship types and labels come out as English
    assert any("placed" in q or "place" in q for q in qs)
    assert any(q.startswith("How many") for q in qs)
    assert any("Alice Meyer" in q for q in qs)


def test_same_seed_same_pairs_other_seed_other_pairs(shop):
    a, _ = generate_pairs(shop, 120, seed=7)
    b, _ = generate_pairs(shop, 120, seed=7)
    c, _ = generate_pairs(shop, 120, seed=8)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.question for p in a] != [p.question for p in c]


def test_shape_subset_and_unknown_shape(shop):
    from agent.errors import DataError

    pairs, _ = generate_pairs(shop, 30, shapes=["negation", "var_length"])
    assert {p.category for p in pairs} <= {"negation", "var_length"} and pairs
    assert any("NOT (" in p.cypher for p in pairs)
    assert any(re.search(r"\*1\.\.\d", p.cypher) for p in pairs)
    with pytest.raises(DataError):
        generate_pairs(shop, 10, shapes=["nope"])


@pytest.mark.parametrize(
    "rel, end, finite, ask",
    [
        ("PLACED", "Order", "placed", "did Alice place"),
        ("ACTED_IN", "Movie", "acted in", "did Alice act in"),
        ("SUPPLIES", "Product", "supply", "does Alice supply"),
        ("REFERRED", "Customer", "referred", "did Alice refer"),
        ("WROTE", "Movie", "wrote", "did Alice write"),
        ("PART_OF", "Category", "are part of", "is Alice part of"),
        ("IN_CATEGORY", "Category", "are in", "is Alice in"),
        ("PURCHASED", "Order", "purchased", "did Alice purchase"),
    ],
)
def test_relationship_types_in_english(rel, end, finite, ask):
    ph = rel_phrase(rel, end)
    assert ph.finite(True) == finite
    assert ph.ask("Alice") == ask


def test_words_and_plurals():
    assert split_words("unitPrice") == ["unit", "price"]
    assert split_words("customer_id") == ["customer", "ID"]
    assert split_words("ACTED_IN") == ["acted", "in"]
    assert pluralize("person") == "people" and pluralize("category") == "categories"
    assert pluralize("quantity per unit") == "quantities per unit" and pluralize("units in stock") == "units in stock"


def test_real_date_values_and_ties_at_the_cut(scratch_graph):
    """DATE properties are compared with date(); a top-k whose cut falls inside a tie is never kept."""
    scratch_graph.write(
        "UNWIND [['A', 10, '2024-01-05'], ['B', 9, '2024-02-10'], ['C', 8, '2024-02-20'], ['D', 8, '2024-03-01'], "
        "['E', 7, '2024-04-15']] AS r CREATE (:Item {name: r[0], score: r[1], made: date(r[2])})"
    )
    assert scratch_graph.schema(refresh=True).label("Item").properties[-1].type == "DATE"
    pairs, _ = generate_pairs(scratch_graph, 400, shapes=["date_filter", "top_k"])
    dated = [p for p in pairs if p.category == "date_filter"]
    assert dated and all("date('" in p.cypher for p in dated)
    tops = [p.cypher for p in pairs if p.category == "top_k" and "score" in p.cypher and "DESC" in p.cypher]
    assert any(c.endswith("LIMIT 1") for c in tops)
    assert not any(c.endswith("LIMIT 3") for c in tops)  # 10, 9, 8 | 8: a tie at the cut


def test_cli_generate(shop, settings, tmp_path, capsys):
    from ui.cli import main

    out = tmp_path / "pairs.jsonl"
    code = main(["data", "generate", "--home", str(settings.home), "--graph", "shop", "--offline", "--n", "40",
                 "--out", str(out), "--seed", "2", "--quiet"])
    assert code == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 40
    assert {"question", "cypher", "category", "graph", "source", "row_count"} <= set(lines[0])
    assert "| shape |" in capsys.readouterr().out
    assert main(["data", "generate", "--home", str(settings.home), "--graph", "shop", "--n", "5", "--out", str(out)]) != 0
    assert "--offline" in capsys.readouterr().err
