"""Issue 14, defects 6, 7 and 9: limits on stored inputs, one clear line for every bad input, a private home.

Each test failed before its fix: a 10 MB imported question became a 10 MB prompt; invalid settings printed
``unexpected ValidationError`` over four lines; a lone surrogate raised ``UnicodeEncodeError``; the Chroma
folder was created 0755.
"""

from __future__ import annotations

import json
import stat

import pytest

from agent.core.errors import InvalidCorrection
from agent.core.feedback import Interaction
from agent.factory import make_agent
from agent.models.base import ScriptedGenerator
from feedback_store.chroma import ChromaFeedbackStore
from ui.cli import main

COUNT = "MATCH (c:Customer) RETURN count(c)"


@pytest.fixture
def store(settings, tmp_path):
    s = ChromaFeedbackStore(settings.model_copy(update={"home": tmp_path / "home"}))
    yield s
    s.close()


# --- defect 6: stored inputs have limits; the prompt's examples a budget -------------------------------

def test_import_refuses_a_huge_question_and_a_huge_query(store, shop):
    report = store.import_examples([("How many customers? " * 500_000, COUNT),
                                    ("How many customers?", COUNT + " " * 10 + "//" + "x" * 5000),
                                    ("How many customers are there?", COUNT)], shop)
    assert report.added == 1 and [n for n, _ in report.refused] == [1, 2]
    assert "CYPHERLOOP_MAX_QUESTION_CHARS" in report.refused[0][1]
    assert "CYPHERLOOP_MAX_QUERY_CHARS" in report.refused[1][1]


def test_a_correction_longer_than_the_limit_is_refused(store, shop):
    iid = store.log_interaction(Interaction("How many customers?", "shop", COUNT, "12", 1))
    with pytest.raises(InvalidCorrection, match="CYPHERLOOP_MAX_QUERY_CHARS"):
        store.add_correction(iid, "MATCH (c:Customer) RETURN count(c) // " + "x" * 5000, shop)


def test_the_log_clips_what_it_keeps_and_takes_lone_surrogates(store):
    iid = store.log_interaction(Interaction("q\ud800" + "x" * 10_000, "shop", "RETURN '\udfff'", "a", 0,
                                            attempts=[{"cypher": "y" * 10_000, "error": "e\ud800"}]))
    it = store.get_interaction(iid)
    assert len(it.question) == store.max_question_chars and it.question.startswith("q\ufffd")
    assert it.final_cypher == "RETURN '\ufffd'" and len(it.attempts[0]["cypher"]) == store.max_cypher_chars


def test_a_long_question_is_refused_before_the_model(settings, shop):
    gen = ScriptedGenerator([COUNT])
    with make_agent(settings, graph_store=shop, generator=gen) as agent:
        out = agent.ask("How many customers are there? " * 1000)
    assert out.status == "refused" and out.scope == "too_long" and gen.calls == []


def test_the_examples_in_a_prompt_have_a_budget(settings, shop, store):
    from agent.core.prompt import Example

    seen = []
    gen = ScriptedGenerator(lambda q, fb, n: COUNT)
    original = gen.generate

    def spy(question, schema_text, examples=(), error_feedback=None):
        seen.append(list(examples))
        return original(question, schema_text, examples, error_feedback)

    gen.generate = spy
    huge = Example("How many movies are there? " + "padding " * 1_000_000, COUNT)
    small = Example("How many customers are there?", COUNT)
    with make_agent(settings, graph_store=shop, generator=gen, examples=[huge, small]) as agent:
        assert agent.ask("How many customers are there?").status == "ok"
    assert seen == [[small]]


def test_cli_import_of_a_lone_surrogate_is_one_line(cl_home, tmp_path, shop, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "How many customers \ud800?", "cypher": COUNT}) + "\n")
    rc = main(["feedback", "--home", str(cl_home), "import", str(bad), "--graph", "shop"])
    out = capsys.readouterr()
    assert rc == 1 and "line 1: the text holds an invalid character" in out.out and "Traceback" not in out.err


# --- defect 7: one line naming what is wrong -----------------------------------------------------------

@pytest.mark.parametrize(("var", "value", "words"), [
    ("CYPHERLOOP_GRAPH_BACKEND", "bogus", "'embedded', 'falkordb' or 'neo4j'"),
    ("CYPHERLOOP_QUERY_TIMEOUT_S", "-1", "greater than 0"),
    ("CYPHERLOOP_QUERY_TIMEOUT_S", "abc", "valid number"),
    ("CYPHERLOOP_MAX_ROWS", "0", "greater than 0"),
    ("CYPHERLOOP_EMBEDDED_PORT", "abc", "valid integer"),
    ("CYPHERLOOP_MODEL_BACKEND", "bogus", "'transformers', 'llamacpp' or 'openai'"),
])
def test_an_invalid_setting_is_one_line_naming_it(monkeypatch, tmp_path, capsys, var, value, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(var, value)
    assert main(["graph", "stats", "--home", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert err[0].startswith(f"error: invalid setting {var}={value!r}: ")


def test_export_to_a_missing_folder_is_one_line(tmp_path, capsys):
    rc = main(["feedback", "--home", str(tmp_path / "h"), "export", "/proc/nope/x.jsonl"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "cannot write /proc/nope/x.jsonl" in err[0]


def test_loading_a_directory_says_so(tmp_path, capsys):
    rc = main(["graph", "load", str(tmp_path), "--home", str(tmp_path / "h"), "--graph", "x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err == [f"error: {tmp_path} is a directory, not a Cypher script"]


# --- defect 9: the home is private ---------------------------------------------------------------------

def test_the_home_is_private(settings, tmp_path):
    home = tmp_path / "fresh" / "home"
    s = ChromaFeedbackStore(settings.model_copy(update={"home": home}))
    s.close()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    settings.model_copy(update={"home": loose}).private_home()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_json_of_the_log_is_utf8(store):
    iid = store.log_interaction(Interaction("caf\u00e9 \ud83d", "shop", None, "a", 0))
    assert json.dumps(store.get_interaction(iid).question).encode("utf-8")
