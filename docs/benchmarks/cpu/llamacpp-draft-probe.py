"""Exact drafting in the llamacpp backend (docs/BENCHMARKS.md 5b, "exact drafting"): llama.cpp's n-gram
speculative decoding on the F32 GGUF, against no drafting, each question asked of every variant in turn (the
same load). The backend itself (``XLlamaCppGenerator``), the agent's prompts for the first N timed movies dev
questions of latency-ct2-100.json.gz, compared with the transformers first replies recorded there; per variant
the drafted and accepted tokens, the forward passes of the decoding and its time. Needs the movies graph in
the home (scripts/bench_latency.py --graph movies --graph-file ../shared/bench/graphs/movies.cypher
--home HOME).

    HOME_DIR=/tmp/draft-bench/home N=20 .venv/bin/python docs/benchmarks/cpu/llamacpp-draft-probe.py \\
        "none;llamacpp_draft=ngram-map-k;llamacpp_draft=ngram-mod+llamacpp_draft_max=4" > probe.json
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

HOME = Path(os.environ.get("HOME_DIR", "/tmp/draft-bench/home"))
N = int(os.environ.get("N", "20"))
THREADS = int(os.environ.get("THREADS", "1"))
with gzip.open(Path(__file__).with_name("latency-ct2-100.json.gz")) as f:
    reference = json.loads(f.read())
ref = reference["results"]["transformers/shipped"]["questions"][:N]
base = load_settings(home=HOME, graph="movies").model_copy(update={
    "model_backend": "llamacpp", "adapter": str(shipped_adapter("smollm2-135m-instruct").path),
    "temperature": 0.0, "llamacpp_weights": "f32", "llamacpp_threads": THREADS})
store = open_graph(base, "movies")
schema = store.schema().to_text()
store.close()


def variant_settings(spec: str):
    upd = {}
    for part in spec.split("+"):
        if part != "none":
            key, _, value = part.partition("=")
            upd[key] = int(value) if value.isdigit() else value
    return base.model_copy(update=upd)


variants = sys.argv[1].split(";")
gens = {v: xm.XLlamaCppGenerator(variant_settings(v)) for v in variants}
for g in gens.values():
    g.prepare()
rows = {v: [] for v in variants}
for i, r in enumerate(ref):
    for v in variants[i % len(variants):] + variants[:i % len(variants)]:  # the order rotates
        g = gens[v]
        t = time.perf_counter()
        text = g.complete(build_messages(r["question"], schema))
        tr = g.traces[-1]
        rows[v].append({"ms": round((time.perf_counter() - t) * 1000, 1), "same": text == r["first_reply"],
                        "new_tokens": tr.new_tokens, "decode_ms": round(tr.decode_ms, 1),
                        "drafted": tr.draft_tokens, "accepted": tr.draft_accepted,
                        "load": os.getloadavg()[0]})
    print(i, {v: rows[v][-1]["ms"] for v in variants}, file=sys.stderr, flush=True)
out = {}
for v, rs in rows.items():
    new = sum(x["new_tokens"] for x in rs)
    acc = sum(x["accepted"] for x in rs)
    ms = sorted(x["ms"] for x in rs)
    out[v] = {"n": len(rs), "same_first_reply_as_transformers": sum(x["same"] for x in rs),
              "p50_ms": ms[len(ms) // 2], "decode_ms": round(sum(x["decode_ms"] for x in rs)),
              "new_tokens": new, "drafted": sum(x["drafted"] for x in rs), "accepted": acc,
              "decoding_passes": new - len(rs) - acc, "questions": rs}
loads = [rows[variants[0]][0]["load"], rows[variants[0]][-1]["load"]]
print(json.dumps({"threads": THREADS, "load_first_last": loads, "variants": out}, indent=1))
