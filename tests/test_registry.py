"""Adapter registry: atomic versions, promote / rollback with history, hot swap, GGUF export."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from finetune_helpers import tiny_model_dir

from agent.core.adapters import read_active, write_active
from agent.core.errors import TrainingError
from finetune.registry import AdapterRegistry, UnknownVersion, write_gguf_lora


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp())


def make_adapter(tiny: Path, folder: Path, seed: int, r: int = 4) -> Path:
    """A LoRA on the tiny model with random (non-zero) B, so two seeds give two different adapters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(tiny)),
        LoraConfig(
            r=r,
            lora_alpha=8,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture
def reg(tmp_path) -> AdapterRegistry:
    return AdapterRegistry(tmp_path / "home")


@pytest.fixture(scope="module")
def adapters(tiny, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("adapters")
    return [make_adapter(tiny, root / f"a{i}", seed=i) for i in range(3)]


def test_add_numbers_versions_and_keeps_meta(reg, adapters, tmp_path):
    plot = tmp_path / "loss.png"
    plot.write_bytes(b"\x89PNG")
    v1 = reg.add(
        adapters[0], {"recipe": "tiny-cpu", "metrics": {"train_loss": 1.0}}, extra_files={"loss.png": plot}
    )
    v2 = reg.add(adapters[1], {"recipe": "tiny-cpu"})
    assert (v1, v2) == ("v0001", "v0002") and reg.versions() == ["v0001", "v0002"]
    meta = reg.meta("1")
    assert (
        meta["version"] == "v0001" and meta["status"] == "candidate" and meta["metrics"]["train_loss"] == 1.0
    )
    assert {"adapter_config.json", "adapter_model.safetensors", "loss.png", "meta.json"} <= {
        p.name for p in reg.path("v1").iterdir()
    }
    assert reg.resolve("latest") == "v0002" and reg.active() is None
    with pytest.raises(UnknownVersion):
        reg.resolve("v9")


def test_a_killed_add_leaves_no_version_and_no_active_change(reg, adapters):
    reg.add(adapters[0], {})
    reg.promote("v0001")
    # simulate a kill in the middle of the copy: a temp folder without meta.json
    stale = reg.root / ".tmp-v0002-dead"
    stale.mkdir()
    (stale / "adapter_config.json").write_text("{}")
    assert reg.versions() == ["v0001"] and reg.active() == "v0001"
    assert reg.add(adapters[1], {}) == "v0002" and not stale.exists()
    assert reg.active() == "v0001"


def _add_in_child(home: str, adapter: str, q) -> None:
    q.put(AdapterRegistry(home).add(adapter, {"who": os.getpid()}))


def test_concurrent_adds_get_distinct_versions(reg, adapters):
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_add_in_child, args=(str(reg.home), str(adapters[i % 2]), q)) for i in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()  # each child's exit is the event; a child flushes its queue item before it exits
    assert [p.exitcode for p in procs] == [0, 0, 0]
    got = sorted(q.get() for _ in procs)
    assert got == ["v0001", "v0002", "v0003"] == reg.versions()


def test_promote_and_rollback_follow_the_history(reg, adapters):
    for a in adapters:
        reg.add(a, {})
    with pytest.raises(TrainingError, match="nothing to roll back"):
        reg.rollback()
    reg.promote("v1")
    reg.promote("v2")
    reg.promote("v3")
    assert reg.active() == "v0003" and reg.history()["stack"] == ["v0001", "v0002", "v0003"]
    assert reg.rollback() == "v0002" and read_active(reg.home).version == "v0002"
    assert reg.meta("v3")["status"] == "rolled_back" and reg.meta("v2")["status"] == "promoted"
    assert reg.rollback() == "v0001"
    assert reg.rollback() is None and read_active(reg.home) is None  # back to the base model
    assert [e["action"] for e in reg.history()["events"]] == ["promote"] * 3 + ["rollback"] * 3
    assert reg.promote("v0002") == "v0002" and reg.promote("v0002") == "v0002"  # idempotent
    assert reg.history()["stack"] == ["v0002"]


def test_history_survives_a_crash_between_history_and_pointer(reg, adapters):
    for a in adapters[:2]:
        reg.add(a, {})
    reg.promote("v1")
    # a promotion of v2 that wrote HISTORY.json but died before ACTIVE switched
    h = reg.history()
    h["stack"].append("v0002")
    (reg.root / "HISTORY.json").write_text(json.dumps(h))
    assert reg.active() == "v0001"
    # the torn v0002 entry never went live: rollback leaves v0001 for the base model
    assert reg.rollback() is None
    assert reg.active() is None and reg.history()["stack"] == []
    with pytest.raises(TrainingError):
        reg.rollback()


def test_rollback_adopts_a_pointer_set_by_hand(reg, adapters):
    for a in adapters[:2]:
        reg.add(a, {})
    reg.promote("v1")
    write_active(reg.home, "v0002")
    assert reg.rollback() == "v0001"


def test_list_marks_the_active_version(reg, adapters):
    reg.add(adapters[0], {"gate": {"decision": "promote"}})
    reg.add(adapters[1], {"gate": {"decision": "reject"}})
    reg.promote("v1")
    rows = reg.list()
    assert [(r["version"], r["active"]) for r in rows] == [("v0001", True), ("v0002", False)]


def test_add_refuses_a_folder_that_is_not_an_adapter(reg, tmp_path):
    with pytest.raises(TrainingError, match="neither a PEFT adapter"):
        reg.add(tmp_path, {})


def test_full_model_versions_are_added_served_and_rolled_back(reg, tiny, adapters, settings, tmp_path):
    """A full fine-tune (finetune.full) is a version like an adapter; the agent's generator swaps the whole
    model in when it goes live and back to base + adapter when it is rolled back."""
    from agent_helpers import make_full_model

    from agent.models.local import TransformersGenerator

    full = make_full_model(tiny, tmp_path / "full")  # norm weights doubled
    lora = reg.add(adapters[0], {})
    v = reg.add(full, {"graph": "shop"})
    assert reg.meta(v)["kind"] == "full" and reg.meta(lora)["kind"] == "lora"
    assert {"config.json", "model.safetensors", "meta.json"} <= {p.name for p in reg.path(v).iterdir()}
    reg.promote(lora)
    reg.promote(v)
    s = settings.model_copy(
        update={"home": reg.home, "base_model": str(tiny), "adapter": "active", "max_new_tokens": 4}
    )
    gen = TransformersGenerator(s)
    gen.load()
    assert gen.version.endswith(f"+{v}") and gen._model_path == reg.path(v) and gen._peft is None
    norm = float(gen.model.model.norm.weight.sum())
    gen.generate("How many customers?", "Node properties:\nCustomer {name: STRING}")
    reg.rollback()  # back to the LoRA on the base
    gen.sync_adapter()
    assert gen.version.endswith(f"+{lora}") and gen._model_path == tiny.resolve() and gen._peft is not None
    assert abs(float(gen.model.model.norm.weight.sum()) - norm / 2) < 1e-3


def test_hot_swap_agent_answers_with_the_new_adapter_without_rebuild(reg, adapters, tiny, shop, settings):
    """A CypherAgent built once follows ACTIVE: after each promote / rollback its answers carry the new
    version."""
    from agent.graph import CypherAgent
    from agent.models.local import TransformersGenerator

    reg.add(adapters[0], {})
    reg.add(adapters[1], {})
    s = settings.model_copy(
        update={
            "home": reg.home,
            "base_model": str(tiny),
            "adapter": "active",
            "max_new_tokens": 4,
            "temperature": 0.0,
            "max_attempts": 1,
            "few_shot_k": 0,
            "device": "cpu",
        }
    )
    generator = TransformersGenerator(s)
    agent = CypherAgent(s, shop, generator)
    assert agent.ask("How many customers are there?").model_version.endswith("+base")
    model_id = id(generator.model)
    reg.promote("v1")
    first = agent.ask("How many customers are there?")
    assert first.model_version.endswith("+v0001") and generator.version.endswith("+v0001")
    reg.promote("v2")
    assert agent.ask("How many customers are there?").model_version.endswith("+v0002")
    reg.rollback()
    assert agent.ask("How many customers are there?").model_version.endswith("+v0001")
    assert id(generator.model) == model_id  # same base model object: swapped, not rebuilt


# --------------------------------------------------------------------------- GGUF export
def test_export_gguf_writes_llama_cpp_lora(reg, adapters, tiny):
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    v = reg.add(adapters[0], {"base_model_path": str(tiny)})
    out = reg.export_gguf(v)
    assert out.is_file() and out.suffix == ".gguf"
    reader = gguf.GGUFReader(str(out))
    fields = {k: f for k, f in reader.fields.items()}

    def text(key):
        f = fields[key]
        return bytes(f.parts[f.data[0]]).decode()

    assert (
        text("general.architecture") == "llama"
        and text("general.type") == "adapter"
        and text("adapter.type") == "lora"
    )
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 8.0
    tensors = {t.name: t for t in reader.tensors}
    cfg = json.loads((tiny / "config.json").read_text())
    n_layers = cfg["num_hidden_layers"]
    assert len(tensors) == n_layers * 7 * 2
    # shapes follow llama.cpp: lora_a (r, n_in), lora_b (n_out, r) in numpy order
    a = tensors["blk.0.attn_v.weight.lora_a"]
    b = tensors["blk.0.attn_v.weight.lora_b"]
    hidden, kv_dim = (
        cfg["hidden_size"],
        cfg["hidden_size"] // cfg["num_attention_heads"] * cfg["num_key_value_heads"],
    )
    assert tuple(a.data.shape) == (4, hidden) and tuple(b.data.shape) == (kv_dim, 4)
    # values: v is copied as is; q's B rows are permuted exactly like llama.cpp permutes the base q weight
    st = load_file(str(reg.path(v) / "adapter_model.safetensors"))
    key = "base_model.model.model.layers.0.self_attn.{}_proj.lora_{}.weight"
    assert np.array_equal(np.asarray(b.data), st[key.format("v", "B")])
    q_b = st[key.format("q", "B")]
    n_head = cfg["num_attention_heads"]
    permuted = (
        q_b.reshape(n_head, 2, q_b.shape[0] // n_head // 2, q_b.shape[1]).swapaxes(1, 2).reshape(q_b.shape)
    )
    assert np.array_equal(np.asarray(tensors["blk.0.attn_q.weight.lora_b"].data), permuted)


def test_export_gguf_names_match_the_packaged_base_gguf(tmp_path):
    """Every tensor name the exporter writes for a SmolLM2-shaped adapter exists in the packaged base GGUF."""
    import gguf
    import numpy as np
    from safetensors.numpy import save_file

    from agent.models.local import packaged_gguf

    base = gguf.GGUFReader(str(packaged_gguf("smollm2-135m-instruct")))
    base_names = {t.name: tuple(int(x) for x in t.shape) for t in base.tensors}
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
    }
    dims = {
        "q_proj": (576, 576),
        "k_proj": (192, 576),
        "v_proj": (192, 576),
        "o_proj": (576, 576),
        "gate_proj": (1536, 576),
        "up_proj": (1536, 576),
        "down_proj": (576, 1536),
    }
    tensors = {}
    for layer in (0, 29):
        for mod, (n_out, n_in) in dims.items():
            group = "self_attn" if mod[0] in "qkvo" else "mlp"
            k = f"base_model.model.model.layers.{layer}.{group}.{mod}"
            tensors[f"{k}.lora_A.weight"] = np.ones((2, n_in), np.float32)
            tensors[f"{k}.lora_B.weight"] = np.ones((n_out, 2), np.float32)
    adapter = tmp_path / "a"
    adapter.mkdir()
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_config.json").write_text(json.dumps({"lora_alpha": 4, "r": 2, "peft_type": "LORA"}))
    out = write_gguf_lora(adapter, cfg, tmp_path / "a.gguf")
    for t in gguf.GGUFReader(str(out)).tensors:
        base_name = t.name.rsplit(".", 1)[0]
        assert base_name in base_names, t.name
        # ggml shapes: base (n_in, n_out); lora_a (n_in, r); lora_b (r, n_out)
        n_in, n_out = base_names[base_name][:2]
        assert tuple(int(x) for x in t.shape) == ((n_in, 2) if t.name.endswith("lora_a") else (2, n_out))


def test_export_needs_the_base_config(reg, adapters):
    v = reg.add(adapters[0], {"base_model_path": "/nonexistent"})
    with pytest.raises(TrainingError, match="config.json"):
        reg.export_gguf(v)


@pytest.mark.skipif(
    not os.environ.get("LLAMA_CPP_DIR"),
    reason="set LLAMA_CPP_DIR to a llama.cpp checkout to compare with its converter",
)
def test_export_matches_llama_cpp_converter(reg, adapters, tiny, tmp_path):
    """The built-in writer and llama.cpp's convert_lora_to_gguf.py produce the same tensors."""
    import gguf
    import numpy as np

    v = reg.add(adapters[0], {"base_model_path": str(tiny)})
    ours = reg.export_gguf(v, out=tmp_path / "ours.gguf")
    theirs = reg.export_gguf(
        v,
        out=tmp_path / "theirs.gguf",
        converter=Path(os.environ["LLAMA_CPP_DIR"]) / "convert_lora_to_gguf.py",
    )
    a = {t.name: t for t in gguf.GGUFReader(str(ours)).tensors}
    b = {t.name: t for t in gguf.GGUFReader(str(theirs)).tensors}
    assert a.keys() == b.keys()
    assert all(np.array_equal(np.asarray(a[n].data), np.asarray(b[n].data)) for n in a)


# --------------------------------------------------------------------------- the CLI
def test_adapters_cli_list_show_promote_rollback_export(reg, adapters, tiny, monkeypatch, capsys):
    from ui.cli import main
    from ui.cli_train import adapters_main

    monkeypatch.setenv("CYPHERLOOP_HOME", str(reg.home))
    assert adapters_main(["list"]) == 0
    out = capsys.readouterr().out
    # the default base's adapter
    assert "no adapter versions" in out and "live: shipped-general-v1 (shipped" in out
    reg.add(
        adapters[0],
        {
            "recipe": "tiny-cpu",
            "base_model": "tiny",
            "base_model_path": str(tiny),
            "metrics": {"train_loss": 1.25, "eval_loss": 0.5},
            "gate": {"decision": "promote", "heldout": 0.5, "active_heldout": 0.25},
        },
    )
    reg.add(
        adapters[1],
        {"recipe": "tiny-cpu", "gate": {"decision": "reject", "heldout": 0.1, "active_heldout": 0.5}},
    )
    assert adapters_main(["promote", "1"]) == 0 and "v0001 is live" in capsys.readouterr().out
    assert adapters_main(["list"]) == 0
    out = capsys.readouterr().out
    assert (
        "*  v0001" in out
        and "1.2500" in out
        and "50% (was 25%)" in out
        and "promote" in out
        and "reject" in out
    )
    assert adapters_main(["show", "latest"]) == 0 and '"version": "v0002"' in capsys.readouterr().out
    assert adapters_main(["rollback"]) == 0 and "rolled back: shipped-general-v1" in capsys.readouterr().out
    assert adapters_main(["export", "v1", "--gguf"]) == 0 and "adapter-v0001.gguf" in capsys.readouterr().out
    assert main(["adapters", "promote", "v9"]) == 2 and "no adapter version 'v9'" in capsys.readouterr().err
    assert main(["adapters", "rollback"]) == 1 and "nothing to roll back" in capsys.readouterr().err
