"""Schema drift on the demo graph: the diff, the re-check of stored examples, retrieval and training without
the failing ones, the scheduler's bootstrap and the live adapter's banner (real FalkorDB, real Chroma)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.core.drift import SnapshotStore, diff_shapes, shape_fingerprint
from agent.core.errors import StoreError
from agent.demo import build_demo
from feedback_store.chroma import ChromaFeedbackStore
from finetune.dataset import _read_feedback
from finetune.drift import adapter_drift, recheck_examples
from finetune.registry import AdapterRegistry
from finetune.schedule import Runner, read_state
from ui.app import ID_CHARS, ChatController
from ui.cli import main as cli_main
from ui.cli_feedback import main as feedback_main
from ui.cli_graph import graph_main

USES_CITY = [
    ("Which customers live in Berlin?", "MATCH (c:Customer) WHERE c.city = 'Berlin' RETURN c.name"),
    ("How many customers are there in each city?", "MATCH (c:Customer) RETURN c.city AS city, count(*) AS n"),
]
OTHERS = [
    ("How many products are there?", "MATCH (p:Product) RETURN count(p) AS products"),
    ("Which suppliers are there and where are they based?", "MATCH (s:Supplier) RETURN s.name, s.country"),
    ("List the product categories.", "MATCH (c:Category) RETURN c.name ORDER BY c.name"),
]


@pytest.fixture
def demo(scratch_graph):
    build_demo(scratch_graph, seed=7, scale=0.05)
    scratch_graph.schema(refresh=True)
    return scratch_graph


def rename_city_and_add_a_type(graph) -> None:
    """Customer.city becomes Customer.town; suppliers get a new relationship type to categories."""
    graph.write("MATCH (c:Customer) SET c.town = c.city")
    graph.write("MATCH (c:Customer) SET c.city = NULL")
    graph.write("MATCH (s:Supplier), (c:Category) WITH s, c LIMIT 5 CREATE (s)-[:SPECIALISES_IN]->(c)")
    graph.schema(refresh=True)


def retrieved(store, graph, question: str) -> list[str]:
    return [e.question for e in store.similar_examples(question, graph, k=10)]


def test_fingerprint_is_the_hash_of_the_shape_and_survives_json(demo):
    schema = demo.schema()
    assert shape_fingerprint(json.loads(json.dumps(schema.shape()))) == schema.fingerprint()


def test_diff_of_shapes_names_each_kind_of_change():
    old = {"labels": [["A", [["x", "STRING"], ["y", "INTEGER"]]]], "rels": [["R", []]],
           "patterns": [["A", "R", "A"]]}
    new = {"labels": [["A", [["x", "FLOAT"], ["z", "INTEGER"]]], ["B", []]], "rels": [["S", []]],
           "patterns": [["A", "S", "B"]]}
    d = diff_shapes(old, new)
    assert (d.labels_added, d.rels_added, d.rels_removed) == (["B"], ["S"], ["R"])
    assert d.renamed == [("A", "y", "z")] and d.props_retyped == [("A", "x", "STRING", "FLOAT")]
    assert d.patterns_added == ["(:A)-[:S]->(:B)"] and d.patterns_removed == ["(:A)-[:R]->(:A)"]
    assert diff_shapes(new, new).empty and not d.empty


def test_rename_and_new_type_diff_recheck_retrieval_training(demo, settings, tmp_path, capsys):
    """The issue's acceptance: the diff names both changes; the examples that used the property are marked
    failing and no longer retrieved nor trained on; the others stay."""
    home = str(settings.home_dir)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question": q, "cypher": c}) + "\n" for q, c in USES_CITY + OTHERS))
    assert feedback_main(["--home", home, "import", str(pairs), "--graph", demo.name]) == 0
    store = ChromaFeedbackStore(settings)
    before = demo.schema().fingerprint()
    assert {e.schema_fingerprint for e in store.list_examples(graph=demo.name)} == {before}
    assert SnapshotStore(home).latest(demo.name).fingerprint == before
    assert USES_CITY[0][0] in retrieved(store, demo.name, USES_CITY[0][0])
    capsys.readouterr()

    assert graph_main(["schema", "--diff", "--graph", demo.name, "--home", home]) == 0
    assert "no change" in capsys.readouterr().out

    rename_city_and_add_a_type(demo)
    assert graph_main(["schema", "--diff", "--graph", demo.name, "--home", home]) == 0
    out = capsys.readouterr().out
    assert "Customer.city renamed to Customer.town" in out
    assert "+ relationship type :SPECIALISES_IN" in out
    assert "+ pattern (:Supplier)-[:SPECIALISES_IN]->(:Category)" in out

    assert feedback_main(["--home", home, "recheck", "--graph", demo.name]) == 1  # some fail: exit 1
    out = capsys.readouterr().out
    assert "5 stored examples re-checked" in out and "3 valid, 0 empty, 2 failing" in out
    examples = {e.question: e for e in store.list_examples(graph=demo.name)}
    assert len(examples) == 5  # nothing deleted
    for q, _ in USES_CITY:
        assert examples[q].drift == "failing" and "city" in examples[q].drift_error
        assert examples[q].checked_fingerprint == demo.schema().fingerprint() != before
    for q, _ in OTHERS:
        assert examples[q].drift == "valid"
    for q, _ in USES_CITY + OTHERS:
        found = retrieved(store, demo.name, q)
        assert (q in found) == ((q, examples[q].cypher) in OTHERS)
    trained = {r.question for r in _read_feedback(store, demo.name, 1)}
    assert trained == {q for q, _ in OTHERS}
    assert store.counts()["examples_failing"] == 2

    # the live schema is now the recorded one: the diff is quiet again
    assert graph_main(["schema", "--diff", "--graph", demo.name, "--home", home]) == 0
    assert "no change" in capsys.readouterr().out


def test_review_decides_about_a_failing_example(demo, tmp_path):
    store = ChromaFeedbackStore(tmp_path / "chroma", snapshots=SnapshotStore(tmp_path))
    assert store.import_examples(USES_CITY + OTHERS, demo).added == 5
    rename_city_and_add_a_type(demo)
    report = recheck_examples(store, demo, SnapshotStore(tmp_path))
    assert [q for _, q, _ in report.failing] == [q for q, _ in USES_CITY]
    keep, drop = (i for i, _, _ in report.failing)
    ctrl = ChatController(SimpleNamespace(graph_store=demo), store,
                          SimpleNamespace(graph=demo.name, query_timeout_s=10.0), demo)
    listed = ctrl.review_rows("failing")
    assert set(listed["id"]) == {keep[:ID_CHARS], drop[:ID_CHARS]}
    assert all("failing" in s for s in listed["status"])

    # approving a query that fails on the live schema is refused, by the store and through the UI
    with pytest.raises(StoreError, match=r"not approved: its query fails on the current schema \(.*city"):
        store.review(keep, "approved")
    _, message = ctrl.review(keep, "approve", "failing")
    assert message.startswith("⚠️") and "not approved" in message and "reject it" in message
    assert USES_CITY[0][0] not in retrieved(store, demo.name, USES_CITY[0][0])
    assert {e.id: e.drift for e in store.list_examples(graph=demo.name)}[keep] == "failing"

    # once the schema allows it again, approving re-checks it on the live schema and lets it back in
    demo.write("MATCH (c:Customer) SET c.city = c.town")
    _, message = ctrl.review(keep, "approve", "failing")
    assert message.endswith("approved."), message
    assert USES_CITY[0][0] in retrieved(store, demo.name, USES_CITY[0][0])
    ctrl.review(drop, "reject", "failing")  # a rejection settles a failing one: it stays out
    assert USES_CITY[1][0] not in retrieved(store, demo.name, USES_CITY[1][0])
    assert set(ctrl.review_rows("failing")["id"]) == set()


def _failing_through_the_cli(demo, settings, tmp_path) -> tuple[str, ChromaFeedbackStore]:
    """USES_CITY imported with the CLI, the schema changed, the re-check run: both examples failing."""
    home = str(settings.home_dir)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question": q, "cypher": c}) + "\n" for q, c in USES_CITY))
    assert feedback_main(["--home", home, "import", str(pairs), "--graph", demo.name]) == 0
    rename_city_and_add_a_type(demo)
    assert feedback_main(["--home", home, "recheck", "--graph", demo.name]) == 1
    return home, ChromaFeedbackStore(settings)


def test_the_cli_refuses_to_approve_a_failing_example(demo, settings, tmp_path, capsys):
    home, store = _failing_through_the_cli(demo, settings, tmp_path)
    failing = [e.id for e in store.list_examples(graph=demo.name) if e.drift == "failing"]
    assert len(failing) == 2
    capsys.readouterr()
    assert cli_main(["feedback", "--home", home, "review", failing[0][:12], "approve"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not approved" in err and "Traceback" not in err
    assert {e.id: e.drift for e in store.list_examples(graph=demo.name)}[failing[0]] == "failing"
    assert USES_CITY[0][0] not in retrieved(store, demo.name, USES_CITY[0][0])


def test_a_failing_example_is_corrected_by_editing_it(demo, settings, tmp_path, capsys):
    home, store = _failing_through_the_cli(demo, settings, tmp_path)
    (question, old), (other_q, other_cypher) = USES_CITY
    by_q = {e.question: e for e in store.list_examples(graph=demo.name)}
    failing, other = by_q[question], by_q[other_q]
    capsys.readouterr()

    # an edit must pass what a re-check asks (the schema check too: c.city only yields nulls now)
    still = old.replace("c.name", "c.name AS name")
    approve = ["feedback", "--home", home, "review", failing.id[:12], "approve", "--cypher"]
    assert cli_main([*approve, still]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fails on the live schema" in err and "city" in err
    ctrl = ChatController(SimpleNamespace(graph_store=demo), store,
                          SimpleNamespace(graph=demo.name, query_timeout_s=10.0), demo)
    renamed_column = other_cypher.replace("AS n", "AS customers")
    _, message = ctrl.approve_edited(other.id, other_q, renamed_column, "failing")
    assert message.startswith("❌ Not approved") and "city" in message

    fixed = old.replace("c.city", "c.town")
    assert cli_main([*approve, fixed]) == 0
    out = capsys.readouterr().out
    assert f"edited from {failing.id}" in out
    examples = {e.id: e for e in store.list_examples(graph=demo.name)}
    [edited] = [e for e in examples.values() if e.revised_from == failing.id]
    assert (edited.question, edited.cypher, edited.status) == (question, fixed, "approved")
    assert (examples[failing.id].cypher, examples[failing.id].status) == (old, "rejected")  # kept
    assert retrieved(store, demo.name, question).count(question) == 1  # the edit, not the original
    _, message = ctrl.approve_edited(other.id, other_q, other_cypher.replace("c.city", "c.town"), "failing")
    assert message.startswith("✅")
    mine = {failing.id[:ID_CHARS], other.id[:ID_CHARS]}
    assert not mine & set(ctrl.review_rows("failing")["id"])  # the store is shared with other tests' graphs


def test_the_scheduler_bootstraps_the_graph_when_its_schema_changes(demo, settings, tmp_path):
    calls = []
    store = ChromaFeedbackStore(tmp_path / "chroma")
    store.import_examples(USES_CITY + OTHERS, demo)
    run_settings = settings.model_copy(update={"graph": demo.name})

    def bootstrap(s):
        calls.append(s.graph)
        return SimpleNamespace(status="promoted")

    runner = Runner(run_settings, "tiny-cpu", [], bootstrap_fn=bootstrap, graph_store=demo, feedback=store)
    assert runner.check_drift() is False  # the first poll takes the live schema as the baseline
    assert runner.check_drift() is False and calls == []
    rename_city_and_add_a_type(demo)
    assert runner.check_drift() is True and calls == [demo.name]
    state = read_state(settings.home_dir)[demo.name]
    assert state["drift_failing"] == 2 and state["drift_bootstrap"] == "promoted"
    assert state["schema_fingerprint"] == demo.schema().fingerprint()
    assert sum(e.drift == "failing" for e in store.list_examples(graph=demo.name)) == 2
    assert runner.check_drift() is False and calls == [demo.name]  # acted on once


def _register(home: Path, graph: str, fingerprint: str) -> None:
    src = home / "trained"
    src.mkdir(parents=True)
    (src / "adapter_config.json").write_text("{}")
    (src / "adapter_model.safetensors").write_bytes(b"not read here")
    reg = AdapterRegistry(home)
    reg.promote(reg.add(src, {"graph": graph, "schema_fingerprint": fingerprint}), reason="test")


def test_banner_while_the_live_adapter_was_trained_on_an_older_schema(demo, settings, tmp_path):
    own = settings.model_copy(update={"home": tmp_path, "graph": demo.name})
    ctrl = ChatController(SimpleNamespace(graph_store=demo), None, own, demo)
    assert adapter_drift(own, demo) is None  # the shipped adapter: trained on no graph in particular
    shape = demo.schema().shape()
    _register(tmp_path, demo.name, SnapshotStore(tmp_path).record(demo.name, shape, "retrain"))
    assert adapter_drift(own, demo) is None and ctrl.drift_banner() == ""
    rename_city_and_add_a_type(demo)
    text = ctrl.drift_banner()
    assert text.startswith("⚠️ The live adapter v0001 was trained on an older schema")
    assert "Customer.city renamed to Customer.town" in text
