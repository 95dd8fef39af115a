"""Where a GPU decoding step goes: the product's TransformersGenerator vs raw generate (temporary probe)."""
import os, sys, time
sys.path[:0] = ["/tmp/site", "/tmp/minilm", os.getcwd()]
os.environ.update(CYPHERLOOP_HOME="/tmp/h-movies", CYPHERLOOP_GRAPH="movies", HF_HUB_OFFLINE="1",
                  CYPHERLOOP_ADAPTER=os.getcwd() + "/agent/data/adapters/general-v1", CYPHERLOOP_DEVICE="cuda")
import torch
from agent.core.settings import load_settings
from agent.models.local import TransformersGenerator
g = TransformersGenerator(load_settings()).load()
msgs = [{"role": "system", "content": "You write Cypher."}, {"role": "user", "content": "How many movies are there?"}]
for i in range(2):
    t = time.perf_counter(); r = g.complete(msgs, max_new_tokens=40); torch.cuda.synchronize()
    tr = g.traces[-1]; print("complete", round((time.perf_counter() - t) * 1000), "ms", repr(r[:60]), {k: v for k, v in vars(tr).items() if not isinstance(v, list)}, flush=True)
m = g._runner(); print("runner", type(m).__name__, next(m.parameters()).device, next(m.parameters()).dtype, "merged", g._merged, flush=True)
ids = torch.tensor([[1] * 300], device="cuda")
for name, mod in [("runner", m), ("base", g._model)]:
    for _ in range(2):
        torch.cuda.synchronize(); t = time.perf_counter()
        with torch.inference_mode():
            out = mod.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, min_new_tokens=40, do_sample=False)
        torch.cuda.synchronize(); print(name, "raw generate 40 tok", round((time.perf_counter() - t) * 1000), "ms", flush=True)
with torch.inference_mode():
    for _ in range(3):
        torch.cuda.synchronize(); t = time.perf_counter(); g._model(input_ids=ids[:, :1]); torch.cuda.synchronize()
        print("one forward 1 tok", round((time.perf_counter() - t) * 1000, 1), "ms", flush=True)
print("threads", torch.get_num_threads(), "cuda", torch.version.cuda, flush=True)
