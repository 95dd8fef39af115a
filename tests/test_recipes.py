"""Every shipped recipe parses through TRL's own parser; a misspelt or renamed field is an error, not a
no-op."""

from __future__ import annotations

import pytest
import yaml

from agent.core.errors import DataError
from finetune.config import (
    RECIPES_DIR,
    RUNTIME_FIELDS,
    Recipe,
    field_help,
    load_recipe,
    parse_recipe,
    shipped_recipes,
)

SEEDS_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_the_recipes_ship():
    lora, full = {"seeds-qlora", "tiny-cpu", "fast-gpu", "general-gpu"}, {"full-cpu", "full-gpu"}
    assert lora <= set(shipped_recipes("lora")) and full <= set(shipped_recipes("full"))
    # the listing names every recipe of either kind, each file once
    assert shipped_recipes() == sorted(shipped_recipes("lora") + shipped_recipes("full"))
    assert shipped_recipes() == sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", shipped_recipes())
def test_every_shipped_recipe_loads_as_its_kind(name):
    from finetune.full import FullConfig

    if name in shipped_recipes("full"):
        assert isinstance(FullConfig.load(name), FullConfig)
    else:
        assert load_recipe(name).name == name


@pytest.mark.parametrize("name", shipped_recipes("lora"))
def test_every_shipped_recipe_parses_strictly(name):
    from trl import ModelConfig, SFTConfig

    recipe = load_recipe(name)
    assert isinstance(recipe, Recipe) and recipe.name == name and recipe.description
    assert (
        isinstance(recipe.sft, SFTConfig) and isinstance(recipe.model, ModelConfig) and recipe.model.use_peft
    )
    # every key of the file became a field of TRL's or cypherloop's dataclasses, with its value
    raw = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text())
    assert set(recipe.values) == set(raw)
    # the resolved recipe reads back to the same recipe (a run folder's resolved_recipe.yaml)
    again = parse_recipe(yaml.safe_load(recipe.to_yaml()), source="resolved")
    assert again.name == name and again.values == {"name": name, **recipe.values}
    assert again.fingerprint() == recipe.fingerprint()


def test_a_misspelt_field_in_a_recipe_fails(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((RECIPES_DIR / "tiny-cpu.yaml").read_text() + "learning_rat: 1.0e-4\n")
    with pytest.raises(DataError, match="unknown field 'learning_rat' .did you mean 'learning_rate'"):
        load_recipe(bad)


@pytest.mark.parametrize(
    "renamed, current",
    [
        ("warmup_ratio", "warmup_steps"),
        ("gradient_checkpointing_x", None),
        ("bnb_4bit_use_double_quant", "use_bnb_nested_quant"),
    ],
)
def test_a_renamed_or_unknown_field_fails(tmp_path, renamed, current):
    bad = tmp_path / "old.yaml"
    bad.write_text(f"use_peft: true\n{renamed}: 0.1\n")
    with pytest.raises(DataError, match=f"unknown field {renamed!r}"):
        load_recipe(bad)


def test_the_old_sectioned_format_fails(tmp_path):
    bad = tmp_path / "sections.yaml"
    bad.write_text("train:\n  learning_rate: 1.0e-4\n")
    with pytest.raises(DataError, match="unknown field 'train'"):
        load_recipe(bad)


@pytest.mark.parametrize("field", sorted(RUNTIME_FIELDS))
def test_run_time_fields_are_refused_with_the_reason(tmp_path, field):
    bad = tmp_path / "rt.yaml"
    bad.write_text(f"use_peft: true\n{field}: true\n")
    with pytest.raises(DataError, match=f"{field!r} is set at run time"):
        load_recipe(bad)


def test_seeds_recipe_holds_the_seeds_settings():
    r = load_recipe("seeds-qlora")
    m, s = r.model, r.sft
    assert (
        m.load_in_4bit and m.bnb_4bit_quant_type == "nf4" and m.use_bnb_nested_quant and m.dtype == "bfloat16"
    )
    assert (m.lora_r, m.lora_alpha, m.lora_dropout) == (
        64,
        32,
        0.1,
    ) and m.lora_target_modules == SEEDS_TARGETS
    assert s.learning_rate == 2e-4 and s.num_train_epochs == 3
    assert s.per_device_train_batch_size * s.gradient_accumulation_steps == 16
    assert r.options.eval_fraction == 0.15 and r.options.early_stopping_patience == 3
    assert s.max_length == 2048 and not s.packing and not s.padding_free and s.activation_checkpointing


def test_tiny_cpu_is_small_and_full_precision():
    r = load_recipe("tiny-cpu")
    assert not r.model.load_in_4bit and r.model.dtype == "float32"
    assert 8 <= r.model.lora_r <= 16 and r.sft.max_length <= 640 and 0 < r.sft.max_steps <= 30


def test_fast_gpu_is_padding_free_with_a_large_micro_batch():
    r = load_recipe("fast-gpu")
    assert r.sft.padding_free or r.sft.packing
    assert r.sft.per_device_train_batch_size > load_recipe("seeds-qlora").sft.per_device_train_batch_size


def test_overrides_as_words_or_flags():
    r = load_recipe(
        "tiny-cpu",
        [
            "learning_rate=5e-5",
            "--lora_r",
            "4",
            "--lora_target_modules",
            "q_proj",
            "v_proj",
            "packing=true",
            "max_eval_samples=2",
        ],
    )
    assert (
        r.sft.learning_rate == 5e-5
        and r.model.lora_r == 4
        and r.model.lora_target_modules == ["q_proj", "v_proj"]
    )
    assert r.sft.packing is True and r.options.max_eval_samples == 2
    assert r.values["lora_r"] == 4 and r.fingerprint() != load_recipe("tiny-cpu").fingerprint()
    assert load_recipe("tiny-cpu", ["gate_margin=0.5"]).fingerprint() == load_recipe("tiny-cpu").fingerprint()


@pytest.mark.parametrize(
    "override, message",
    [
        ("lerning_rate=1", "did you mean 'learning_rate'"),
        ("lora_r=many", "invalid int value"),
        ("nokey", "field=value"),
        ("bf16=true", "set at run time"),
    ],
)
def test_bad_overrides_are_one_clear_error(override, message):
    with pytest.raises(DataError, match=message):
        load_recipe("tiny-cpu", [override])


def test_unknown_recipe_lists_the_shipped_ones():
    with pytest.raises(DataError, match="tiny-cpu"):
        load_recipe("no-such-recipe")


def test_yaml_scientific_notation_without_dot_is_a_float(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("use_peft: true\nlearning_rate: 2e-4\n")  # YAML 1.1 reads this as a string
    assert load_recipe(f).sft.learning_rate == 2e-4


def test_every_field_has_help():
    help_ = field_help()
    assert {"learning_rate", "lora_r", "eval_fraction", "gate_margin", "max_train_seconds"} <= set(help_)
    assert all(
        help_[k] for k in ("eval_fraction", "early_stopping_patience", "gate_margin", "max_train_seconds")
    )
    assert not set(RUNTIME_FIELDS) & set(help_)


def test_library_objects_from_a_recipe():
    from trl import get_peft_config, get_quantization_config

    r = load_recipe("seeds-qlora")
    lc = get_peft_config(r.model)
    assert lc.r == 64 and lc.lora_alpha == 32 and set(lc.target_modules) == set(SEEDS_TARGETS)
    bc = get_quantization_config(r.model)
    assert bc.load_in_4bit and bc.bnb_4bit_quant_type == "nf4" and bc.bnb_4bit_use_double_quant
