"""``cypherloop bootstrap`` end to end on a real graph with the tiny model: killed while training, resumed,
finished — the pool indexed for the graph, a full-model version in the registry, the live model switched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHOP_SCRIPT
from finetune_helpers import tiny_model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp())


@pytest.fixture
def home(tmp_path, settings_for):
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script

    settings = settings_for(tmp_path / "home")
    store = open_graph(settings, "shop")
    load_script(store, SHOP_SCRIPT, replace=True)
    store.close()
    yield settings
    stop(settings)


def test_bootstrap_runs_end_to_end_and_resumes_after_a_kill(home, tiny):
    from feedback_store.pool import ExamplePool
    from finetune.registry import AdapterRegistry

    cmd = [
        sys.executable,
        "-m",
        "ui.cli",
        "bootstrap",
        "--graph",
        "shop",
        "--budget-minutes",
        "4",
        "--pairs",
        "240",
        "--eval-n",
        "8",
        "--general-rows",
        "20",
        "--device",
        "cpu",
        "--quiet",
        "--set",
        "save_every_s=0",
        "--set",
        "tokens_per_batch=2048",
    ]
    env = {**os.environ, "CYPHERLOOP_HOME": str(home.home), "CYPHERLOOP_BASE_MODEL": str(tiny),
           "CYPHERLOOP_MAX_NEW_TOKENS": "24", "CYPHERLOOP_EMBEDDED_PORT": "0",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    folder = Path(home.home) / "bootstrap" / "shop"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = folder / "run" / "checkpoint" / "state.json"
    while not checkpoint.is_file():  # waits on the checkpoint appearing, or on the process ending
        if proc.poll() is not None:
            pytest.fail(f"bootstrap ended before training checkpointed: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)  # a polling interval, not a limit
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads((folder / "state.json").read_text())
    assert [s for s in ("profile", "generate", "index", "build") if state["stages"][s]["done"]] == \
        ["profile", "generate", "index", "build"]
    assert not state["stages"].get("train", {}).get("done")
    generated_at = (folder / "pairs.jsonl").stat().st_mtime_ns

    done = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert set(report["stages"]) == {"profile", "generate", "index", "build", "train", "evaluate", "promote"}
    assert (folder / "pairs.jsonl").stat().st_mtime_ns == generated_at  # not generated again
    assert report["stages"]["generate"]["pairs"] == 240
    assert report["stages"]["train"]["metrics"]["steps"] > 0
    scores = report["stages"]["evaluate"]["scores"]
    assert scores["new"]["n"] == scores["live"]["n"] > 0
    reg = AdapterRegistry(home.home)
    assert reg.versions() == [report["version"]] and reg.meta(report["version"])["kind"] == "full"
    assert reg.meta(report["version"])["graph"] == "shop"
    new, live = scores["new"]["correct"], scores["live"]["correct"]
    assert report["status"] == ("promoted" if new > live else "rejected")  # a tie keeps the live model
    if report["status"] == "promoted":
        assert reg.active() == report["version"]
    else:
        assert reg.active() is None and f"{new}/{scores['new']['n']} vs live {live}/" in report["message"]
        assert report["message"].endswith("makes it live by hand")
    pool = ExamplePool.open(Path(home.home), "shop")
    heldout = {json.loads(x)["cypher"] for x in (folder / "heldout.jsonl").read_text().splitlines()}
    assert pool is not None and len(pool) == report["stages"]["index"]["pool"] > 0
    assert not heldout & {
        json.loads(x)["cypher"] for x in (folder / "pool" / "pool.jsonl").read_text().splitlines()
    }
    assert ExamplePool.open(Path(home.home), "movies") is None  # scoped to the graph
    # a further run finds everything done and changes nothing
    again = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and json.loads(again.stdout)["version"] == report["version"]
    assert reg.versions() == [report["version"]]


def test_settings_given_to_a_resumed_bootstrap_count_until_it_trains(tmp_path, settings_for):
    """`--set` on a later call of a bootstrap whose plan an earlier call wrote (GPU round 5 lost its
    compile=true this way): taken while nothing trained, a one-line refusal after."""
    from agent.core.errors import ConfigError
    from finetune.bootstrap import Bootstrap

    settings = settings_for(tmp_path / "home")
    first = Bootstrap(settings, "shop", device="cpu")
    first._save_state()
    again = Bootstrap(settings, "shop", device="cpu", train_overrides=["compile=true"])
    assert again.plan.train_overrides == ["compile=true"]
    again._save_state()
    (again.dir / "run").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already trained with .*compile=true.*--fresh"):
        Bootstrap(settings, "shop", device="cpu", train_overrides=["epochs=1"])
    assert Bootstrap(settings, "shop", device="cpu").plan.train_overrides == ["compile=true"]


def test_a_return_style_given_to_a_resumed_bootstrap_is_the_one_asked_for_from_then_on(tmp_path,
                                                                                       settings_for):
    """``--return-style`` is in the plan: a later call changes it while no pair was generated; after, it is
    the style asked for (``return_style_flag``, kept by later calls without one), which ``run`` compares with
    the pairs' (``style_change``) and follows; without a flag the ``return_style`` setting is asked for."""
    from agent.core.errors import ConfigError
    from finetune.bootstrap import Bootstrap, StyleChange

    settings = settings_for(tmp_path / "home")
    first = Bootstrap(settings, "shop", device="cpu")
    assert (first.plan.return_style, first.plan.return_style_flag) == ("auto", "")  # chosen when generated
    first._save_state()
    again = Bootstrap(settings, "shop", device="cpu", return_style="names")
    assert (again.plan.return_style, again.plan.return_style_flag) == ("names", "names")
    again.state["stages"]["generate"] = {"done": True, "return_style": "names"}
    again._save_state()
    assert Bootstrap(settings, "shop", device="cpu").style_change() is None  # the flag is kept
    nodes = Bootstrap(settings, "shop", device="cpu", return_style="nodes")
    assert nodes.plan.return_style == "names"  # the pairs' until run() generates them again
    assert nodes.style_change() == StyleChange("names", "nodes", "--return-style nodes")
    with pytest.raises(ConfigError, match="--return-style must be one of auto, mixed, names, nodes"):
        Bootstrap(settings, "shop", device="cpu", return_style="names_please", fresh=True)
    chosen = settings.model_copy(update={"return_style": "nodes"})  # the setting: a new plan's default
    assert Bootstrap(chosen, "shop", device="cpu", fresh=True).plan.return_style == "nodes"
    given = Bootstrap(chosen, "shop", device="cpu", fresh=True, return_style="names")
    assert given.plan.return_style == "names"

    by_setting = Bootstrap(settings, "shop", device="cpu", fresh=True)
    by_setting.state["stages"]["generate"] = {"done": True, "return_style": "mixed"}
    by_setting._save_state()
    assert Bootstrap(settings, "shop", device="cpu").style_change() is None  # auto: no corrections, mixed
    assert Bootstrap(chosen, "shop", device="cpu").style_change() == StyleChange(
        "mixed", "nodes", "the return_style setting is nodes")
    # a plan written before the flag was kept: names or nodes without auto's reason were a person's choice
    for plan, flag in (({"return_style": "names", "return_style_reason": ""}, "names"),
                       ({"return_style": "mixed", "return_style_reason": ""}, ""),
                       ({"return_style": "names", "return_style_reason": "auto: 3 of the 3"}, "")):
        old = Bootstrap(settings, "shop", device="cpu", fresh=True)
        old.state["plan"] = {k: v for k, v in old.state["plan"].items() if k != "return_style_flag"} | plan
        old._save_state()
        assert Bootstrap(settings, "shop", device="cpu").plan.return_style_flag == flag


def test_auto_follows_the_approved_corrections_when_three_agree_two_to_one():
    """``auto``: names when the corrections list entities by their naming key, nodes when they return the
    nodes, mixed with fewer than three such corrections or no two-to-one majority; counts and other
    properties say nothing."""
    from finetune.bootstrap import auto_return_style, returned_entities

    keys = {"Customer": "name", "Product": "title"}
    name = "MATCH (c:Customer)-[:PLACED]->(o) RETURN c.name"
    node = "MATCH (c:Customer) WHERE c.city = 'Berlin' RETURN c"
    assert returned_entities(name, keys) == "names"
    assert returned_entities("MATCH (p:Product) RETURN DISTINCT p.`title` AS t LIMIT 3", keys) == "names"
    assert returned_entities(node, keys) == "nodes"
    for silent in ("MATCH (c:Customer) RETURN count(c)", "MATCH (c:Customer) RETURN c.city",
                   "MATCH (c:Customer) RETURN c, c.name", "MATCH (o:Order) RETURN o.name",
                   "MATCH (c:Customer) WITH c.name AS n RETURN n"):
        assert returned_entities(silent, keys) is None, silent
    assert auto_return_style([name] * 3 + [node], keys)[0] == "names"
    assert auto_return_style([node] * 4 + [name, name], keys)[0] == "nodes"
    style, why = auto_return_style([name, name, "MATCH (c:Customer) RETURN count(c)"], keys)
    assert style == "mixed" and why.startswith("auto: 2 of the 3 approved corrections return names")
    assert auto_return_style([name] * 3 + [node] * 2, keys)[0] == "mixed"
    assert auto_return_style([], keys)[0] == "mixed"


def test_an_auto_bootstrap_generates_in_the_style_of_the_approved_corrections(home):
    """With ``auto`` the generate stage reads the graph's approved corrections from the home's feedback store
    (not a pending one, nor one failing on the live schema), writes the style it chose and why into the plan
    and the report, and no generated query returns a whole node of a label that has a name."""
    from agent.core.feedback import VerifiedExample
    from feedback_store.chroma import ChromaFeedbackStore
    from finetune.bootstrap import Bootstrap

    store = ChromaFeedbackStore(home)
    for i, (cypher, status, drift) in enumerate([
            ("MATCH (c:Customer) WHERE c.city = 'Berlin' RETURN c.name", "approved", ""),
            ("MATCH (s:Supplier) RETURN s.name ORDER BY s.name", "approved", ""),
            ("MATCH (c:Category)<-[:IN_CATEGORY]-(p) RETURN DISTINCT c.name", "approved", ""),
            ("MATCH (c:Customer) RETURN c", "approved", "failing"),
            ("MATCH (s:Supplier) RETURN s", "pending", ""),
            ("MATCH (c:Category) RETURN c", "approved", "")]):
        store.add_example(VerifiedExample(f"question {i}", cypher, "shop", "correction", status, drift=drift))
    store.add_example(VerifiedExample("elsewhere", "MATCH (m:Movie) RETURN m", "movies", "correction",
                                      "approved"))
    store.close()
    run = Bootstrap(home, "shop", device="cpu", pairs=120, stop_after="generate", progress=False)
    assert run.plan.return_style == "auto"
    report = run.run()
    assert report.plan["return_style"] == "names" and run.plan.return_style == "names"
    why = report.plan["return_style_reason"]
    assert why.startswith("auto: 3 of the 4 approved corrections return names, 1 whole nodes")
    assert "entities returned as names" in report.stages["generate"]["summary"]
    ways = returned_ways(run.dir)
    assert ways["nodes"] == 0 and ways["names"] > 10, ways


def returned_ways(folder: Path, file: str = "pairs.jsonl") -> Counter:
    """How the queries of a bootstrap's ``file`` return entities: ``returned_entities`` counted per query, and
    ``nodes`` once more for every whole node of a label that has a naming key."""
    from agent.core.cypher_text import node_labels, return_items
    from finetune.bootstrap import returned_entities

    labels = json.loads((folder / "profile.json").read_text())["labels"]
    keys = {label: info["key"] for label, info in labels.items()}
    ways = Counter()
    for pair in (json.loads(line) for line in (folder / file).read_text().splitlines()):
        bound = node_labels(pair["cypher"])
        for item in return_items(pair["cypher"]):
            if item in bound and keys.get(bound[item]):  # a whole node of a label that has a name
                ways["nodes"] += 1
        ways[returned_entities(pair["cypher"], keys)] += 1
    return ways


def test_a_bootstrap_run_again_generates_its_pool_again_when_the_style_asked_for_changed(home):
    """A plain re-run keeps a pool whose style is still the one asked for; once the setting asks for another,
    the stages from generate on run again under a new run id (the pool and the training pairs replaced), and
    the report says so."""
    from finetune.bootstrap import Bootstrap

    def bootstrap(settings):
        return Bootstrap(settings, "shop", device="cpu", pairs=120, general_rows=0, stop_after="build",
                         progress=False)

    first = bootstrap(home).run()
    assert first.plan["return_style"] == "mixed" and first.restyled is None
    folder = Path(home.home) / "bootstrap" / "shop"
    before = {f: (folder / f).read_bytes() for f in ("pairs.jsonl", "train_pairs.jsonl", "pool/pool.jsonl")}
    run_id = json.loads((folder / "state.json").read_text())["run_id"]
    same = bootstrap(home).run()
    assert same.restyled is None and same.message.startswith("stopped after build")
    assert {f: (folder / f).read_bytes() for f in before} == before

    report = bootstrap(home.model_copy(update={"return_style": "names"})).run()
    assert report.restyled["had"] == "mixed" and report.restyled["wanted"] == "names"
    assert report.message.startswith("pool generated again with entities returned as names instead of mixed "
                                     "(the return_style setting is names); stopped after build")
    state = json.loads((folder / "state.json").read_text())
    assert state["run_id"] != run_id and state["stages"]["generate"]["return_style"] == "names"
    assert all((folder / f).read_bytes() != before[f] for f in before)
    for file in ("pairs.jsonl", "train_pairs.jsonl"):
        ways = returned_ways(folder, file)
        assert ways["nodes"] == 0 and ways["names"] > 10, (file, ways)


def test_a_pool_generated_again_and_killed_midway_leaves_the_old_one_whole_and_resumes(home):
    """kill -9 once the run decided to generate the pool again: the old pool and its training pairs are
    still there for the agent and a retrain round, the Training tab says a new one is coming, and the next run
    goes on from generate with the same run id."""
    from feedback_store.pool import ExamplePool
    from finetune.bootstrap import Bootstrap
    from ui.training_tab import pool_status

    Bootstrap(home, "shop", device="cpu", pairs=120, general_rows=0, stop_after="build", progress=False).run()
    folder = Path(home.home) / "bootstrap" / "shop"
    old = {f: (folder / f).read_bytes() for f in ("train_pairs.jsonl", "pool/pool.jsonl")}
    mixed = returned_ways(folder, "train_pairs.jsonl")
    cmd = [sys.executable, "-m", "ui.cli", "bootstrap", "--graph", "shop", "--stop-after", "build", "--quiet",
           "--return-style", "nodes"]
    env = {**os.environ, "CYPHERLOOP_HOME": str(home.home), "CYPHERLOOP_EMBEDDED_PORT": "0",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while "restyled" not in json.loads((folder / "state.json").read_text()):
        if proc.poll() is not None:
            pytest.fail(f"the bootstrap ended before generating again: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)  # a polling interval, not a limit
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert {f: (folder / f).read_bytes() for f in old} == old
    assert len(ExamplePool.open(Path(home.home), "shop")) == len(old["pool/pool.jsonl"].splitlines())
    pending = Bootstrap(home, "shop", progress=False, stop_after="build")  # the flag was kept in the plan
    assert pending.restyle_pending() and pending.style_change() is None  # generate is to do again
    assert pool_status(Path(home.home), "shop") == (
        "Pool of `shop`: being generated again with entities returned as nodes (--return-style nodes); the "
        "mixed one serves and trains until then.")

    run_id = pending.state["run_id"]
    report = pending.run()
    assert report.restyled["run_id"] == run_id == json.loads((folder / "state.json").read_text())["run_id"]
    assert report.message.startswith("pool generated again with entities returned as nodes instead of mixed")
    ways = returned_ways(folder, "train_pairs.jsonl")
    assert ways["nodes"] > mixed["nodes"] and ways["names"] < mixed["names"], (ways, mixed)
    assert pool_status(Path(home.home), "shop").startswith(
        "Pool of `shop`: entities returned as nodes (--return-style nodes); generated again on ")


def test_a_recipe_given_to_a_resumed_bootstrap_counts_until_it_trains(tmp_path, settings_for, monkeypatch,
                                                                      capsys):
    """`--recipe` on a later call was kept from the first call's plan, silently: it now counts as `--set`
    does (the training gets it, earlier --set kept), and once training started it is one line and exit 2."""
    from agent.core.errors import ConfigError
    from finetune import bootstrap as bootstrap_mod
    from finetune.bootstrap import Bootstrap
    from ui.cli import main

    settings = settings_for(tmp_path / "home")
    first = Bootstrap(settings, "shop", device="cpu", train_overrides=["epochs=3"])
    assert first.plan.recipe == "full-cpu"
    first._save_state()
    again = Bootstrap(settings, "shop", device="cpu", recipe="full-gpu", progress=False)
    assert (again.plan.recipe, again.plan.train_overrides) == ("full-gpu", ["epochs=3"])
    again._save_state()
    assert Bootstrap(settings, "shop", device="cpu").plan.recipe == "full-gpu"  # a plain resume keeps it

    class Started(Exception):
        """The training began (the fake stops it there, as a kill would)."""

    configs = []

    def train_full(dataset, base, out, cfg, **kwargs):
        configs.append(cfg)
        raise Started

    monkeypatch.setattr(bootstrap_mod, "train_full", train_full)
    monkeypatch.setattr(bootstrap_mod, "resolve_base_model", lambda settings, name: tmp_path / "base")
    with pytest.raises(Started):
        again._train()
    [cfg] = configs  # full-gpu's batches (full-cpu's are 4096 tokens), the first call's --set epochs=3
    assert (cfg.tokens_per_batch, cfg.epochs) == (32768, 3)

    refusal = ("the bootstrap of shop already trained with --recipe full-gpu --set epochs=3; add --fresh to "
               "start again with --recipe full-cpu")
    with pytest.raises(ConfigError) as e:
        Bootstrap(settings, "shop", device="cpu", recipe="full-cpu")
    assert str(e.value) == refusal
    assert Bootstrap(settings, "shop", device="cpu", recipe="full-gpu").plan.recipe == "full-gpu"  # no change
    monkeypatch.setenv("CYPHERLOOP_HOME", str(settings.home))
    assert main(["bootstrap", "--graph", "shop", "--device", "cpu", "--recipe", "full-cpu", "--quiet"]) == 2
    assert capsys.readouterr().err == f"error: {refusal}\n"


@pytest.mark.parametrize(
    "new, live, status",
    [(0, 0, "rejected"), (5, 5, "rejected"), (4, 5, "rejected"), (6, 5, "promoted")],
    ids=["a tie at zero", "a tie", "worse", "better"],
)
def test_the_new_model_goes_live_only_if_it_beats_the_live_one(tmp_path, settings_for, monkeypatch, capsys,
                                                                new, live, status):
    """The promote stage on its own: a tie (0/12 vs 0/12 is what a tiny CPU bootstrap and the bare base
    score) keeps the live model, says so, and leaves the version for `cypherloop adapters promote`."""
    from agent.core.adapters import read_active
    from finetune.bootstrap import Bootstrap
    from finetune.registry import AdapterRegistry
    from ui.cli_train import adapters_main

    settings = settings_for(tmp_path / "home", model_backend="transformers")
    run = _trained(Bootstrap(settings, "shop", device="cpu"), tmp_path, new, live)
    out = run._promote()
    home = settings.home_dir
    assert out["status"] == status and out["version"] == "v0001"
    assert out["decision"] == ("promote" if status == "promoted" else "reject")
    assert AdapterRegistry(home).versions() == ["v0001"]  # kept, whatever the decision
    assert AdapterRegistry(home).meta("v0001")["gate"]["decision"] == out["decision"]
    if status == "promoted":
        assert read_active(home).version == "v0001"
        assert out["summary"] == f"v0001 is live (held-out {new}/12 vs live {live}/12)"
        return
    assert read_active(home) is None
    assert out["summary"] == (f"v0001 not promoted: held-out {new}/12 vs live {live}/12, needs to beat the "
                              "live model; v0001 stays in the registry; `cypherloop adapters promote v0001` "
                              "makes it live by hand")
    monkeypatch.setenv("CYPHERLOOP_HOME", str(home))
    monkeypatch.setenv("CYPHERLOOP_MODEL_BACKEND", "transformers")
    assert adapters_main(["promote", "v0001"]) == 0
    assert read_active(home).version == "v0001" and "v0001 is live" in capsys.readouterr().out


def _trained(run, tmp_path: Path, new: int, live: int):
    """``run`` with every stage before promote done: a full model's files (as finetune.full writes them) and
    the held-out scores ``new`` / ``live`` of 12."""
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    run.state["stages"] |= {
        "profile": {"done": True},
        "generate": {"done": True},
        "index": {"done": True},
        "build": {"done": True, "dataset_hash": "h"},
        "train": {"done": True, "model_dir": str(model), "metrics": {}},
        "evaluate": {"done": True, "scores": {side: {"accuracy": round(k / 12, 4), "correct": k, "n": 12}
                                              for side, k in (("new", new), ("live", live))}},
    }
    return run


class Killed(BaseException):
    """A kill -9 at that point: nothing after it runs (no ``except Exception`` catches a BaseException)."""


@pytest.mark.parametrize("new, live, status", [(6, 5, "promoted"), (5, 5, "rejected")],
                         ids=["better", "a tie"])
def test_a_bootstrap_killed_after_its_registry_add_resumes_without_a_second_version(
        tmp_path, settings_for, shop, monkeypatch, new, live, status):
    """The promote stage adds the version to the registry before the bootstrap saves its state: killed between
    the two, a resumed run used to add the same model again (v0002). The add is keyed by the run now."""
    from finetune.bootstrap import Bootstrap
    from finetune.registry import AdapterRegistry

    settings = settings_for(tmp_path / "home", model_backend="transformers")
    run = _trained(Bootstrap(settings, "shop", device="cpu", graph_store=shop, progress=False), tmp_path, new,
                   live)
    run._save_state()
    save = Bootstrap._save_state

    def killed_once_promoted(self):
        if "promote" in self.state["stages"]:
            raise Killed
        save(self)

    monkeypatch.setattr(Bootstrap, "_save_state", killed_once_promoted)
    with pytest.raises(Killed):
        run.run()
    reg = AdapterRegistry(settings.home_dir)
    state = json.loads((run.dir / "state.json").read_text())
    assert reg.versions() == ["v0001"] and "promote" not in state["stages"]  # the kill fell between the two
    monkeypatch.setattr(Bootstrap, "_save_state", save)

    report = Bootstrap(settings, "shop", device="cpu", graph_store=shop, progress=False).run()
    assert (report.status, report.version) == (status, "v0001")
    assert reg.versions() == ["v0001"]  # not added a second time
    meta = reg.meta("v0001")
    assert meta["gate"]["decision"] == ("promote" if status == "promoted" else "reject")
    assert meta["status"] == status
    if status == "promoted":
        assert reg.active() == "v0001" and reg.history()["stack"] == ["v0001"]
        assert [e["action"] for e in reg.history()["events"]] == ["promote"]
    else:
        assert reg.active() is None
    again = Bootstrap(settings, "shop", device="cpu", graph_store=shop, progress=False).run()
    assert (again.status, again.version, reg.versions()) == (status, "v0001", ["v0001"])


def test_a_state_with_the_other_spelling_still_reads(tmp_path, settings_for, shop):
    """A state file whose promote stage says "reject" (the gate's word) reads as the outcome "rejected"."""
    from finetune.bootstrap import Bootstrap
    from finetune.decision import Outcome

    settings = settings_for(tmp_path / "home")
    run = Bootstrap(settings, "shop", device="cpu", graph_store=shop, progress=False)
    _trained(run, tmp_path, 5, 5)
    run.state["stages"]["promote"] = {"done": True, "status": "reject", "version": "v0001", "summary": "kept"}
    run._save_state()
    report = Bootstrap(settings, "shop", device="cpu", graph_store=shop, progress=False).run()
    assert report.status is Outcome.REJECTED and report.version == "v0001"


@pytest.mark.parametrize("stage", ["index", "build"])
def test_a_stage_killed_before_its_state_is_saved_writes_the_same_on_resume(tmp_path, settings_for, shop,
                                                                            monkeypatch, stage):
    """The index (the graph's pool) and the build (the training set) write outside the state too; killed
    after writing, before the state says so, the resumed stage replaces what it wrote whole: the pool and the
    dataset come out the same, nothing in them twice."""
    from finetune_helpers import cypher_pairs

    from agent.core.files import jsonl_text
    from finetune.bootstrap import Bootstrap
    from finetune.dataset import dataset_hash

    settings = settings_for(tmp_path / "home")
    run = Bootstrap(settings, "shop", device="cpu", graph_store=shop, progress=False, general_rows=5,
                    stop_after=stage)
    run.dir.mkdir(parents=True)
    pairs = cypher_pairs(30)
    ids = {c: f"q{n}" for n, c in enumerate(dict.fromkeys(c for _, c in pairs))}
    (run.dir / "pairs.jsonl").write_text(jsonl_text(
        {"question": q, "cypher": c, "query_id": ids[c], "category": "test"} for q, c in pairs))
    run.state["stages"] |= {"profile": {"done": True}, "generate": {"done": True}}
    run._save_state()
    save = Bootstrap._save_state

    def killed_once_written(self):
        if self.state["stages"].get(stage, {}).get("done"):
            raise Killed
        save(self)

    monkeypatch.setattr(Bootstrap, "_save_state", killed_once_written)
    with pytest.raises(Killed):
        run.run()
    monkeypatch.setattr(Bootstrap, "_save_state", save)
    written = {p.relative_to(run.dir): p.read_bytes() for p in run.dir.rglob("*.jsonl")}
    hashed = dataset_hash(run.dir / "dataset") if stage == "build" else None

    Bootstrap(settings, "shop", device="cpu", graph_store=shop, progress=False, stop_after=stage).run()
    state = json.loads((run.dir / "state.json").read_text())
    assert state["stages"][stage]["done"]
    assert {p.relative_to(run.dir): p.read_bytes() for p in run.dir.rglob("*.jsonl")} == written
    pool = (run.dir / "pool" / "pool.jsonl").read_text().splitlines()
    assert len(pool) == len(set(pool)) == len((run.dir / "pool_pairs.jsonl").read_text().splitlines())
    if stage == "build":
        assert state["stages"]["build"]["dataset_hash"] == hashed
