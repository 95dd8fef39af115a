"""Does the llamacpp backend serve a full fine-tune as transformers does (docs/BENCHMARKS.md 5b, "A full
fine-tune on llama.cpp")? Two checks, the product's own code:

1. The converted base (the Hugging Face folder made from the packaged GGUF) written as a "full fine-tune" GGUF
   (``agent.models.gguf_full.write_full_gguf``) must hold exactly the tensors of the packaged GGUF dequantized to
   F32 (``dequantized_gguf``): names, the q/k permutation (9 query / 3 key-value heads), the tied head.
2. The shipped adapter merged into the base (``ensure_merged``: a real full model, config.json + safetensors,
   no LoRA) served by ``XLlamaCppGenerator`` with ``llamacpp_weights=f32``: its greedy replies to the agent's
   prompts for the first N timed movies dev questions of latency-ct2-100.json.gz, against the transformers
   first replies recorded there (transformers with the same adapter unmerged).

    HOME_DIR=/tmp/ggufull-probe N=20 .venv/bin/python docs/benchmarks/cpu/llamacpp-full-probe.py \
        ../shared/bench/graphs/movies.cypher > docs/benchmarks/cpu/llamacpp-full-probe.json
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
import gguf  # noqa: E402
import numpy as np  # noqa: E402

from agent.core.adapters import shipped_adapter  # noqa: E402
from agent.core.prompt import build_messages  # noqa: E402
from agent.core.settings import load_settings  # noqa: E402
from agent.graphdb import open_graph  # noqa: E402
from agent.graphdb.loader import load_script  # noqa: E402
from agent.models.gguf_full import write_full_gguf  # noqa: E402
from agent.models.llamacpp import gguf_base_path  # noqa: E402
from agent.models.local import ensure_base_model, ensure_merged  # noqa: E402
from agent.models.xllamacpp import XLlamaCppGenerator, dequantized_gguf  # noqa: E402

HOME = Path(os.environ.get("HOME_DIR", "/tmp/ggufull-probe"))
N = int(os.environ.get("N", "20"))
reference = json.loads(gzip.open(Path(__file__).with_name("latency-ct2-100.json.gz")).read())
ref = reference["results"]["transformers/shipped"]["questions"][:N]
s = load_settings(home=HOME, graph="movies").model_copy(update={
    "model_backend": "llamacpp", "llamacpp_weights": "f32", "llamacpp_threads": 1, "temperature": 0.0})
store = open_graph(s, "movies")
try:
    empty = not store.query("MATCH (n) RETURN count(n)").rows[0][0]
except Exception:  # noqa: BLE001 - the graph does not exist yet
    empty = True
if empty:
    load_script(store, Path(sys.argv[1]), replace=True)
schema = store.schema().to_text()
store.close()

out: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_1min_start": os.getloadavg()[0]}
base_dir = ensure_base_model(s)
t = time.perf_counter()
base_as_full = write_full_gguf(base_dir, gguf_base_path(s), HOME / "base-as-full.gguf", "float32")
out["write_full_gguf_s"] = round(time.perf_counter() - t, 1)
written = {x.name: np.asarray(x.data, np.float32) for x in gguf.GGUFReader(str(base_as_full)).tensors}
packaged = {x.name: np.asarray(x.data, np.float32)
            for x in gguf.GGUFReader(str(dequantized_gguf(gguf_base_path(s), s, "f32"))).tensors}
out["tensors"] = {"same_names": set(written) == set(packaged), "n": len(written),
                  "max_abs_diff": max(float(np.abs(written[n] - packaged[n]).max()) for n in written)}
print(out, file=sys.stderr, flush=True)

merged = ensure_merged(s, shipped_adapter("smollm2-135m-instruct"))
gen = XLlamaCppGenerator(s.model_copy(update={"adapter": str(merged)}))
rows = []
for r in ref:
    text = gen.complete(build_messages(r["question"], schema))
    rows.append({"question": r["question"], "same": text == r["first_reply"], "llamacpp": text,
                 "transformers": r["first_reply"]})
    print(len(rows), rows[-1]["same"], file=sys.stderr, flush=True)
out["full_fine_tune"] = {"served_as": gen.version, "n": len(rows),
                         "same_first_reply_as_transformers": sum(r["same"] for r in rows), "rows": rows}
out["load_1min_end"] = os.getloadavg()[0]
print(json.dumps(out, indent=1))
