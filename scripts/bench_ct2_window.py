"""Dev check: does CTranslate2 compute a base model as transformers does, by prompt length (never a test).

    .venv/bin/python scripts/bench_ct2_window.py --base gemma3-270m --new 100 \\
        --prompts 200,450,505,520,600,300+300,450+250 --out docs/benchmarks/cpu/ct2-gemma3-window.json

The base (a ``CYPHERLOOP_BASE_MODEL`` value: ``gemma3-270m``, the default, a folder) is converted the
product's way (``ensure_base_model``, then ``agent.models.ctranslate.ensure_converted`` without an adapter,
float32) into ``--home``. Each prompt is the first L tokens of ``--text`` (a Cypher script: any text will
do); ``S+R`` passes the first S tokens as CTranslate2's ``static_prompt`` (as the product does with the system
turn) and the next R as the prompt. CTranslate2 decodes ``--new`` tokens greedily, returning each step's
logits; transformers then scores the prompt and that reply in one forward pass. The report gives the largest
logit difference at the first step, around the model's sliding window and at the last step, and how many
steps' argmax differ.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench_ct2_window")
    ap.add_argument("--base", default="gemma3-270m")
    ap.add_argument("--home", type=Path, default=Path("/tmp/cl-bench-window"))
    ap.add_argument("--prompts", default="200,450,505,520,600,300+300")
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--text", type=Path, default=ROOT.parent / "shared/bench/graphs/movies.cypher")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-output/ct2-window.json")
    args = ap.parse_args()
    from agent.core.env import library_defaults

    library_defaults()
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.core.settings import load_settings
    from agent.models.ctranslate import converted_window, ensure_converted, import_ctranslate2
    from agent.models.local import ensure_base_model

    ct2 = import_ctranslate2()
    settings = load_settings(home=args.home, base_model=args.base, adapter="none", ct2_quantization="float32")
    base_dir, ct2_dir = ensure_base_model(settings), ensure_converted(settings, None)
    window = converted_window(ct2_dir)
    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    hf = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32, local_files_only=True)
    hf.eval()
    gen = ct2.Generator(str(ct2_dir), device="cpu", compute_type="float32", intra_threads=1)
    text_ids = tok(args.text.read_text(encoding="utf-8"))["input_ids"]
    rows = []
    for spec in args.prompts.split(","):
        static, _, rest = spec.partition("+")
        s, length = (int(static), int(static) + int(rest)) if rest else (0, int(static))
        ids = text_ids[:length]
        toks = tok.convert_ids_to_tokens(ids)
        res = gen.generate_batch([toks[s:]], static_prompt=toks[:s] or None, max_length=args.new,
                                 min_length=args.new, sampling_topk=1, include_prompt_in_result=False,
                                 end_token=[], return_logits_vocab=True)[0]
        reply = res.sequences_ids[0]
        ours = np.array(res.logits[0]).reshape(len(reply), -1)
        with torch.inference_mode():
            theirs = hf(torch.tensor([ids + reply])).logits[0, length - 1: length - 1 + len(reply)].numpy()
        ours = ours[:, : theirs.shape[1]]
        diff = np.abs(ours - theirs).max(axis=1)
        near = [i for i in range(len(reply)) if window and length + i in (window - 1, window, window + 1)]
        steps = sorted({0, *near, len(reply) - 1})
        row = {"prompt_tokens": length, "static_prompt_tokens": s, "new_tokens": len(reply),
               "max_abs_logit_diff": {f"step {i} (position {length + i})": round(float(diff[i]), 5)
                                      for i in steps},
               "steps_with_a_different_argmax": int((ours.argmax(1) != theirs.argmax(1)).sum())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"command": " ".join(["scripts/bench_ct2_window.py", *sys.argv[1:]]),
              "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "base": args.base, "ctranslate2": ct2.__version__, "sliding_window": window, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
