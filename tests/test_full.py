"""Full fine-tuning (finetune.full): recipes parse strictly, the loop learns, and a killed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from finetune_helpers import tiny_model_dir

from agent.core.errors import ConfigError
from agent.core.prompt import training_record
from finetune.full import FullConfig, FullResult, make_batches, tokenize_records, train_full

SCHEMA = "Node properties:\nThing {id: INTEGER, name: STRING}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("full-data")
    recs = [
        training_record(
            f"How many things are called t{i}?", f"MATCH (n:Thing {{name: 't{i}'}}) RETURN count(n)", SCHEMA
        )
        for i in range(48)
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return folder


def test_shipped_recipes_parse_and_unknown_or_bad_fields_fail(tmp_path):
    for name in ("full-gpu", "full-cpu"):
        assert FullConfig.load(name).tokens_per_batch > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("full:\n  learning_rat: 1.0e-4\n")
    with pytest.raises(ConfigError, match="learning_rat"):
        FullConfig.load(bad)
    with pytest.raises(ConfigError, match="epoch"):
        FullConfig.load("full-cpu", ["epoch=2"])
    with pytest.raises(ConfigError, match="budget_s"):
        FullConfig.load("full-cpu", ["budget_s=soon"])
    assert FullConfig.load("full-cpu", ["full.epochs=0.5", "compile=true"]).epochs == 0.5


def test_targets_are_the_assistant_turn_and_batches_respect_the_budget(tiny, data):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    recs = [json.loads(x) for x in (data / "train.jsonl").read_text().splitlines()]
    examples = tokenize_records(tok, recs, 4096)
    ids, plen = examples[0]
    target = tok.decode(ids[plen:])
    assert target.startswith("MATCH (n:Thing {name: 't0'}) RETURN count(n)") and "<|im_end|>" in target
    import random

    lengths = [len(x) for x, _ in examples]
    batches = make_batches(lengths, 1024, 16, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(len(examples)))
    assert all(len(b) * -(-max(lengths[i] for i in b) // 16) * 16 <= 1024 for b in batches if len(b) > 1)


def test_the_loop_learns_and_writes_a_servable_model(tiny, data, tmp_path):
    cfg = FullConfig.load(
        "full-cpu",
        ["epochs=6", "learning_rate=1e-2", "warmup_steps=1", "tokens_per_batch=2048", "log_every=1"],
    )
    result = train_full(data, tiny, tmp_path / "run", cfg)
    losses = [json.loads(x)["loss"] for x in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.7 * losses[0], losses
    m = result.metrics
    assert m["steps"] == m["total_steps"] and m["examples"] == 48 and 0 < m["target_tokens"] < m["tokens"]
    assert (Path(result.model_dir) / "model.safetensors").is_file() and (
        Path(result.model_dir) / "tokenizer.json"
    ).is_file()
    assert not (tmp_path / "run" / "checkpoint").exists()
    again = train_full(data, tiny, tmp_path / "run", cfg)  # finished: returns the result, trains nothing
    assert again.metrics == result.metrics and FullResult.load(tmp_path / "run").model_dir == result.model_dir


def test_a_killed_run_resumes_from_its_checkpoint(tiny, data, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "finetune.full",
        "--data",
        str(data),
        "--base",
        str(tiny),
        "--output",
        str(run),
        "--recipe",
        "full-cpu",
        "epochs=6",
        "tokens_per_batch=1024",
        "save_every_s=0",
        "log_every=1",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoint" / "state.json"
    while not (state.is_file() and json.loads(state.read_text())["state"]["step"] >= 2):  # or the run ends
        assert proc.poll() is None, "the run ended before it wrote two checkpoints"
        time.sleep(0.2)  # a polling interval, not a limit
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = json.loads(state.read_text())["state"]["step"]
    assert not (run / "train_result.json").exists()
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    result = FullResult.load(run)
    assert result.metrics["steps"] == result.metrics["total_steps"] > done_before
    steps = [json.loads(x)["step"] for x in (run / "loss.jsonl").read_text().splitlines()]
    assert steps[-1] == result.metrics["total_steps"]
