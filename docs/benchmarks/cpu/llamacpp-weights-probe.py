"""Which llama.cpp setting brings its greedy replies to transformers' (docs/BENCHMARKS.md 5b, "llama.cpp without
a build"): the KV cache in f32 (``kvf32``), or the packaged Q4_1 GGUF dequantized to F32 / F16 (``f32base``,
``f16base``: the weights transformers computes with). The llamacpp backend itself (``XLlamaCppGenerator``), the
agent's prompts for the first N timed movies dev questions of latency-ct2-100.json.gz, compared with the
transformers first replies recorded there. Needs the movies graph in the bench's home (scripts/bench_latency.py
--graph movies --graph-file ../shared/bench/graphs/movies.cypher --home /tmp/cpu15-bench).

    PYTHONPATH=<xllamacpp> N=20 .venv/bin/python docs/benchmarks/cpu/llamacpp-weights-probe.py default,kvf32,f32base
"""
import gzip
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from agent.core.env import library_defaults  # noqa: E402

library_defaults()
from agent.core.adapters import shipped_adapter  # noqa: E402
from agent.core.prompt import build_messages  # noqa: E402
from agent.core.settings import load_settings  # noqa: E402
from agent.graphdb import open_graph  # noqa: E402
from agent.models import xllamacpp as xm  # noqa: E402

HOME = Path(os.environ.get("HOME_DIR", "/tmp/cpu15-bench"))
N = int(os.environ.get("N", "20"))
reference = json.loads(gzip.open(Path(__file__).with_name("latency-ct2-100.json.gz")).read())
ref = reference["results"]["transformers/shipped"]["questions"][:N]
s = load_settings(home=HOME, graph="movies").model_copy(update={
    "model_backend": "llamacpp", "adapter": str(shipped_adapter("smollm2-135m-instruct").path), "temperature": 0.0})
store = open_graph(s, "movies")
schema = store.schema().to_text()
store.close()


def dequantized_gguf(src: Path, dst: Path, dtype: str = "float32") -> Path:
    """The GGUF with its matrices dequantized to ``dtype`` (the backend's own writer), once."""
    return dst if dst.is_file() else xm.write_dequantized_gguf(src, dst, dtype)


def kv_f32_params() -> None:
    """Make the backend build its llama.cpp parameters with the KV cache in f32."""
    import xllamacpp as xlc

    class Params(xlc.CommonParams):
        def __init__(self) -> None:
            super().__init__()
            self.cache_type_k = self.cache_type_v = xlc.ggml_type.GGML_TYPE_F32

    class Shim:
        def __getattr__(self, name: str):
            return Params if name == "CommonParams" else getattr(xlc, name)

    xm.import_xllamacpp = lambda: Shim()


out = {}
real_import = xm.import_xllamacpp
for variant in sys.argv[1].split(","):
    gen = xm.XLlamaCppGenerator(s)
    if variant in ("f32base", "f16base"):
        dtype = "float32" if variant == "f32base" else "float16"
        gen.base_path = dequantized_gguf(gen.base_path, HOME / f"smollm2-{dtype}.gguf", dtype)
    if variant == "kvf32":
        kv_f32_params()
    same, steps = 0, []
    for r in ref:
        t = time.perf_counter()
        text = gen.complete(build_messages(r["question"], schema))
        steps.append(gen.traces[-1].step_ms)
        same += text == r["first_reply"]
    xm.import_xllamacpp = real_import
    out[variant] = {"n": len(ref), "same_first_reply_as_transformers": same,
                    "median_step_ms": sorted(steps)[len(steps) // 2]}
    print(variant, out[variant], flush=True)
    del gen
print(json.dumps(out, indent=1))
