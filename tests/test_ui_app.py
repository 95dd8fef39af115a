"""The app's handlers without a browser: real agent over the read-only ``shop`` graph, real Chroma in tmp."""

from __future__ import annotations

import json
import socket
import sys

import pytest

from agent.core.errors import ModelError
from agent.graph import CypherAgent
from agent.models.base import ScriptedGenerator
from agent.state import AgentAnswer
from feedback_store.chroma import ChromaFeedbackStore
from ui.app import ChatController, UnavailableAgent, answer_markdown, build_app, step_line
from ui.training_tab import (
    BOOTSTRAP_LOG,
    TrainingHooks,
    accuracy_figure,
    adapter_versions,
    bootstrap_progress,
    loss_figure,
    training_view,
    versions_table,
)

GOOD = "MATCH (c:Customer) RETURN c.name AS name, c.city AS city ORDER BY name LIMIT 5"
BAD_LABEL = "MATCH (c:Clientele) RETURN c.name AS name"
CORRECTED = "MATCH (p:Product) RETURN p.name AS product ORDER BY product LIMIT 3"


@pytest.fixture
def home_settings(settings_for, tmp_path):
    return settings_for(tmp_path / "home")


@pytest.fixture
def store(home_settings):
    return ChromaFeedbackStore(home_settings)


def controller(shop, settings, store, script) -> ChatController:
    agent = CypherAgent(settings, shop, ScriptedGenerator(script), store)
    return ChatController(agent, store, settings)


def ask(ctrl: ChatController, question: str, state=None):
    updates = list(ctrl.respond(question, state))
    return updates, updates[-1]


def test_answer_streams_steps_then_answer_cypher_and_rows(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, {"*": GOOD})
    updates, (msgs, state, frame, status) = ask(ctrl, "Who are our customers?")
    # the steps message grows while the agent works, then the answer arrives
    step_texts = [u[0][1]["content"] for u in updates[1:-1]]
    assert step_texts[0].startswith("🔎 retrieving")
    assert [t.count("\n") for t in step_texts] == sorted(t.count("\n") for t in step_texts)
    assert "generating" in step_texts[-1] and "validating" in step_texts[-1] and "executing" in step_texts[-1]
    assert msgs[0] == {"role": "user", "content": "Who are our customers?"}
    assert msgs[1]["metadata"]["status"] == "done"
    assert f"```cypher\n{GOOD}\n```" in msgs[2]["content"] and "5 rows" in msgs[2]["content"]
    assert (
        list(frame.columns) == ["name", "city"] and len(frame) == 5 and frame.iloc[0]["name"] == "Alice Meyer"
    )
    assert status == ""
    # the interaction was logged, and both assistant messages point at it
    [it] = list(store.iter_interactions())
    assert it.final_cypher == GOOD and it.row_count == 5 and it.session_id == state["session_id"]
    assert state["answers"][1]["interaction_id"] == state["answers"][2]["interaction_id"] == it.id


def test_retry_steps_are_shown(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, [BAD_LABEL, GOOD])
    _, (msgs, _, frame, _) = ask(ctrl, "Who are our customers?")
    steps = msgs[1]["content"]
    assert "🔁 retry 2" in steps and "Clientele" in steps
    assert "2 attempts" in msgs[1]["metadata"]["title"]
    assert len(frame) == 5


def test_model_failure_is_a_clear_message(shop, home_settings, store):
    def broken(question, feedback, call_no):
        raise ModelError("the model could not be loaded: no weights in /nowhere")

    ctrl = controller(shop, home_settings, store, broken)
    _, (msgs, _, _, _) = ask(ctrl, "Who are our customers?")
    assert msgs[-1]["content"].startswith("⚠️") and "no weights in /nowhere" in msgs[-1]["content"]
    assert "Traceback" not in msgs[-1]["content"]


def test_unexpected_exception_is_a_clear_message(shop, home_settings, store):
    def crash(question, feedback, call_no):
        raise RuntimeError("CUDA out of memory")

    ctrl = controller(shop, home_settings, store, crash)
    _, (msgs, _, _, _) = ask(ctrl, "Who are our customers?")
    assert msgs[-1]["content"].startswith("⚠️") and "RuntimeError: CUDA out of memory" in msgs[-1]["content"]
    [it] = list(store.iter_interactions())  # the outage is logged too, as not ok
    assert it.question == "Who are our customers?" and not it.ok


def test_database_down_is_a_clear_message(settings_for, tmp_path, store):
    from agent.graphdb import open_graph

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    settings = settings_for(tmp_path / "down", graph_backend="falkordb", falkordb_url=f"redis://127.0.0.1:{port}")
    graph = open_graph(settings, "shop")
    ctrl = ChatController(
        CypherAgent(settings, graph, ScriptedGenerator({"*": GOOD}), store), store, settings
    )
    _, (msgs, _, _, _) = ask(ctrl, "Who are our customers?")
    assert msgs[-1]["content"].startswith("⚠️") and "unavailable" in msgs[-1]["content"].lower()
    assert ctrl.run_correction(GOOD)[1].startswith("❌")
    assert ctrl.schema_tables()[2].startswith("⚠️")


def test_unavailable_agent_at_startup(home_settings, store):
    ctrl = ChatController(UnavailableAgent("the model is unavailable (no weights)"), store, home_settings)
    _, (msgs, _, _, status) = ask(ctrl, "anything")
    assert "the model is unavailable (no weights)" in msgs[-1]["content"]
    assert ctrl.run_correction(GOOD)[1] == "⚠️ The graph database is unavailable."


def test_empty_question_asks_for_one(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, {"*": GOOD})
    (msgs, _, _, status), = list(ctrl.respond("   ", None))
    assert msgs == [] and "question" in status.lower()


def test_thumbs_up_undo_and_switch(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, {"*": GOOD})
    _, (_, state, _, _) = ask(ctrl, "Who are our customers?")
    r = ctrl.like(state, 2, True)
    assert (
        r["status"].startswith("👍") and store.counts()["up"] == 1 and store.counts()["examples_pending"] == 1
    )
    r = ctrl.like(r["state"], 2, "")  # a second click on the same thumb undoes it
    assert (
        r["status"] == "Feedback withdrawn." and store.counts()["up"] == 0 and store.counts()["examples"] == 0
    )
    r = ctrl.like(r["state"], [2], False)
    assert r["show_panel"] is True and r["cypher"] == GOOD and r["question"] == "Who are our customers?"
    assert store.counts()["down"] == 1
    r = ctrl.like(r["state"], 1, True)  # switching to 👍 (on the steps message of the same answer)
    c = store.counts()
    assert (c["up"], c["down"]) == (1, 0) and r["show_panel"] is False
    assert ctrl.like(r["state"], 0, True)["status"] == "That message is not an answer."


def test_correction_panel_run_and_save(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, {"*": GOOD})
    _, (_, state, _, _) = ask(ctrl, "Who are our customers?")
    assert ctrl.save_correction(CORRECTED, "", state)[0] == "Click 👎 on an answer first."
    state = ctrl.like(state, 2, False)["state"]
    # a 👎 without a correction (yet) is pending in the Review tab
    table = ctrl.review_rows("pending")
    assert list(table["kind"]) == ["feedback 👎"] and list(table["question"]) == ["Who are our customers?"]

    frame, status = ctrl.run_correction(CORRECTED)
    assert status.startswith("✅ 3 rows") and list(frame["product"]) == [
        "Ceramic Mug Set",
        "Cypher in Practice",
        "Espresso Machine",
    ]
    frame, status = ctrl.run_correction("MATCH (c:Customer) DETACH DELETE c")
    assert frame is None and status.startswith("❌ WriteRefused")
    frame, status = ctrl.run_correction("MATCH (c:Customer RETURN c")
    assert frame is None and status.startswith("❌ CypherSyntaxError")

    before = store.counts()
    status, state = ctrl.save_correction("MATCH (c:Customer) SET c.name = 'x' RETURN c", "", state)
    assert status.startswith("❌ Not saved") and store.counts() == before
    status, state = ctrl.save_correction(CORRECTED, "wanted products", state)
    assert status.startswith("✅ Correction saved") and "waiting for review in the Review tab." in status
    assert "))" not in status
    [fb] = [f for f in store.list_feedback() if f.corrected_cypher]
    assert (fb.corrected_cypher, fb.comment, fb.verdict) == (CORRECTED, "wanted products", "down")

    table = ctrl.review_rows("pending")
    # the plain 👎 is superseded
    assert list(table["cypher"]) == [CORRECTED] and list(table["kind"]) == ["example"]
    assert f"saved as {table.iloc[0]['id'][:12]}," in status  # the id the Review tab lists
    assert store.counts()["down"] == 1
    table, status = ctrl.review(table.iloc[0]["id"], "approve")
    assert status.endswith("approved.") and table.empty
    assert list(ctrl.review_rows("approved")["cypher"]) == [CORRECTED]
    assert ctrl.review("", "approve")[1].startswith("Select a row")
    assert ctrl.review("ffffffffffff", "reject")[1].startswith("⚠️")


def test_review_edit_runs_and_approves_the_edited_example(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, {"*": GOOD})
    _, (_, state, _, _) = ask(ctrl, "Which products do we sell?")
    state = ctrl.like(state, 2, False)["state"]
    ctrl.save_correction(GOOD, "", state)  # a wrong 'correction' waits for review
    row = ctrl.review_rows("pending").iloc[0]
    assert ctrl.approve_edited("", "q", CORRECTED)[1].startswith("Select a row")

    table, status = ctrl.approve_edited(row["id"], row["question"], "MATCH (p:Product RETURN p")
    assert status.startswith("❌ Not approved") and "Invalid input" in status
    assert list(table["id"]) == [row["id"]]  # nothing changed
    frame, status = ctrl.run_correction(CORRECTED, then="Approve the edit if this is right.")
    assert status.startswith("✅ 3 rows") and status.endswith("Approve the edit if this is right.")

    table, status = ctrl.approve_edited(row["id"], "Name three products", CORRECTED)
    assert status.startswith("✅") and "stays in the log, rejected" in status and table.empty
    [edited] = ctrl.review_rows("approved").to_dict("records")
    assert (edited["question"], edited["cypher"]) == ("Name three products", CORRECTED)
    assert edited["source"] == f"correction · edited from {row['id']}"
    [original] = ctrl.review_rows("rejected").to_dict("records")
    assert (original["question"], original["cypher"]) == (row["question"], GOOD)
    assert original["status"] == f"rejected · edited into {edited['id']}"
    assert ctrl.approve_edited("ffffffffffff", "q", CORRECTED)[1].startswith("⚠️")


def test_schema_tables(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, {"*": GOOD})
    labels, rels, text = ctrl.schema_tables()
    counts = dict(zip(labels["label"], labels["nodes"], strict=True))
    assert counts["Customer"] == shop.stats()["nodes"]["Customer"] > 0
    assert "PLACED" in set(rels["relationship"])
    assert "(:Customer)-[:PLACED]->(:Order)" in text


def test_formatting_helpers():
    assert step_line({"step": "retry", "label": "retry 2", "attempt": 2, "error": "x" * 1000}).startswith(
        "🔁 retry 2: previous error: x"
    )
    assert len(step_line({"step": "retry", "label": "retry 2", "error": "x" * 1000})) < 400
    assert (
        answer_markdown(AgentAnswer(status="failed", answer="Sorry", cypher="MATCH (n) RETURN n")).count(
            "Last query tried"
        )
        == 1
    )
    assert (
        answer_markdown(AgentAnswer(status="no_data", answer="No matching data.", cypher="RETURN 1")).find(
            "0 rows"
        )
        > 0
    )


def test_failed_answers_have_a_footer_and_times_are_in_seconds():
    failed = answer_markdown(AgentAnswer(status="failed", answer="Sorry", cypher="MATCH (n) RETURN n",
                                         latency_ms=124120, model_version="smollm2+v0001"))
    assert failed.endswith("*no query worked · 2 min 4 s · smollm2+v0001*")
    ok = answer_markdown(AgentAnswer(status="ok", answer="3 rows", cypher="RETURN 1", rows=[[1]],
                                     columns=["x"], latency_ms=812))
    assert "· 0.8 s" in ok and " ms" not in ok


def test_thumbs_wait_for_the_answer(shop, home_settings, store):
    ctrl = controller(shop, home_settings, store, {"*": GOOD})
    _, (_, state, _, _) = ask(ctrl, "Who are our customers?")
    stream = ctrl.respond("How many customers?", state)
    _, state, _, _ = next(stream)  # the question is shown, the answer is still being written
    r = ctrl.like(state, 2, False)
    assert r["status"].startswith("Wait for the answer") and store.counts()["down"] == 0
    state = list(stream)[-1][1]
    assert ctrl.like(state, 2, False)["show_panel"] is True


# --- Training tab ---------------------------------------------------------------------------------------


def _fake_version(home, name, meta, loss=True):
    d = home / "adapters" / name
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps(meta))
    (d / "adapter_config.json").write_text("{}")
    (d / "adapter_model.safetensors").write_bytes(b"0")
    if loss:
        lines = [json.dumps({"step": s, "loss": 2.0 / s}) for s in (1, 2, 3)]
        (d / "loss.jsonl").write_text("\n".join(lines) + "\n")


def test_the_training_view_is_built_without_the_tab(home_settings):
    _fake_version(home_settings.home_dir, "v0001", {"version": "v0001", "status": "candidate"})
    counts, versions, live, loss, accuracy, empty, choices, _, status = training_view(
        TrainingHooks(home_settings), None
    )
    assert list(counts["what"]) == ["no feedback store"] and "v0001" in list(versions["version"])
    assert live.startswith("**Live adapter:** shipped-general-v1") and status.startswith("Retrain:")
    assert loss["visible"] and not accuracy["visible"] and empty == ""  # a loss log, no gate scores yet
    assert choices["choices"] == ["v0001"] and choices["value"] == "v0001"


def test_training_versions_scores_loss_and_promote_rollback(home_settings):
    home = home_settings.home_dir
    # meta.json as retrain writes it (finetune.retrain._meta)
    _fake_version(
        home,
        "v0001",
        {
            "version": "v0001",
            "status": "rejected",
            "recipe": "tiny-cpu",
            "metrics": {"train_loss": 0.3},
            "gate": {"decision": "reject", "heldout": 0.41, "active_heldout": 0.5},
        },
    )
    _fake_version(
        home,
        "v0002",
        {"version": "v0002", "status": "candidate", "gate": {"decision": "promote", "heldout": 0.52}},
        loss=False,
    )
    rows = adapter_versions(home)
    assert [r["version"] for r in rows] == ["v0001", "v0002"]
    assert (rows[0]["heldout"], rows[0]["heldout_before"], rows[0]["train_loss"], rows[0]["gate"]) == (
        0.41,
        0.5,
        0.3,
        "reject",
    )
    assert rows[1]["heldout"] == 0.52 and rows[1]["train_loss"] is None
    fig = loss_figure(home)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["v0001"]  # v0002 has no loss log
    assert fig.get_size_inches()[0] > fig.get_size_inches()[1]  # drawn wide, shown at its own aspect ratio
    fig = accuracy_figure(rows)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["v0001", "v0002"]
    assert loss_figure(home / "nowhere") is None and accuracy_figure([]) is None
    # the shipped adapter is listed while it serves
    assert [r["version"] for r in versions_table(home, home_settings.base_model)][0] == "shipped-general-v1"

    hooks = TrainingHooks(home_settings)
    assert hooks.live().startswith("shipped-general-v1")  # the shipped adapter serves until a promotion
    assert hooks.promote("v0002").startswith("Promoted v0002")
    assert [r["live"] for r in adapter_versions(home)] == [False, True] and hooks.live() == "v0002"
    assert "shipped-general-v1" in hooks.rollback()
    assert not any(r["live"] for r in adapter_versions(home))
    assert hooks.promote(None) == "Choose a version to promote."


def test_retrain_runs_in_the_background_one_at_a_time(home_settings):
    import threading

    gate = threading.Event()
    calls = []

    def fake_retrain(settings):
        calls.append(settings)
        gate.wait()  # until the test lets it finish
        return {"version": "v0003", "promoted": True}

    hooks = TrainingHooks(home_settings, retrain_fn=fake_retrain)
    assert hooks.retrain().startswith("Retrain started")
    assert hooks.retrain().startswith("A retrain is already running")
    gate.set()
    hooks.wait()
    assert "finished" in hooks.retrain_status and "version: v0003" in hooks.retrain_status and len(calls) == 1

    from finetune import retrain as retrain_mod

    assert TrainingHooks(home_settings).retrain_fn is retrain_mod.retrain_once
    # a tie is not promoted: the tab says so, and how to promote the version by hand (retrain's words)
    said = ("v0004 not promoted: heldout 0/3 vs live 0/3, needs to beat the live model; v0004 stays in the "
            "registry; `cypherloop adapters promote v0004` makes it live by hand")
    report = retrain_mod.RetrainReport(graph="shop", recipe="tiny-cpu", status="rejected", version="v0004",
                                       message=said)
    hooks = TrainingHooks(home_settings, retrain_fn=lambda settings: report)
    hooks.retrain()
    hooks.wait()
    assert f"status: rejected, version: v0004; {said}" in hooks.retrain_status

    def failing(settings):
        raise RuntimeError("no training data")

    hooks = TrainingHooks(home_settings, retrain_fn=failing)
    hooks.retrain()
    hooks.wait()
    assert hooks.retrain_status.startswith("failed") and "no training data" in hooks.retrain_status


# --- the Blocks -----------------------------------------------------------------------------------------


def test_build_app_returns_blocks_with_the_tabs(shop, home_settings, store):
    import gradio as gr

    agent = CypherAgent(home_settings, shop, ScriptedGenerator({"*": GOOD}), store)
    app = build_app(agent, store, home_settings)
    assert isinstance(app, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    for needed in (
        "chat",
        "question",
        "ask",
        "rows",
        "correction-panel",
        "correction-code",
        "run-correction",
        "save-correction",
        "review-table",
        "review-approve",
        "schema-labels",
        "training-versions",
        "training-retrain",
    ):
        assert needed in ids
    assert isinstance(app.controller, ChatController)


def test_ui_help_does_not_import_gradio():
    import subprocess

    code = ("import sys; from ui.cli import main; main(['ui', '--help']); "
            "print('gradio' in sys.modules, 'chromadb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False")


def test_bootstrap_runs_as_a_child_process_and_shows_its_progress(home_settings):
    """The child writes progress.json as ``finetune.bootstrap.Bootstrap._emit`` does, then report.json."""
    folder = home_settings.home_dir / "bootstrap" / home_settings.graph
    script = (
        "import json, os, pathlib, sys; d = pathlib.Path(os.environ['CYPHERLOOP_HOME']) / 'bootstrap' / "
        "os.environ['CYPHERLOOP_GRAPH']; d.mkdir(parents=True, exist_ok=True); "
        "(d / 'progress.json').write_text(json.dumps({'graph': 'g', 'stage': 'train', 'stage_no': 5, "
        "'stages': 7, 'fraction': 0.5, 'message': 'step 10/20', 'at': 0})); "
        "sys.exit(int(sys.argv[1]))"
    )
    hooks = TrainingHooks(home_settings, bootstrap_cmd=lambda s, minutes: [sys.executable, "-c", script, "0"])
    assert hooks.bootstrap(0).startswith("Give the bootstrap a budget")
    assert hooks.bootstrap(2).startswith("Bootstrap of")
    hooks.wait()
    assert "stage 5/7 **train** 50%" in hooks.bootstrap_status() and "step 10/20" in hooks.bootstrap_status()
    (folder / "report.json").write_text(json.dumps({"status": "promoted", "message": "v0001 is live"}))
    assert bootstrap_progress(home_settings.home_dir, home_settings.graph).endswith("promoted: v0001 is live")

    chosen = TrainingHooks(home_settings, bootstrap_cmd=lambda s, m: [
        sys.executable, "-c", "import sys; print(' '.join(sys.argv[1:]))", "--graph", s.graph])
    assert chosen.bootstrap(1, "chatty").startswith("Choose how answers list things: one of auto, mixed")
    assert chosen.bootstrap(1, "names").startswith("Bootstrap of")
    chosen.wait()
    assert (folder / BOOTSTRAP_LOG).read_text().split() == ["--graph", home_settings.graph,
                                                            "--return-style", "names"]

    failing = TrainingHooks(home_settings, bootstrap_cmd=lambda s, m: [sys.executable, "-c", "print('boom')"
                                                                        "; raise SystemExit(3)"])
    failing.bootstrap(1)
    failing.wait()
    assert "The bootstrap stopped: boom" in failing.bootstrap_status()
