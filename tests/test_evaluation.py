"""Execution accuracy: dataset loading, run_eval on the shop graph, the comparison table.

The rule for "the same result" is pinned in ``test_cypher_text.py``."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agent.core.errors import DataError
from agent.evaluation import EvalReport, compare_reports, eval_chunks, load_dataset, percentile, run_eval
from agent.graph import CypherAgent, build_graph
from agent.models.base import Generation, ScriptedGenerator

EVAL3 = Path(__file__).parent / "data" / "eval3.jsonl"

def test_percentile():
    assert percentile([], 50) == 0.0
    assert percentile([5.0], 95) == 5.0
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0


# --- dataset ---------------------------------------------------------------------------------------------
def test_eval_chunks_are_the_batches_run_eval_asks():
    items = list(range(10))
    assert eval_chunks(items, batch_size=4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert eval_chunks(items, batch_size=2, workers=5) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert eval_chunks(items) == [[i] for i in items] and eval_chunks([], batch_size=8) == []


def test_load_dataset():
    items = load_dataset(EVAL3)
    assert [i.id for i in items] == ["shop-1", "shop-2", "shop-3"]
    assert items[0].category == "aggregation" and items[1].question == "Which customers live in Berlin?"


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"id": "1", "question": "q", "cypher": "MATCH (n) RETURN n"}\n{not json}\n', r":2: not valid JSON"),
        ('{"id": "1", "question": "q"}\n', r":1: missing cypher"),
        ('["a", "b"]\n', r":1: expected a JSON object"),
        ("\n\n", r"has no questions"),
        (
            '{"id": "1", "question": "q", "cypher": "c"}\n{"id": "1", "question": "r", "cypher": "c"}\n',
            r":2: duplicate id",
        ),
    ],
)
def test_bad_dataset_is_one_clear_line(tmp_path, content, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as e:
        load_dataset(path)
    assert "\n" not in str(e.value)


def test_missing_dataset(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nope.jsonl")


# --- run_eval ------------------------------------------------------------------------------------------
def _eval_generator():
    """Right for questions 1 and 2 (the second only after a correction of a syntax error, which the schema
    repair cannot fix), wrong for question 3."""
    return ScriptedGenerator(
        {
            "How many customers are there?": "MATCH (n:Customer) RETURN count(*)",
            "Which customers live in Berlin?": [
                "MATCH (c:Customer {city: 'Berlin'}) RETURN c.name LIMIT",
                "MATCH (c:Customer) WHERE c.city = 'Berlin' RETURN c.name AS name",
            ],
            "What is the total value of the orders placed by Alice Meyer?":
                "MATCH (o:Order) RETURN sum(o.total)",
        },
        version="scripted+v0007",
    )


def test_eval3_gives_two_out_of_three(shop, settings, tmp_path):
    agent = CypherAgent(settings, shop, _eval_generator(), compiled=build_graph())
    out = tmp_path / "pred" / "predictions.jsonl"
    report = run_eval(agent, load_dataset(EVAL3), predictions_path=out, progress=False, label="scripted")
    assert (report.n, report.correct) == (3, 2)
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.first_try_correct == 1 and report.after_retry_correct == 1
    assert report.first_try_accuracy == pytest.approx(1 / 3)
    assert report.executable == 3 and report.executable_share == 1.0
    assert report.per_category == {
        "aggregation": {"n": 2, "correct": 1, "accuracy": 0.5},
        "lookup": {"n": 1, "correct": 1, "accuracy": 1.0},
    }
    assert report.model_version == "scripted+v0007"
    assert report.latency_p50_ms > 0 and report.latency_p95_ms >= report.latency_p50_ms

    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["shop-1", "shop-2", "shop-3"]
    assert [x["correct"] for x in lines] == [True, True, False]
    assert [x["attempts"] for x in lines] == [1, 2, 1]
    for x in lines:
        assert {"id", "question", "predicted_cypher", "correct", "attempts", "latency_ms"} <= set(x)
    assert lines[2]["predicted_cypher"] == "MATCH (o:Order) RETURN sum(o.total)"

    text = report.text()
    assert "2/3 = 66.7%" in text and "aggregation" in text
    summary = report.summary()
    assert summary["accuracy"] == pytest.approx(0.6667) and "predictions" not in summary
    json.dumps(report.to_dict())


def test_limit_and_failing_predictions(shop, settings):
    agent = CypherAgent(
        settings.model_copy(update={"max_attempts": 1}),
        shop,
        ScriptedGenerator(["not cypher at all"]),
        compiled=build_graph(),
    )
    report = run_eval(agent, load_dataset(EVAL3), limit=2, progress=False)
    assert report.n == 2 and report.correct == 0 and report.executable == 0
    assert [p["status"] for p in report.predictions] == ["failed", "failed"]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_failing_gold_query_is_not_scored(shop, settings, tmp_path, batch_size):
    path = tmp_path / "g.jsonl"
    path.write_text(
        '{"id": "a", "question": "How many customers are there?", "cypher": "MATCH (c:Customer) RETURN '
        'count(c"}\n'
        '{"id": "b", "question": "How many customers are there?", "cypher": "MATCH (c:Customer) RETURN '
        'count(c)"}\n'
    )
    agent = CypherAgent(
        settings, shop, ScriptedGenerator(["MATCH (c:Customer) RETURN count(c)"]), compiled=build_graph()
    )
    report = run_eval(agent, load_dataset(path), progress=False, batch_size=batch_size)
    assert report.gold_errors == 1 and report.n == 1 and report.correct == 1
    assert report.predictions[0]["gold_error"]


class _GoldStore:
    """The shop graph as the gold store, saying when ``expected`` gold queries have run."""

    def __init__(self, store, expected: int) -> None:
        self.store, self.name, self.left = store, store.name, expected
        self.all_ran = threading.Event()

    def query(self, cypher, *args, **kwargs):
        try:
            return self.store.query(cypher, *args, **kwargs)
        finally:
            self.left -= 1
            if self.left == 0:
                self.all_ran.set()


def test_batched_gold_queries_run_while_the_model_writes(shop, settings):
    """A batch's gold queries do not wait for its model call: the call waits here until they all ran (it
    would wait forever, here a minute, if they ran after it), and the report is the one-at-a-time one."""
    items = load_dataset(EVAL3)
    gold, waited = _GoldStore(shop, len(items)), []
    gen = _eval_generator()
    batch = gen.generate_batch

    def generate_batch(prompts, **kwargs):
        waited.append(gold.all_ran.wait(timeout=60))
        return batch(prompts, **kwargs)

    gen.generate_batch = generate_batch
    agent = CypherAgent(settings, shop, gen, compiled=build_graph())
    report = run_eval(agent, items, gold_store=gold, progress=False, batch_size=3)
    assert waited == [True]
    assert (report.n, report.correct, report.after_retry_correct) == (3, 2, 1)
    assert [p["correct"] for p in report.predictions] == [True, True, False]


class _Watched:
    """The shop graph as the agent's store, saying when ``cypher`` has run on it."""

    def __init__(self, store, cypher: str) -> None:
        self.store, self.cypher = store, cypher
        self.ran = threading.Event()

    def __getattr__(self, name):
        return getattr(self.store, name)

    def query(self, cypher, *args, **kwargs):
        try:
            return self.store.query(cypher, *args, **kwargs)
        finally:
            if cypher.strip().startswith(self.cypher):
                self.ran.set()


def test_a_batched_eval_asks_each_question_as_soon_as_its_replies_are_written(shop, settings):
    """With workers, a question is checked and run while the batched call still writes the others (here the
    call tells the first question, then waits until its query ran on the graph, a minute at most, before it
    writes the rest); the records and the report are the one-at-a-time ones, in the questions' order."""
    items = load_dataset(EVAL3)
    watched = _Watched(shop, "MATCH (n:Customer) RETURN count(*)")
    gen, waited = _eval_generator(), []

    def generate_batch(prompts, n=1, on_ready=None, **kwargs):
        out = [[Generation(gen.generate(p.question, p.schema_text, p.examples))] for p in prompts]
        on_ready(0, out[0])
        waited.append(watched.ran.wait(timeout=60))
        for i in (2, 1):
            on_ready(i, out[i])
        return out

    gen.generate_batch = generate_batch
    agent = CypherAgent(settings, watched, gen, compiled=build_graph())
    report = run_eval(agent, items, gold_store=shop, progress=False, batch_size=3, workers=2)
    assert waited == [True]
    assert [p["id"] for p in report.predictions] == ["shop-1", "shop-2", "shop-3"]
    assert (report.n, report.correct, report.after_retry_correct) == (3, 2, 1)
    assert [p["correct"] for p in report.predictions] == [True, True, False]


def _unclocked(predictions):
    return [{k: v for k, v in p.items() if k not in ("latency_ms", "timings")} for p in predictions]


@pytest.mark.parametrize("batch_size", [2, 3])
def test_a_streamed_eval_predicts_as_the_unstreamed_one(shop, settings, batch_size):
    """Batched with workers (each question asked as its replies are told, ``_streamed``), the records are
    the ones of the same batches without workers (told nothing until the call returns), in the same order;
    a chunk smaller than the batch too."""
    items = load_dataset(EVAL3)

    def report(workers):
        agent = CypherAgent(settings, shop, _eval_generator(), compiled=build_graph())
        return run_eval(agent, items, progress=False, batch_size=batch_size, workers=workers)

    plain, streamed = report(1), report(2)
    assert _unclocked(streamed.predictions) == _unclocked(plain.predictions)
    assert [p["id"] for p in streamed.predictions] == ["shop-1", "shop-2", "shop-3"]


def test_a_streamed_eval_raises_what_a_question_raised(shop, settings):
    """A question that fails on a worker fails the eval with its error (after the batched call: the others
    are not waited for in vain), and a generator that tells no prompt early still has every question asked."""
    items = load_dataset(EVAL3)
    gen = _eval_generator()
    batch = gen.generate_batch
    gen.generate_batch = lambda prompts, on_ready=None, **kw: batch(prompts, **kw)  # tells nothing
    agent = CypherAgent(settings, shop, gen, compiled=build_graph())
    report = run_eval(agent, items, progress=False, batch_size=3, workers=2)
    assert [p["correct"] for p in report.predictions] == [True, True, False]
    ask = agent.ask

    def failing(question, **kw):
        if question == items[1].question:
            raise RuntimeError("question 2 failed")
        return ask(question, **kw)

    agent.ask = failing
    with pytest.raises(RuntimeError, match="question 2 failed"):
        run_eval(agent, items, progress=False, batch_size=3, workers=2)


def test_while_the_batched_call_writes_at_most_the_setting_s_workers_ask(shop, settings):
    """``eval_asks_while_writing`` = 1 of 3 workers: the three questions are told at once, yet while the call
    still writes (until the first question has been answered) no second one is asked beside it; the records
    are the unstreamed ones."""
    items = load_dataset(EVAL3)
    gen = _eval_generator()
    batch = gen.generate_batch
    lock, inside, seen, first_done = threading.Lock(), [0], [], threading.Event()
    writing = [True]

    def generate_batch(prompts, on_ready=None, **kw):
        out = batch(prompts, **kw)
        for i, replies in enumerate(out):
            on_ready(i, replies)
        assert first_done.wait(timeout=60)
        writing[0] = False
        return out

    gen.generate_batch = generate_batch
    agent = CypherAgent(settings.model_copy(update={"eval_asks_while_writing": 1}), shop, gen,
                        compiled=build_graph())
    ask = agent.ask

    def counted(question, **kw):
        with lock:
            inside[0] += 1
            seen.append((inside[0], writing[0]))
        try:
            return ask(question, **kw)
        finally:
            with lock:
                inside[0] -= 1
            first_done.set()

    agent.ask = counted
    report = run_eval(agent, items, gold_store=shop, progress=False, batch_size=3, workers=3)
    assert len(seen) == 3 and all(n == 1 for n, during in seen if during)
    plain = run_eval(CypherAgent(settings, shop, _eval_generator(), compiled=build_graph()), items,
                     gold_store=shop, progress=False, batch_size=3)
    assert _unclocked(report.predictions) == _unclocked(plain.predictions)


# --- comparison table -------------------------------------------------------------------------------------
def _report(label, correct, n, first, executable, latencies):
    return EvalReport(
        n=n,
        correct=correct,
        first_try_correct=first,
        after_retry_correct=correct - first,
        executable=executable,
        latencies_ms=latencies,
        label=label,
    )


def test_compare_reports_table():
    a = _report("base zero-shot", 0, 10, 0, 2, [1000.0] * 10)
    b = _report("+ few-shot", 3, 10, 2, 8, [1200.0] * 9 + [3000.0])
    table = compare_reports({"base zero-shot": a, "+ few-shot": b})
    lines = table.splitlines()
    assert lines[0].startswith(
        "| configuration | n | accuracy | first try | executable | p50 latency | p95 latency |"
    )
    assert lines[2] == "| base zero-shot | 10 | 0.0% (0) | 0.0% | 20.0% | 1.00 s | 1.00 s |"
    assert lines[3] == "| + few-shot | 10 | 30.0% (3) | 20.0% | 80.0% | 1.20 s | 3.00 s |"
    assert compare_reports([a, b]) == table
    assert b.beats(a) and not a.beats(b) and not b.beats(a, margin=0.5)
