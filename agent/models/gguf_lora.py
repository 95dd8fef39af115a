"""A PEFT LoRA as a llama.cpp GGUF adapter, written with the ``gguf`` package (no llama.cpp checkout needed).

Serving (``agent.models.llamacpp``: the shipped or a promoted adapter, converted once) and the registry's
``export --gguf`` both write adapters through ``write_gguf_lora``. Tensor names, shapes and keys are
llama.cpp's (``convert_lora_to_gguf.py``): llama and qwen2 architectures, q/k rows permuted for llama.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agent.core.errors import TrainingError

_ARCHS = {
    "LlamaForCausalLM": ("llama", True),
    "MistralForCausalLM": ("llama", True),
    "Qwen2ForCausalLM": ("qwen2", False),
}


def permute_rows(b: Any, n_head: int) -> Any:
    """llama.cpp's q/k row permutation (convert_hf_to_gguf LlamaModel.permute) applied to LoRA B's rows."""
    rows = b.shape[0]
    return b.reshape(n_head, 2, rows // n_head // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def write_gguf_lora(adapter_dir: Path, base_config: dict[str, Any], out_path: Path) -> Path:
    """Write a PEFT LoRA (safetensors) as a llama.cpp GGUF adapter (general.type=adapter, f32 tensors)."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    arch_name = (base_config.get("architectures") or ["?"])[0]
    if arch_name not in _ARCHS:
        raise TrainingError(
            f"built-in GGUF export supports {', '.join(_ARCHS)}; for {arch_name} use llama.cpp's "
            "convert_lora_to_gguf.py (--converter PATH)"
        )
    arch, permute_qk = _ARCHS[arch_name]
    lcfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    if lcfg.get("use_dora") or lcfg.get("peft_type", "LORA") != "LORA":
        raise TrainingError("GGUF export supports plain LoRA adapters only (not DoRA or other PEFT types)")
    alpha = float(lcfg["lora_alpha"])
    if lcfg.get("use_rslora"):
        alpha = alpha * (lcfg["r"] ** 0.5)  # llama.cpp scales by alpha / r; rsLoRA means alpha / sqrt(r)
    weights_file = adapter_dir / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise TrainingError(f"{weights_file} missing (GGUF export reads safetensors adapters)")
    tensors = {k: v.float().numpy() for k, v in load_file(str(weights_file)).items()}  # bf16 adapters too
    n_layers = int(base_config["num_hidden_layers"])
    n_head = int(base_config["num_attention_heads"])
    n_kv = int(base_config.get("num_key_value_heads") or n_head)
    tmap = gguf.get_tensor_name_map(
        gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.QWEN2, n_layers
    )

    pairs: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        base_key = key.replace("base_model.model.", "", 1)
        for part in ("A", "B"):
            marker = f".lora_{part}.weight"
            if base_key.endswith(marker):
                pairs.setdefault(base_key[: -len(marker)], {})[part] = value
                break
        else:
            raise TrainingError(
                f"unexpected tensor {key!r} in the adapter (only lora_A / lora_B are exported)"
            )

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_name(f"cypherloop {adapter_dir.name}")
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for module, ab in sorted(pairs.items()):
        if "A" not in ab or "B" not in ab:
            raise TrainingError(f"{module}: lora_A or lora_B missing")
        gguf_name = tmap.get_name(module)
        if gguf_name is None:
            raise TrainingError(f"no GGUF name for {module} ({arch})")
        a = np.ascontiguousarray(ab["A"].astype(np.float32))  # (r, n_in)
        b = ab["B"].astype(np.float32)  # (n_out, r)
        if permute_qk and module.endswith("q_proj"):
            b = permute_rows(b, n_head)
        elif permute_qk and module.endswith("k_proj"):
            b = permute_rows(b, n_kv)
        writer.add_tensor(f"{gguf_name}.weight.lora_a", a)
        writer.add_tensor(f"{gguf_name}.weight.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out_path)
    return out_path
