"""``cypherloop bootstrap`` end to end on a real graph with the tiny model: killed while training, resumed,
finished — the pool indexed for the graph, a full-model version in the registry, the live model switched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
    assert report["status"] in ("promoted", "rejected")
    reg = AdapterRegistry(home.home)
    assert reg.versions() == [report["version"]] and reg.meta(report["version"])["kind"] == "full"
    assert reg.meta(report["version"])["graph"] == "shop"
    if report["status"] == "promoted":
        assert reg.active() == report["version"]
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
