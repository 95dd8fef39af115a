"""Static KV cache + compiled decoding step on the GPU, raw generate (temporary probe)."""
import glob, time, traceback
import torch
from transformers import AutoModelForCausalLM
path = glob.glob("/tmp/h-movies/models/smollm2-135m-instruct")[0]
m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to("cuda").eval()
ids = torch.tensor([[1] * 300], device="cuda")
for mode in ["static", None]:
    for i in range(4):
        try:
            torch.cuda.synchronize(); t = time.perf_counter()
            with torch.inference_mode():
                kw = {"cache_implementation": mode} if mode else {}
                m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, min_new_tokens=40, do_sample=False, **kw)
            torch.cuda.synchronize(); print(mode, i, "40 tok", round((time.perf_counter() - t) * 1000), "ms", flush=True)
        except Exception:
            traceback.print_exc(limit=6); break
