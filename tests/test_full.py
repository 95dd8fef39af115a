"""Full fine-tuning (finetune.full): recipes parse strictly, the loop learns, and a killed run resumes."""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from finetune_helpers import tiny_model_dir

from agent.core.errors import DataError, run_guarded
from agent.core.prompt import training_record
from finetune.config import RECIPES_DIR, load_recipe, shipped_recipes
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


@pytest.mark.parametrize("name", shipped_recipes("full"))
def test_shipped_full_recipes_parse_through_trl(name):
    cfg = FullConfig.load(name)
    section = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text())["full"]
    # every key of the file's full: section became a field, with its value (a YAML 1 in a float field: 1.0)
    assert {k: getattr(cfg, k) for k in section} == section
    assert all(type(getattr(cfg, k)) is float for k in ("epochs", "save_every_s", "budget_s"))


def test_unknown_or_bad_fields_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("full:\n  learning_rat: 1.0e-4\n")
    with pytest.raises(DataError, match="unknown field 'learning_rat' .did you mean 'learning_rate'"):
        FullConfig.load(bad)
    sections = tmp_path / "sections.yaml"
    sections.write_text("full:\n  epochs: 1\ntrain:\n  epochs: 2\n")
    with pytest.raises(DataError, match="unknown section.s. train"):
        FullConfig.load(sections)
    for override, message in [
        ("epoch=2", "unknown field 'epoch' .did you mean 'epochs'"),
        ("budget_s=soon", "invalid float value: 'soon'"),
        ("dtype=fp16", "choose auto, bf16 or fp32"),
        ("tokens_per_batch=8", "tokens_per_batch ≥ 64"),
        ("nokey", "field=value"),
    ]:
        with pytest.raises(DataError, match=message) as err:
            FullConfig.load("full-cpu", [override])
        assert "\n" not in str(err.value)


def test_recipes_of_the_other_kind_are_refused_by_name():
    with pytest.raises(DataError, match="tiny-cpu.yaml is a LoRA recipe"):
        FullConfig.load("tiny-cpu")
    with pytest.raises(DataError, match="full-cpu.yaml is a full fine-tune recipe"):
        load_recipe("full-cpu")
    with pytest.raises(DataError, match="shipped: full-cpu, full-gpu"):
        FullConfig.load("no-such-recipe")


def test_overrides_as_the_bootstrap_passes_them():
    """``cypherloop bootstrap`` puts its own budget and seed first and the user's ``--set`` after them: the
    last value of a field wins; ``full.`` prefixes and ``--field value`` flags work too."""
    words = ["budget_s=600", "seed=0", "budget_s=170", "full.epochs=0.5", "compile=true", "--seed", "3"]
    cfg = FullConfig.load("full-cpu", words)
    assert (cfg.budget_s, cfg.seed, cfg.epochs, cfg.compile) == (170.0, 3, 0.5, True)
    assert FullConfig.load(None, ["epochs=1"]) == FullConfig(epochs=1.0)


def test_the_entry_point_turns_a_bad_setting_into_one_line(tmp_path, capsys):
    from finetune.full import main

    code = run_guarded(lambda: main(["--data", str(tmp_path), "--base", str(tmp_path), "--output",
                                     str(tmp_path / "run"), "--recipe", "full-cpu", "epoch=2"]))
    assert code == DataError.exit_code
    err = capsys.readouterr().err
    assert err.startswith("error: override: unknown field 'epoch'") and err.count("\n") == 1


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


class _BrokenCompile:
    """Stands in for ``torch.compile``'s result on one decoder layer: fails the way a compiler does, at the
    call or only when the backward pass is built (AOTAutograd compiles the backward lazily, outside the
    forward call)."""

    def __init__(self, module, when):
        self.module, self.when, self.calls = module, when, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.when == "call":
            raise RuntimeError("inductor: unsupported op\nlong compiler traceback")
        out = self.module(*args, **kwargs)

        def fail(grad):
            raise RuntimeError("backward compile failed")

        (out if isinstance(out, torch.Tensor) else out[0]).register_hook(fail)
        return out


@pytest.mark.parametrize("when", ["call", "backward"])
def test_a_failing_torch_compile_costs_a_warning_not_the_run(tiny, data, tmp_path, monkeypatch, caplog, when):
    made = []
    monkeypatch.setattr(torch, "compile", lambda m, **kw: made.append(_BrokenCompile(m, when)) or made[-1])
    cfg = FullConfig.load("full-cpu", ["epochs=1", "tokens_per_batch=2048", "compile=true", "log_every=1"])
    with caplog.at_level("WARNING", logger="cypherloop.full"):
        result = train_full(data, tiny, tmp_path / "run", cfg)
    assert made and made[0].calls == 1  # tried once, then the eager layers for every step
    assert all(fake.calls <= 1 for fake in made)
    m = result.metrics
    assert m["steps"] == m["total_steps"] and m["compiled"] is False
    assert m["compile_error"].startswith("RuntimeError: ") and "traceback" not in m["compile_error"]
    assert "torch.compile failed" in caplog.text
    losses = [json.loads(x)["loss"] for x in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert all(math.isfinite(x) for x in losses)


@pytest.fixture(scope="module")
def varied(tmp_path_factory) -> Path:
    """Records of many lengths, so that batches come in many (rows, width) shapes."""
    import random

    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("varied-data")
    recs = []
    for i in range(160):
        words = " ".join(f"w{rng.randrange(99)}" for _ in range(rng.randrange(1, 60)))
        question = f"How many things {words}?"
        recs.append(training_record(question, f"MATCH (n:Thing {{id: {i}}}) RETURN n", SCHEMA))
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return folder


def test_a_compiled_run_builds_a_bounded_number_of_graphs(tiny, varied, tmp_path, monkeypatch):
    """Every batch shape differs, yet torch.compile builds ≤ 3 graphs for the layers (static first shape, then
    dynamic, a 1-row batch once more), shared by all layers; ``aot_eager`` traces as inductor would, without
    its code generation (slow on a CPU)."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, **{**kw, "backend": "aot_eager"}))
    torch._dynamo.reset()
    cfg = FullConfig.load("full-cpu", ["epochs=1", "tokens_per_batch=1024", "compile=true", "log_every=5"])
    m = train_full(varied, tiny, tmp_path / "run", cfg).metrics
    assert m["compiled"] is True and m["compile_error"] is None
    assert m["batch_shapes"] >= 8 and 1 <= m["compiled_graphs"] <= 3, m
    assert m["first_step_seconds"] is not None
    eager = train_full(varied, tiny, tmp_path / "eager", FullConfig.load("full-cpu", ["epochs=1",
                       "tokens_per_batch=1024", "log_every=5"])).metrics
    assert eager["compiled_graphs"] == 0 and eager["batch_shapes"] == m["batch_shapes"]
    assert eager["final_loss"] == pytest.approx(m["final_loss"], rel=1e-3)


def test_padding_changes_no_loss(tiny, varied):
    """A batch padded to a wider width, its rows together, gives the loss of the examples run one at a time
    without padding (target-token weighted): the causal mask keeps the pads after a row's tokens out of its
    attention, and the loss picks no pad."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.full import _collate, _forward_loss

    tok = AutoTokenizer.from_pretrained(str(tiny))
    model = AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32).eval()
    recs = [json.loads(x) for x in (varied / "train.jsonl").read_text().splitlines()[:6]]
    examples = tokenize_records(tok, recs, 4096)
    assert len({len(ids) for ids, _ in examples}) > 1
    loss = functools.partial(_forward_loss, model.get_decoder(), model.get_output_embeddings())
    with torch.no_grad():
        padded = loss(*_collate(examples, 256, tok.pad_token_id))
        alone = [(loss(*_collate([ex], 1, tok.pad_token_id)), len(ex[0]) - ex[1]) for ex in examples]
    expected = sum(v * n for v, n in alone) / sum(n for _, n in alone)
    assert padded.item() == pytest.approx(expected.item(), rel=1e-4)


def test_the_time_budget_stops_the_run_and_it_is_saved(tiny, data, tmp_path, monkeypatch):
    """The budget is checked on the host clock every step (no GPU sync): with a clock that advances a second a
    reading, a 30 s budget stops the run after a few steps, the last loss logged and the model saved."""
    import finetune.full as full

    ticks = iter(range(10**6))
    monkeypatch.setattr(full.time, "perf_counter", lambda: float(next(ticks)))
    cfg = FullConfig.load("full-cpu", ["epochs=6", "tokens_per_batch=1024", "log_every=100", "budget_s=30"])
    result = train_full(data, tiny, tmp_path / "run", cfg)
    m = result.metrics
    assert m["stopped_by_budget"] is True and 1 < m["steps"] < m["total_steps"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [m["steps"]] and math.isfinite(rows[0]["loss"])
    assert (Path(result.model_dir) / "model.safetensors").is_file()
