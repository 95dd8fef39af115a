"""Behind gemma-tokenizer-repro.json (python gemma-tokenizer-repro.py BASE_DIR OUT_DIR EPOCHS, PYTHONPATH=the checkout):
a tiny full fine-tune with the product's code (finetune.full.train_full), then served by the product's generator
(TransformersGenerator with the run's model as the adapter, greedy, as the bootstrap's evaluate does)."""
import json, sys, time
from pathlib import Path
import agent
from agent.core.prompt import build_messages, training_record
from agent.core.settings import Settings
from agent.models.local import TransformersGenerator, stop_token_ids
from finetune.full import FullConfig, train_full
print("product code:", agent.__file__)
base, out, epochs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
SCHEMA = "Node properties:\nPerson {name: STRING, born: INTEGER}\nMovie {title: STRING, released: INTEGER}\nThe relationships:\n(:Person)-[:ACTED_IN]->(:Movie)"
pairs = [("Which movies did Tom Hanks act in?", "MATCH (p:Person {name: 'Tom Hanks'})-[:ACTED_IN]->(m:Movie) RETURN m.title"),
         ("How many people were born before 1960?", "MATCH (p:Person) WHERE p.born < 1960 RETURN count(p)"),
         ("List the 3 most recent movies.", "MATCH (m:Movie) RETURN m.title ORDER BY m.released DESC LIMIT 3")]
data = out / "data"; data.mkdir(parents=True, exist_ok=True)
(data / "train.jsonl").write_text("".join(json.dumps(training_record(q, c, SCHEMA)) + "\n" for q, c in pairs))
cfg = FullConfig.load("full-cpu", [f"epochs={epochs}", "learning_rate=3e-4", "warmup_steps=2", "min_lr_ratio=0.5",
                                   "save_every_s=100000", "log_every=5"])
t = time.time()
res = train_full(data, base, out / "run", cfg, device="cpu")
m = res.metrics
print(f"trained {m['steps']} steps in {time.time()-t:.0f} s; examples {m['examples']}, tokens/step {m['tokens']/m['steps']:.0f}, target tokens/step {m['target_tokens']/m['steps']:.0f}, final loss {m['final_loss']}")
s = Settings(home=out / "home", base_model=str(base), adapter=res.model_dir, device="cpu", temperature=0.0,
             max_new_tokens=int(sys.argv[4]) if len(sys.argv) > 4 else 120)
gen = TransformersGenerator(s)
tok = gen.tokenizer
print("stop ids", gen._stop_ids, [tok.convert_ids_to_tokens(i) for i in gen._stop_ids])
ok = 0
for q, c in pairs:
    t = time.time()
    reply = gen.complete(build_messages(q, SCHEMA))
    tr = gen.traces[-1]
    ok += reply == c
    print(json.dumps({"expected": c, "reply": reply, "same": reply == c, "prompt_tokens": tr.prompt_tokens,
                      "seconds": round(time.time() - t, 1)}))
print(f"REPRODUCED {ok} of {len(pairs)} training completions")
