"""Training recipes: TRL's own dataclasses, read from a YAML file by TRL's parser.

A recipe (``finetune/recipes/*.yaml``) is one flat mapping whose keys are the fields of

- ``trl.SFTConfig``   the optimisation (transformers' ``TrainingArguments`` plus TRL's SFT options),
- ``trl.ModelConfig`` the base model, its loading (4-bit, dtype, attention) and the LoRA adapter,
- ``RecipeArguments`` cypherloop's own knobs: the eval split, early stopping, a time budget,
- ``GateArguments``   how the promotion gate judges the trained candidate (``gate_*``),

parsed by ``trl.TrlParser``. A key that none of them has — misspelt, or renamed by a TRL or
transformers release — is a ``DataError`` naming the closest field, so it fails ``tests/test_recipes.py``
and never a GPU run. Overrides are command-line flags in the same names (``--max_steps 20`` or
``max_steps=20``), applied on top of the file exactly as ``TrlParser`` does.

A few ``SFTConfig`` fields are decided at run time by ``finetune.train`` and may not appear in a
recipe (``RUNTIME_FIELDS``): precision (``bf16``, ``fp16``, ``tf32``, ``use_cpu``) follows ``dtype`` and the
machine, so one recipe parses on a CPU and trains on a GPU; the loss is always on the completion
(the prompt contract); evaluation and checkpoint strategy follow ``early_stopping_patience``; the run
folder is the command's. Heavy packages (trl, transformers) are imported when a recipe is loaded.

A full fine-tune recipe (``full-*.yaml``: one ``full:`` section, ``finetune.full.FullConfig``) is read
through the same ``parse_fields``, so its unknown fields and bad values fail the same way.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml

from agent.core.errors import DataError

RECIPES_DIR = Path(__file__).with_name("recipes")
FULL_SECTION = "full"
"""The one section of a full fine-tune recipe (``finetune.full.FullConfig``)."""
_WORD_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

RUNTIME_FIELDS: dict[str, str] = {
    "output_dir": "the run folder is given by the command (--output / the retrain round)",
    "bf16": "precision follows dtype and the device",
    "fp16": "precision follows dtype and the device",
    "tf32": "TF32 is on wherever CUDA supports it",
    "use_cpu": "the device is chosen at run time (settings.device)",
    "completion_only_loss": "the loss is always on the completion (prompt/completion records)",
    "assistant_only_loss": "the loss is always on the completion (prompt/completion records)",
    "eval_strategy": "evaluation follows the eval split and early_stopping_patience",
    "save_strategy": "checkpoints follow eval_steps (save_steps)",
    "load_best_model_at_end": "set by early_stopping_patience",
    "metric_for_best_model": "early stopping watches eval_loss",
}
"""SFTConfig fields a recipe may not set, with the reason (``finetune.train`` sets them)."""

NOT_WEIGHTS = ("name", "description", "dataset_dir")
"""Recipe settings that do not shape the trained weights (left out of the fingerprint)."""


@dataclass(kw_only=True)
class RecipeArguments:
    """cypherloop's own training knobs (the fields TRL has no equivalent for)."""

    name: str | None = field(
        default=None,
        metadata={"help": "Recipe name recorded in the adapter's meta.json (default: the YAML file's name)."},
    )
    description: str = field(default="", metadata={"help": "What the recipe is for."})
    dataset_dir: str | None = field(
        default=None,
        metadata={
            "help": "Dataset folder with train.jsonl (from `cypherloop data build`); usually given by the "
                    "command."
        },
    )
    eval_fraction: float = field(
        default=0.15,
        metadata={
            "help": "Share of train.jsonl held out for eval loss and early stopping (seeds: 15 %). The "
                    "gate's held-out "
            "split (heldout.jsonl) is separate and never trained on."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Use at most this many training records (after the seeded shuffle); null for all."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many eval records."}
    )
    early_stopping_patience: int = field(
        default=3,
        metadata={
            "help": "Stop after this many evals without a lower eval loss and keep the best checkpoint "
                    "(seeds: 3); "
            "0 disables it."
        },
    )
    max_train_seconds: float | None = field(default=None, metadata={
        "help": "Stop training cleanly (adapter saved) after this many seconds; null for no limit."})


@dataclass(kw_only=True)
class GateArguments:
    """How a trained candidate is evaluated before promotion (``finetune.gate``)."""

    gate_margin: float = field(
        default=0.0,
        metadata={
            "help": "How much the candidate must beat the live adapter's held-out execution accuracy by (0: "
                    "any win; a tie never promotes); on the regression set it must reach the live one's plus "
                    "this margin."
        },
    )
    gate_max_heldout: int | None = field(default=None, metadata={
        "help": "Evaluate on at most this many held-out questions (fixed order); null for all."})
    gate_max_regression: int | None = field(default=None, metadata={
        "help": "At most this many verified-feedback regression questions; null for all."})
    gate_max_attempts: int | None = field(default=None, metadata={
        "help": "Agent attempts per question during the gate; null: settings.max_attempts."})
    gate_max_new_tokens: int | None = field(default=None, metadata={
        "help": "Token cap per generated query during the gate; null: settings.max_new_tokens."})


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe: TRL's configs, cypherloop's knobs, and the settings the recipe wrote down."""

    name: str
    sft: Any
    """``trl.SFTConfig`` as parsed (``finetune.train`` adds the run-time fields)."""
    model: Any
    """``trl.ModelConfig``: base model, loading and LoRA."""
    options: RecipeArguments
    gate: GateArguments
    values: dict[str, Any]
    """The settings the file and the overrides gave, by field name, as the dataclasses typed them."""

    @property
    def description(self) -> str:
        return self.options.description

    def fingerprint(self) -> str:
        """Hash of the settings that shape the trained weights (the gate and the data folder excluded)."""
        shaping = {k: v for k, v in self.values.items() if k not in NOT_WEIGHTS and not k.startswith("gate_")}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def to_yaml(self) -> str:
        """The recipe as a YAML file that ``load_recipe`` reads back to the same recipe."""
        return yaml.safe_dump({"name": self.name, **self.values}, sort_keys=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": …, **values}`` (recorded in the adapter's meta.json)."""
        return {"name": self.name, **self.values}


# ---------------------------------------------------------------------- loading
RecipeKind = Literal["lora", "full"]
"""A LoRA/QLoRA recipe (``load_recipe``, `cypherloop train`) or a full fine-tune one (``finetune.full``,
`cypherloop bootstrap`)."""


def shipped_recipes(kind: RecipeKind | None = None) -> list[str]:
    """Names of the recipes shipped in finetune/recipes/, of one kind or (``None``) of both."""
    paths = sorted(RECIPES_DIR.glob("*.yaml"))
    return [p.stem for p in paths if kind in (None, recipe_kind(yaml.safe_load(p.read_text())))]


def recipe_kind(config: object) -> RecipeKind:
    """``full`` for a mapping with a ``full:`` section, else ``lora``."""
    return "full" if isinstance(config, dict) and FULL_SECTION in config else "lora"


def recipe_path(name_or_path: str | Path, kind: RecipeKind | None = None) -> Path:
    """A shipped recipe by name (``tiny-cpu``) or a YAML file by path; an unknown name lists the shipped
    recipes of ``kind``."""
    p = Path(name_or_path).expanduser()
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise DataError(f"recipe file {p} not found")
        return p
    shipped = RECIPES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise DataError(f"unknown recipe {str(name_or_path)!r}; shipped: {', '.join(shipped_recipes(kind))} "
                    "(or give a path to a .yaml file)")


def read_recipe(name_or_path: str | Path, kind: RecipeKind) -> tuple[Path, dict[str, Any]]:
    """The recipe file of a shipped name or path, and its mapping; a file of the other kind is a
    ``DataError`` naming the command that takes it."""
    path = recipe_path(name_or_path, kind)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"recipe {path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(config, dict):
        raise DataError(f"recipe {path}: expected a mapping of field: value, got {type(config).__name__}")
    if recipe_kind(config) != kind:
        raise DataError(f"recipe {path} is {_KIND_WORDS[recipe_kind(config)]}, not {_KIND_WORDS[kind]}")
    return path, config


_KIND_WORDS: dict[RecipeKind, str] = {
    "lora": "a LoRA recipe (`cypherloop train`)",
    "full": "a full fine-tune recipe (finetune.full, `cypherloop bootstrap`)",
}


def recipe_parser() -> Any:
    """A fresh ``TrlParser`` over the four dataclasses (fresh: loading a recipe sets its defaults)."""
    from trl import ModelConfig, SFTConfig, TrlParser

    parser = TrlParser((SFTConfig, ModelConfig, RecipeArguments, GateArguments), exit_on_error=False)
    # Precision is decided at run time from dtype (RUNTIME_FIELDS): parse with TRL's bf16 default off, so a
    # GPU recipe parses on a CPU.
    parser.set_defaults_with_config(bf16=False)
    return parser


def load_recipe(name_or_path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe (shipped name or file) and apply command-line ``overrides`` (``--key value`` or
    ``key=value``)."""
    path, config = read_recipe(name_or_path, "lora")
    return parse_recipe(config, overrides, source=str(path), default_name=path.stem)


def parse_recipe(config: dict[str, Any], overrides: Sequence[str] = (), *, source: str = "recipe",
                 default_name: str = "custom") -> Recipe:
    """A ``Recipe`` from a field → value mapping plus command-line overrides; every problem is a
    ``DataError``."""
    parsed, given = parse_fields(recipe_parser(), config, overrides, source=source, refused=RUNTIME_FIELDS)
    sft, model, options, gate = parsed
    if not model.use_peft:
        raise DataError(f"{source}: cypherloop trains adapters; set use_peft: true")
    values = {key: _plain(_value_of(parsed, key)) for key in given}
    return Recipe(
        name=options.name or default_name, sft=sft, model=model, options=options, gate=gate, values=values
    )


def parse_fields(parser: Any, config: Mapping[str, Any], overrides: Sequence[str] = (), *, source: str,
                 refused: Mapping[str, str] | None = None) -> tuple[tuple[Any, ...], list[str]]:
    """The one way a recipe is read, LoRA or full: ``parser`` (a ``trl.TrlParser`` over the recipe's
    dataclasses) takes the file's ``config`` as its defaults, as ``TrlParser.parse_args_and_config`` does with
    ``--config``, and the ``overrides`` as its command line. Returns the parsed dataclasses and the field
    names the file and the overrides gave.

    Every problem is one ``DataError`` line: a field no dataclass has (with the closest name), a field in
    ``refused`` (with the reason), a value of the wrong type, or a dataclass's own check.
    """
    known = _known_fields(parser)
    flags = _flags(overrides)
    given = list({**config, **dict.fromkeys(_flag_names(parser, flags, "override"))})
    for key in given:
        if refused and key in refused:
            raise DataError(
                f"{source}: {key!r} is set at run time ({refused[key]}); remove it from the recipe"
            )
        if key not in known:
            raise DataError(f"{source}: unknown field {key!r}{_did_you_mean(key, known)}")
    remaining = parser.set_defaults_with_config(**config)
    assert not remaining, remaining  # every key was checked against the parser's fields above
    try:
        parsed = parser.parse_args_into_dataclasses(args=flags, look_for_args_file=False)
    except (argparse.ArgumentError, ValueError, TypeError) as e:  # a bad value, or a check in a __post_init__
        raise DataError(f"{source}: {e}") from e
    return tuple(parsed), given


def field_help() -> dict[str, str]:
    """``field -> help`` for every field a recipe may set (``cypherloop train --list-fields``)."""
    from trl import ModelConfig, SFTConfig

    out: dict[str, str] = {}
    for cls in (RecipeArguments, GateArguments, ModelConfig, SFTConfig):
        for f in fields(cls):
            if f.init and f.name not in RUNTIME_FIELDS and not f.name.startswith("_"):
                out.setdefault(f.name, " ".join(str(f.metadata.get("help", "")).split()))
    return out


# ---------------------------------------------------------------------- helpers
def _known_fields(parser: Any) -> list[str]:
    return sorted({a.dest for a in parser._actions if a.dest != "help"})


def _flags(overrides: Sequence[str]) -> list[str]:
    """Command-line flags from overrides given as flags (``--max_steps 20``) or words (``max_steps=20``)."""
    out: list[str] = []
    for word in overrides:
        if _WORD_OVERRIDE.match(word):
            key, _, value = word.partition("=")
            out.append(f"--{key}={value}")
        elif word.startswith("--") or (out and not word.startswith("-")):
            out.append(word)  # a flag, or a value of the flag before it
        else:
            raise DataError(f"override {word!r} is neither --field value nor field=value (e.g. max_steps=20)")
    return out


def _flag_names(parser: Any, flags: Sequence[str], source: str) -> list[str]:
    """The fields the flags set (``--no_x`` sets ``x``); an unknown flag is a DataError."""
    names = []
    for flag in flags:
        if not flag.startswith("--"):
            continue
        option = flag.split("=", 1)[0]
        action = parser._option_string_actions.get(option)
        if action is None:
            raise DataError(
                f"{source}: unknown field {option[2:]!r}{_did_you_mean(option[2:], _known_fields(parser))}"
            )
        names.append(action.dest)
    return names


def _value_of(parsed: tuple[Any, ...], key: str) -> Any:
    for obj in parsed:
        if key in {f.name for f in fields(obj)}:
            return getattr(obj, key)
    raise KeyError(key)  # pragma: no cover - _known_fields lists only these dataclasses' fields


def _plain(value: Any) -> Any:
    """A YAML/JSON-friendly form of a parsed value (enums by their value)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _did_you_mean(key: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.75)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if len(choices) <= 24:  # a full fine-tune recipe's few fields fit on the line
        return f" (fields: {', '.join(choices)})"
    return " (fields: `cypherloop train --list-fields`)"
