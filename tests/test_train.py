"""Training on a tiny random-init Llama with the SmolLM2 tokenizer: the real trl/peft path in seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from finetune_helpers import SHOP_SCHEMA, tiny_model_dir, write_dataset

from agent.core.errors import DataError, TrainingError
from finetune.config import load_recipe
from finetune.dataset import dataset_hash
from finetune.train import TrainResult, last_complete_checkpoint, plot_loss, read_loss_log, train

ROOT = Path(__file__).resolve().parent.parent
FAST = [
    "logging_steps=1",
    "max_eval_samples=4",
    "per_device_train_batch_size=4",
    "gradient_accumulation_steps=1",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


class Snapshot:
    """Trainer callback holding copies of every parameter at the start and at the end of training."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Snap(TrainerCallback):
            begin: dict = {}
            end: dict = {}

            def on_train_begin(self, args, state, control, model=None, **kw):
                self.begin = {n: p.detach().clone() for n, p in model.named_parameters()}

            def on_train_end(self, args, state, control, model=None, **kw):
                self.end = {n: p.detach().clone() for n, p in model.named_parameters()}

        return _Snap()


@pytest.fixture(scope="module")
def trained(tiny, data, tmp_path_factory):
    """One short run shared by the tests that inspect its outputs."""
    snap = Snapshot()
    recipe = load_recipe("tiny-cpu", [*FAST, "max_steps=4", "eval_steps=2", "learning_rate=1e-2"])
    result = train(
        recipe,
        data_dir=data,
        output_dir=tmp_path_factory.mktemp("run"),
        base_model=tiny,
        callbacks=[snap],
        device="cpu",
    )
    return result, snap


def test_lora_weights_change_and_base_weights_do_not(trained):
    result, snap = trained
    lora = [n for n in snap.begin if "lora_" in n]
    base = [n for n in snap.begin if "lora_" not in n]
    assert lora and base
    changed = [n for n in lora if not snap.begin[n].equal(snap.end[n])]
    assert len(changed) == len(lora), set(lora) - set(changed)
    assert all(snap.begin[n].equal(snap.end[n]) for n in base)
    assert result.metrics["trainable_params"] < result.metrics["total_params"]


def test_run_writes_adapter_loss_log_plot_and_metrics(trained, data):
    result, _ = trained
    run = Path(result.output_dir)
    assert (Path(result.adapter_dir) / "adapter_config.json").is_file()
    assert (Path(result.adapter_dir) / "adapter_model.safetensors").is_file()
    recs = read_loss_log(Path(result.loss_log))
    assert [r["step"] for r in recs if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in recs if "eval_loss" in r] == [2, 4]
    assert result.loss_plot and Path(result.loss_plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = json.loads((run / "metrics.json").read_text())
    for key in (
        "train_loss",
        "eval_loss",
        "tokens_per_second",
        "samples_per_second",
        "peak_memory_gb",
        "global_step",
    ):
        assert m[key] is not None and m[key] >= 0, key
    assert m["global_step"] == 4 and m["device"] == "cpu" and m["quantization"] is None
    assert m["tokens_per_second"] > 0 and m["samples_per_second"] > 0
    assert (run / "resolved_recipe.yaml").is_file()
    assert TrainResult.load(run).dataset_hash == result.dataset_hash == dataset_hash(data)


def test_a_finished_run_is_returned_not_retrained(trained, tiny, data):
    result, _ = trained
    recipe = load_recipe("tiny-cpu", [*FAST, "max_steps=4", "eval_steps=2", "learning_rate=1e-2"])
    again = train(recipe, data_dir=data, output_dir=Path(result.output_dir), base_model=tiny, device="cpu")
    assert again.finished_at == result.finished_at


def test_a_different_recipe_refuses_a_partial_run_folder(trained, tiny, data, tmp_path):
    (tmp_path / "resolved_recipe.yaml").write_text(
        Path(trained[0].output_dir, "resolved_recipe.yaml").read_text()
    )
    with pytest.raises(TrainingError, match="different recipe"):
        train(
            load_recipe("tiny-cpu", ["lora_r=4"]),
            data_dir=data,
            output_dir=tmp_path,
            base_model=tiny,
            device="cpu",
        )


def test_adapter_reloads_and_generates(trained, tiny, settings):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, snap = trained
    tok = AutoTokenizer.from_pretrained(str(tiny))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny)), result.adapter_dir)
    reloaded = {n: p for n, p in model.named_parameters() if "lora_" in n}
    trained_lora = {n: p for n, p in snap.end.items() if "lora_" in n}
    assert reloaded.keys() == trained_lora.keys()
    assert all(torch.equal(p, trained_lora[name]) for name, p in reloaded.items())
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "How many customers?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]

    # and through the serving generator, with the adapter pinned by folder
    from agent.models.local import TransformersGenerator

    gen = TransformersGenerator(
        settings.model_copy(
            update={
                "base_model": str(tiny),
                "adapter": result.adapter_dir,
                "max_new_tokens": 6,
                "device": "cpu",
            }
        )
    )
    text = gen.generate("How many customers live in Paris?", SHOP_SCHEMA)
    assert isinstance(text, str) and gen.version.endswith("+adapter")


def test_trained_prompt_tokens_equal_serving_prompt_tokens(tiny, data):
    """Train/serve contract: the tokens trl trains on before the completion are exactly what serving feeds."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from agent.core.prompt import prompt_token_ids
    from finetune.train import read_records

    records = read_records(data / "train.jsonl")
    tok = AutoTokenizer.from_pretrained(str(tiny))
    from transformers import AutoModelForCausalLM

    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(str(tiny)),
        args=SFTConfig(
            output_dir=str(data / "_tok"),
            use_cpu=True,
            bf16=False,
            report_to="none",
            completion_only_loss=True,
            max_length=512,
        ),
        train_dataset=Dataset.from_list(records[:3]),
        processing_class=tok,
    )
    for rec, row in zip(records[:3], trainer.train_dataset, strict=True):
        # loss starts at the completion
        n_prompt = next(i for i, label in enumerate(row["labels"]) if label != -100)
        assert row["input_ids"][:n_prompt] == prompt_token_ids(tok, rec["prompt"])
        completion = tok.decode(row["input_ids"][n_prompt:])
        assert completion.startswith(rec["completion"][0]["content"]) and "<|im_end|>" in completion


def test_bad_dataset_is_a_data_error(tiny, tmp_path):
    (tmp_path / "train.jsonl").write_text('{"question": "q", "cypher": "MATCH (n) RETURN n"}\n')
    with pytest.raises(DataError, match="prompt"):
        train(
            load_recipe("tiny-cpu"),
            data_dir=tmp_path,
            output_dir=tmp_path / "run",
            base_model=tiny,
            device="cpu",
        )
    with pytest.raises(DataError, match="not found"):
        train(
            load_recipe("tiny-cpu"),
            data_dir=tmp_path / "none",
            output_dir=tmp_path / "run",
            base_model=tiny,
            device="cpu",
        )


def test_qlora_recipe_falls_back_to_plain_lora_without_cuda(tiny, data, tmp_path, caplog):
    recipe = load_recipe("seeds-qlora", [*FAST, "max_steps=1", "activation_checkpointing=false", "lora_r=4"])
    with caplog.at_level("WARNING"):
        result = train(recipe, data_dir=data, output_dir=tmp_path, base_model=tiny, device="cpu")
    assert result.metrics["quantization"] is None and result.metrics["dtype"] == "float32"
    assert "plain LoRA" in caplog.text


def test_padding_free_recipe_trains_on_cpu(tiny, data, tmp_path):
    recipe = load_recipe(
        "fast-gpu",
        ["max_steps=2", "per_device_train_batch_size=4", "lora_r=4", "logging_steps=1", "max_eval_samples=4"],
    )
    result = train(recipe, data_dir=data, output_dir=tmp_path, base_model=tiny, device="cpu")
    assert result.metrics["global_step"] == 2 and result.metrics["tokens_per_second"] > 0


def test_plot_loss_from_a_log(tmp_path):
    log = tmp_path / "loss.jsonl"
    log.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}, {"step": 2, "eval_loss": 1.5}]
        )
        + '{"step": 3, "lo'
    )
    assert plot_loss(log, tmp_path / "p.png").is_file()
    assert plot_loss(tmp_path / "missing.jsonl", tmp_path / "q.png") is None


def test_partial_checkpoint_is_skipped(tmp_path):
    good, torn = tmp_path / "checkpoint-4", tmp_path / "checkpoint-8"
    good.mkdir()
    torn.mkdir()
    (good / "trainer_state.json").write_text("{}")
    (torn / "adapter_model.safetensors").write_text("x")
    assert last_complete_checkpoint(tmp_path, clean=True) == str(good)
    assert not torn.exists()


def test_interrupted_run_resumes_from_its_last_checkpoint(tiny, data, tmp_path):
    """Kill a training subprocess after its first checkpoint; the same command resumes from checkpoint-N."""
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "finetune.train",
        "--recipe",
        "tiny-cpu",
        "--data",
        str(data),
        "--output",
        str(out),
        "--base",
        str(tiny),
        *FAST,
        "max_steps=40",
        "save_steps=4",
        "eval_steps=100",
        "save_total_limit=3",
        "eval_fraction=0",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        # wait on progress, not on the clock: a loaded machine may take many minutes to get here
        while proc.poll() is None and last_complete_checkpoint(out) is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    killed_at = last_complete_checkpoint(out)
    assert killed_at is not None and not (out / "train_result.json").exists()
    step = int(killed_at.rsplit("-", 1)[1])
    assert step < 40

    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = TrainResult.load(out)
    assert result.resumed_from is not None and int(result.resumed_from.rsplit("-", 1)[1]) >= step
    assert result.metrics["global_step"] == 40 and result.metrics["session_steps"] < 40
    steps = [r["step"] for r in read_loss_log(out / "loss.jsonl") if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # no step logged twice after the resume


def test_examples_cut_by_max_length_are_dropped_not_trained(tiny, data, tmp_path, caplog):
    from finetune.train import read_records

    records = read_records(data / "train.jsonl")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    lengths = sorted(
        len(
            tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for r in records
    )
    limit = lengths[len(lengths) // 2]  # about half the examples do not fit
    recipe = load_recipe(
        "tiny-cpu", [*FAST, "max_steps=1", f"max_length={limit}", "lora_r=4", "eval_fraction=0"]
    )
    with caplog.at_level("WARNING"):
        result = train(recipe, data_dir=data, output_dir=tmp_path / "run", base_model=tiny, device="cpu")
    assert 0 < result.metrics["n_dropped_too_long"] < len(records) and "longer than max_length" in caplog.text
    with pytest.raises(DataError, match="longer than max_length"):
        train(
            load_recipe("tiny-cpu", [*FAST, "max_length=16"]),
            data_dir=data,
            output_dir=tmp_path / "run2",
            base_model=tiny,
            device="cpu",
        )


def test_train_cli_trains_and_registers(tiny, data, tmp_path, monkeypatch, capsys):
    from finetune.registry import AdapterRegistry
    from ui.cli_train import adapters_main, train_main

    monkeypatch.setenv("CYPHERLOOP_HOME", str(tmp_path))
    args = [
        "--recipe",
        "tiny-cpu",
        "--data",
        str(data),
        "--base",
        str(tiny),
        "--register",
        *FAST,
        "max_steps=2",
        "lora_r=4",
        "eval_steps=2",
    ]
    assert train_main(args) == 0
    out = capsys.readouterr().out
    assert "registered v0001 (candidate" in out and "tokens/s" in out
    meta = AdapterRegistry(tmp_path).meta("v1")
    assert (
        meta["gate"]["decision"] == "not evaluated"
        and meta["metrics"]["global_step"] == 2
        and AdapterRegistry(tmp_path).active() is None
    )
    assert (tmp_path / "adapters" / "v0001" / "loss.png").is_file()
    assert adapters_main(["list"]) == 0 and "not evaluated" in capsys.readouterr().out
    assert (
        train_main(["--recipe", "tiny-cpu", "--show-recipe", "lora_r=3"]) == 0
        and "lora_r: 3" in capsys.readouterr().out
    )
    from ui.cli import main

    assert main(["train", "--recipe", "tiny-cpu", "--data", str(tmp_path / "nothing")]) == 2
    assert "no dataset at" in capsys.readouterr().err
