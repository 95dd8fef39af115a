"""The promotion gate on the real shop graph, with generators whose quality we control."""

from __future__ import annotations

import json

import pytest

from agent.core.errors import DataError
from agent.evaluation import EvalItem, beats
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
REGRESSION_QUESTIONS = {i.question for i in REGRESSION}


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
    assert not d.promote
    assert d.reason == ("not promoted: heldout 2/4 vs live 4/4, needs to beat the live model; "
                        "regression 1/2 vs live 2/2, needs at least the live model's score")


def test_gate_refuses_a_candidate_that_regresses_on_feedback_only(shop, eval_settings):
    heldout_only = {i.question for i in HELDOUT}
    d = run_gate(
        scripted(heldout_only, "cand"),
        scripted(HALF | REGRESSION_QUESTIONS, "live"),
        shop,
        HELDOUT,
        REGRESSION,
        settings=eval_settings,
    )
    assert d.candidate["heldout"].accuracy == 1.0 and d.active["heldout"].accuracy == 0.5
    assert not d.promote
    assert d.reason == "not promoted: regression 0/2 vs live 2/2, needs at least the live model's score"


def test_a_regression_tie_passes_when_the_heldout_questions_are_won(shop, eval_settings):
    d = run_gate(
        scripted(ALL, "cand"),
        scripted(HALF | REGRESSION_QUESTIONS, "live"),
        shop,
        HELDOUT,
        REGRESSION,
        settings=eval_settings,
    )
    assert d.promote
    assert d.reason == "beats the live model: heldout 4/4 vs live 2/4; regression 2/2 vs live 2/2"


@pytest.mark.parametrize("answered", [HALF, set()], ids=["half each", "none each (a first model, the base)"])
def test_a_tie_never_promotes(shop, eval_settings, answered):
    """A tie on the held-out questions keeps the live model: 0 vs 0 is what a tiny CPU bootstrap's first model
    and the bare base often score."""
    d = run_gate(
        scripted(answered, "new"), scripted(answered, "base"), shop, HELDOUT, REGRESSION,
        settings=eval_settings,
    )
    n = len(answered & {i.question for i in HELDOUT})
    assert not d.promote and d.decision == "reject"
    assert d.reason.startswith(f"not promoted: heldout {n}/4 vs live {n}/4, needs to beat the live model")


def test_a_margin_is_how_much_better_the_candidate_must_be(shop, eval_settings):
    def gate(margin):  # 4/4 vs 2/4 held-out and 2/2 vs 1/2 regression: better by exactly 50 % on both
        return run_gate(scripted(ALL, "a"), scripted(HALF, "b"), shop, HELDOUT, REGRESSION,
                        settings=eval_settings, margin=margin)

    passed = gate(0.5)
    assert passed.promote and passed.reason.startswith("beats the live model by at least 50.0%: heldout 4/4")
    d = gate(0.55)
    assert not d.promote and d.margin == 0.55
    assert "heldout 4/4 vs live 2/4, needs to beat the live model by 55.0%" in d.reason


@pytest.mark.parametrize(
    "candidate, live, margin, promote",
    [
        (0.0, 0.0, 0.0, False),  # a tie at zero: a first model that learned nothing yet vs the base
        (0.5, 0.5, 0.0, False),
        (0.1 + 0.2, 0.3, 0.0, False),  # equal but for float noise
        (0.5, 0.25, 0.0, True),
        (0.5, 0.25, 0.25, True),  # better by exactly the margin
        (0.5, 0.25, 0.3, False),
        (0.25, 0.5, 0.0, False),
        (0.5, 0.5, -0.1, False),  # a negative margin does not let a tie through
    ],
)
def test_the_promotion_rule(candidate, live, margin, promote):
    assert beats(candidate, live, margin) is promote


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


# --- one vocabulary for the gate's decision and a round's outcome ------------------------------------------


@pytest.mark.parametrize(
    "written, verdict, outcome",
    [
        ("promote", "promote", "promoted"),
        ("reject", "reject", "rejected"),
        ("promoted", "promote", "promoted"),  # the bootstrap's gate decision before both took Verdict
        ("rejected", "reject", "rejected"),
        ("trained", "promote", "trained"),  # it beat the live model, promotion was off
        (" Rejected ", "reject", "rejected"),
        ("skipped", None, "skipped"),
        ("manual", "manual", None),
        ("not evaluated", "not evaluated", None),
        ("bogus", None, None),
        (None, None, None),
    ],
)
def test_either_spelling_reads(written, verdict, outcome):
    from finetune.decision import read_outcome, read_verdict

    assert read_verdict(written) == verdict and read_outcome(written) == outcome


def test_a_decision_in_the_other_spelling_shows_in_the_gate_s_words(tmp_path, monkeypatch, capsys):
    """retrain's gate wrote "reject", the bootstrap "rejected": a version the bootstrap registered before
    both took ``Verdict`` still shows as "reject" in ``adapters list`` (table and --json) and the Training
    tab."""
    from finetune.decision import Verdict
    from finetune.registry import AdapterRegistry
    from ui.cli_train import adapters_main
    from ui.training_tab import versions_table

    reg = AdapterRegistry(tmp_path / "home")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    for written in ("rejected", "promoted", "reject", "promote"):  # two old bootstrap versions, two new
        reg.add(model, {"source": "bootstrap", "gate": {"decision": written}})
    shown = ["reject", "promote", "reject", "promote"]
    assert [r["gate"] for r in reg.summaries()] == shown
    assert [r["gate"] for r in versions_table(reg.home, "tiny")] == shown
    assert all(isinstance(r["gate"], Verdict) for r in reg.summaries())
    monkeypatch.setenv("CYPHERLOOP_HOME", str(reg.home))
    assert adapters_main(["list", "--json"]) == 0
    assert [m["gate"]["decision"] for m in json.loads(capsys.readouterr().out)] == shown
    assert adapters_main(["list"]) == 0
    table = capsys.readouterr().out.splitlines()[1:5]
    assert [line.split()[-2] for line in table] == shown
