"""Every shipped recipe parses into the dataclasses; overrides and errors behave."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from agent.errors import DataError
from finetune.config import (
    RECIPES_DIR,
    SECTIONS,
    Recipe,
    apply_overrides,
    field_help,
    load_recipe,
    recipe_from_dict,
    shipped_recipes,
)


def test_the_three_recipes_ship():
    assert {"seeds-qlora", "tiny-cpu", "fast-gpu"} <= set(shipped_recipes())


@pytest.mark.parametrize("name", shipped_recipes())
def test_every_shipped_recipe_parses_strictly(name):
    raw = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text())
    # every key in the file is a field of its dataclass (a renamed field fails here, not on a GPU)
    for section, values in raw.items():
        if section in ("name", "description"):
            continue
        assert section in SECTIONS, section
        names = {f.name for f in dataclasses.fields(SECTIONS[section])}
        assert set(values) <= names, set(values) - names
    recipe = load_recipe(name)
    assert isinstance(recipe, Recipe) and recipe.name == name and recipe.description
    assert recipe_from_dict(recipe.to_dict()) == recipe  # round trip


def test_seeds_recipe_holds_the_seeds_settings():
    r = load_recipe("seeds-qlora")
    assert r.model.load_in_4bit and r.model.bnb_4bit_quant_type == "nf4" and r.model.bnb_4bit_use_double_quant
    assert r.model.bnb_4bit_compute_dtype == "bfloat16"
    assert (r.lora.r, r.lora.alpha, r.lora.dropout) == (64, 32, 0.1)
    assert r.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert r.train.learning_rate == 2e-4 and r.train.num_train_epochs == 3
    assert r.train.per_device_train_batch_size * r.train.gradient_accumulation_steps == 16
    assert r.data.eval_fraction == 0.15 and r.train.early_stopping_patience == 3
    assert r.train.max_length == 2048 and not r.train.packing and not r.train.padding_free


def test_tiny_cpu_is_small_and_full_precision():
    r = load_recipe("tiny-cpu")
    assert not r.model.load_in_4bit and r.model.dtype == "float32"
    assert 8 <= r.lora.r <= 16 and r.train.max_length <= 640 and 0 < r.train.max_steps <= 30


def test_fast_gpu_is_padding_free_with_a_large_micro_batch():
    r = load_recipe("fast-gpu")
    assert r.train.padding_free or r.train.packing
    assert r.train.per_device_train_batch_size > load_recipe("seeds-qlora").train.per_device_train_batch_size


def test_overrides_dotted_bare_and_yaml_values():
    r = load_recipe("tiny-cpu", ["train.learning_rate=5e-5", "r=4", "target_modules=[q_proj,v_proj]", "packing=true", "max_eval_samples=null"])
    assert r.train.learning_rate == 5e-5 and r.lora.r == 4 and r.lora.target_modules == ["q_proj", "v_proj"]
    assert r.train.packing is True and r.data.max_eval_samples is None
    assert apply_overrides(r, []) == r


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lerning_rate=1", "did you mean 'learning_rate'"),
        ("seed=3", "ambiguous"),
        ("lora.r=many", "expected an integer"),
        ("nokey", "key=value"),
        ("trian.max_steps=3", "unknown section"),
    ],
)
def test_bad_overrides_are_one_clear_error(override, message):
    with pytest.raises(DataError, match=message):
        load_recipe("tiny-cpu", [override])


def test_unknown_field_in_a_file_names_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rat: 1.0e-4\n")
    with pytest.raises(DataError, match="learning_rat.*did you mean 'learning_rate'"):
        load_recipe(bad)


def test_unknown_recipe_lists_the_shipped_ones():
    with pytest.raises(DataError, match="tiny-cpu"):
        load_recipe("no-such-recipe")


def test_yaml_scientific_notation_without_dot_is_a_float(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("train:\n  learning_rate: 2e-4\n")  # YAML 1.1 reads this as a string
    assert load_recipe(f).train.learning_rate == 2e-4


def test_every_field_has_help():
    assert all(text for text in field_help().values())


def test_library_objects_from_a_recipe():
    from finetune.config import bnb_config, lora_config

    r = load_recipe("seeds-qlora")
    lc = lora_config(r.lora)
    assert lc.r == 64 and lc.lora_alpha == 32 and set(lc.target_modules) == set(r.lora.target_modules)
    bc = bnb_config(r.model)
    assert bc.load_in_4bit and bc.bnb_4bit_quant_type == "nf4" and bc.bnb_4bit_use_double_quant
