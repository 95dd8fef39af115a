"""Cold compile cost through the product's train_full: whichever finetune.full is first on sys.path
(main's whole-decoder compile or this branch's per-layer one) on a 30-layer narrow Llama (SmolLM2-135M's
depth, toy widths) with the SmolLM2 tokenizer; inductor on the CPU, caches off (TORCHINDUCTOR_FORCE_DISABLE_CACHES=1). BASE comes from make_data.py. Usage: compile_cost.py CHECKOUT BASE. Prints one JSON line."""
import json, random, shutil, sys, time
from pathlib import Path
code, base = sys.argv[1], Path(sys.argv[2])
sys.path.insert(0, code)
from agent.core.prompt import training_record
from finetune.full import FullConfig, train_full
import finetune.full
deep = base / "deep30"
if not (deep / "config.json").is_file():
    from transformers import AutoConfig, LlamaForCausalLM
    import torch
    cfg = AutoConfig.from_pretrained(str(base / "tiny-llama")); cfg.num_hidden_layers = 30
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(str(deep))
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        shutil.copy(base / "tiny-llama" / f, deep / f)
data = base / "data"
rng = random.Random(0)
run = base / f"deep-run-{time.time_ns()}"
t0 = time.perf_counter()
res = train_full(data, deep, run, FullConfig.load("full-cpu", ["epochs=0.25", "tokens_per_batch=4096",
                 "compile=true", "log_every=1"]))
rows = [json.loads(x) for x in (run / "loss.jsonl").read_text().splitlines()]
print(json.dumps({"code": finetune.full.__file__, "steps": res.metrics["steps"],
                  "step_seconds": [r["seconds"] for r in rows], "metrics": res.metrics,
                  "wall": round(time.perf_counter() - t0, 1)}))
