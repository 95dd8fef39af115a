"""Train a LoRA / QLoRA adapter with trl's SFTTrainer from a YAML recipe.

    python -m finetune.train --recipe tiny-cpu --data DATASET_DIR --output RUN_DIR [--max_steps 20 ...]
    accelerate launch --num_processes 8 -m finetune.train --config my-recipe.yaml --data DATASET_DIR --output
    RUN_DIR
    cypherloop train --recipe NAME|FILE --graph demo [max_steps=20 ...]   (paths from the settings)

DATASET_DIR holds ``train.jsonl`` from ``finetune.dataset`` (conversational ``prompt``/``completion`` records
made by ``agent.core.prompt.training_record``). RUN_DIR receives checkpoints, ``adapter/`` (the PEFT files),
``loss.jsonl``, ``loss.png``, ``metrics.json``, ``resolved_recipe.yaml`` and, last, ``train_result.json``
(written only when the run is complete). Running the same command again resumes from the newest
``checkpoint-N``; after completion it returns the finished result.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import os
import random
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.core.env import library_defaults
from agent.core.errors import DataError, TrainingError, run_guarded
from agent.core.files import atomic_write_text, iter_jsonl, read_jsonl, write_jsonl
from agent.core.settings import Settings, load_settings
from agent.models.local import ensure_base_model
from finetune.config import Recipe, load_recipe
from finetune.dataset import dataset_hash

log = logging.getLogger("cypherloop.train")

RESULT_FILE = "train_result.json"
LOSS_LOG = "loss.jsonl"
LOSS_PLOT = "loss.png"
RECIPE_FILE = "resolved_recipe.yaml"
PROJECT_DEFAULTS: dict[str, Any] = {
    "logging_first_step": True,
    "include_num_input_tokens_seen": "non_padding",
    "report_to": "none",
}
"""SFTConfig values cypherloop prefers where a recipe says nothing."""


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
    """``finetune.dataset.dataset_hash`` of the data folder (what the registry records and dedupes on)."""
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
            --base <home>/models/smollm2-135m-instruct --max_steps 20
        accelerate launch --num_processes 8 -m finetune.train --recipe seeds-qlora \
            --data <home>/datasets/demo --output runs/demo-seeds --base <model dir>

    Any other ``--field value`` (or ``field=value``) overrides the recipe (``finetune.config``). Steps
    (``train``):
    data → tokenizer/chat template → model (4-bit where CUDA + bitsandbytes) → SFTTrainer (completion-only
    loss) → train, resuming the newest complete checkpoint → adapter + metrics.
    """
    library_defaults()
    p = argparse.ArgumentParser(prog="python -m finetune.train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--recipe",
        "--config",
        required=True,
        help="shipped recipe name (tiny-cpu, seeds-qlora, fast-gpu) or a YAML file",
    )
    p.add_argument("--data", help="dataset folder with train.jsonl (default: the recipe's dataset_dir)")
    p.add_argument(
        "--output", required=True, help="run folder (checkpoints, adapter/, loss.jsonl, metrics.json)"
    )
    p.add_argument(
        "--base",
        help="base model directory (default: the recipe's model_name_or_path, else settings.base_model)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="delete an existing run folder instead of resuming"
    )
    args, overrides = p.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    recipe = load_recipe(args.recipe, overrides)
    data_dir = args.data or recipe.options.dataset_dir
    if not data_dir:
        raise DataError("no dataset: pass --data DIR or set dataset_dir in the recipe")
    base = args.base or recipe.model.model_name_or_path or str(resolve_base_model(load_settings(), None))
    result = train(
        recipe,
        data_dir=Path(data_dir),
        output_dir=Path(args.output),
        base_model=base,
        overwrite=args.overwrite,
    )
    print(json.dumps({"adapter": result.adapter_dir, **_headline(result.metrics)}, indent=2))
    return 0


def resolve_base_model(settings: Settings, name: str | None) -> Path:
    """A base-model directory: an existing folder as is, else the agent's converter (packaged default →
    safetensors)."""
    if name and Path(name).expanduser().is_dir():
        return Path(name).expanduser().resolve()
    if name:
        settings = settings.model_copy(update={"base_model": name})
    if Path(settings.base_model).expanduser().is_dir():
        return Path(settings.base_model).expanduser().resolve()
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
    """data → tokenizer and chat template → model (4-bit where CUDA + bitsandbytes) → SFTTrainer → train
    (resume) → save.

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects (tests use one to snapshot weights).
    ``device``: auto, cpu or cuda. Raises DataError for bad data and TrainingError for failed training.
    """
    import torch
    from accelerate import PartialState

    state = PartialState()
    output_dir, data_dir, base_model = (Path(x).resolve() for x in (output_dir, data_dir, base_model))

    # 0. Where we are: a finished run is returned as is; a partial one resumes; a different recipe refuses.
    finished = _finished_run(recipe, output_dir, overwrite, state)
    if finished is not None:
        return finished
    resume_from = last_complete_checkpoint(output_dir, clean=state.is_main_process)

    # 1. Device, precision, quantisation: decided once, logged with the resolved recipe.
    cuda = torch.cuda.is_available() and device != "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device=cuda but torch sees no CUDA device")
    runtime = runtime_choices(recipe, cuda)
    if state.is_main_process:
        atomic_write_text(output_dir / RECIPE_FILE, recipe.to_yaml())
        log.info("recipe %s (%s): resolved in %s", recipe.name, recipe.fingerprint()[:12],
                 output_dir / RECIPE_FILE)
        log.info("runtime: %s; base %s; data %s; output %s; resume from %s", runtime, base_model, data_dir,
                 output_dir, resume_from)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # 2. Data: train.jsonl → shuffled train / eval split (the gate's heldout.jsonl is never read here).
    train_records, eval_records = split_records(read_records(data_dir / "train.jsonl"), recipe)

    # 3-5. Tokenizer (the base model's own chat template, as serving uses), model, trainer.
    trainer, meter = _make_trainer(recipe, runtime, base_model, output_dir, train_records, eval_records,
                                   resume_from, callbacks)

    # 6. Train, resuming from the newest checkpoint when one exists.
    try:
        output = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError as e:  # type: ignore[attr-defined]
        raise TrainingError(f"out of memory: lower per_device_train_batch_size or max_length, or set "
                            f"activation_checkpointing=true ({e})") from e
    evals = [r["eval_loss"] for r in trainer.state.log_history if "eval_loss" in r]
    if eval_records and not evals:  # eval_steps beyond the last step: measure once at the end
        evals = [trainer.evaluate()["eval_loss"]]

    # 7. Save the adapter, the metrics, the loss curve; train_result.json last (marks the run complete).
    trainer.save_model(str(output_dir / "adapter"))
    metrics = {
        "train_loss": output.metrics.get("train_loss"),
        "eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        **_run_metrics(recipe, trainer, meter, state, train_records, eval_records),
        **_peak_memory(cuda),
        **{k: v for k, v in runtime.items() if k != "dtype_obj"},
    }
    result = TrainResult(output_dir=str(output_dir), adapter_dir=str(output_dir / "adapter"),
                         loss_log=str(output_dir / LOSS_LOG), loss_plot=None, recipe=recipe.name,
                         recipe_fingerprint=recipe.fingerprint(), base_model=str(base_model),
                         dataset_hash=dataset_hash(data_dir), metrics=metrics, resumed_from=resume_from,
                         finished_at=time.time())
    if state.is_main_process:
        title = f"Training and validation loss ({recipe.name})"
        plot = plot_loss(output_dir / LOSS_LOG, output_dir / LOSS_PLOT, title=title)
        result.loss_plot = str(plot) if plot else None
        atomic_write_text(output_dir / "metrics.json", json.dumps(metrics, indent=2, default=str))
        atomic_write_text(output_dir / RESULT_FILE, json.dumps(asdict(result), indent=2, default=str))
        log.info("done: %s", _headline(metrics))
    state.wait_for_everyone()
    return result


def _run_metrics(recipe: Recipe, trainer: Any, meter: Any, state: Any, train_records: list[dict[str, Any]],
                 eval_records: list[dict[str, Any]]) -> dict[str, Any]:
    """Steps, examples (after the length filter), parameters and throughput of a finished run."""
    packed = recipe.sft.packing
    n_train = len(trainer.train_dataset) if not packed else len(train_records)
    n_eval = (
        len(trainer.eval_dataset) if (trainer.eval_dataset is not None and not packed) else len(eval_records)
    )
    trainable, total = _param_counts(trainer.model)
    return {
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "epoch": trainer.state.epoch,
        "stopped_early": bool(trainer.args.load_best_model_at_end)
        and trainer.state.global_step < trainer.state.max_steps,
        "n_train": n_train,
        "n_eval": n_eval,
        "n_dropped_too_long": len(train_records) - n_train if not packed else 0,
        "trainable_params": trainable,
        "total_params": total,
        "world_size": state.num_processes,
        "transformers": _version("transformers"),
        **meter.speed(n_train, trainer.state),
    }


def _finished_run(recipe: Recipe, output_dir: Path, overwrite: bool, state: Any) -> TrainResult | None:
    """The result of a finished run in ``output_dir`` (None: train); refuses a folder of another recipe."""
    if overwrite and output_dir.exists() and state.is_main_process:
        shutil.rmtree(output_dir)
    state.wait_for_everyone()
    if (output_dir / RESULT_FILE).is_file():
        log.info(
            "run %s is already complete; returning its result (use overwrite to train again)", output_dir
        )
        return TrainResult.load(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    saved = output_dir / RECIPE_FILE
    if saved.is_file():
        previous = load_recipe(saved)
        if previous.fingerprint() != recipe.fingerprint():
            raise TrainingError(f"{output_dir} holds a run of a different recipe ({previous.name}); "
                                "pass overwrite or another output folder")
    return None


def _make_trainer(
    recipe: Recipe,
    runtime: dict[str, Any],
    base_model: Path,
    output_dir: Path,
    train_records: list[dict[str, Any]],
    eval_records: list[dict[str, Any]],
    resume_from: str | None,
    callbacks: Sequence[Any],
) -> tuple[Any, Any]:
    """The SFTTrainer and its loss meter: tokenizer, model (4-bit where the runtime allows), LoRA, run-time
    SFTConfig, callbacks."""
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
    from trl import SFTTrainer, get_peft_config

    tokenizer, model = _tokenizer_and_model(recipe, runtime, base_model)
    eval_ds = Dataset.from_list(eval_records) if eval_records else None
    args = sft_args(recipe, runtime, output_dir, has_eval=eval_ds is not None)
    meter = make_meter(
        output_dir / LOSS_LOG, resume_step=_checkpoint_step(resume_from), main_process=args.process_index == 0
    )
    extra = (
        [EarlyStoppingCallback(early_stopping_patience=recipe.options.early_stopping_patience)]
        if args.load_best_model_at_end
        else []
    )
    if recipe.options.max_train_seconds:
        extra.append(make_time_budget(recipe.options.max_train_seconds))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_records),
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=get_peft_config(recipe.model),
        callbacks=[meter, *callbacks, *extra],
    )
    if not args.packing and args.max_length is not None:
        main_process = args.process_index == 0
        trainer.train_dataset = _drop_cut_examples(
            trainer.train_dataset, args.max_length, "train", main_process
        )
        if trainer.eval_dataset is not None:
            trainer.eval_dataset = _drop_cut_examples(
                trainer.eval_dataset, args.max_length, "eval", main_process
            )
    # one step bar with its ETA and the latest loss, instead of transformers' bar plus a raw dict per log line
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if args.process_index == 0:
        trainer.add_callback(make_step_bar())
    trainable, total = _param_counts(trainer.model)
    if args.process_index == 0:
        log.info(
            "trainable parameters: %s of %s (%.2f %%)",
            f"{trainable:,}",
            f"{total:,}",
            100 * trainable / max(total, 1),
        )
    return trainer, meter


def _tokenizer_and_model(recipe: Recipe, runtime: dict[str, Any], base_model: Path) -> tuple[Any, Any]:
    """The base model's tokenizer (its own chat template, as serving uses; pad = eos where it has none) and
    the model in the runtime's dtype and attention, 4-bit where the runtime allows."""
    from accelerate import PartialState
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import get_quantization_config

    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    if not tokenizer.chat_template:
        raise TrainingError(f"the tokenizer of {base_model} has no chat template; prompts are chat messages")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    model_kwargs: dict[str, Any] = {
        "dtype": runtime["dtype_obj"],
        "attn_implementation": runtime["attn_implementation"],
    }
    if runtime["quantization"]:
        model_kwargs["quantization_config"] = get_quantization_config(
            dataclasses.replace(recipe.model, dtype=runtime["dtype"])
        )
        model_kwargs["device_map"] = {"": PartialState().local_process_index}  # each process its own GPU
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_model), **model_kwargs)
    except (OSError, ValueError) as e:
        raise TrainingError(f"cannot load base model {base_model}: {e}") from e
    model.config.use_cache = False
    return tokenizer, model


def sft_args(recipe: Recipe, runtime: dict[str, Any], output_dir: Path, *, has_eval: bool) -> Any:
    """The recipe's SFTConfig with the run-time fields (``finetune.config.RUNTIME_FIELDS``) filled in."""
    sft, opts = recipe.sft, recipe.options
    cuda = runtime["device"] == "cuda"
    early_stop = opts.early_stopping_patience > 0 and has_eval
    if opts.early_stopping_patience > 0 and not has_eval:
        log.warning("early stopping needs an eval split; data has none, so it is off")
    save_steps = sft.save_steps if "save_steps" in recipe.values else sft.eval_steps
    if early_stop and save_steps != sft.eval_steps:
        raise DataError(
            "early stopping keeps the best checkpoint: save_steps must equal eval_steps (or be left out)"
        )
    if sft.torch_compile and not cuda:
        log.info("torch_compile is used only on CUDA; off for this run")
    defaults = {
        k: v
        for k, v in {
            **PROJECT_DEFAULTS,
            "data_seed": sft.seed,
            "disable_tqdm": not sys.stderr.isatty(),
        }.items()
        if k not in recipe.values
    }
    return dataclasses.replace(
        sft,
        **defaults,
        output_dir=str(output_dir),
        max_length=None if (sft.padding_free and not sft.packing) else sft.max_length,
        completion_only_loss=True,
        assistant_only_loss=False,
        activation_checkpointing_kwargs={"use_reentrant": False} if sft.activation_checkpointing else None,
        bf16=runtime["bf16"],
        fp16=runtime["fp16"],
        tf32=True if cuda else None,
        use_cpu=not cuda,
        torch_compile=sft.torch_compile and cuda,
        use_liger_kernel=runtime["liger"],
        eval_strategy="steps" if has_eval else "no",
        eval_steps=sft.eval_steps if has_eval else None,
        save_strategy="steps",
        save_steps=save_steps,
        load_best_model_at_end=early_stop,
        metric_for_best_model="eval_loss" if early_stop else None,
        greater_is_better=False if early_stop else None,
    )


# ---------------------------------------------------------------------- data
def read_records(path: Path) -> list[dict[str, Any]]:
    """The prompt/completion records of a train.jsonl."""
    if not path.is_file():
        raise DataError(
            f"{path} not found; build a dataset first (`cypherloop data build`) or use `cypherloop retrain`"
        )
    records = []
    for no, rec in iter_jsonl(path):
        prompt, completion = rec.get("prompt"), rec.get("completion")
        if not (_is_messages(prompt) and _is_messages(completion)):
            raise DataError(f"{path}:{no}: needs conversational 'prompt' and 'completion' message lists "
                            "(agent.core.prompt.training_record)")
        records.append({"prompt": prompt, "completion": completion})
    if not records:
        raise DataError(f"{path} has no records")
    return records


def _drop_cut_examples(dataset: Any, max_length: int, split: str, main_process: bool) -> Any:
    """Drop examples that truncation cut (their answer lost its end: training on them teaches never to
    stop)."""
    n = len(dataset)
    kept = dataset.filter(
        lambda ex: len(ex["input_ids"]) < max_length,
        desc=f"Dropping {split} examples longer than {max_length}",
    )
    cut = n - len(kept)
    if cut and main_process:
        log.warning(
            "%d of %d %s examples are longer than max_length=%d and were dropped; raise max_length to keep "
            "them",
            cut,
            n,
            split,
            max_length,
        )
    if len(kept) == 0:
        raise DataError(f"every {split} example is longer than max_length={max_length}; raise it "
                        f"(e.g. max_length={2 * max_length})")
    return kept


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def split_records(
    records: list[dict[str, Any]], recipe: Recipe
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded shuffle, then the eval share off the end (at least one train record is always kept)."""
    d = recipe.options
    rows = list(records)
    random.Random(recipe.sft.seed).shuffle(rows)
    n_eval = int(round(len(rows) * d.eval_fraction)) if d.eval_fraction > 0 else 0
    n_eval = min(n_eval, len(rows) - 1)
    eval_rows, train_rows = rows[:n_eval], rows[n_eval:]
    if d.max_train_samples is not None:
        train_rows = train_rows[: d.max_train_samples]
    if d.max_eval_samples is not None:
        eval_rows = eval_rows[: d.max_eval_samples]
    return train_rows, eval_rows


# ---------------------------------------------------------------------- runtime choices
DTYPES = ("float32", "bfloat16", "float16")


def runtime_choices(recipe: Recipe, cuda: bool) -> dict[str, Any]:
    """Resolve the recipe's 'auto' values and the CUDA-only features for this machine.

    ``dtype`` (ModelConfig): float32 on a CPU; ``auto`` on CUDA is bfloat16 where supported, else float16;
    with
    4-bit it is also the compute dtype. ``attn_implementation: auto``: flash_attention_2 where flash-attn is
    importable on CUDA, else sdpa. Liger kernels only where importable on CUDA.
    """
    import torch

    m, sft = recipe.model, recipe.sft
    quantization = m.load_in_4bit and cuda and importlib.util.find_spec("bitsandbytes") is not None
    if m.load_in_4bit and not quantization:
        log.warning("4-bit QLoRA needs CUDA and bitsandbytes (%s); training a plain LoRA instead",
                    "no CUDA" if not cuda else "bitsandbytes missing")
    if not cuda:
        if m.dtype not in ("auto", "float32"):
            log.warning("dtype %s on the CPU is slow; using float32", m.dtype)
        dtype = "float32"
    elif m.dtype == "auto":
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    else:
        dtype = m.dtype
    if dtype not in DTYPES:
        raise DataError(f"dtype {dtype!r}: choose auto, {', '.join(DTYPES)}")
    attn = m.attn_implementation or "auto"
    if attn == "auto":
        attn = (
            "flash_attention_2"
            if (cuda and importlib.util.find_spec("flash_attn") and dtype != "float32")
            else "sdpa"
        )
    liger = bool(sft.use_liger_kernel and cuda and importlib.util.find_spec("liger_kernel"))
    if sft.use_liger_kernel and not liger:
        log.info("liger kernels not used (%s)", "no CUDA" if not cuda else "liger-kernel not installed")
    return {
        "device": "cuda" if cuda else "cpu",
        "quantization": f"{m.bnb_4bit_quant_type}{'+double' if m.use_bnb_nested_quant else ''}"
        if quantization
        else None,
        "dtype": dtype,
        "dtype_obj": getattr(torch, dtype),
        "bf16": cuda and dtype == "bfloat16",
        "fp16": cuda and dtype == "float16",
        "attn_implementation": attn,
        "liger": liger,
        "optim": str(getattr(sft.optim, "value", sft.optim)),
        "padding_free": sft.padding_free,
    }


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
            log.warning(
                "checkpoint %s is incomplete (killed while saving); %s",
                p.name,
                "deleting it" if clean else "skipping it",
            )
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

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_gb": round(rss_kb / 2**20, 3), "peak_memory_kind": "cpu max RSS of the process"}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "train_loss",
        "eval_loss",
        "global_step",
        "tokens_per_second",
        "samples_per_second",
        "peak_memory_gb",
        "device",
        "quantization",
    )
    return {k: metrics.get(k) for k in keys}


# ---------------------------------------------------------------------- logging and plotting
def make_meter(path: Path, resume_step: int | None, main_process: bool) -> Any:
    """A TrainerCallback: every log line to loss.jsonl (rank 0), and the session's throughput
    (``.speed()``)."""
    from transformers import TrainerCallback

    class Meter(TrainerCallback):
        def __init__(self, path: Path, resume_step: int | None, main_process: bool) -> None:
            self.path, self.main_process = Path(path), main_process
            self.t0 = self.t1 = 0.0
            self.tokens0 = self.step0 = 0
            self.epoch0 = 0.0
            if main_process and resume_step is not None and self.path.is_file():
                write_jsonl(
                    self.path, [r for r in read_loss_log(self.path) if r.get("step", 0) <= resume_step]
                )
            elif main_process and resume_step is None:
                self.path.unlink(missing_ok=True)

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()
            self.tokens0, self.step0, self.epoch0 = (
                state.num_input_tokens_seen,
                state.global_step,
                state.epoch or 0.0,
            )

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


def make_step_bar() -> Any:
    """A TrainerCallback: one tqdm bar over the optimiser steps (rate and ETA) with the latest losses; where
    bars are off (``disable_tqdm``: output is not a terminal) one short log line per log step instead."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class StepBar(TrainerCallback):
        bar: Any = None

        def on_train_begin(self, args, state, control, **kw):
            if not args.disable_tqdm:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step",
                                dynamic_ncols=True)

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            shown = {k: f"{logs[k]:.4g}" for k in ("loss", "eval_loss") if isinstance(logs.get(k), float)}
            if not shown:
                return
            if self.bar is not None:
                self.bar.set_postfix(shown, refresh=False)
            else:
                log.info("step %d/%d: %s", state.global_step, state.max_steps,
                         ", ".join(f"{k} {v}" for k, v in shown.items()))

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return StepBar()


def make_time_budget(seconds: float) -> Any:
    """A TrainerCallback that stops training cleanly (adapter saved) after ``seconds``
    (``max_train_seconds``)."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if time.perf_counter() - self.t0 > seconds:
                log.warning("time budget of %.0f s reached at step %d: stopping", seconds, state.global_step)
                control.should_training_stop = True

    return TimeBudget()


def read_loss_log(path: Path) -> list[dict[str, Any]]:
    """Records of a loss.jsonl (the last record per step and kind wins, so a resumed run reads cleanly)."""
    path = Path(path)
    return read_jsonl(path, tolerant=True) if path.is_file() else []  # tolerant: a line torn by a kill


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
        ax.plot(
            xs, [evals[x] for x in xs], label="validation loss", color="tab:orange", marker="o", linewidth=1.5
        )
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
    sys.exit(run_guarded(main))
