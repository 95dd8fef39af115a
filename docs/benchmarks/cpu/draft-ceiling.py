"""How many decoding passes exact n-gram drafting can save on the CPU bench's replies (docs/BENCHMARKS.md
5b, "exact drafting"), offline. Drafting is exact, so the replies it must reproduce are the model's own: the
100 transformers first replies of latency-ct2-100.json.gz, tokenised, after their prompts (the agent's
messages for the movies schema). Each drafter is replayed token by token as llama.cpp runs it
(common/ngram-map.cpp, common/speculative.cpp: ngram-simple, ngram-map-k, ngram-mod) or as transformers'
prompt lookup does, and also a lookup over the prompt plus the earlier replies; a pass is accepted up to the
first wrong draft token. ``pass_ratio``: undrafted decoding steps / passes; ``est_speedup`` with a pass
costing 1 + A per drafted token.

    HOME_DIR=/tmp/draft-sim A=0.09 .venv/bin/python docs/benchmarks/cpu/draft-ceiling.py > draft-ceiling.json

HOME_DIR needs the movies graph (a home the bench loaded it into) and the packaged base model.
"""
import gzip
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from agent.core.env import library_defaults  # noqa: E402

library_defaults()
from agent.core.prompt import build_messages, prompt_token_ids  # noqa: E402
from agent.core.settings import load_settings  # noqa: E402
from agent.graphdb import open_graph  # noqa: E402
from agent.models.ctranslate import load_tokenizer  # noqa: E402
from agent.models.local import ensure_base_model  # noqa: E402

A = float(os.environ.get("A", "0.09"))
s = load_settings(home=Path(os.environ.get("HOME_DIR", "/tmp/draft-sim")), graph="movies")
store = open_graph(s, "movies")
schema = store.schema().to_text()
store.close()
tok = load_tokenizer(ensure_base_model(s))
EOS = tok.convert_tokens_to_ids("<|im_end|>")
with gzip.open(Path(__file__).with_name("latency-ct2-100.json.gz")) as f:
    ref = json.loads(f.read())["results"]["transformers/shipped"]["questions"]
data = [(list(prompt_token_ids(tok, build_messages(r["question"], schema))),
         tok.encode(r["first_reply"], add_special_tokens=False) + [EOS]) for r in ref]


def simple(tokens, sampled, n, m):  # ngram-simple: the latest earlier match of the last n tokens
    cur = len(tokens)
    if cur <= n + m + 1:
        return []
    pat = tokens[cur - n + 1:] + [sampled]
    for j in range(cur - n - 1, 0, -1):
        if tokens[j:j + n] == pat:
            cm = min(m, cur - (j + n))
            return tokens[j + n:j + n + cm] if cm >= n else []
    return []


def mapk(tokens, sampled, n, m):  # ngram-map-k (key only): the same, the last n + m positions excluded
    cur = len(tokens)
    if cur < 2 * n + m:
        return []
    key = tokens[cur - n + 1:] + [sampled]
    for j in range(cur - n - m - 1, 0, -1):
        if tokens[j:j + n] == key:
            return tokens[j + n:j + n + m]
    return []


def lookup(tokens, sampled, n, m):  # transformers' prompt lookup: n-gram n..1, the first match
    h = tokens + [sampled]
    for size in range(n, 0, -1):
        pat = h[-size:]
        for j in range(0, len(h) - size):
            if h[j:j + size] == pat and h[j + size:j + size + m]:
                return h[j + size:j + size + m]
    return []


def replay(draft_of, pool_of=lambda past: []):
    """Passes over all replies; ``draft_of(history, pos)`` drafts after ``history[:pos]``."""
    passes = cost = drafted = accepted = 0
    past = []
    for prompt, reply in data:
        seq = prompt + reply
        pool = pool_of(past)
        pos = len(prompt) + 1  # the prefill wrote the first new token
        state = draft_of.begin(seq, len(prompt)) if hasattr(draft_of, "begin") else None
        while pos < len(seq):
            d = draft_of(pool + seq[:pos], state)[:len(seq) - pos]
            k = 0
            while k < len(d) and d[k] == seq[pos + k]:
                k += 1
            if hasattr(draft_of, "accept"):
                draft_of.accept(state, len(d), k)
            passes += 1
            cost += 1 + A * len(d)
            drafted += len(d)
            accepted += k
            pos += k + 1
        past.append(reply)
    steps = sum(len(r) - 1 for _, r in data)
    return {"passes": passes, "undrafted_steps": steps, "pass_ratio": round(steps / passes, 2),
            "est_speedup": round(steps / cost, 2), "drafted": drafted, "accepted": accepted}


class NgramMod:
    """llama.cpp's ngram-mod: one table n-gram -> next token across requests; the prompt's n-grams at each
    request's start, the reply's in chunks of 32; emptied after 5 drafts in a row below 25 % accepted."""

    def __init__(self, n, n_max, n_min):
        self.n, self.n_max, self.n_min, self.table, self.low = n, n_max, n_min, {}, 0

    def begin(self, seq, p):
        for i in range(p - self.n):
            self.table[tuple(seq[i:i + self.n])] = seq[i + self.n]
        return {"seq": seq, "i_last": p - self.n}

    def __call__(self, h, st):
        n, cur = self.n, len(h) - 1
        if st["i_last"] + 32 < cur:
            for i in range(st["i_last"], cur - n):
                self.table[tuple(h[i:i + n])] = h[i + n]
            st["i_last"] = cur - n
        d = []
        for _ in range(self.n_max):
            t = self.table.get(tuple((h[-n:] + d)[-n:]))
            if t is None:
                break
            d.append(t)
        return d if len(d) >= self.n_min else []

    def accept(self, st, n_drafted, k):
        if n_drafted:
            self.low = self.low + 1 if k / n_drafted < 0.25 else 0
            if self.low >= 5:
                self.table, self.low, st["i_last"] = {}, 0, 0


out = {"pass_cost_per_drafted_token": A, "questions": len(data), "in_request": [], "with_earlier_replies": [],
       "ngram_mod": []}
for name, fn in (("ngram-simple", simple), ("ngram-map-k", mapk), ("lookup", lookup)):
    for n in (1, 2, 3, 4):
        for m in (3, 4, 6, 8, 12):
            if name != "ngram-simple" or m >= n:
                r = replay(lambda h, _st, fn=fn, n=n, m=m: fn(h[:-1], h[-1], n, m))
                out["in_request"].append({"kind": name, "n": n, "m": m, **r})
for n in (2, 4):
    for m in (4, 8, 12):
        r = replay(lambda h, _st, n=n, m=m: lookup(h[:-1], h[-1], n, m),
                   pool_of=lambda past: [t for rep in past for t in rep])
        out["with_earlier_replies"].append({"kind": "lookup", "n": n, "m": m, **r})
for n in (2, 3, 4, 6):
    for n_max in (4, 8):
        for n_min in (1, 2):
            out["ngram_mod"].append({"kind": "ngram-mod", "n": n, "n_max": n_max, "n_min": n_min,
                                     **replay(NgramMod(n, n_max, n_min))})
print(json.dumps(out, indent=1))
