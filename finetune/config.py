"""Training recipes: dataclasses with a help text on each field, read from YAML, overridden from the command line.

A recipe is a YAML file with up to five sections (``model``, ``lora``, ``data``, ``train``, ``gate``) whose keys
are exactly the field names below; an unknown or misspelt key is an error that names the closest field, so a
renamed field fails a test (``tests/test_recipes.py`` parses every shipped recipe), never a GPU run.

Overrides are ``key=value`` words: ``train.learning_rate=1e-4``, or the bare field name when it is unique across
sections (``learning_rate=1e-4``). Values are read as YAML (``packing=true``, ``target_modules=[q_proj,v_proj]``).

Small pure functions turn a recipe into the library objects (``bnb_config``, ``lora_config``); they import the
heavy packages only when called.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import DataError

RECIPES_DIR = Path(__file__).with_name("recipes")


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with a help text (mutable defaults go through ``default_factory``)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(kw_only=True)
class ModelConfig:
    """Which base model, and how it is loaded."""

    base: str | None = _f(None, "Base model: a local directory, the packaged default name, or null for Settings.base_model.")
    load_in_4bit: bool = _f(False, "QLoRA: load the base in 4 bit through bitsandbytes. Used only where CUDA and bitsandbytes are present; elsewhere the recipe trains a plain LoRA (with a warning).")
    bnb_4bit_quant_type: str = _f("nf4", "4-bit quantisation type: nf4 (the seeds') or fp4.")
    bnb_4bit_use_double_quant: bool = _f(True, "Quantise the quantisation constants too (double quantisation, seeds: on).")
    bnb_4bit_compute_dtype: str = _f("bfloat16", "Dtype of the 4-bit matmuls: bfloat16 (seeds) or float16.")
    dtype: str = _f("auto", "Dtype of the (non-quantised) weights: auto (bfloat16 on a CUDA GPU that supports it, else float32), float32, bfloat16, float16.")
    attn_implementation: str = _f("auto", "Attention kernel: auto (flash_attention_2 where flash-attn is importable on CUDA, else sdpa), sdpa, eager, flash_attention_2.")
    use_liger_kernel: bool = _f(False, "Patch the model with Liger's fused Triton kernels, only if the liger-kernel package is importable and CUDA is present (else a warning).")


@dataclass(kw_only=True)
class LoraSection:
    """The LoRA adapter (peft.LoraConfig)."""

    r: int = _f(16, "LoRA rank (seeds: 64).")
    alpha: int = _f(32, "LoRA alpha; the update is scaled by alpha / r (seeds: 32).")
    dropout: float = _f(0.05, "Dropout on the LoRA branch (seeds: 0.1).")
    target_modules: list[str] = _f(list(ALL_LINEAR), "Module names the adapter wraps (seeds: all linear projections q,k,v,o,gate,up,down).")
    bias: str = _f("none", "Which biases train: none, all, lora_only.")
    use_rslora: bool = _f(False, "Rank-stabilised scaling alpha / sqrt(r).")
    use_dora: bool = _f(False, "Weight-decomposed LoRA (DoRA); slower.")


@dataclass(kw_only=True)
class DataConfig:
    """Where the training records come from and how the eval split is cut."""

    dir: str | None = _f(None, "Dataset folder with train.jsonl (from `cypherloop data build`); null means: given by the command (--data) or built by retrain.")
    eval_fraction: float = _f(0.15, "Share of train.jsonl held out for eval loss and early stopping (seeds: 15 %). The gate's held-out split (heldout.jsonl) is separate and never trained on.")
    max_train_samples: int | None = _f(None, "Use at most this many training records (after the shuffle); null for all.")
    max_eval_samples: int | None = _f(None, "Use at most this many eval records; null for all.")
    seed: int = _f(42, "Seed of the shuffle and of the train/eval cut.")


@dataclass(kw_only=True)
class TrainConfig:
    """The optimisation: maps onto trl's SFTConfig (transformers TrainingArguments)."""

    learning_rate: float = _f(2e-4, "Peak learning rate (seeds: 2e-4).")
    num_train_epochs: float = _f(3.0, "Epochs over the training split (seeds: 2-3).")
    max_steps: int = _f(-1, "Stop after this many optimiser steps; -1 to run num_train_epochs.")
    per_device_train_batch_size: int = _f(2, "Micro-batch per device (seeds: 2). With packing: packed rows per device.")
    gradient_accumulation_steps: int = _f(8, "Micro-batches per optimiser step (seeds: 8, so 2 x 8 = 16 per device).")
    per_device_eval_batch_size: int = _f(8, "Micro-batch for the eval loss.")
    max_length: int | None = _f(2048, "Longest tokenised example (truncated beyond); with packing the length of a packed row. Seeds: 2048.")
    packing: bool = _f(False, "Pack several examples into one row of max_length (seeds: no). With strategy bfd this is padding-free.")
    packing_strategy: str = _f("bfd", "Packing strategy: bfd (best-fit decreasing, each example intact), bfd_split, wrapped.")
    padding_free: bool = _f(False, "Flatten each micro-batch into one sequence without padding (sequence boundaries through position ids). Without packing, examples are not truncated (max_length is not applied).")
    lr_scheduler_type: str = _f("cosine", "Learning-rate schedule: cosine, linear, constant, constant_with_warmup ...")
    warmup_ratio: float = _f(0.03, "Share of the steps spent warming the learning rate up.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    max_grad_norm: float = _f(0.3, "Gradient clipping (QLoRA paper: 0.3).")
    optim: str = _f("auto", "Optimiser: auto (adamw_torch_fused on CUDA, adamw_torch on CPU), or any transformers name (paged_adamw_8bit ...).")
    gradient_checkpointing: bool = _f(True, "Recompute activations in the backward pass: less memory, ~10-20 % more time.")
    tf32: bool = _f(True, "Allow TF32 matmuls on Ampere+ GPUs (ignored on CPU).")
    torch_compile: bool = _f(False, "torch.compile the model (CUDA; first steps are slow).")
    logging_steps: int = _f(10, "Log train loss every N optimiser steps.")
    eval_steps: float = _f(0.1, "Eval (and checkpoint) every N steps; a value below 1 is a fraction of the total steps.")
    save_steps: float | None = _f(None, "Checkpoint every N steps (fraction below 1); null: same as eval_steps, which early stopping requires.")
    save_total_limit: int = _f(2, "Checkpoints kept on disk (the best one is always kept when early stopping).")
    early_stopping_patience: int = _f(3, "Stop after this many evals without a lower eval loss, then keep the best checkpoint (seeds: 3); 0 disables.")
    dataloader_num_workers: int = _f(0, "Worker processes feeding batches.")
    seed: int = _f(42, "Seed of model init (LoRA) and data order.")


@dataclass(kw_only=True)
class GateConfig:
    """How a trained candidate is evaluated and promoted (finetune.gate)."""

    margin: float = _f(0.0, "The candidate must reach the active adapter's execution accuracy plus this margin on both sets.")
    max_heldout: int | None = _f(None, "Evaluate on at most this many held-out questions (fixed order); null for all.")
    max_regression: int | None = _f(None, "At most this many verified-feedback regression questions; null for all.")
    max_attempts: int | None = _f(None, "Agent attempts per question during the gate; null: Settings.max_attempts.")
    max_new_tokens: int | None = _f(None, "Token cap per generated query during the gate; null: Settings.max_new_tokens.")


@dataclass(kw_only=True)
class Recipe:
    """A whole training recipe."""

    name: str = _f("custom", "Recipe name (recorded in the adapter's meta.json).")
    description: str = _f("", "What the recipe is for.")
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "Base model and how it is loaded."})
    lora: LoraSection = field(default_factory=LoraSection, metadata={"help": "The LoRA adapter."})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Training data and the eval split."})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (trl SFTConfig)."})
    gate: GateConfig = field(default_factory=GateConfig, metadata={"help": "Promotion gate."})

    # ------------------------------------------------------------------ views
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """Hash of what shapes the trained weights (the data folder and the gate excluded)."""
        d = self.to_dict()
        d.pop("gate")
        d.pop("name")
        d.pop("description")
        d["data"].pop("dir")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


SECTIONS: dict[str, type] = {"model": ModelConfig, "lora": LoraSection, "data": DataConfig, "train": TrainConfig, "gate": GateConfig}
TOP_LEVEL = ("name", "description")


# ---------------------------------------------------------------------- loading
def shipped_recipes() -> list[str]:
    """Names of the recipes shipped in finetune/recipes/."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """A shipped recipe by name (``tiny-cpu``) or a YAML file by path."""
    p = Path(name_or_path).expanduser()
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise DataError(f"recipe file {p} not found")
        return p
    shipped = RECIPES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise DataError(f"unknown recipe {str(name_or_path)!r}; shipped: {', '.join(shipped_recipes())} (or give a path to a .yaml file)")


def load_recipe(name_or_path: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """Read a recipe (shipped name or file) and apply ``key=value`` overrides."""
    import yaml

    path = recipe_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"recipe {path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(raw, dict):
        raise DataError(f"recipe {path}: expected a mapping of sections, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    recipe = recipe_from_dict(raw, source=str(path))
    return apply_overrides(recipe, overrides)


def recipe_from_dict(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    """Build a Recipe from nested dicts; unknown keys and wrong types are DataErrors naming the key."""
    known = [*TOP_LEVEL, *SECTIONS]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in TOP_LEVEL:
            kwargs[key] = _coerce(value, str, f"{source}: {key}")
        elif key in SECTIONS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise DataError(f"{source}: section {key!r} must be a mapping, got {type(value).__name__}")
            kwargs[key] = _section_from_dict(SECTIONS[key], value, f"{source}: {key}")
        else:
            raise DataError(f"{source}: unknown section {key!r}{_did_you_mean(key, known)}")
    return Recipe(**kwargs)


def _section_from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise DataError(f"{where}: unknown field {key!r}{_did_you_mean(key, names)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def _did_you_mean(key: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(choices)})"


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert a YAML value to a field's annotated type (YAML reads ``2e-4`` as a string)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except DataError as e:
                errors.append(str(e))
        raise DataError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise DataError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, where) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise DataError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise DataError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise DataError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise DataError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise DataError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if value is None or isinstance(value, dict | list):
            raise DataError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise DataError(f"{where}: unsupported field type {tp!r}")  # pragma: no cover - a programming error


def apply_overrides(recipe: Recipe, overrides: Iterable[str]) -> Recipe:
    """Return a copy with ``section.field=value`` (or unique bare ``field=value``) overrides applied."""
    import yaml

    d = recipe.to_dict()
    for word in overrides:
        if "=" not in word:
            raise DataError(f"override {word!r} is not key=value (e.g. train.learning_rate=1e-4)")
        key, _, text = word.partition("=")
        key = key.strip().removeprefix("--").replace("-", "_")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        section, name = _resolve_key(key)
        if section is None:
            d[name] = value
        else:
            d[section][name] = value
    return recipe_from_dict(d, source="override")


def _resolve_key(key: str) -> tuple[str | None, str]:
    if key in TOP_LEVEL:
        return None, key
    if "." in key:
        section, _, name = key.partition(".")
        if section not in SECTIONS:
            raise DataError(f"override {key!r}: unknown section {section!r}{_did_you_mean(section, list(SECTIONS))}")
        names = [f.name for f in dataclasses.fields(SECTIONS[section])]
        if name not in names:
            raise DataError(f"override {key!r}: unknown field{_did_you_mean(name, names)}")
        return section, name
    owners = [s for s, cls in SECTIONS.items() if key in {f.name for f in dataclasses.fields(cls)}]
    if len(owners) == 1:
        return owners[0], key
    if len(owners) > 1:
        raise DataError(f"override {key!r} is ambiguous; write one of: {', '.join(f'{s}.{key}' for s in owners)}")
    every = [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    raise DataError(f"override {key!r}: unknown field{_did_you_mean(key, every + [f.split('.')[1] for f in every])}")


def field_help() -> dict[str, str]:
    """``section.field -> help`` for every field (for ``cypherloop train --list-fields``)."""
    return {f"{s}.{f.name}": f.metadata.get("help", "") for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


# ---------------------------------------------------------------------- library objects
def torch_dtype(name: str) -> Any:
    import torch

    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[name]
    except KeyError:
        raise DataError(f"unknown dtype {name!r}; use float32, bfloat16 or float16") from None


def bnb_config(model: ModelConfig) -> Any:
    """The BitsAndBytesConfig for QLoRA (call only where 4-bit is used)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=model.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=model.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=torch_dtype(model.bnb_4bit_compute_dtype),
    )


def lora_config(lora: LoraSection) -> Any:
    """The peft LoraConfig of a recipe."""
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias=lora.bias,
        use_rslora=lora.use_rslora,
        use_dora=lora.use_dora,
        task_type="CAUSAL_LM",
    )
