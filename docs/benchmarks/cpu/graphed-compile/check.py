import torch, tempfile, time
from pathlib import Path
from tests.agent_helpers import make_tiny_model_dir
from transformers import AutoModelForCausalLM
from agent.models.graphed import GraphedDecoder
d = make_tiny_model_dir(Path(tempfile.mkdtemp()) / "t")
m = AutoModelForCausalLM.from_pretrained(str(d)).eval()
with torch.inference_mode():
    a = GraphedDecoder(m, 2, 256, "cpu", graphs=False)
    b = GraphedDecoder(m, 2, 256, "cpu", graphs=False)
    b._step_fn = torch.compile(b._step_pass, mode="default", dynamic=False)
    seq = torch.randint(0, 1000, (60,)).tolist()
    la, lb = a.prefill(seq[:40]), b.prefill(seq[:40])
    t = time.time(); worst = 0
    for tok in seq[40:]:
        a.step_ids.copy_(torch.tensor([[tok], [tok]])); b.step_ids.copy_(torch.tensor([[tok], [tok]]))
        x = a._step_pass()[:, -1]; y = b._step_fn()[:, -1]
        worst = max(worst, (x - y).abs().max().item())
    print("compiled step vs eager, max |diff|", worst, "s", round(time.time() - t, 1))
