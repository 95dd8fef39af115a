"""How often the top-K nucleus (agent.models.graphed.nucleus_top_k) flags a row for the full sort: the shipped
adapter's logits in bfloat16 (as on CUDA), the product's prompts for 24 movies dev questions, each sampled
at temperature 0.7 and top-p 0.9 (the candidates' settings) for up to 30 steps along its own sampled path.
A flag costs the host a full sort of that row (0.75 ms a step on the H200); ties at the nucleus's edge, which
bfloat16 makes likelier, are the worry. Prints one JSON line."""
import json
import os

os.environ.setdefault("CYPHERLOOP_HOME", "/tmp/topk-flags/home")  # the movies graph loaded there (README)
import torch

from agent.core.prompt import prompt_token_ids
from agent.core.settings import load_settings
from agent.factory import make_agent
from agent.graph import State, _PlainRuntime, retrieve
from agent.models.base import PromptInput
from agent.models.graphed import nucleus_top_k
from agent.models.local import TransformersGenerator

torch.manual_seed(0)
s = load_settings(graph="movies").model_copy(update={"device": "cpu", "model_backend": "transformers"})
gen = TransformersGenerator(s)
gen.sync_adapter()
model = gen._runner().to(torch.bfloat16)
tok = gen.tokenizer
with open("../shared/bench/dev/movies.jsonl") as f:
    qs = [json.loads(line)["question"] for line in f][2:26]
with make_agent(s) as agent:
    prompts = []
    for q in qs:
        st = retrieve(State(question=q), _PlainRuntime(agent.context))
        prompts.append(prompt_token_ids(tok, PromptInput(q, st["schema_text"], st["examples"]).messages()))
flags, why = [], {"mass": 0, "margin": 0, "tie": 0}
with torch.inference_mode():
    for ids in prompts:
        seq = list(ids)
        for _ in range(30):
            logits = model(input_ids=torch.tensor([seq])).logits[:, -1].float()
            scores = logits / 0.7
            top, index, keep, exact = nucleus_top_k(scores, 0.9)
            flags.append(bool(exact[0]))
            if not exact[0]:
                k = top.shape[-1]
                kept = int(keep.sum().clamp(max=k - 1))
                if top[0, kept] == top[0, kept - 1]:
                    why["tie"] += 1
            # follow the sampled path
            probs = torch.softmax(top.masked_fill(~keep, -float("inf")), -1)
            t = int(index[0, torch.multinomial(probs[0], 1)])
            seq.append(t)
            if t in gen._stop_ids:
                break
flagged = flags.count(False)
print(json.dumps({"steps": len(flags), "flagged": flagged, "share": round(flagged / len(flags), 3),
                  "ties": why["tie"]}))
