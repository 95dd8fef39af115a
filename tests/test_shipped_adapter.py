"""The adapter shipped in the package serves the packaged base until the registry promotes one."""

from __future__ import annotations

import json

from agent.core.adapters import shipped_adapter, write_active
from agent.models.local import AdapterFollower, TransformersGenerator


def test_shipped_adapter_is_a_loadable_lora_for_the_default_base():
    shipped = shipped_adapter("smollm2-135m-instruct")
    assert shipped is not None and shipped.version == "shipped-general-v1"
    config = json.loads((shipped.path / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 16
    from safetensors import safe_open

    with safe_open(str(shipped.path / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any("lora_A" in k for k in keys) and any("lora_B" in k for k in keys)
    assert (shipped.path / "TRAINING.md").is_file()
    assert shipped_adapter("/some/other/model") is None


def test_follower_serves_the_shipped_adapter_until_a_version_is_promoted(tmp_path):
    follower = AdapterFollower("active", tmp_path, "smollm2-135m-instruct")
    assert follower.current().version == "shipped-general-v1"
    (tmp_path / "adapters" / "v0001").mkdir(parents=True)
    write_active(tmp_path, "v0001")
    assert follower.current().version == "v0001"
    write_active(tmp_path, None)
    assert follower.current().version == "shipped-general-v1"
    assert AdapterFollower("none", tmp_path, "smollm2-135m-instruct").current() is None


def test_default_generator_names_the_shipped_adapter_without_loading(settings):
    gen = TransformersGenerator(
        settings.model_copy(update={"base_model": "smollm2-135m-instruct", "adapter": "active"})
    )
    assert gen.version.endswith("+shipped-general-v1")
    assert TransformersGenerator(settings.model_copy(update={"adapter": "none"})).version.endswith("+base")


def test_llamacpp_backend_gets_the_shipped_adapter_as_gguf_lora(settings, tmp_path):
    """llama.cpp loads LoRAs as GGUF: a PEFT-only folder is converted once into the home."""
    import gguf

    from agent.core.adapters import AdapterRef
    from agent.models.llamacpp import adapter_gguf

    shipped = shipped_adapter("smollm2-135m-instruct")
    s = settings.model_copy(update={"base_model": "smollm2-135m-instruct"})
    path = adapter_gguf(AdapterRef(shipped.version, shipped.path), s)
    assert path.is_file() and path.parent == s.path("models", "lora-gguf")
    reader = gguf.GGUFReader(str(path))
    names = [t.name for t in reader.tensors]
    assert any(n.endswith("lora_a") for n in names) and any(n.endswith("lora_b") for n in names)
    assert adapter_gguf(AdapterRef(shipped.version, shipped.path), s) == path  # converted once
