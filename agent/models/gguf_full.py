"""A full fine-tune as a llama.cpp GGUF, written with the ``gguf`` package (no llama.cpp checkout needed).

A full fine-tune (``AdapterRef.full_model``: what ``cypherloop bootstrap`` trains for a small base, a folder
of config.json + safetensors, no LoRA) has its base's architecture, shapes and tokenizer. So its GGUF is the
base GGUF's metadata (hyper-parameters, tokenizer, chat template) with the fine-tune's tensors in place of the
base's: named as llama.cpp names them (``gguf.get_tensor_name_map``), q/k rows permuted as llama.cpp's
``convert_hf_to_gguf.py`` does for Llama (transformers un-permutes them when it reads a GGUF), no ``output``
tensor when the head is tied to the embeddings (SmolLM2), matrices in float32 or float16. Written once per
version and weights into ``<home>/models/gguf-full/`` (``full_model_gguf``), atomically. A LoRA served by
llama.cpp (either binding) under ``llamacpp_weights`` f32 / f16 is written the same way from its merged copy
(``merged_model_gguf``: ``ensure_merged``'s float32 folder), beside them and under the same policy.

Only the Llama architecture (SmolLM2, the default base) is written; others (Gemma 3, Qwen2) are refused with a
one-line ``ModelError``, as is a fine-tune whose shapes are not its base GGUF's (a resized vocabulary).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.core.adapters import AdapterRef
from agent.core.errors import ModelError
from agent.core.settings import Settings
from agent.models.gguf_lora import permute_rows
from agent.models.local import KEEP_MERGED, build_once, ensure_base_model, ensure_merged, weights_fingerprint

ARCHS = {"LlamaForCausalLM": "llama"}
"""Hugging Face architectures written, and the GGUF architecture of their base."""
FULL_MARKER = "cypherloop-full.json"
WEIGHTS = {"gguf": "float16", "f16": "float16", "f32": "float32"}
"""``llamacpp_weights`` → the dtype of the written matrices (there is no quantized fine-tune: ``gguf`` writes
float16)."""
BASE_ONLY_TENSORS = ("rope_freqs.weight",)
"""Tensors the converter derives from the config, not the checkpoint: taken from the base GGUF as they are."""


def copy_gguf_metadata(reader: Any, writer: Any) -> None:
    """Every key of ``reader``'s GGUF into ``writer``, but those the writer writes itself (its architecture,
    its file type, the GGUF header's)."""
    import gguf

    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.file_type"):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_array(field.name, field.contents())
        else:
            writer.add_key_value(field.name, field.contents(), field.types[0])


def _checkpoint(model_dir: Path) -> dict[str, Any]:
    """The fine-tune's tensors by Hugging Face name, as float32 numpy arrays (bf16 checkpoints too)."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ModelError(f"{model_dir} has no safetensors weights to write as a GGUF")
    out: dict[str, Any] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():  # noqa: SIM118 (safe_open is not a mapping)
                out[name] = st.get_tensor(name).float().numpy()
    return out


def write_full_gguf(model_dir: Path, base_gguf: Path, out: Path, dtype: str = "float32") -> Path:
    """The full fine-tune in ``model_dir`` as a GGUF at ``out``: ``base_gguf``'s metadata, the fine-tune's
    tensors (matrices in ``dtype``, the rest float32). ``ModelError`` for an architecture other than Llama or
    shapes other than the base's."""
    import gguf
    import numpy as np

    config = json.loads((model_dir / "config.json").read_text())
    arch_name = (config.get("architectures") or ["?"])[0]
    if arch_name not in ARCHS:
        raise ModelError(f"llama.cpp serves full fine-tunes of {', '.join(ARCHS)} only (SmolLM2), not "
                         f"{arch_name}: use CYPHERLOOP_MODEL_BACKEND=ctranslate2 or auto")
    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    if arch != ARCHS[arch_name]:
        raise ModelError(f"the base GGUF {base_gguf.name} is {arch}, the fine-tune {arch_name}")
    base = {t.name: t for t in reader.tensors}
    n_layers = int(config["num_hidden_layers"])
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_head)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    tied = bool(config.get("tie_word_embeddings", False))

    tensors: dict[str, Any] = {}
    for name, data in _checkpoint(model_dir).items():
        if name.endswith("rotary_emb.inv_freq") or (tied and name == "lm_head.weight"):
            continue
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ModelError(f"no GGUF name for the fine-tune's tensor {name} ({arch})")
        if name.endswith("self_attn.q_proj.weight"):
            data = permute_rows(data, n_head)
        elif name.endswith("self_attn.k_proj.weight"):
            data = permute_rows(data, n_kv)
        tensors[gguf_name] = data
    for name in BASE_ONLY_TENSORS:
        if name in base and name not in tensors:
            t = base[name]
            tensors[name] = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
    missing = sorted(set(base) - set(tensors) - {"output.weight"})
    if missing or (not tied and "output.weight" not in tensors):
        lacks = ", ".join(missing) or "lm_head.weight"
        raise ModelError(f"the fine-tune in {model_dir} lacks {lacks} of its base GGUF")
    for name, data in tensors.items():
        want = tuple(int(n) for n in reversed(base[name].shape)) if name in base else None
        if want is not None and tuple(data.shape) != want:
            raise ModelError(f"the fine-tune's {name} is {tuple(data.shape)}, its base GGUF's {want} (a "
                             "resized vocabulary or another base): llama.cpp cannot serve it with the base's "
                             "metadata")

    writer = gguf.GGUFWriter(str(out), arch)
    copy_gguf_metadata(reader, writer)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "float32" else gguf.LlamaFileType.MOSTLY_F16)
    for name, data in tensors.items():
        data = np.ascontiguousarray(data, dtype=np.float32)
        writer.add_tensor(name, data.astype(dtype) if data.ndim > 1 else data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def full_model_gguf(ref: AdapterRef, base_gguf: Path, settings: Settings, weights: str = "f32") -> Path:
    """The full fine-tune ``ref`` as a GGUF with ``base_gguf``'s metadata and its matrices in float32
    (``weights`` f32) or float16 (f16, gguf), written once into
    ``<home>/models/gguf-full/<version>-<weights>-<key>/``, keyed by the fine-tune's files, the base's and the
    weights: a new version, or new weights under the same name, writes a new file; the two newest per
    weights are kept (the live version's and the one a rollback returns to), as merged copies are. Written
    into a temp folder renamed into place with its marker (``build_once``), so a killed conversion leaves
    nothing that is served."""
    return _written_gguf(ref, base_gguf, settings, weights, lambda: ref.path, "", "the full fine-tune")


def merges_lora(settings: Settings, ref: AdapterRef | None) -> bool:
    """Whether llama.cpp (either binding) serves the LoRA ``ref`` merged into its base
    (``merged_model_gguf``): under ``llamacpp_weights`` f32 / f16 for a Llama base. Quantized weights
    (``gguf``) cannot take the merge without requantising, and other architectures have no GGUF writer here:
    those keep the base + a GGUF LoRA applied at run time."""
    if ref is None or ref.full_model or settings.llamacpp_weights == "gguf":
        return False
    config = json.loads((ensure_base_model(settings) / "config.json").read_text())
    return (config.get("architectures") or ["?"])[0] in ARCHS


def merged_model_gguf(ref: AdapterRef, base_gguf: Path, settings: Settings, weights: str = "f32") -> Path:
    """The LoRA ``ref`` merged into the base (``ensure_merged``, float32) as a full-model GGUF with
    ``base_gguf``'s metadata, served as a full fine-tune is (a LoRA applied at run time costs about 30 % a
    token: docs/BENCHMARKS.md 5b): matrices in float32 (``weights`` f32) or float16 (f16), in
    ``<home>/models/gguf-full/`` beside the full fine-tunes' and under their policy (written once, keyed by
    the adapter's files, the base's and the weights; the two newest per weights kept). The merged folder is
    only made when the GGUF is not written yet."""
    base = weights_fingerprint(ensure_base_model(settings))
    return _written_gguf(ref, base_gguf, settings, weights, lambda: ensure_merged(settings, ref),
                         f"|merged|{base}", "the adapter merged into its base")


def _written_gguf(ref: AdapterRef, base_gguf: Path, settings: Settings, weights: str,
                  source: Callable[[], Path], salt: str, what: str) -> Path:
    st = base_gguf.stat()
    key = hashlib.sha256(f"{weights_fingerprint(ref.path)}|{base_gguf.resolve()}|{st.st_size}|"
                         f"{st.st_mtime_ns}|{weights}{salt}".encode()).hexdigest()[:12]
    label = re.sub(r"[^\w.-]+", "-", ref.version)
    folder = settings.path("models", "gguf-full", f"{label}-{weights}-{key}")

    def write(tmp: Path) -> None:
        model_dir = source()
        tmp.mkdir(parents=True)
        write_full_gguf(model_dir, base_gguf, tmp / "model.gguf", WEIGHTS[weights])
        (tmp / FULL_MARKER).write_text(json.dumps({"version": ref.version, "source": str(model_dir),
                                                   "adapter": str(ref.path), "merged": bool(salt),
                                                   "base": str(base_gguf), "weights": weights}))

    try:
        made = build_once(folder, FULL_MARKER, write, lock=".full.lock")
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"could not write {what} {ref.version} as a GGUF for llama.cpp: {e}") from e
    if made:  # the live version's file and the one before it (a rollback) stay; older ones go
        same = sorted((p for p in folder.parent.iterdir() if p.is_dir() and not p.name.startswith(".")
                       and p.name.rsplit("-", 2)[-2:-1] == [weights]),
                      key=lambda p: (p == folder, p.stat().st_mtime), reverse=True)
        for old in same[KEEP_MERGED:]:
            shutil.rmtree(old, ignore_errors=True)
    return folder / "model.gguf"


# --- the base GGUF dequantized (llamacpp_weights f16 / f32) ---------------------------------------
DEQUANTIZED_MARKER = "cypherloop-dequantized.json"
DTYPES = {"f16": "float16", "f32": "float32"}


def write_dequantized_gguf(source: Path, out: Path, dtype: str = "float16") -> Path:
    """``source`` as a GGUF whose weight matrices are dequantized to ``dtype`` (the other tensors to float32),
    metadata kept."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(source))
    writer = gguf.GGUFWriter(str(out), reader.fields["general.architecture"].contents())
    copy_gguf_metadata(reader, writer)
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if len(t.shape) > 1 and t.shape[1] > 1:
            data = data.astype(dtype)
        writer.add_tensor(t.name, data.reshape([int(n) for n in reversed(t.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def dequantized_gguf(source: Path, settings: Settings, weights: str = "f16") -> Path:
    """``source`` with its weight matrices in float16 (``weights`` f16) or float32 (f32), written once into
    ``<home>/models/gguf-<weights>/<stem>-<fingerprint>/`` (``llamacpp_weights``): the weights transformers
    computes with (f32) or nearly, where llama.cpp's quantized arithmetic writes other replies
    (docs/BENCHMARKS.md 5b)."""
    st = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    folder = settings.path("models", f"gguf-{weights}", f"{source.stem}-{key}")

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        write_dequantized_gguf(source, tmp / "model.gguf", DTYPES[weights])
        (tmp / DEQUANTIZED_MARKER).write_text(json.dumps({"source": str(source), "weights": weights}))

    try:
        build_once(folder, DEQUANTIZED_MARKER, write, lock=f".{weights}.lock")
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"could not write {source.name} in {DTYPES[weights]} for llama.cpp: {e}") from e
    return folder / "model.gguf"
