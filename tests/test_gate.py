"""The promotion gate on the real shop graph, with generators whose quality we control."""

from __future__ import annotations

import json

import pytest

from agent.core.errors import DataError
from agent.evaluation import EvalItem
from agent.models.base import ScriptedGenerator
from finetune.gate import gate_settings, load_questions, run_gate

HELDOUT = [
    EvalItem(
        "h1", "How many customers live in Berlin?", "MATCH (c:Customer {city: 'Berlin'}) RETURN count(c)"
    ),
    EvalItem("h2", "Which customers live in Madrid?", "MATCH (c:Customer {city: 'Madrid'}) RETURN c.name"),
    EvalItem("h3", "How many products are there?", "MATCH (p:Product) RETURN count(p)"),
    EvalItem("h4", "List the category names.", "MATCH (c:Category) RETURN c.name"),
]
REGRESSION = [
    EvalItem("r1", "How many suppliers are there?", "MATCH (s:Supplier) RETURN count(s)"),
    EvalItem("r2", "Which customers live in London?", "MATCH (c:Customer {city: 'London'}) RETURN c.name"),
]
WRONG = "MATCH (c:Customer) RETURN c.email"


def scripted(correct: set[str], version: str):
    """A generator factory answering the questions in ``correct`` with the gold query, the rest wrongly."""
    gold = {i.question: i.cypher for i in HELDOUT + REGRESSION}
    script = {q: (c if q in correct else WRONG) for q, c in gold.items()}
    return lambda: ScriptedGenerator(script, version=version)


ALL = {i.question for i in HELDOUT + REGRESSION}
HALF = {HELDOUT[0].question, HELDOUT[1].question, REGRESSION[0].question}


@pytest.fixture
def eval_settings(settings):
    return gate_settings(settings, max_attempts=1)


def test_gate_promotes_a_better_candidate(shop, eval_settings):
    d = run_gate(
        scripted(ALL, "good"), scripted(HALF, "live"), shop, HELDOUT, REGRESSION, settings=eval_settings
    )
    assert d.promote and d.decision == "promote"
    assert d.candidate["heldout"].accuracy == 1.0 and d.active["heldout"].accuracy == 0.5
    assert d.candidate["regression"].accuracy == 1.0 and d.active["regression"].accuracy == 0.5
    assert d.candidate["heldout"].model_version == "good"
    json.dumps(d.to_dict())  # recorded in meta.json and the report


def test_gate_refuses_a_worse_candidate(shop, eval_settings):
    d = run_gate(
        scripted(HALF, "bad"), scripted(ALL, "live"), shop, HELDOUT, REGRESSION, settings=eval_settings
    )
    assert not d.promote and "worse" in d.reason and "heldout" in d.reason


def test_gate_refuses_a_candidate_that_regresses_on_feedback_only(shop, eval_settings):
    heldout_only = {i.question for i in HELDOUT}
    d = run_gate(
        scripted(heldout_only, "cand"),
        scripted(ALL, "live"),
        shop,
        HELDOUT,
        REGRESSION,
        settings=eval_settings,
    )
    assert d.candidate["heldout"].accuracy == d.active["heldout"].accuracy == 1.0
    assert not d.promote and "regression" in d.reason and "heldout" not in d.reason.split(":", 1)[1]


def test_equal_passes_but_a_margin_demands_more(shop, eval_settings):
    assert run_gate(
        scripted(HALF, "a"), scripted(HALF, "b"), shop, HELDOUT, REGRESSION, settings=eval_settings
    ).promote
    d = run_gate(
        scripted(HALF, "a"),
        scripted(HALF, "b"),
        shop,
        HELDOUT,
        REGRESSION,
        settings=eval_settings,
        margin=0.05,
    )
    assert not d.promote and d.margin == 0.05


def test_no_regression_set_is_judged_on_heldout(shop, eval_settings):
    d = run_gate(scripted(ALL, "a"), scripted(HALF, "b"), shop, HELDOUT, [], settings=eval_settings)
    assert d.promote and d.candidate["regression"] is None and "no verified-feedback" in d.reason


def test_no_heldout_never_promotes(shop, eval_settings):
    with pytest.raises(DataError, match="held-out"):
        run_gate(scripted(ALL, "a"), scripted(HALF, "b"), shop, [], REGRESSION, settings=eval_settings)


def test_active_scores_are_cached(shop, eval_settings, tmp_path):
    cache = tmp_path / "scores.json"
    built = []

    def active():
        built.append(1)
        return scripted(HALF, "live")()

    for _ in range(2):
        d = run_gate(
            scripted(ALL, "c"),
            active,
            shop,
            HELDOUT,
            REGRESSION,
            settings=eval_settings,
            score_cache=cache,
            active_cache_id="base+v0001",
        )
    assert len(built) == 1 and d.active["heldout"].cached and d.active["heldout"].accuracy == 0.5


def test_gate_settings_are_greedy_without_few_shot(settings):
    s = gate_settings(settings, max_attempts=1, max_new_tokens=64)
    assert (s.temperature, s.few_shot_k, s.max_attempts, s.max_new_tokens) == (0.0, 0, 1, 64)


def test_load_questions_empty_or_missing(tmp_path):
    assert load_questions(None) == [] and load_questions(tmp_path / "none.jsonl") == []
    f = tmp_path / "q.jsonl"
    f.write_text("")
    assert load_questions(f) == []
    f.write_text(
        "".join(json.dumps({"id": i.id, "question": i.question, "cypher": i.cypher}) + "\n" for i in HELDOUT)
    )
    assert [i.id for i in load_questions(f, limit=2)] == ["h1", "h2"]
