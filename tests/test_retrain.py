"""One retraining round end to end (tiny model, real trl, real gate on the shop graph), the lock, failures."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from finetune_helpers import scripted_gate, tiny_model_dir, write_dataset

from agent.core.adapters import read_active
from agent.core.errors import LockBusy
from finetune.dataset import dataset_hash
from finetune.lock import retrain_lock, retrain_running
from finetune.registry import AdapterRegistry
from finetune.retrain import list_reports, retrain

ROOT = Path(__file__).resolve().parent.parent
QUICK = ["max_steps=2", "eval_steps=2", "per_device_train_batch_size=4", "gradient_accumulation_steps=1",
         "max_eval_samples=4", "lora_r=4", "gate_max_heldout=3", "gate_max_new_tokens=6"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("rt-data"))


@pytest.fixture
def home_settings(settings, tiny, tmp_path):
    """Settings with a fresh home for adapters/reports (the graph server stays the shared test one)."""
    return settings.model_copy(update={"base_model": str(tiny), "device": "cpu"}), tmp_path


def _with_home(settings, home):
    s = settings.model_copy(update={"home": home})
    s.__dict__.pop("home_dir", None)  # cached_property of the copied object
    return s


def test_round_trains_gates_promotes_and_reports(home_settings, data, shop):
    settings, home = home_settings
    s = _with_home(settings, home)
    # the gate asks scripted models: the trained candidate answers its held-out questions, the base none
    report = retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data, graph_store=shop,
                     generator_factory=scripted_gate(data, "runs"))
    assert report.status == "promoted" and report.version == "v0001"
    assert (
        read_active(home).version == "v0001"
        and report.active_before is None
        and report.active_after == "v0001"
    )
    meta = AdapterRegistry(home).meta("v0001")
    assert meta["gate"]["decision"] == "promote" and meta["status"] == "promoted"
    assert report.message == ("v0001 is live: beats the live model: heldout 3/3 vs live 0/3; "
                              "no verified-feedback regression questions yet")
    assert (
        meta["recipe"] == "tiny-cpu"
        and meta["dataset_hash"] == dataset_hash(data)
        and meta["metrics"]["global_step"] == 2
    )
    assert (
        meta["base_model_path"] == str(settings.base_model)
        and (home / "adapters" / "v0001" / "loss.png").is_file()
    )
    assert meta["eval"]["candidate"]["heldout"]["n"] == 3
    folder = Path(report.report_dir)
    saved = json.loads((folder / "report.json").read_text())
    assert saved["dataset"]["counts"] == {"train": 24, "heldout": 6, "feedback_regression": 0}
    assert saved["gate"]["candidate"]["heldout"]["n"] == 3 and saved["status"] == "promoted"
    assert (folder / "loss.png").is_file() and "![loss](loss.png)" in (folder / "report.md").read_text()
    assert "| heldout |" in (folder / "report.md").read_text()
    assert list_reports(home)[0]["version"] == "v0001"

    # same data + same recipe again: nothing to do; with force: a new version gated (by the real tiny models)
    # against v0001
    again = retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data, graph_store=shop)
    assert again.status == "skipped" and again.version == "v0001"
    forced = retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data, graph_store=shop, force=True)
    assert forced.version == "v0002" and forced.gate["active_version"] == "v0001"
    assert forced.gate["active"]["heldout"]["n"] == 3 and forced.status in ("promoted", "rejected")


def _gate_data(tmp_path: Path) -> Path:
    d = write_dataset(tmp_path / "gd")
    (d / "heldout.jsonl").write_text(
        json.dumps(
            {
                "id": "h",
                "question": "How many customers live in Berlin?",
                "cypher": "MATCH (c:Customer {city: 'Berlin'}) RETURN count(c)",
            }
        )
        + "\n"
    )
    return d


def test_a_worse_candidate_is_registered_but_never_goes_live(home_settings, shop, tmp_path):
    settings, home = home_settings
    s = _with_home(settings, home)
    d = _gate_data(tmp_path)
    first = retrain(
        s,
        "shop",
        "tiny-cpu",
        overrides=QUICK,
        dataset_dir=d,
        graph_store=shop,
        generator_factory=scripted_gate(d, "runs"),
    )
    assert first.status == "promoted"  # the run folder's adapter answers correctly; the base does not
    second = retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=d, graph_store=shop, force=True,
                     generator_factory=scripted_gate(d, "adapters/v0001"))
    assert second.status == "rejected" and second.version == "v0002"
    assert read_active(home).version == "v0001"
    meta = AdapterRegistry(home).meta("v0002")
    assert meta["status"] == "rejected" and meta["gate"]["decision"] == "reject"
    assert meta["gate"]["heldout"] == 0.0 and meta["gate"]["active_heldout"] == 1.0


def test_a_tie_is_kept_out_of_serving_and_the_report_says_how_to_promote_it(home_settings, shop, data,
                                                                               monkeypatch, capsys):
    """The first model on a graph scoring what the base scores (0/3 vs 0/3, as a tiny CPU round does) is not
    promoted; it stays a registry version that `cypherloop adapters promote` makes live by hand."""
    from ui.cli_train import adapters_main

    settings, home = home_settings
    s = _with_home(settings, home)
    report = retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data, graph_store=shop,
                     generator_factory=scripted_gate(data, "no side matches this"))
    assert report.status == "rejected" and report.version == "v0001" and report.active_after is None
    assert read_active(home) is None
    said = ("v0001 not promoted: heldout 0/3 vs live 0/3, needs to beat the live model; v0001 stays in the "
            "registry; `cypherloop adapters promote v0001` makes it live by hand")
    assert report.message == said
    assert said in (Path(report.report_dir) / "report.md").read_text()
    meta = AdapterRegistry(home).meta("v0001")
    assert meta["status"] == "rejected" and meta["gate"]["decision"] == "reject"

    monkeypatch.setenv("CYPHERLOOP_HOME", str(home))
    monkeypatch.setenv("CYPHERLOOP_BASE_MODEL", str(settings.base_model))
    assert adapters_main(["promote", "v0001"]) == 0
    assert read_active(home).version == "v0001" and "v0001 is live" in capsys.readouterr().out


def test_a_failing_round_changes_nothing_live_and_reports_the_error(home_settings, shop, data):
    settings, home = home_settings
    s = _with_home(settings, home)

    def broken(settings, adapter):
        def make():
            raise RuntimeError("model exploded")

        return make

    with pytest.raises(RuntimeError):
        retrain(
            s,
            "shop",
            "tiny-cpu",
            overrides=QUICK,
            dataset_dir=data,
            graph_store=shop,
            generator_factory=broken,
        )
    assert AdapterRegistry(home).versions() == [] and read_active(home) is None
    rep = list_reports(home)[0]
    assert rep["status"] == "failed" and "model exploded" in rep["error"]


def _hold_lock(home: str, ready, release) -> None:
    """Hold the retrain lock until told to let go; write ``holder-left`` just before letting go."""
    with retrain_lock(Path(home)):
        ready.send("held")
        release.wait()
        (Path(home) / "holder-left").touch()


def test_two_retrains_never_overlap(home_settings, data, tmp_path):
    settings, home = home_settings
    s = _with_home(settings, home)
    ctx = multiprocessing.get_context("spawn")
    ready, ready_child = ctx.Pipe(duplex=False)
    release = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(home), ready_child, release))
    holder.start()
    try:
        # the holder says it holds the lock, or dies: whichever comes first
        multiprocessing.connection.wait([ready, holder.sentinel])
        assert ready.poll() and ready.recv() == "held", f"the lock holder exited with {holder.exitcode}"
        assert retrain_running(home)
        with pytest.raises(LockBusy, match="another retrain is running .pid"):
            retrain(s, "shop", "tiny-cpu", dataset_dir=data, wait=False)
        t0 = time.monotonic()
        with pytest.raises(LockBusy):
            retrain(s, "shop", "tiny-cpu", dataset_dir=data, wait=True, lock_timeout=0.5)
        assert time.monotonic() - t0 >= 0.4  # a lower bound: it did wait its lock_timeout before giving up
        # the CLI: --no-wait exits cleanly with code 3 and one line
        env = {"CYPHERLOOP_HOME": str(home), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(
            [sys.executable, "-m", "ui.cli", "retrain", "--graph", "shop", "--data", str(data), "--no-wait"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 3 and proc.stderr.strip().startswith("error: another retrain is running")
        # a waiting one gets the lock only after the holder has let go (it marks that inside the lock)
        got: list[bool] = []

        def waiter() -> None:
            with retrain_lock(home, wait=True):
                got.append((home / "holder-left").exists())

        t = threading.Thread(target=waiter)
        t.start()
        release.set()
        t.join()
        assert got == [True]
    finally:
        release.set()
        holder.join()
    assert holder.exitcode == 0
    assert not retrain_running(home)


class Killed(BaseException):
    """A kill -9 at that point: nothing after it runs (no ``except Exception`` catches a BaseException)."""


def test_a_round_killed_between_its_registry_add_and_the_promotion_promotes_when_run_again(
        home_settings, data, shop, monkeypatch):
    """retrain registers the candidate, then promotes it: killed between the two, the next round found a
    version with the same data and recipe and skipped, so the gate's promotion never happened. It acts on it
    now, once."""
    settings, home = home_settings
    s = _with_home(settings, home)
    promote = AdapterRegistry.promote

    def killed(self, version, reason="manual"):
        raise Killed

    monkeypatch.setattr(AdapterRegistry, "promote", killed)
    with pytest.raises(Killed):
        retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data, graph_store=shop,
                generator_factory=scripted_gate(data, "runs"))
    reg = AdapterRegistry(home)
    assert reg.versions() == ["v0001"] and reg.meta("v0001")["status"] == "candidate" and reg.active() is None
    monkeypatch.setattr(AdapterRegistry, "promote", promote)

    again = retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data, graph_store=shop)
    assert (again.status, again.version) == ("promoted", "v0001")
    assert again.message.startswith("v0001 is live: beats the live model: heldout 3/3 vs live 0/3")
    assert reg.versions() == ["v0001"] and reg.active() == "v0001"
    assert reg.meta("v0001")["status"] == "promoted"
    third = retrain(s, "shop", "tiny-cpu", overrides=QUICK, dataset_dir=data, graph_store=shop)
    assert (third.status, third.version, reg.history()["stack"]) == ("skipped", "v0001", ["v0001"])


def _nobody_answers(settings, adapter):
    """A gate generator maker: every side answers every question with a query that answers none (a tie)."""
    from finetune_helpers import WRONG_CYPHER

    from agent.models.base import ScriptedGenerator

    return lambda: ScriptedGenerator({"*": WRONG_CYPHER}, version=str(adapter))


NAMES_CORRECTIONS = [
    ("Which customers live in Berlin?", "MATCH (c:Customer) WHERE c.city = 'Berlin' RETURN c.name"),
    ("Which products cost more than 100?", "MATCH (p:Product) WHERE p.price > 100 RETURN p.name"),
    ("Who placed an order?", "MATCH (c:Customer)-[:PLACED]->(:Order) RETURN DISTINCT c.name"),
]


def test_a_round_generates_the_pool_again_once_the_corrections_ask_for_another_style(home_settings, shop,
                                                                                     monkeypatch):
    """A bootstrap pool generated as mixed (auto, no corrections) is reused by a round while nothing changed;
    after three approved corrections returning names, the next round generates it again with names (a
    failure first: that round trains on the old pool and says so), trains on it, and says so in its report,
    the bootstrap's state and the Training tab."""
    from test_bootstrap import returned_ways

    from agent.core.feedback import VerifiedExample
    from feedback_store.chroma import ChromaFeedbackStore
    from finetune import bootstrap as bootstrap_mod
    from finetune.bootstrap import Bootstrap
    from ui.training_tab import TrainingHooks, training_view

    settings, home = home_settings
    s = _with_home(settings, home)
    first = Bootstrap(s, "shop", device="cpu", pairs=120, general_rows=0, stop_after="build", progress=False,
                      graph_store=shop).run()
    assert first.plan["return_style"] == "mixed"
    folder = home / "bootstrap" / "shop"
    mixed = {f: (folder / f).read_bytes() for f in ("pairs.jsonl", "train_pairs.jsonl", "pool/pool.jsonl")}

    def round_():  # the pool's prompts carry few-shot examples: most are longer than QUICK's eval allows
        return retrain(s, "shop", "tiny-cpu", overrides=[*QUICK, "max_length=1024"], graph_store=shop,
                       force=True, generator_factory=_nobody_answers)

    same = round_()
    assert same.pool is None and same.status == "rejected"
    assert {f: (folder / f).read_bytes() for f in mixed} == mixed  # reused

    store = ChromaFeedbackStore(s)
    for question, cypher in NAMES_CORRECTIONS:
        store.add_example(VerifiedExample(question, cypher, "shop", "correction", "approved"))
    store.close()
    why = "auto: 3 of the 3 approved corrections return names, 0 whole nodes"
    coming = (f"The next retrain round generates the pool of `shop` again before training: entities "
              f"returned as names instead of mixed ({why}).")
    assert coming in training_view(TrainingHooks(s), None)[-1]  # said before the round
    hooks = TrainingHooks(s, retrain_fn=lambda settings: None)
    assert hooks.retrain().endswith(f"press Refresh to follow it. {coming}")
    hooks.wait()

    def broken(*args, **kwargs):
        raise RuntimeError("generator exploded")

    with monkeypatch.context() as m:
        m.setattr(bootstrap_mod, "generate_pairs", broken)
        failed = round_()
    assert failed.status == "rejected" and failed.pool["status"] == "failed"
    assert failed.message.startswith("pool not generated again as names (generator exploded); trained on the "
                                     "mixed pool; v0002")
    assert {f: (folder / f).read_bytes() for f in mixed} == mixed  # the old pool, whole
    assert read_active(home) is None

    report = round_()
    assert report.pool["status"] == "regenerated" and report.pool["why"] == why
    said = f"pool generated again with entities returned as names instead of mixed ({why}): 120 pairs"
    assert report.message.startswith(said) and report.status == "rejected" and report.version == "v0003"
    assert said in (Path(report.report_dir) / "report.md").read_text()
    for file in ("pairs.jsonl", "train_pairs.jsonl"):
        ways = returned_ways(folder, file)
        assert ways["nodes"] == 0 and ways["names"] > 10, (file, ways)
    trained_on = {json.loads(x)["cypher"] for x in (home / "datasets" / "shop" / "train.jsonl").open()}
    assert {json.loads(x)["cypher"] for x in (folder / "train_pairs.jsonl").open()} & trained_on
    state = json.loads((folder / "state.json").read_text())
    assert state["restyled"]["run_id"] == state["run_id"] and state["stages"]["build"]["done"]
    assert "train" not in state["stages"]  # `cypherloop bootstrap` trains a full model on it when run
    status = training_view(TrainingHooks(s), None)[-1]
    assert f"Pool of `shop`: entities returned as names ({why}); generated again on " in status
    assert "The next retrain round" not in status

    again = round_()
    assert again.pool is None  # the pool is the style asked for now


def _offline_ways(shop, path: Path) -> Counter:
    """How the queries of an offline pairs file return entities (``returned_entities`` per query, with the
    shop graph's naming keys)."""
    from finetune.bootstrap import returned_entities
    from finetune.synth import profile_graph

    keys = {lab.label: (lab.key.name if lab.key else None) for lab in profile_graph(shop).labels.values()}
    return Counter(returned_entities(json.loads(x)["cypher"], keys) for x in path.read_text().splitlines())


def test_a_round_without_a_pool_generates_its_pairs_in_the_style_asked_for_and_again_when_it_changes(
        home_settings, shop, monkeypatch):
    """No bootstrap pool: the round's own offline pairs follow the return style asked for, resolved as a
    bootstrap resolves it (the setting, auto from the approved corrections), are generated again when it
    changes (a failure first: the round trains on the pairs it had and says so), and the report, its
    report.md and the scheduler's state say which style and why."""
    from agent.core.feedback import VerifiedExample
    from feedback_store.chroma import ChromaFeedbackStore
    from finetune import dataset as dataset_mod
    from finetune.schedule import Runner, read_state
    from ui.training_tab import restyle_note

    settings, home = home_settings
    s = _with_home(settings, home).model_copy(update={"return_style": "names"})
    offline = home / "data" / "offline" / "shop.jsonl"

    def round_(settings):
        return retrain(settings, "shop", "tiny-cpu", overrides=QUICK, graph_store=shop, force=True,
                       generator_factory=_nobody_answers, dataset_options={"auto_offline_n": 120})

    first = round_(s)
    assert not (home / "bootstrap" / "shop").exists()
    said = ("offline pairs generated with entities returned as names (the return_style setting is names): "
            "120 pairs (no bootstrap pool: `cypherloop bootstrap --graph shop` makes one)")
    assert first.pool["source"] == "offline" and first.pool["status"] == "generated"
    assert first.message.startswith(said) and first.status == "rejected"
    assert said in (Path(first.report_dir) / "report.md").read_text()
    ways = _offline_ways(shop, offline)
    assert ways["nodes"] == 0 and ways["names"] > 10, ways
    names = offline.read_bytes()

    same = round_(s)  # the style asked for is still names: the pairs serve as they are
    assert same.pool is None and offline.read_bytes() == names

    nodes = s.model_copy(update={"return_style": "nodes"})
    with monkeypatch.context() as m:
        m.setattr(dataset_mod, "generate_pairs", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("boom")))
        failed = round_(nodes)
    assert failed.pool["status"] == "failed" and failed.status == "rejected"
    assert failed.message.startswith("offline pairs not generated again as nodes (boom); trained on the "
                                     "names ones")
    assert offline.read_bytes() == names  # the pairs of before, whole, still stamped names
    assert restyle_note(nodes) == ("the next retrain round generates the offline pairs of `shop` (no "
                                   "bootstrap pool) again before training: entities returned as nodes "
                                   "instead of names (the return_style setting is nodes)")

    runner = Runner(nodes, "tiny-cpu", QUICK, retrain_fn=lambda st, g, r, **kw: round_(st))
    again = runner.run_round("cron")
    said = ("offline pairs generated again with entities returned as nodes instead of names (the "
            "return_style setting is nodes): 120 pairs")
    assert again.pool["status"] == "regenerated" and again.message.startswith(said)
    assert read_state(home)["shop"]["last_pool"].startswith(said)
    assert _offline_ways(shop, offline)["nodes"] > 10  # none as names
    assert restyle_note(nodes) == ""

    store = ChromaFeedbackStore(s)
    for question, cypher in NAMES_CORRECTIONS:
        store.add_example(VerifiedExample(question, cypher, "shop", "correction", "approved"))
    store.close()
    auto = round_(s.model_copy(update={"return_style": "auto"}))
    why = "auto: 3 of the 3 approved corrections return names, 0 whole nodes"
    assert auto.pool["why"] == why and auto.pool["wanted"] == "names" and auto.pool["had"] == "nodes"
    assert _offline_ways(shop, offline)["nodes"] == 0
    trained_on = {json.loads(x)["cypher"] for x in (home / "datasets" / "shop" / "train.jsonl").open()}
    assert {json.loads(x)["cypher"] for x in offline.open()} & trained_on


def _pool_of(home: Path, rows: list[dict]) -> None:
    """A bootstrap pool's training pairs for shop (what `cypherloop bootstrap` leaves for the rounds)."""
    pool = home / "bootstrap" / "shop" / "train_pairs.jsonl"
    pool.parent.mkdir(parents=True, exist_ok=True)
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_small_pool_the_hash_holds_nothing_out_of_is_still_gated(home_settings, shop):
    """Eight queries none of which the split's hash holds out (as a 120-pair pool once came out): the round
    still holds one out whole and gates on it, instead of the gate refusing an empty held-out set."""
    from test_dataset import trained_by_hash

    settings, home = home_settings
    s = _with_home(settings, home)
    _pool_of(home, trained_by_hash(8))
    report = retrain(s, "shop", "tiny-cpu", overrides=QUICK, graph_store=shop,
                     generator_factory=_nobody_answers)
    assert report.dataset["counts"]["heldout"] == 2 and report.dataset["summary"]["split"]["topped_up"] == 1
    assert report.status == "rejected" and report.gate["candidate"]["heldout"]["n"] == 2
    assert read_active(home) is None  # a tie keeps the live model


def test_a_pool_too_small_to_hold_anything_out_keeps_the_live_model_and_says_why(home_settings, shop):
    """Four queries: nothing can be held out for the gate, so the round trains nothing, registers nothing,
    keeps the live model and says why in one line (report, report.md, the command's last line)."""
    from test_dataset import trained_by_hash

    settings, home = home_settings
    s = _with_home(settings, home)
    _pool_of(home, trained_by_hash(4))
    report = retrain(s, "shop", "tiny-cpu", overrides=QUICK, graph_store=shop,
                     generator_factory=_nobody_answers)
    said = ("no held-out questions for the gate (the data holds 4 distinct question/query group(s), fewer "
            "than the 5 a held-out split needs; generate more pairs (`cypherloop bootstrap --pairs N`) or "
            "approve more corrections): nothing trained, the base model stays live")
    assert (report.status, report.message, report.version, report.error) == ("skipped", said, None, None)
    assert report.dataset["counts"] == {"train": 8, "heldout": 0, "feedback_regression": 0}
    assert "\n" not in report.message and said in (Path(report.report_dir) / "report.md").read_text()
    assert AdapterRegistry(home).versions() == [] and read_active(home) is None
    assert not (home / "runs").exists()
