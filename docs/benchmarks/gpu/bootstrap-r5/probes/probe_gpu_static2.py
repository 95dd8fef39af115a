"""The product's complete() with the static cache on the GPU (temporary probe)."""
import os, sys, time, traceback
sys.path[:0] = ["/tmp/site", "/tmp/minilm", os.getcwd()]
os.environ.update(CYPHERLOOP_HOME="/tmp/h-movies", CYPHERLOOP_GRAPH="movies", HF_HUB_OFFLINE="1",
                  CYPHERLOOP_ADAPTER=os.getcwd() + "/agent/data/adapters/general-v1", CYPHERLOOP_DEVICE="cuda",
                  CYPHERLOOP_GENERATION_CACHE="static")
from agent.core.settings import load_settings
from agent.models.local import TransformersGenerator
g = TransformersGenerator(load_settings()).load()
for q in ["How many movies are there?", "How many movies are there?", "Which people acted in The Matrix and were born before 1970?", "List movies"]:
    msgs = [{"role": "system", "content": "You write Cypher."}, {"role": "user", "content": q}]
    t = time.perf_counter(); r = g.complete(msgs, max_new_tokens=40)
    tr = g.traces[-1]; print(round((time.perf_counter() - t) * 1000), "ms", repr(r[:50]), tr.prompt_tokens, tr.new_tokens, "failed" if g._static_cache_failed else "static ok", getattr(tr, "static_cache_error", None) or getattr(g, "static_cache_error", None), flush=True)
