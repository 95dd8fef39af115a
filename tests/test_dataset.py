"""The dataset builder: sources mixed, de-duplicated, a fixed held-out split, feedback in (approved only).

Uses the real ``shop`` graph (read only), the offline generator's own output and a real Chroma
feedback store in a temp folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from agent.core.cypher_text import normalize_cypher, normalize_question
from agent.core.errors import DataError
from agent.core.feedback import Feedback, Interaction
from finetune.dataset import BuildSpec, build_dataset, held_out
from finetune.synth import generate_pairs, write_pairs

# Corrections use an alias the offline generator never writes, so each forms its own group.
CANDIDATE_CITIES = ["Paris", "Berlin", "Madrid", "London", "Munich", "Lyon", "Hamburg", "New York"]


def correction_query(city: str) -> str:
    return f"MATCH (c:Customer {{city: '{city}'}}) RETURN c.name AS customer ORDER BY customer"


def correction_question(city: str) -> str:
    return f"Who are the customers we have in {city}?"


def _city(side: bool, taken: set[str]) -> str:
    """A city whose correction question lands on the held-out side (True) or in train (False)."""
    for city in CANDIDATE_CITIES:
        if city not in taken and held_out(normalize_question(correction_question(city)), 0.5) == side:
            taken.add(city)
            return city
    raise AssertionError("no candidate city on that side")


@pytest.fixture(scope="module")
def offline_file(shop, tmp_path_factory) -> Path:
    pairs, _ = generate_pairs(shop, 300, seed=4)
    path = tmp_path_factory.mktemp("offline") / "shop.jsonl"
    write_pairs(pairs, path)
    return path


@pytest.fixture(scope="module")
def feedback(shop, tmp_path_factory):
    """A real Chroma store: corrections approved (one per side), rejected, pending; an approved 👍."""
    from feedback_store.chroma import ChromaFeedbackStore

    store = ChromaFeedbackStore(tmp_path_factory.mktemp("chroma"))
    taken: set[str] = set()
    cities = {
        "train": _city(False, taken),
        "regression": _city(True, taken),
        "rejected": _city(False, taken),
        "pending": _city(False, taken),
    }

    def correct(city: str) -> str:
        it = Interaction(
            question=correction_question(city),
            graph="shop",
            final_cypher="MATCH (c:Customer) RETURN c.name",
            answer="…",
            row_count=12,
        )
        iid = store.log_interaction(it)
        return store.add_correction(iid, correction_query(city), shop).id

    store.review(correct(cities["train"]), "approved")
    store.review(correct(cities["regression"]), "approved")
    store.review(correct(cities["rejected"]), "rejected")
    correct(cities["pending"])
    up = Interaction(
        question="How many suppliers do we work with?",
        graph="shop",
        final_cypher="MATCH (s:Supplier) RETURN count(s) AS suppliers",
        answer="3",
        row_count=1,
    )
    fb = store.add_feedback(Feedback(interaction_id=store.log_interaction(up), verdict="up"))
    store.review(fb, "approved")
    yield store, cities
    store.close()


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    q = "MATCH (p:Product)-[:IN_CATEGORY]->(c:Category {name: 'Books'}) RETURN p.name AS book"
    items = [
        {
            "id": "t1",
            "graph": "shop",
            "theme": "catalogue",
            "question": "Which products are books?",
            "cypher": q,
            "result": "pass",
            "status": "approved",
            "paraphrases": ["List every book we sell.", "What books do we have?"],
        },
        {
            "id": "t2",
            "graph": "shop",
            "theme": "catalogue",
            "question": "Which suppliers ship from Italy?",
            "cypher": "MATCH (s:Supplier {country: 'Italy'}) RETURN s.name AS supplier",
            "result": "pass",
            "status": "pending",
            "paraphrases": [],
        },
        {
            "id": "t3",
            "graph": "shop",
            "theme": "catalogue",
            "question": "Which products are bad?",
            "cypher": "MATCH (p:Product) WHERE p.rating < 1 RETURN p.name AS bad",
            "result": "no_data",
            "status": "rejected",
            "paraphrases": [],
        },
        {
            "id": "t4",
            "graph": "shop",
            "theme": "orders",
            "question": "Which orders broke?",
            "cypher": "MATCH (o:Order RETURN o",
            "result": "error",
            "status": "pending",
            "paraphrases": [],
        },
    ]
    path = tmp_path_factory.mktemp("teacher") / "review.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    return path


@pytest.fixture(scope="module")
def pairs_file(offline_file, tmp_path_factory) -> Path:
    first = json.loads(offline_file.read_text().splitlines()[0])
    path = tmp_path_factory.mktemp("pairs") / "mine.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "cypher"])
        w.writerow(
            [
                "How many orders are delivered?",
                "MATCH (o:Order {status: 'delivered'}) RETURN count(o) AS delivered",
            ]
        )
        w.writerow(
            [
                "Which customers are in the Consumer segment?",
                "MATCH (c:Customer {segment: 'Consumer'}) RETURN c.name AS who",
            ]
        )
        # the same pair as an offline one: a duplicate
        w.writerow([first["question"].upper(), first["cypher"]])
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def built(shop, offline_file, feedback, teacher_file, pairs_file, tmp_path_factory):
    from agent.core.settings import Settings

    store, cities = feedback
    out = tmp_path_factory.mktemp("dataset")
    spec = BuildSpec(
        graph="shop",
        out_dir=out,
        offline=[offline_file],
        teacher=[teacher_file],
        pairs=[pairs_file],
        feedback=True,
        feedback_weight=3,
        heldout_frac=0.15,
        regression_frac=0.5,
    )
    summary = build_dataset(
        Settings(_env_file=None, home=out / "home"), spec, graph_store=shop, feedback_store=store
    )
    return summary, out, cities


def test_heldout_never_trained_on(built):
    summary, out, _ = built
    train, heldout, regression = (
        _read(out / f) for f in ("train.jsonl", "heldout.jsonl", "feedback_regression.jsonl")
    )
    assert heldout and regression and len(train) > len(heldout)
    held = heldout + regression
    assert not {normalize_question(x["question"]) for x in train} & {
        normalize_question(x["question"]) for x in held
    }
    assert not {normalize_cypher(x["cypher"]) for x in train} & {normalize_cypher(x["cypher"]) for x in held}
    # held-out files hold each example once (the gate reads them by id)
    assert len({x["id"] for x in heldout}) == len(heldout)


def test_feedback_approved_in_rejected_and_pending_out(built):
    summary, out, cities = built
    lines = {f: _read(out / f) for f in ("train.jsonl", "heldout.jsonl", "feedback_regression.jsonl")}
    everywhere = [x["question"] for rows in lines.values() for x in rows]
    train_q = [x["question"] for x in lines["train.jsonl"]]
    assert train_q.count(correction_question(cities["train"])) == 3  # weighted by repetition
    assert correction_question(cities["regression"]) in [
        x["question"] for x in lines["feedback_regression.jsonl"]
    ]
    assert correction_question(cities["regression"]) not in train_q
    assert correction_question(cities["rejected"]) not in everywhere
    assert correction_question(cities["pending"]) not in everywhere
    src = {x["question"]: x["source"] for rows in lines.values() for x in rows}
    assert src[correction_question(cities["train"])] == "correction"
    assert src.get("How many suppliers do we work with?") == "thumbs_up"
    assert all(
        x["source"] in ("correction", "thumbs_up", "import") for x in lines["feedback_regression.jsonl"]
    )


def test_teacher_items_and_paraphrases(built):
    _, out, _ = built
    rows = [x for f in ("train.jsonl", "heldout.jsonl") for x in _read(out / f)]
    by_q = {x["question"]: x for x in rows}
    assert "Which products are bad?" not in by_q and "Which orders broke?" not in by_q  # rejected / error
    assert "Which suppliers ship from Italy?" in by_q  # a pending Pass trains, as in the seeds
    group = [
        by_q[q] for q in ("Which products are books?", "List every book we sell.", "What books do we have?")
    ]
    assert len({x["cypher"] for x in group}) == 1
    sides = {
        f
        for f in ("train.jsonl", "heldout.jsonl")
        for x in _read(out / f)
        if x["question"] in {g["question"] for g in group}
    }
    assert len(sides) == 1  # a question and its paraphrases share one side
    assert group[1]["provenance"]["original_id"] == "t1#p1"


def test_provenance_and_prompt_format(built, shop):
    summary, out, _ = built
    schema_text = shop.schema_text()
    for x in _read(out / "train.jsonl"):
        assert {"id", "question", "cypher", "graph", "source", "category", "prompt", "completion"} <= set(x)
        assert set(x["provenance"]) == {"source", "file", "original_id", "weight"}
        assert x["prompt"][0]["role"] == "system" and schema_text in x["prompt"][0]["content"]
        assert x["prompt"][1] == {"role": "user", "content": x["question"]}
        assert x["completion"] == [{"role": "assistant", "content": x["cypher"]}]
    data = json.loads((out / "summary.json").read_text())
    assert data["counts"]["train"] == len(_read(out / "train.jsonl"))
    assert data["counts"]["heldout"] == len(_read(out / "heldout.jsonl"))
    assert set(data["by_source"]["train"]) >= {"offline", "teacher", "correction"}
    # the user's own pairs are read; which side a pair lands on depends on the generated pairs it groups with
    assert "pairs" in set(data["by_source"]["train"]) | set(data["by_source"]["heldout"])
    assert data["dropped"]["duplicate"] >= 1  # the CSV row repeating an offline pair
    assert (
        data["dataset_hash"] == summary.dataset_hash
        and data["schema_fingerprint"] == shop.schema().fingerprint()
    )


def test_split_is_stable_across_rebuilds(shop, offline_file, built, tmp_path):
    from agent.core.settings import Settings

    _, out, _ = built
    side = {normalize_question(x["question"]): "held" for x in _read(out / "heldout.jsonl")}
    side.update({normalize_question(x["question"]): "train" for x in _read(out / "train.jsonl")})
    half = tmp_path / "half.jsonl"
    lines = offline_file.read_text().splitlines()
    half.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    settings = Settings(_env_file=None, home=tmp_path / "home")
    s1 = build_dataset(
        settings, BuildSpec(graph="shop", out_dir=tmp_path / "a", offline=[half], seed=1), graph_store=shop
    )
    s2 = build_dataset(
        settings, BuildSpec(graph="shop", out_dir=tmp_path / "b", offline=[half], seed=2), graph_store=shop
    )
    assert (tmp_path / "a" / "heldout.jsonl").read_bytes() == (tmp_path / "b" / "heldout.jsonl").read_bytes()
    assert s1.dataset_hash != s2.dataset_hash  # train order follows the seed
    again = {normalize_question(x["question"]): "held" for x in _read(tmp_path / "a" / "heldout.jsonl")}
    again.update({normalize_question(x["question"]): "train" for x in _read(tmp_path / "a" / "train.jsonl")})
    for q, s in again.items():
        assert side[q] == s, q


def test_extra_multi_schema_rows(shop, offline_file, tmp_path):
    from agent.core.settings import Settings

    schemas = tmp_path / "text2cypher_schemas.csv"
    structured = {
        "node_props": {
            "Team": [{"property": "name", "type": "STRING", "values": ["Reds", "Blues"], "distinct_count": 2}]
        },
        "rel_props": {},
        "relationships": [{"start": "Player", "type": "PLAYS_FOR", "end": "Team"}],
        "metadata": {},
    }
    with schemas.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["database", "schema", "structured_schema"])
        w.writerow(["football", "raw text", repr(structured)])
    held_q = _read_first_heldout(shop, offline_file, tmp_path)
    extra = tmp_path / "extra.csv"
    with extra.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "question",
                "cypher",
                "type",
                "database",
                "syntax_error",
                "timeout",
                "returns_results",
                "false_schema",
            ]
        )
        w.writerow(
            [
                "Which teams exist?",
                "MATCH (t:Team) RETURN t.name",
                "Simple",
                "football",
                "False",
                "False",
                "True",
                "",
            ]
        )
        w.writerow(
            ["Broken one?", "MATCH (t:Team RETURN t", "Simple", "football", "True", "False", "False", ""]
        )
        w.writerow([held_q["question"], held_q["cypher"], "Simple", "football", "False", "False", "True", ""])
    s = build_dataset(
        Settings(_env_file=None, home=tmp_path / "home"),
        BuildSpec(graph="shop", out_dir=tmp_path / "ds", offline=[offline_file], extra=[extra]),
        graph_store=shop,
    )
    rows = [x for x in _read(tmp_path / "ds" / "train.jsonl") if x["source"] == "extra"]
    assert [x["question"] for x in rows] == ["Which teams exist?"]
    assert (
        rows[0]["graph"] == "football"
        and 'Team {name: STRING ["Reds", "Blues"]}' in rows[0]["prompt"][0]["content"]
    )
    assert "(:Player)-[:PLAYS_FOR]->(:Team)" in rows[0]["prompt"][0]["content"]
    assert not any(x["source"] == "extra" for x in _read(tmp_path / "ds" / "heldout.jsonl"))
    assert s.dropped["extra_flagged"] == 1 and s.dropped["extra_repeats_heldout"] == 1


def _read_first_heldout(shop, offline_file, tmp_path) -> dict:
    from agent.core.settings import Settings

    build_dataset(
        Settings(_env_file=None, home=tmp_path / "home"),
        BuildSpec(graph="shop", out_dir=tmp_path / "probe", offline=[offline_file]),
        graph_store=shop,
    )
    return _read(tmp_path / "probe" / "heldout.jsonl")[0]


def test_pairs_columns_are_configurable(shop, tmp_path):
    from agent.core.settings import Settings

    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        json.dumps({"q": "How many products are there?", "query": "MATCH (p:Product) RETURN count(p)"}) + "\n"
    )
    settings = Settings(_env_file=None, home=tmp_path / "home")
    s = build_dataset(
        settings,
        BuildSpec(
            graph="shop",
            out_dir=tmp_path / "ds",
            pairs=[mine],
            question_col="q",
            cypher_col="query",
            heldout_frac=0,
        ),
        graph_store=shop,
    )
    assert s.counts["train"] == 1 and s.by_source["train"] == {"pairs": 1}
    with pytest.raises(DataError, match="no column 'instruction'"):
        build_dataset(
            settings, BuildSpec(graph="shop", out_dir=tmp_path / "ds2", pairs=[mine]), graph_store=shop
        )


def test_cli_build(shop, settings, offline_file, tmp_path, capsys):
    from ui.cli import main

    out = tmp_path / "ds"
    assert (
        main(
            [
                "data",
                "build",
                "--home",
                str(settings.home),
                "--graph",
                "shop",
                "--offline",
                str(offline_file),
                "--heldout-frac",
                "0.2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "| train |" in capsys.readouterr().out
    assert (out / "summary.json").is_file() and (out / "feedback_regression.jsonl").is_file()
    assert main(["data", "build", "--home", str(settings.home), "--graph", "shop", "--out", str(out)]) != 0
    assert "nothing to build from" in capsys.readouterr().err


def test_retrain_rounds_use_the_bootstrap_pool_when_there_is_one(shop, tmp_path):
    """The scheduled round builds from the same data as the bootstrap (its pool's training pairs, few-shot
    examples included) plus approved corrections, instead of generating a pool of its own."""
    from agent.core.settings import Settings

    settings = Settings(_env_file=None, home=tmp_path / "home")
    spec = BuildSpec.for_retrain(settings, "shop")
    assert spec.offline == [] and spec.auto_offline_n == 5000 and spec.feedback
    pool = settings.path("bootstrap", "shop", "train_pairs.jsonl")
    pool.parent.mkdir(parents=True)
    pool.write_text(
        json.dumps(
            {
                "question": "How many customers are there?",
                "cypher": "MATCH (c:Customer) RETURN count(c)",
                "examples": [
                    {
                        "question": "How many products are there?",
                        "cypher": "MATCH (p:Product) RETURN count(p)",
                    }
                ],
            }
        )
        + "\n"
    )
    spec = BuildSpec.for_retrain(settings, "shop", out_dir=tmp_path / "ds", feedback=False, heldout_frac=0.0)
    assert spec.offline == [pool] and spec.auto_offline_n == 0
    summary = build_dataset(settings, spec, graph_store=shop)
    (rec,) = _read(summary.out_dir / "train.jsonl")
    assert "Examples:" in rec["prompt"][0]["content"] and "MATCH (p:Product)" in rec["prompt"][0]["content"]


def trained_by_hash(n: int) -> list[dict]:
    """Pairs of ``n`` shop queries, two questions each, none of whose groups the split's hash holds out at
    0.15 (a small pool as unlucky as one that once left a retrain round's held-out set empty)."""
    from agent.core.cypher_text import normalize_question
    from finetune.dataset import held_out

    rows, i = [], 0
    while len(rows) < 2 * n:
        i += 1
        questions = [f"Which customers live in town {i}?", f"Who are the customers of town {i}?"]
        if any(held_out(normalize_question(q), 0.15) for q in questions):
            continue
        cypher = f"MATCH (c:Customer) WHERE c.city = 'Town {i}' RETURN c.name"
        rows += [{"question": q, "cypher": cypher, "query_id": f"q{i}"} for q in questions]
    return rows


def test_a_small_pool_always_holds_some_groups_out_whole(shop, tmp_path):
    """When the hash holds no group out of a small pool, the split still holds out its minimum (the groups
    whose hash comes next, whole: no question or query on both sides); below SPLIT_MIN_GROUPS groups it holds
    none out, and summary.json says how the groups were split."""
    from agent.core.settings import Settings
    from finetune.dataset import SPLIT_MIN_GROUPS, heldout_minimum

    assert [heldout_minimum(n, 0.15) for n in (0, 4, 5, 8, 30, 100, 1000)] == [0, 0, 1, 1, 4, 10, 10]
    assert heldout_minimum(30, 0.0) == 0 and heldout_minimum(5, 0.99) == 4
    settings = Settings(_env_file=None, home=tmp_path / "home")
    for groups, held in ((8, 1), (30, 4), (SPLIT_MIN_GROUPS - 1, 0)):
        pairs = tmp_path / f"pairs{groups}.jsonl"
        pairs.write_text("".join(json.dumps(r) + "\n" for r in trained_by_hash(groups)))
        out = tmp_path / f"ds{groups}"
        summary = build_dataset(settings, BuildSpec(graph="shop", out_dir=out, offline=[pairs],
                                                    heldout_frac=0.15), graph_store=shop)
        heldout, train = _read(out / "heldout.jsonl"), _read(out / "train.jsonl")
        assert len({x["cypher"] for x in heldout}) == held and len(heldout) == 2 * held, groups
        assert not {x["cypher"] for x in heldout} & {x["cypher"] for x in train}
        assert summary.split == {"groups": groups, "heldout_groups": held, "topped_up": held,
                                 "min_groups": SPLIT_MIN_GROUPS}
        assert json.loads((out / "summary.json").read_text())["split"] == summary.split
        again = build_dataset(settings, BuildSpec(graph="shop", out_dir=tmp_path / "again", offline=[pairs],
                                                  heldout_frac=0.15), graph_store=shop)
        assert again.dataset_hash == summary.dataset_hash  # the same pool splits the same way
