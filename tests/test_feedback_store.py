"""The Chroma feedback store against a real Chroma in temp dirs (and a real ``chroma run`` server).

Corrections run against the session's read-only ``shop`` graph. Multi-process tests start real
Python processes on the same store folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.core.cypher_text import result_fingerprint
from agent.core.errors import InvalidCorrection, StoreError
from agent.core.feedback import Feedback, FeedbackStore, Interaction
from agent.core.prompt import Example
from feedback_store.chroma import ChromaFeedbackStore

COUNT_CUSTOMERS = "MATCH (c:Customer) RETURN count(c) AS customers"
CUSTOMER_NAMES = "MATCH (c:Customer) RETURN c.name AS name ORDER BY name"


def interaction(
    question: str = "How many customers are there?",
    graph: str = "shop",
    cypher: str | None = COUNT_CUSTOMERS,
    **kw,
) -> Interaction:
    return Interaction(
        question=question, graph=graph, final_cypher=cypher, answer="some answer", row_count=1, **kw
    )


@pytest.fixture
def store(tmp_path: Path) -> ChromaFeedbackStore:
    s = ChromaFeedbackStore(tmp_path / "chroma")
    yield s
    s.close()


def test_implements_the_protocol(store):
    assert isinstance(store, FeedbackStore)


def test_settings_put_the_store_in_home(settings):
    s = ChromaFeedbackStore(settings)
    assert Path(s.location) == settings.path("feedback", "chroma")


def test_interaction_round_trip_and_idempotent_ids(store, tmp_path):
    it = interaction(
        attempts=[{"cypher": "MATCH (x) RETURN x", "error": "boom"}],
        latency_ms=12.5,
        model_version="m+v1",
        session_id="s1",
    )
    iid = store.log_interaction(it)
    assert iid == it.id and len(iid) == 32 and it.created_at > 0
    again = store.log_interaction(it)  # the same object (same content, same id): a no-op
    assert again == iid
    got = store.get_interaction(iid)
    assert got == it
    assert store.counts()["interactions"] == 1
    # a fresh store on the same folder (another process would see the same) reads it back
    assert ChromaFeedbackStore(tmp_path / "chroma").get_interaction(iid) == it
    assert store.get_interaction("nope") is None
    assert [x.id for x in store.iter_interactions("shop")] == [iid]
    assert list(store.iter_interactions("demo")) == []


def test_thumbs_up_creates_a_pending_example_once(store):
    iid = store.log_interaction(interaction())
    fid = store.add_feedback(Feedback(iid, "up"))
    assert store.add_feedback(Feedback(iid, "up")) == fid  # same feedback again changes nothing
    [ex] = store.list_examples()
    assert (ex.question, ex.cypher, ex.source, ex.status, ex.interaction_id) == (
        "How many customers are there?",
        COUNT_CUSTOMERS,
        "thumbs_up",
        "pending",
        iid,
    )
    c = store.counts()
    assert (c["up"], c["down"], c["examples_pending"], c["feedback_pending"]) == (1, 0, 1, 1)
    # approving keeps its status when the same 👍 arrives again
    store.review(fid, "approved")
    store.add_feedback(Feedback(iid, "up"))
    assert [e.status for e in store.list_examples()] == ["approved"]
    assert [f.status for f in store.list_feedback()] == ["approved"]


def test_thumbs_up_review_is_optional(tmp_path):
    s = ChromaFeedbackStore(tmp_path / "c", review_thumbs_up=False)
    s.add_feedback(Feedback(s.log_interaction(interaction()), "up"))
    assert [e.status for e in s.list_examples()] == ["approved"]


def test_thumbs_up_on_a_failed_answer_makes_no_example(store):
    iid = store.log_interaction(interaction(cypher=None, ok=False))
    store.add_feedback(Feedback(iid, "up"))
    assert store.list_examples() == [] and store.counts()["up"] == 1


def test_withdraw_undoes_a_thumb(store):
    iid = store.log_interaction(interaction())
    store.add_feedback(Feedback(iid, "up"))
    assert store.withdraw_feedback(iid, "up") == 2
    c = store.counts()
    assert (c["up"], c["examples"]) == (0, 0)


def test_feedback_for_unknown_interaction_is_refused(store):
    with pytest.raises(StoreError, match="no interaction"):
        store.add_feedback(Feedback("missing", "down"))


def test_plain_feedback_cannot_smuggle_a_correction(store):
    iid = store.log_interaction(interaction())
    with pytest.raises(InvalidCorrection):
        store.add_feedback(Feedback(iid, "down", corrected_cypher="MATCH (n) DETACH DELETE n"))
    assert store.counts()["down"] == 0


def test_valid_correction_is_stored_with_its_fingerprint(store, shop):
    iid = store.log_interaction(interaction(cypher="MATCH (c:Customer) RETURN c.email"))
    fb = store.add_correction(iid, CUSTOMER_NAMES + ";", shop, comment="names, not emails")
    expected = result_fingerprint(shop.query(CUSTOMER_NAMES).rows)
    assert (
        fb.result_fingerprint == expected and fb.corrected_cypher == CUSTOMER_NAMES and fb.status == "pending"
    )
    assert fb.verdict == "down" and fb.comment == "names, not emails"
    [stored] = store.list_feedback()
    assert stored == fb
    [ex] = store.list_examples()
    assert (ex.cypher, ex.source, ex.result_fingerprint, ex.status) == (
        CUSTOMER_NAMES,
        "correction",
        expected,
        "pending",
    )
    # the same correction again is a no-op
    assert store.add_correction(iid, CUSTOMER_NAMES, shop, comment="names, not emails").id == fb.id
    assert store.counts()["corrections"] == 1


@pytest.mark.parametrize(
    "bad, why",
    [
        ("MATCH (c:Customer RETURN c", "CypherSyntaxError"),
        ("CREATE (x:Customer {name: 'intruder'}) RETURN x", "WriteRefused"),
        ("MATCH (c:Customer) SET c.name = 'x' RETURN c", "WriteRefused"),
        ("MATCH (c:Customer) RETURN foo.bar(c)", "Error"),
        ("   ", "empty"),
    ],
)
def test_invalid_correction_is_refused_and_stores_nothing(store, shop, bad, why):
    iid = store.log_interaction(interaction())
    before = store.counts()
    with pytest.raises(InvalidCorrection, match=why):
        store.add_correction(iid, bad, shop)
    assert store.counts() == before
    assert shop.query("MATCH (c:Customer {name: 'intruder'}) RETURN count(c)").rows == [[0]]


def test_a_thumbs_down_and_its_correction_count_as_one_down(store, shop):
    iid = store.log_interaction(interaction())
    store.add_feedback(Feedback(iid, "down"))
    store.add_correction(iid, CUSTOMER_NAMES, shop)
    c = store.counts()
    assert (c["down"], c["corrections"]) == (1, 1)


def test_correction_on_another_graph_is_refused(store, shop):
    iid = store.log_interaction(interaction(graph="demo"))
    with pytest.raises(InvalidCorrection, match="graph"):
        store.add_correction(iid, CUSTOMER_NAMES, shop)


def test_similarity_search_is_filtered_by_graph(store, shop):
    pairs = [
        ("How many customers are there?", COUNT_CUSTOMERS, "shop"),
        ("List the names of all customers", CUSTOMER_NAMES, "shop"),
        ("Which products cost more than 100?", "MATCH (p:Product) WHERE p.price > 100 RETURN p.name", "shop"),
        ("How many customers do we have in total?", COUNT_CUSTOMERS, "demo"),
    ]
    for q, c, g in pairs:
        store.add_feedback(Feedback(store.log_interaction(interaction(q, g, c)), "up"))
    got = store.similar_examples("count the customers", "shop", k=2)
    assert got[0] == Example("How many customers are there?", COUNT_CUSTOMERS)
    assert len(got) == 2 and all(isinstance(e, Example) for e in got)
    assert store.similar_examples("count the customers", "demo", k=5) == [
        Example("How many customers do we have in total?", COUNT_CUSTOMERS)
    ]
    assert store.similar_examples("count the customers", "nowhere", k=5) == []
    assert store.similar_examples("count the customers", "shop", k=0) == []
    # approved_only, and rejected never come back
    assert store.similar_examples("count the customers", "shop", k=5, approved_only=True) == []
    ids = {e.question: e.id for e in store.list_examples(graph="shop")}
    store.review(ids["How many customers are there?"], "approved")
    store.review(ids["List the names of all customers"], "rejected")
    assert store.similar_examples("customers", "shop", k=5, approved_only=True) == [
        Example("How many customers are there?", COUNT_CUSTOMERS)
    ]
    assert Example("List the names of all customers", CUSTOMER_NAMES) not in store.similar_examples(
        "customers", "shop", k=5
    )


def test_similarity_floor_drops_unrelated_examples(store):
    """Issue 16: one customers → orders correction must not be handed to a question about products."""
    q = "Which customers placed more than 3 orders?"
    cypher = "MATCH (c:Customer)-[:PLACED]->(o:Order) WITH c, count(o) AS n WHERE n > 3 RETURN c.name"
    store.add_feedback(Feedback(store.log_interaction(interaction(q, "shop", cypher)), "up"))
    assert store.similar_examples("How many products are there?", "shop", k=3) == [Example(q, cypher)]
    assert store.similar_examples("How many products are there?", "shop", k=3, min_similarity=0.5) == []
    assert store.similar_examples("Which customers placed more than 5 orders?", "shop", k=3,
                                  min_similarity=0.5) == [Example(q, cypher)]
    [(ex, near)] = store.scored_examples("Which customers placed more than 5 orders?", "shop")
    [(_, far)] = store.scored_examples("How many products are there?", "shop")
    assert ex == Example(q, cypher) and far < 0.5 <= near <= 1.0


def test_review_links_feedback_and_example(store, shop):
    iid = store.log_interaction(interaction())
    fb = store.add_correction(iid, CUSTOMER_NAMES, shop)
    [ex] = store.list_examples()
    store.review(ex.id, "rejected")  # reviewing the example moves its correction too
    assert store.list_feedback(status="rejected")[0].id == fb.id
    store.review(store.resolve_id(fb.id[:8]), "approved")  # the CLI accepts a unique prefix
    assert store.list_examples(status="approved")[0].id == ex.id
    with pytest.raises(StoreError, match="no feedback or example"):
        store.review("0" * 32, "approved")
    with pytest.raises(StoreError, match="status"):
        store.review(fb.id, "maybe")


def test_an_edited_example_is_run_then_approved_and_the_original_kept(store, shop):
    iid = store.log_interaction(interaction(cypher="MATCH (c:Customer) RETURN c.email"))
    fb = store.add_correction(iid, "MATCH (c:Customer) RETURN c.email AS email", shop)
    [original] = store.list_examples()
    for bad, why in (("MATCH (c:Customer RETURN c", "CypherSyntaxError"),
                     ("CREATE (x:Customer {name: 'x'}) RETURN x", "WriteRefused")):
        with pytest.raises(InvalidCorrection, match=why):
            store.approve_revised(original.id, "Customer names?", bad, shop)
    assert store.list_examples() == [original]  # a refused edit stores nothing and changes nothing

    edited = store.approve_revised(fb.id, "  What are the customers' names? ", CUSTOMER_NAMES + ";", shop)
    assert (edited.question, edited.cypher, edited.status, edited.revised_from, edited.source) == (
        "What are the customers' names?", CUSTOMER_NAMES, "approved", original.id, "correction")
    assert edited.result_fingerprint == result_fingerprint(shop.query(CUSTOMER_NAMES).rows)
    by_id = {e.id: e for e in store.list_examples()}
    assert by_id[edited.id] == edited
    kept = by_id[original.id]  # the log keeps what was first proposed, rejected
    assert (kept.question, kept.cypher, kept.status) == (original.question, original.cypher, "rejected")
    assert [e.id for e in store.list_examples(status="approved")] == [edited.id]

    with pytest.raises(InvalidCorrection, match="graph"):
        store.approve_revised(edited.id, edited.question, CUSTOMER_NAMES, _Renamed(shop, "other"))
    with pytest.raises(StoreError, match="no verified example"):
        store.approve_revised("0" * 32, "q", CUSTOMER_NAMES, shop)
    assert store.approve_revised(edited.id, edited.question, edited.cypher, shop).id == edited.id  # unchanged
    assert len(store.list_examples()) == 2


class _Renamed:
    """A graph store under another name (the edit must run on the example's own graph)."""

    def __init__(self, inner, name: str) -> None:
        self.inner, self.name = inner, name

    def query(self, *a, **k):
        return self.inner.query(*a, **k)

    def schema(self, *a, **k):
        return self.inner.schema(*a, **k)


def test_export_jsonl(store, shop, tmp_path):
    a = store.log_interaction(interaction("How many customers are there?"))
    b = store.log_interaction(interaction("Names of customers", cypher="MATCH (c:Customer) RETURN c"))
    store.add_feedback(Feedback(a, "up"))
    fb = store.add_correction(b, CUSTOMER_NAMES, shop)
    store.review(fb.id, "approved")
    out = tmp_path / "out" / "examples.jsonl"
    assert store.export_examples(out) == 1
    [row] = [json.loads(x) for x in out.read_text().splitlines()]
    assert {k: row[k] for k in ("question", "cypher", "graph", "source", "status")} == {
        "question": "Names of customers",
        "cypher": CUSTOMER_NAMES,
        "graph": "shop",
        "source": "correction",
        "status": "approved",
    }
    assert row["result_fingerprint"] == fb.result_fingerprint
    assert store.export_examples(out, status=("approved", "pending")) == 2
    assert (
        store.export_examples(out, graph="demo", status=("approved", "pending")) == 0
        and out.read_text() == ""
    )
    with pytest.raises(StoreError):
        store.export_examples(out, status=("nonsense",))


# --- several processes ---------------------------------------------------------------------------------

CHILD = r"""
import os, sys, time
import feedback_store.chroma as fc
from agent.core.feedback import Feedback, Interaction
fc.HNSW.update(sync_threshold=10, batch_size=5)  # flush the index every few writes: the hazardous case
path, tag, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = fc.ChromaFeedbackStore(path)
store.warm_up()  # load the model before the start line, so both writers overlap
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
for i in range(n):
    it = Interaction(question=f"question {tag} number {i}", graph="g", final_cypher=f"RETURN {i}",
    answer="x", row_count=1, created_at=1.0 + i)
    iid = store.log_interaction(it)
    print("I", iid, flush=True)
    store.add_feedback(Feedback(iid, "up"))
    print("F", iid, flush=True)
print("DONE", store.counts()["interactions"], flush=True)
"""


def _child(path: Path, tag: str, n: int, go: Path) -> subprocess.Popen:
    """A writer process: prints READY, waits for the file ``go``, then logs and 👍s ``n`` questions."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "TOKENIZERS_PARALLELISM": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), tag, str(n), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_processes_writing_at_once_lose_nothing(tmp_path, monkeypatch):
    import feedback_store.chroma as fc

    monkeypatch.setitem(fc.HNSW, "sync_threshold", 10)
    monkeypatch.setitem(fc.HNSW, "batch_size", 5)
    path = tmp_path / "shared"
    ChromaFeedbackStore(path).counts()  # create the collections with the small flush threshold
    n = 80
    go = tmp_path / "go"
    procs = [_child(path, tag, n, go) for tag in ("a", "b")]
    for p in procs:  # both have loaded torch + MiniLM; then they start writing together
        assert p.stdout is not None and p.stdout.readline().strip() == "READY", (
            p.stderr.read()[-2000:] if p.stderr else ""
        )
    go.touch()
    outs = [p.communicate() for p in procs]  # each writer's exit is the event; no clock
    seen = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        last = out.strip().splitlines()[-1].split()
        assert last[0] == "DONE"
        seen.append(int(last[1]))
    assert min(seen) > n, "the writers did not overlap"  # the first to finish already saw the other's writes

    fresh = ChromaFeedbackStore(path)
    c = fresh.counts()
    assert (c["interactions"], c["up"], c["examples"]) == (2 * n, 2 * n, 2 * n)
    # every example is reachable through the vector index, not only through get()
    found = fresh.similar_examples("question number", "g", k=4 * n)
    assert len(found) == 2 * n
    assert {e.question for e in found} == {f"question {t} number {i}" for t in "ab" for i in range(n)}


def test_kill_9_between_writes_loses_nothing_returned(tmp_path):
    """The child flushes its index every few writes (small sync_threshold), so kills land mid-flush too."""
    path = tmp_path / "killed"
    go = tmp_path / "go"
    go.touch()
    proc = _child(path, "kill", 400, go)
    lines: list[str] = []
    assert proc.stdout is not None
    while sum(x.startswith("F ") for x in lines) < 30:  # waits on the child's lines, or its exit (EOF)
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()
    lines += rest.splitlines()  # printed before the kill landed
    assert proc.returncode == -signal.SIGKILL
    logged = [x.split()[1] for x in lines if x.startswith("I ")]
    thumbed = [x.split()[1] for x in lines if x.startswith("F ")]
    assert 30 <= len(thumbed) < 400, "the child must die mid-way"

    reopened = ChromaFeedbackStore(path)
    for iid in logged:
        assert reopened.get_interaction(iid) is not None, iid
    found = {e.question for e in reopened.similar_examples("question number", "g", k=1000)}
    assert {
        reopened.get_interaction(i).question for i in thumbed
    } <= found  # in the vector index, not only in SQLite
    # and the store still takes writes and searches
    iid = reopened.log_interaction(interaction(graph="g"))
    reopened.add_feedback(Feedback(iid, "up"))
    assert (
        reopened.similar_examples("How many customers?", "g", k=1)[0].question
        == "How many customers are there?"
    )


# --- a Chroma server (HttpClient) ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(exe).exists():
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    while True:  # until the port answers, or the server exits (then there is nothing to wait for)
        assert proc.poll() is None, f"chroma run exited with {proc.returncode} before it listened"
        try:
            with socket.create_connection(("127.0.0.1", port)):
                break
        except OSError:
            time.sleep(0.2)  # a polling interval, not a limit
    yield url
    proc.terminate()
    proc.wait()


def test_http_client_when_chroma_url_is_set(chroma_server, settings, shop):
    s = ChromaFeedbackStore(settings.model_copy(update={"chroma_url": chroma_server}))
    assert s.location == chroma_server
    iid = s.log_interaction(interaction())
    fb = s.add_correction(iid, CUSTOMER_NAMES, shop)
    assert s.similar_examples("customer names", "shop", k=1) == [
        Example("How many customers are there?", CUSTOMER_NAMES)
    ]
    assert s.list_feedback()[0].id == fb.id


def test_bad_chroma_url_is_one_clear_error():
    with pytest.raises(StoreError, match="chroma_url"):
        ChromaFeedbackStore("http://")


# --- cypherloop feedback ------------------------------------------------------------------------------------


def test_cli_stats_list_export_review(settings_for, tmp_path, shop, capsys):
    from ui.cli import main

    home = tmp_path / "home"
    s = ChromaFeedbackStore(settings_for(home))
    fb = s.add_correction(s.log_interaction(interaction()), CUSTOMER_NAMES, shop)
    s.add_feedback(
        Feedback(
            s.log_interaction(interaction("Count the orders", cypher="MATCH (o:Order) RETURN count(o)")), "up"
        )
    )

    assert main(["feedback", "--home", str(home), "stats", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["interactions"], counts["corrections"], counts["examples_pending"]) == (2, 1, 2)

    assert main(["feedback", "--home", str(home), "list", "--status", "pending"]) == 0
    out = capsys.readouterr().out
    assert "examples (2):" in out and "feedback (2):" in out and fb.id[:12] in out

    assert main(["feedback", "--home", str(home), "review", fb.id[:10], "approve"]) == 0
    assert capsys.readouterr().out.strip() == f"{fb.id}: approved"
    out_file = tmp_path / "approved.jsonl"
    assert main(["feedback", "--home", str(home), "export", str(out_file), "--graph", "shop"]) == 0
    assert "wrote 1 examples" in capsys.readouterr().out
    assert json.loads(out_file.read_text())["cypher"] == CUSTOMER_NAMES

    # user errors: one line, non-zero, no traceback
    assert main(["feedback", "--home", str(home), "review", "zzzzzz", "approve"]) != 0
    assert main(["feedback", "--home", str(home), "export", str(out_file), "--status", "bogus"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)


# --- importing the user's own examples --------------------------------------------------------------------


def test_import_runs_each_query_first_and_stores_only_those_that_ran(store, shop):
    pairs = [
        ("How many customers are there?", COUNT_CUSTOMERS),
        ("List the names of all customers", CUSTOMER_NAMES),
        ("Delete every customer", "MATCH (c:Customer) DETACH DELETE c"),
        ("Which widgets are blue?", "MATCH (w:Widget RETURN w"),
        ("", COUNT_CUSTOMERS),
        ("How many customers are there?", COUNT_CUSTOMERS),  # a duplicate of line 1
    ]
    before = shop.query(COUNT_CUSTOMERS).rows
    report = store.import_examples(pairs, shop)
    assert (report.added, report.present) == (2, 1)
    assert [n for n, _ in report.refused] == [3, 4, 5]
    assert "ReadOnly" in report.refused[0][1] or "read-only" in report.refused[0][1].lower()
    assert shop.query(COUNT_CUSTOMERS).rows == before  # the write never ran
    got = {e.question: e for e in store.list_examples(graph="shop")}
    assert set(got) == {"How many customers are there?", "List the names of all customers"}
    assert {(e.source, e.status) for e in got.values()} == {("import", "approved")}
    assert got["How many customers are there?"].result_fingerprint == result_fingerprint(before)
    # the agent retrieves them at once
    assert store.similar_examples("count the customers", "shop", k=1, approved_only=True) == [
        Example("How many customers are there?", COUNT_CUSTOMERS)
    ]
    # again: nothing new
    assert store.import_examples(pairs[:2], shop).present == 2


def test_cli_import(settings_for, tmp_path, capsys):
    from conftest import SHOP_SCRIPT

    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script
    from ui.cli import main

    home = tmp_path / "home"
    graph = open_graph(settings_for(home), "shop")
    try:
        load_script(graph, SHOP_SCRIPT, replace=True, progress=False)
        good = tmp_path / "good.jsonl"
        good.write_text(
            json.dumps({"question": "How many customers are there?", "cypher": COUNT_CUSTOMERS}) + "\n\n"
        )
        assert (
            main(["feedback", "--home", str(home), "import", str(good), "--graph", "shop", "--pending"]) == 0
        )
        assert "1 examples imported (pending review), 0 already present, 0 refused" in capsys.readouterr().out
        assert [e.status for e in ChromaFeedbackStore(settings_for(home)).list_examples(graph="shop")] == [
            "pending"
        ]

        mixed = tmp_path / "mixed.jsonl"
        mixed.write_text(
            "\n".join(
                json.dumps({"question": q, "cypher": c})
                for q, c in (
                    ("List the names of all customers", CUSTOMER_NAMES),
                    ("Drop it all", "MATCH (n) DETACH DELETE n"),
                )
            )
            + "\n"
        )
        assert main(["feedback", "--home", str(home), "import", str(mixed), "--graph", "shop"]) == 1
        out = capsys.readouterr().out
        assert "1 examples imported (approved), 0 already present, 1 refused" in out and "line 2:" in out

        # bad files: one line on stderr, non-zero, nothing stored
        bad = tmp_path / "bad.jsonl"
        for content in ('{"question": "q"}\n', "{not json\n", ""):
            bad.write_text(content)
            assert main(["feedback", "--home", str(home), "import", str(bad), "--graph", "shop"]) != 0
        assert main(["feedback", "--home", str(home), "import", str(tmp_path / "missing.jsonl")]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 4 and all(line.startswith("error:") for line in err)
        assert len(ChromaFeedbackStore(settings_for(home)).list_examples(graph="shop")) == 2
    finally:
        graph.close()
        stop(settings_for(home))


def test_embeddings_match_sentence_transformers():
    """The plain-transformers embedder pools as the model's sentence-transformers configuration says: stores
    and pools built with either give the same neighbours."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from feedback_store.embeddings import embed, model_dir

    texts = ["How many customers are there?", "Which products cost more than 100?", "x " * 400]
    reference = SentenceTransformer(model_dir(), device="cpu", local_files_only=True).encode(
        texts, normalize_embeddings=True
    )
    assert np.allclose(np.asarray(embed(texts)), reference, atol=1e-5)
