"""Count torch.compile graphs through finetune.full.train_full on the tiny model, 400 records of varied lengths; also makes BASE/data and BASE/tiny-llama for compile_cost.py. Usage: make_data.py BASE [key=value ...]"""
import json, random, sys, time, logging
from pathlib import Path
ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tests")); sys.path.insert(0, str(ROOT))
from finetune_helpers import tiny_model_dir
from agent.core.prompt import training_record
from finetune.full import FullConfig, train_full
import torch, torch._dynamo
from torch._dynamo.utils import counters

base = Path(sys.argv[1]); base.mkdir(parents=True, exist_ok=True)
tiny = tiny_model_dir(base)
SCHEMA = "Node properties:\nThing {id: INTEGER, name: STRING}"
rng = random.Random(0)
recs = []
for i in range(400):
    w = " ".join(f"w{rng.randrange(99)}" for _ in range(rng.randrange(1, 60)))
    recs.append(training_record(f"How many things {w}?", f"MATCH (n:Thing {{name: 't{i}'}}) RETURN count(n)", SCHEMA))
data = base / "data"; data.mkdir(exist_ok=True)
(data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
extra = sys.argv[2:]
cfg = FullConfig.load("full-cpu", ["epochs=1", "tokens_per_batch=4096", "compile=true", "log_every=5", *extra])
run = base / f"run{time.time_ns()}"
t0 = time.perf_counter()
res = train_full(data, tiny, run, cfg)
print(json.dumps({k: v for k, v in res.metrics.items()}, indent=1))
print("wall", round(time.perf_counter() - t0, 1))
print("frames", dict(counters["frames"]), "recompiles", dict(counters["recompiles"]) if "recompiles" in counters else None)
print("stats", dict(counters["stats"]))
