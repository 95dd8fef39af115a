"""Train a LoRA / QLoRA adapter with trl's SFTTrainer from a YAML recipe.

    python -m finetune.train --recipe tiny-cpu --data DATASET_DIR --output RUN_DIR [section.field=value ...]
    accelerate launch --num_processes 8 -m finetune.train --recipe seeds-qlora --data DATASET_DIR --output RUN_DIR
    cypherloop train --recipe NAME|FILE --graph demo [section.field=value ...]   (paths from the settings)

DATASET_DIR holds ``train.jsonl`` from ``finetune.dataset`` (conversational ``prompt``/``completion`` records
made by ``agent.prompt.training_record``). RUN_DIR receives checkpoints, ``adapter/`` (the PEFT files),
``loss.jsonl``, ``loss.png``, ``metrics.json``, ``resolved_recipe.yaml`` and, last, ``train_result.json``
(written only when the run is complete). Running the same command again resumes from the newest
``checkpoint-N``; after completion it returns the finished result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.adapters import atomic_write_text
from agent.errors import DataError, TrainingError
from finetune.config import Recipe, bnb_config, load_recipe, lora_config, torch_dtype

log = logging.getLogger("cypherloop.train")

RESULT_FILE = "train_result.json"
LOSS_LOG = "loss.jsonl"
LOSS_PLOT = "loss.png"


@dataclass
class TrainResult:
    """What a finished run produced (also written as RUN_DIR/train_result.json)."""

    output_dir: str
    adapter_dir: str
    loss_log: str
    loss_plot: str | None
    recipe: str
    recipe_fingerprint: str
    base_model: str
    dataset_hash: str
    metrics: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    finished_at: float = 0.0

    @classmethod
    def load(cls, run_dir: Path) -> TrainResult:
        return cls(**json.loads((Path(run_dir) / RESULT_FILE).read_text()))


# ---------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Train one adapter from a recipe; every run of the same command resumes the same run folder.

        python -m finetune.train --recipe tiny-cpu --data <home>/datasets/demo --output runs/demo-tiny \
            --base <home>/models/smollm2-135m-instruct train.max_steps=20
        accelerate launch --num_processes 8 -m finetune.train --recipe seeds-qlora \
            --data <home>/datasets/demo --output runs/demo-seeds --base <model dir>

    Steps (``train`` below): data → tokenizer/chat template → model (4-bit where CUDA + bitsandbytes) →
    SFTTrainer (completion-only loss) → train, resuming the newest complete checkpoint → adapter + metrics.
    """
    p = argparse.ArgumentParser(prog="python -m finetune.train", description=__doc__.split("\n")[0])
    p.add_argument("--recipe", required=True, help="shipped recipe name (tiny-cpu, seeds-qlora, fast-gpu) or a YAML file")
    p.add_argument("--data", help="dataset folder with train.jsonl (default: the recipe's data.dir)")
    p.add_argument("--output", required=True, help="run folder (checkpoints, adapter/, loss.jsonl, metrics.json)")
    p.add_argument("--base", help="base model directory (default: the recipe's model.base, else Settings.base_model)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run folder instead of resuming")
    p.add_argument("overrides", nargs="*", help="section.field=value, e.g. train.max_steps=20")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    recipe = load_recipe(args.recipe, args.overrides)
    data_dir = args.data or recipe.data.dir
    if not data_dir:
        raise DataError("no dataset: pass --data DIR or set data.dir in the recipe")
    base = args.base or recipe.model.base
    if base is None:
        from agent.settings import load_settings

        base = str(resolve_base_model(load_settings(), None))
    result = train(recipe, data_dir=Path(data_dir), output_dir=Path(args.output), base_model=base, overwrite=args.overwrite)
    print(json.dumps({"adapter": result.adapter_dir, **_headline(result.metrics)}, indent=2))
    return 0


def resolve_base_model(settings: Any, name: str | None) -> Path:
    """A base-model directory: an existing folder as is, else the agent's converter (packaged default → safetensors)."""
    if name and Path(name).expanduser().is_dir():
        return Path(name).expanduser().resolve()
    if settings is None:
        raise TrainingError(f"base model {name!r} is not a directory")
    if name:
        settings = settings.model_copy(update={"base_model": name})
    if Path(settings.base_model).expanduser().is_dir():
        return Path(settings.base_model).expanduser().resolve()
    try:
        from agent.models.local import ensure_base_model
    except ImportError as e:  # pragma: no cover - the agent part is missing
        raise TrainingError(f"cannot prepare base model {settings.base_model!r}: {e}") from e
    return Path(ensure_base_model(settings))


# ---------------------------------------------------------------------- the run
def train(
    recipe: Recipe,
    *,
    data_dir: Path,
    output_dir: Path,
    base_model: str | Path,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
    device: str = "auto",
) -> TrainResult:
    """data → tokenizer and chat template → model (4-bit where CUDA + bitsandbytes) → SFTTrainer → train (resume) → save.

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects (tests use one to snapshot weights).
    ``device``: auto, cpu or cuda. Raises DataError for bad data and TrainingError for failed training.
    """
    import torch
    import transformers
    from accelerate import PartialState
    from transformers import AutoModelForCausalLM, AutoTokenizer, EarlyStoppingCallback
    from trl import SFTConfig, SFTTrainer

    state = PartialState()
    main_process = state.is_main_process
    output_dir, data_dir, base_model = Path(output_dir).resolve(), Path(data_dir).resolve(), Path(base_model).resolve()

    # 0. Where we are: a finished run is returned as is; a partial one resumes; a different recipe refuses.
    done = output_dir / RESULT_FILE
    if overwrite and output_dir.exists() and main_process:
        shutil.rmtree(output_dir)
    state.wait_for_everyone()
    if done.is_file():
        log.info("run %s is already complete; returning its result (use overwrite to train again)", output_dir)
        return TrainResult.load(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    saved_recipe = output_dir / "resolved_recipe.yaml"
    if saved_recipe.is_file():
        import yaml

        from finetune.config import recipe_from_dict

        previous = recipe_from_dict(yaml.safe_load(saved_recipe.read_text()), source=str(saved_recipe))
        if previous.fingerprint() != recipe.fingerprint():
            raise TrainingError(f"{output_dir} holds a run of a different recipe ({previous.name}); pass overwrite or another output folder")
    resume_from = last_complete_checkpoint(output_dir, clean=main_process)

    # 1. Device, precision, quantisation: decided once, logged with the resolved recipe.
    cuda = torch.cuda.is_available() and device != "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device=cuda but torch sees no CUDA device")
    runtime = _runtime_choices(recipe, cuda)
    if main_process:
        atomic_write_text(saved_recipe, recipe.to_yaml())
        log.info("recipe %s (%s)\n%s", recipe.name, recipe.fingerprint(), recipe.to_yaml())
        log.info("runtime: %s; base %s; data %s; output %s; resume from %s", runtime, base_model, data_dir, output_dir, resume_from)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # 2. Data: train.jsonl → shuffled train / eval split (the gate's heldout.jsonl is never read here).
    records, dataset_hash = read_records(data_dir / "train.jsonl")
    train_records, eval_records = split_records(records, recipe)
    from datasets import Dataset

    train_ds = Dataset.from_list(train_records)
    eval_ds = Dataset.from_list(eval_records) if eval_records else None

    # 3. Tokenizer and chat template: the base model's own (the same one serving uses).
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    if not tokenizer.chat_template:
        raise TrainingError(f"the tokenizer of {base_model} has no chat template; prompts are chat messages")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    # 4. Model: 4-bit nf4 (QLoRA) where CUDA + bitsandbytes, else full precision; the LoRA goes on in the trainer.
    model_kwargs: dict[str, Any] = {"dtype": runtime["dtype_obj"], "attn_implementation": runtime["attn_implementation"]}
    if runtime["quantization"]:
        model_kwargs["quantization_config"] = bnb_config(recipe.model)
        model_kwargs["device_map"] = {"": state.local_process_index}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_model), **model_kwargs)
    except (OSError, ValueError) as e:
        raise TrainingError(f"cannot load base model {base_model}: {e}") from e
    model.config.use_cache = False

    # 5. Trainer: completion-only loss on prompt/completion records, eval + early stopping, checkpoints to resume.
    t = recipe.train
    has_eval = eval_ds is not None and len(eval_ds) > 0
    early_stop = t.early_stopping_patience > 0 and has_eval
    if t.early_stopping_patience > 0 and not has_eval:
        log.warning("early stopping needs an eval split; data has none, so it is off")
    save_steps = t.save_steps if t.save_steps is not None else t.eval_steps
    if early_stop and save_steps != t.eval_steps:
        raise DataError("early stopping keeps the best checkpoint: train.save_steps must equal train.eval_steps (or be null)")
    padding_free_unpacked = t.padding_free and not t.packing
    sft_kwargs = dict(
        output_dir=str(output_dir),
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_length=None if padding_free_unpacked else t.max_length,
        packing=t.packing,
        packing_strategy=t.packing_strategy,
        padding_free=t.padding_free,
        completion_only_loss=True,
        assistant_only_loss=False,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=runtime["optim"],
        gradient_checkpointing=t.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        bf16=runtime["bf16"],
        fp16=runtime["fp16"],
        tf32=True if (cuda and t.tf32) else None,
        torch_compile=t.torch_compile and cuda,
        use_liger_kernel=runtime["liger"],
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_steps if has_eval else None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=early_stop,
        metric_for_best_model="eval_loss" if early_stop else None,
        greater_is_better=False if early_stop else None,
        seed=t.seed,
        data_seed=t.seed,
        dataloader_num_workers=t.dataloader_num_workers,
        include_num_input_tokens_seen="non_padding",
        use_cpu=not cuda,
        report_to="none",
        disable_tqdm=not sys.stderr.isatty(),
    )
    if "warmup_ratio" in _fields(SFTConfig):  # transformers 4.x: warmup_steps is an int there
        sft_kwargs["warmup_ratio"], sft_kwargs["warmup_steps"] = t.warmup_ratio, 0
    args = SFTConfig(**_only_known(SFTConfig, sft_kwargs))
    loss_log = output_dir / LOSS_LOG
    meter = make_meter(loss_log, resume_step=_checkpoint_step(resume_from), main_process=main_process)
    trainer_callbacks = [meter, *callbacks]
    if early_stop:
        trainer_callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora),
        callbacks=trainer_callbacks,
    )
    if not t.packing and sft_kwargs["max_length"] is not None:
        trainer.train_dataset = _drop_cut_examples(trainer.train_dataset, t.max_length, "train", main_process)
        if trainer.eval_dataset is not None:
            trainer.eval_dataset = _drop_cut_examples(trainer.eval_dataset, t.max_length, "eval", main_process)
    n_train = len(trainer.train_dataset) if not t.packing else len(train_records)  # examples after the length filter
    n_eval = len(trainer.eval_dataset) if (trainer.eval_dataset is not None and not t.packing) else len(eval_records)
    trainable, total = _param_counts(trainer.model)
    if main_process:
        log.info("trainable parameters: %s of %s (%.2f %%)", f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1))

    # 6. Train, resuming from the newest checkpoint when one exists.
    try:
        output = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError as e:  # type: ignore[attr-defined]
        raise TrainingError(f"out of memory: lower train.per_device_train_batch_size or max_length, or set gradient_checkpointing=true ({e})") from e
    evals = [r["eval_loss"] for r in trainer.state.log_history if "eval_loss" in r]
    if has_eval and not evals:  # eval_steps beyond the last step: measure once at the end
        evals = [trainer.evaluate()["eval_loss"]]

    # 7. Save the adapter, the metrics, the loss curve; train_result.json last (marks the run complete).
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    metrics = {
        "train_loss": output.metrics.get("train_loss"),
        "eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "epoch": trainer.state.epoch,
        "stopped_early": early_stop and trainer.state.global_step < trainer.state.max_steps,
        "n_train": n_train,
        "n_eval": n_eval,
        "n_dropped_too_long": len(train_records) - n_train if not t.packing else 0,
        "trainable_params": trainable,
        "total_params": total,
        "world_size": state.num_processes,
        "transformers": transformers.__version__,
        **meter.speed(n_train, trainer.state),
        **_peak_memory(cuda),
        **{k: v for k, v in runtime.items() if k != "dtype_obj"},
    }
    result = TrainResult(
        output_dir=str(output_dir),
        adapter_dir=str(adapter_dir),
        loss_log=str(loss_log),
        loss_plot=None,
        recipe=recipe.name,
        recipe_fingerprint=recipe.fingerprint(),
        base_model=str(base_model),
        dataset_hash=dataset_hash,
        metrics=metrics,
        resumed_from=resume_from,
        finished_at=time.time(),
    )
    if main_process:
        plot = plot_loss(loss_log, output_dir / LOSS_PLOT, title=f"Training and validation loss ({recipe.name})")
        result.loss_plot = str(plot) if plot else None
        atomic_write_text(output_dir / "metrics.json", json.dumps(metrics, indent=2, default=str))
        atomic_write_text(done, json.dumps(asdict(result), indent=2, default=str))
        log.info("done: %s", _headline(metrics))
    state.wait_for_everyone()
    return result


# ---------------------------------------------------------------------- data
def read_records(path: Path) -> tuple[list[dict[str, Any]], str]:
    """prompt/completion records of a train.jsonl and the file's sha256 (the dataset hash)."""
    if not path.is_file():
        raise DataError(f"{path} not found; build a dataset first (`cypherloop data build`) or use `cypherloop retrain`")
    raw = path.read_bytes()
    records = []
    for no, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{no}: not JSON ({e.msg})") from e
        prompt, completion = rec.get("prompt"), rec.get("completion")
        if not (_is_messages(prompt) and _is_messages(completion)):
            raise DataError(f"{path}:{no}: needs conversational 'prompt' and 'completion' message lists (agent.prompt.training_record)")
        records.append({"prompt": prompt, "completion": completion})
    if not records:
        raise DataError(f"{path} has no records")
    return records, hashlib.sha256(raw).hexdigest()


def _drop_cut_examples(dataset: Any, max_length: int, split: str, main_process: bool) -> Any:
    """Drop examples that truncation cut (their answer lost its end: training on them teaches never to stop)."""
    n = len(dataset)
    kept = dataset.filter(lambda ex: len(ex["input_ids"]) < max_length, desc=f"Dropping {split} examples longer than {max_length}")
    cut = n - len(kept)
    if cut and main_process:
        log.warning("%d of %d %s examples are longer than max_length=%d and were dropped; raise train.max_length to keep them",
                    cut, n, split, max_length)
    if len(kept) == 0:
        raise DataError(f"every {split} example is longer than train.max_length={max_length}; raise it (e.g. max_length={2 * max_length})")
    return kept


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def split_records(records: list[dict[str, Any]], recipe: Recipe) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded shuffle, then the eval share off the end (at least one train record is always kept)."""
    d = recipe.data
    rows = list(records)
    random.Random(d.seed).shuffle(rows)
    n_eval = int(round(len(rows) * d.eval_fraction)) if d.eval_fraction > 0 else 0
    n_eval = min(n_eval, len(rows) - 1)
    eval_rows, train_rows = rows[:n_eval], rows[n_eval:]
    if d.max_train_samples is not None:
        train_rows = train_rows[: d.max_train_samples]
    if d.max_eval_samples is not None:
        eval_rows = eval_rows[: d.max_eval_samples]
    return train_rows, eval_rows


# ---------------------------------------------------------------------- runtime choices
def _runtime_choices(recipe: Recipe, cuda: bool) -> dict[str, Any]:
    """Resolve the recipe's 'auto' values and the CUDA-only features for this machine."""
    import importlib.util

    import torch

    m, t = recipe.model, recipe.train
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    quantization = m.load_in_4bit and cuda and bnb
    if m.load_in_4bit and not quantization:
        log.warning("4-bit QLoRA needs CUDA and bitsandbytes (%s); training a plain LoRA instead",
                    "no CUDA" if not cuda else "bitsandbytes missing")
    if not cuda:
        if m.dtype not in ("auto", "float32", "fp32"):
            log.warning("dtype %s on the CPU is slow; using float32", m.dtype)
        dtype = "float32"
    elif m.dtype == "auto":
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    else:
        dtype = m.dtype
    if quantization:  # non-quantised parts follow the compute dtype
        dtype = m.bnb_4bit_compute_dtype
    attn = m.attn_implementation
    if attn == "auto":
        attn = "flash_attention_2" if (cuda and importlib.util.find_spec("flash_attn") and dtype != "float32") else "sdpa"
    liger = bool(m.use_liger_kernel and cuda and importlib.util.find_spec("liger_kernel"))
    if m.use_liger_kernel and not liger:
        log.info("liger kernels not used (%s)", "no CUDA" if not cuda else "liger-kernel not installed")
    optim = t.optim
    if optim == "auto":
        optim = "adamw_torch_fused" if cuda else "adamw_torch"
    return {
        "device": "cuda" if cuda else "cpu",
        "quantization": f"{m.bnb_4bit_quant_type}{'+double' if m.bnb_4bit_use_double_quant else ''}" if quantization else None,
        "dtype": dtype,
        "dtype_obj": torch_dtype(dtype),
        "bf16": cuda and dtype in ("bfloat16", "bf16"),
        "fp16": cuda and dtype in ("float16", "fp16"),
        "attn_implementation": attn,
        "liger": liger,
        "optim": optim,
    }


def _fields(cls: type) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


def _only_known(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop arguments this trl/transformers version does not have (logged), so one recipe runs on several versions."""
    known = _fields(cls)
    dropped = sorted(k for k in kwargs if k not in known)
    if dropped:
        log.warning("this trl/transformers version has no %s; ignored", ", ".join(dropped))
    return {k: v for k, v in kwargs.items() if k in known}


def last_complete_checkpoint(output_dir: Path, clean: bool = False) -> str | None:
    """The newest ``checkpoint-N`` whose trainer_state.json (written last by the Trainer) parses.

    A kill during a save leaves a partial folder; it is skipped (and deleted when ``clean``), so the
    run resumes from the checkpoint before it instead of failing on a torn file.
    """
    found = []
    for p in Path(output_dir).glob("checkpoint-*"):
        step = _checkpoint_step(str(p))
        if p.is_dir() and step is not None:
            found.append((step, p))
    for _, p in sorted(found, reverse=True):
        try:
            json.loads((p / "trainer_state.json").read_text())
            return str(p)
        except (OSError, json.JSONDecodeError):
            log.warning("checkpoint %s is incomplete (killed while saving); %s", p.name, "deleting it" if clean else "skipping it")
            if clean:
                shutil.rmtree(p, ignore_errors=True)
    return None


def _checkpoint_step(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    try:
        return int(Path(checkpoint).name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def _param_counts(model: Any) -> tuple[int, int]:
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        if hasattr(p, "quant_state") or p.__class__.__name__ == "Params4bit":
            n *= 2  # 4-bit weights pack two values per byte element
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


def _peak_memory(cuda: bool) -> dict[str, Any]:
    if cuda:
        import torch

        return {
            "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "peak_memory_reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 3),
            "peak_memory_kind": "cuda max_memory_allocated (this process's GPU)",
            "gpu_name": torch.cuda.get_device_name(),
        }
    import resource

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_gb": round(rss_kb / 2**20, 3), "peak_memory_kind": "cpu max RSS of the process"}


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("train_loss", "eval_loss", "global_step", "tokens_per_second", "samples_per_second", "peak_memory_gb", "device", "quantization")
    return {k: metrics.get(k) for k in keys}


# ---------------------------------------------------------------------- logging and plotting
def make_meter(path: Path, resume_step: int | None, main_process: bool) -> Any:
    """A TrainerCallback: every log line to loss.jsonl (rank 0), and the session's throughput (``.speed()``)."""
    from transformers import TrainerCallback

    class Meter(TrainerCallback):
        def __init__(self, path: Path, resume_step: int | None, main_process: bool) -> None:
            self.path, self.main_process = Path(path), main_process
            self.t0 = self.t1 = 0.0
            self.tokens0 = self.step0 = 0
            self.epoch0 = 0.0
            if main_process and resume_step is not None and self.path.is_file():
                kept = [ln for ln in self.path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
                atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))
            elif main_process and resume_step is None:
                self.path.unlink(missing_ok=True)

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()
            self.tokens0, self.step0, self.epoch0 = state.num_input_tokens_seen, state.global_step, state.epoch or 0.0

        def on_train_end(self, args, state, control, **kw):
            self.t1 = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kw):
            if not self.main_process or not logs:
                return
            rec = {"step": state.global_step, "epoch": state.epoch, "time": time.time()}
            rec.update({k: v for k, v in logs.items() if isinstance(v, int | float)})
            with self.path.open("a") as f:
                f.write(json.dumps(rec) + "\n")

        def speed(self, n_train: int, state: Any) -> dict[str, Any]:
            seconds = max((self.t1 or time.perf_counter()) - self.t0, 1e-9)
            tokens = state.num_input_tokens_seen - self.tokens0
            samples = ((state.epoch or 0.0) - self.epoch0) * n_train
            steps = state.global_step - self.step0
            return {
                "train_seconds": round(seconds, 3),
                "tokens_seen": int(tokens),
                "tokens_per_second": round(tokens / seconds, 2),
                "samples_per_second": round(samples / seconds, 3),
                "steps_per_second": round(steps / seconds, 4),
                "session_steps": steps,
                "total_flos": state.total_flos,
            }

    return Meter(path, resume_step, main_process)


def read_loss_log(path: Path) -> list[dict[str, Any]]:
    """Records of a loss.jsonl (the last record per step and kind wins, so a resumed run reads cleanly)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill
    return out


def plot_loss(loss_log: Path, png: Path, title: str = "Training and validation loss") -> Path | None:
    """Train and eval loss against the optimiser step, as a PNG (None when there is nothing to plot)."""
    recs = read_loss_log(loss_log)
    train = {r["step"]: r["loss"] for r in recs if "loss" in r}
    evals = {r["step"]: r["eval_loss"] for r in recs if "eval_loss" in r}
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    if train:
        xs = sorted(train)
        ax.plot(xs, [train[x] for x in xs], label="training loss", color="tab:blue", linewidth=1.5)
    if evals:
        xs = sorted(evals)
        ax.plot(xs, [evals[x] for x in xs], label="validation loss", color="tab:orange", marker="o", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png)
    return png


if __name__ == "__main__":
    from ui.cli import run_guarded

    sys.exit(run_guarded(lambda: main()))
