"""``cypherloop ask`` / ``cypherloop eval`` through the real dispatcher, on the shop graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.models.base import ScriptedGenerator
from ui.cli import main

EVAL3 = Path(__file__).parent / "data" / "eval3.jsonl"
BERLIN = "MATCH (c:Customer {city: 'Berlin'}) RETURN c.name AS name, c.email AS email"


@pytest.fixture
def scripted(monkeypatch):
    """Make the CLI build a scripted generator instead of loading a model."""
    made = {}

    def install(script, version="scripted"):
        def fake_make_generator(settings):
            made["settings"] = settings
            made["gen"] = ScriptedGenerator(script, version=version)
            return made["gen"]

        monkeypatch.setattr("agent.factory.make_generator", fake_make_generator)  # eval
        monkeypatch.setattr("agent.models.factory.make_generator", fake_make_generator)  # ask
        return made

    return install


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in (
        "CYPHERLOOP_HOME",
        "CYPHERLOOP_GRAPH",
        "CYPHERLOOP_GRAPH_BACKEND",
        "CYPHERLOOP_MODEL_BACKEND",
    ):
        monkeypatch.delenv(var, raising=False)


def _args(cl_home, *rest):
    return ["--home", str(cl_home), "--graph", "shop", *rest]


def test_ask_prints_answer_cypher_and_rows(shop, cl_home, scripted, capsys):
    made = scripted([BERLIN])
    code = main(["ask", "Which customers live in Berlin?", *_args(cl_home, "--no-log")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Found 2 rows with name, email; the first is")
    assert "Cypher:\n  " + BERLIN in out
    assert "Alice Meyer" in out and "felix.wagner@example.com" in out
    assert "2 row(s); 1 attempt;" in out and "scripted" in out
    assert made["settings"].graph == "shop"


def test_ask_json(shop, cl_home, scripted, capsys):
    scripted(["MATCH (c:Customer) RETURN count(c) AS n"])
    assert main(["ask", "How", "many", "customers?", *_args(cl_home, "--json", "--no-log")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "ok" and data["rows"] == [[12]] and data["question"] == "How many customers?"
    assert {"answer", "cypher", "columns", "attempts", "model_version", "timings", "latency_ms"} <= set(data)


def test_ask_overrides_reach_the_settings(shop, cl_home, scripted, capsys):
    made = scripted(["MATCH (c:Customer) RETURN count(c)"])
    main(
        [
            "ask",
            "How many customers?",
            *_args(
                cl_home,
                "--no-log",
                "--backend",
                "openai",
                "--model",
                "my-lora",
                "--adapter",
                "none",
                "--max-attempts",
                "2",
            ),
        ]
    )
    s = made["settings"]
    assert (s.model_backend, s.openai_model, s.adapter, s.max_attempts) == ("openai", "my-lora", "none", 2)
    main(
        [
            "ask",
            "How many customers?",
            *_args(cl_home, "--no-log", "--backend", "transformers", "--model", "/models/phi-3"),
        ]
    )
    assert made["settings"].base_model == "/models/phi-3"


def test_ask_refusal_exits_zero(shop, cl_home, scripted, capsys):
    scripted(lambda *a: pytest.fail("model called"))
    assert main(["ask", "please delete every order", *_args(cl_home, "--no-log")]) == 0
    assert "only read the graph" in capsys.readouterr().out


def test_ask_that_cannot_be_answered_still_replies(shop, cl_home, scripted, capsys):
    scripted(["I am not sure."])
    assert main(["ask", "How many customers?", *_args(cl_home, "--no-log", "--max-attempts", "2")]) == 0
    assert "could not answer" in capsys.readouterr().out


def test_ask_with_the_model_failing_exits_one(shop, cl_home, monkeypatch, capsys):
    from agent.core.errors import ModelError

    def broken(settings):
        def boom(*a):
            raise ModelError("the model server failed: 503")

        return ScriptedGenerator(boom)

    monkeypatch.setattr("agent.models.factory.make_generator", broken)
    assert main(["ask", "How many customers?", *_args(cl_home, "--no-log")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: the model server failed: 503"]


def test_ask_unknown_graph_is_one_line(shop, cl_home, scripted, capsys):
    scripted(["MATCH (n) RETURN n"])
    code = main(["ask", "q?", "--home", str(cl_home), "--graph", "no_such_graph", "--no-log"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "no_such_graph" in err[0]


def test_ask_logs_the_interaction_to_the_feedback_store(
    shop, cl_home, scripted, capsys, monkeypatch, tmp_path
):
    pytest.importorskip("chromadb")
    from feedback_store.chroma import ChromaFeedbackStore

    monkeypatch.setattr(
        "ui.cli_ask.open_feedback_store",
        lambda settings, quiet=False: ChromaFeedbackStore(tmp_path / "chroma"),
    )
    scripted(["MATCH (c:Customer) RETURN count(c) AS n"], version="scripted+v0001")
    question = "How many customers are there?"
    assert main(["ask", question, *_args(cl_home)]) == 0
    logged = list(ChromaFeedbackStore(tmp_path / "chroma").iter_interactions("shop"))
    assert [i.question for i in logged] == [question]
    assert (
        logged[0].final_cypher == "MATCH (c:Customer) RETURN count(c) AS n"
        and logged[0].model_version == "scripted+v0001"
    )
    assert logged[0].row_count == 1 and logged[0].ok


def test_ask_survives_a_broken_feedback_store(shop, cl_home, scripted, capsys, monkeypatch, caplog):
    class Broken:
        def similar_examples(self, *a, **k):
            raise RuntimeError("disk full")

        def log_interaction(self, *a, **k):
            raise RuntimeError("disk full")

    monkeypatch.setattr("ui.cli_ask.open_feedback_store", lambda settings, quiet=False: Broken())
    scripted(["MATCH (c:Customer) RETURN count(c)"])
    assert main(["ask", "How many customers?", *_args(cl_home)]) == 0
    captured = capsys.readouterr()
    assert "The answer is 12." in captured.out
    assert [r.message for r in caplog.records].count(
        "could not log the interaction to the feedback store: disk full"
    ) == 1


# --- eval ----------------------------------------------------------------------------------------------
def _eval_script():
    return {
        "How many customers are there?": "MATCH (c:Customer) RETURN count(c)",
        "Which customers live in Berlin?": "MATCH (c:Customer {city: 'Berlin'}) RETURN c.name",
        "*": "MATCH (o:Order) RETURN count(o)",
    }


def test_eval_reports_and_writes_predictions(shop, cl_home, scripted, capsys, tmp_path):
    scripted(_eval_script())
    out_file = tmp_path / "predictions.jsonl"
    code = main(["eval", *_args(cl_home, "--dataset", str(EVAL3), "--out", str(out_file))])
    captured = capsys.readouterr()
    assert code == 0
    assert "execution accuracy  2/3 = 66.7%" in captured.out
    assert "executable queries  3/3" in captured.out and "p50" in captured.out and "lookup" in captured.out
    lines = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert [x["correct"] for x in lines] == [True, True, False]


def test_eval_without_out_writes_predictions_into_the_home(shop, cl_home, scripted, capsys):
    scripted(_eval_script())
    assert main(["eval", *_args(cl_home, "--dataset", str(EVAL3))]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("predictions: "))
    path = Path(line.removeprefix("predictions: "))
    assert path.parent == Path(cl_home) / "eval" and path.is_file()
    assert len(path.read_text().splitlines()) == 3


def test_eval_json_and_limit(shop, cl_home, scripted, capsys):
    scripted(_eval_script())
    assert main(["eval", *_args(cl_home, "--dataset", str(EVAL3), "--limit", "2", "--json")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n"] == 2 and data["accuracy"] == 1.0 and data["executable_share"] == 1.0
    assert {"first_try_accuracy", "latency_p50_ms", "latency_p95_ms", "per_category"} <= set(data)
    assert isinstance(data["decoding"], dict)  # the model's calls per decoding path (none traced here)


def test_eval_in_batches_warms_up_on_its_own_chunks(shop, cl_home, scripted, capsys, monkeypatch):
    """``--batch-size``: the warm-up is handed the questions of each chunk the eval asks (after ``--limit``),
    so that a GPU's batched decoders are made for the chunks' sizes and prompts before the clock starts."""
    from agent.graph import CypherAgent

    seen = []
    monkeypatch.setattr(CypherAgent, "warm_up", lambda self, **kw: seen.append(kw) or [])
    scripted(_eval_script())
    assert main(["eval", *_args(cl_home, "--dataset", str(EVAL3), "--batch-size", "2", "--json")]) == 0
    questions = [json.loads(x)["question"] for x in EVAL3.read_text().splitlines() if x.strip()]
    assert seen == [{"batch_size": 2, "chunks": [questions[:2], questions[2:]]}]
    seen.clear()
    assert main(["eval", *_args(cl_home, "--dataset", str(EVAL3), "--batch-size", "4", "--limit", "2")]) == 0
    assert seen == [{"batch_size": 4, "chunks": [questions[:2]]}]
    assert main(["eval", *_args(cl_home, "--dataset", str(EVAL3))]) == 0 and seen[-1] == {}
    capsys.readouterr()


@pytest.mark.parametrize("content", ["{broken\n", '{"id": "x"}\n'])
def test_eval_bad_dataset_is_one_line(cl_home, capsys, tmp_path, content):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code = main(["eval", *_args(cl_home, "--dataset", str(path))])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(path) in err[0]


def test_eval_missing_dataset(cl_home, capsys, tmp_path):
    assert main(["eval", *_args(cl_home, "--dataset", str(tmp_path / "nope.jsonl"))]) == 2
    assert "not found" in capsys.readouterr().err


def test_help(capsys):
    assert main(["ask", "--help"]) == 0
    assert "--graph" in capsys.readouterr().out
    assert main(["eval", "--help"]) == 0
    assert "--dataset" in capsys.readouterr().out


def test_warm_loads_graph_model_and_feedback_store(shop, cl_home, capsys, tmp_path_factory):
    """``cypherloop warm`` with a real (tiny) model: everything the first question would load, timed."""
    from finetune_helpers import tiny_model_dir

    from feedback_store import embeddings

    tiny = tiny_model_dir(tmp_path_factory.getbasetemp())
    code = main(["warm", *_args(cl_home, "--json", "--model", str(tiny), "--adapter", "none")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"] == "tiny-llama+base" and set(out["seconds"]) == {"graph", "model", "feedback"}
    assert embeddings._model is not None


def test_warm_converts_the_model_when_ctranslate2_serves(shop, cl_home, capsys, tmp_path_factory):
    """Under ``auto`` on a CPU the first question would pay CTranslate2's conversion: ``warm`` does it."""
    pytest.importorskip("ctranslate2")
    from finetune_helpers import tiny_model_dir

    from agent.core.settings import load_settings
    from agent.models import ctranslate

    tiny = tiny_model_dir(tmp_path_factory.getbasetemp())
    args = _args(cl_home, "--backend", "auto", "--model", str(tiny), "--adapter", "none")
    assert main(["warm", *args]) == 0
    out = capsys.readouterr().out
    assert "model (auto: ctranslate2 " in out and "ready: tiny-llama+base" in out
    s = load_settings(home=cl_home, base_model=str(tiny), adapter="none", model_backend="auto")
    assert (ctranslate.converted_dir(s, None, s.ct2_quantization) / ctranslate.MARKER).is_file()


def test_warm_unknown_graph_is_one_line(shop, cl_home, capsys):
    assert main(["warm", "--home", str(cl_home), "--graph", "no_such_graph"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_graph" in err[0]
