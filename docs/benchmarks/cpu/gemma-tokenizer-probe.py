"""Probe behind gemma-tokenizer-5.17.json (run from the repository root; PYTHONPATH=<transformers 5.17 folder>:.
for the 5.17 half). The three tokenizer folders are the ones named in the JSON."""
import json, sys, platform
import transformers
from transformers import AutoTokenizer
from finetune.full import tokenize_records
from agent.models.local import GEMMA_CHAT_TEMPLATE
data = sys.argv[1]
recs = [json.loads(l) for l in open(data)]
out = {"records": len(recs), "data": data, "transformers_here": transformers.__version__, "readings": {}}
sample = "<start_of_turn>model\nMATCH (c:Character)\nWHERE c.book45PageRank > 2\nRETURN c.name<end_of_turn>\n"
for name, path in (("transformers 5.17 (H200 image)", "/tmp/gs/tok517"),
                   ("transformers 5.24 (this CPU)", "/tmp/cl-gemmacpu/models/gemma3-270m"),
                   ("5.17 + this fix (gguf_tokenizer)", "/tmp/gs/tok517prod")):
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tok.chat_template = GEMMA_CHAT_TEMPLATE
    ex = tokenize_records(tok, recs, 2048)
    ids = tok(sample, add_special_tokens=False)["input_ids"]
    out["readings"][name] = {
        "backend_model": type(tok.backend_tokenizer.model).__name__,
        "added_tokens": len(tok.get_added_vocab()),
        "kept_at_max_length_2048": len(ex),
        "tokens_per_record": round(sum(len(f) for f, _ in ex) / len(ex), 1),
        "target_tokens_per_record": round(sum(len(f) - p for f, p in ex) / len(ex), 1),
        "sample_tokens": tok.convert_ids_to_tokens(ids),
        "end_of_turn_id_in_sample": 106 in ids,
    }
print(json.dumps(out, indent=1, ensure_ascii=False))
