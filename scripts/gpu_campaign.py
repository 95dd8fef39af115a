"""The GPU campaign of docs/BENCHMARKS.md (issue 7), run on the lent GPU machine in phases.

    python3 scripts/gpu_campaign.py PHASE [PHASE ...] --data DIR --out DIR

Phases (each writes ``<out>/<phase>.json``; a phase that already has its JSON in ``--state`` is skipped):
  b7       7B-class Llama-2 architecture with random weights: QLoRA throughput and peak memory (seeds'
           configuration and the fast recipe with 4-bit), model FLOPs utilisation.
  setup    the packaged base model (GGUF -> safetensors), the embedded FalkorDB, the three graphs.
  speed    seeds-qlora vs fast-gpu on the real base: same data, same optimizer steps; tokens/s,
           samples/s, peak memory, eval loss.
  general  the general adapter (multi-schema CSV + offline pairs of demo and northwind; never movies),
           the shipped default; evaluated against the base on demo held-out, movies (unseen) and northwind.
  loop     the feedback loop: round 0 from synthetic pairs, three rounds of corrections (gold Cypher for
           every wrong answer in a stream of dev questions), held-out accuracy per round.
  latency  question -> answer through the real agent (CypherAgent) with the shipped adapter on this GPU.

Accuracy here is first-attempt execution accuracy of greedy, batched generation through the shared
prompt module and the agent's own clean-up (no few-shot, no retry), scored with agent.evaluation's rule.
The prep (data, graphs) is scripts/gpu_prep.py on the CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
log = logging.getLogger("campaign")

H200_BF16_DENSE_TFLOPS = 989.0  # NVIDIA's dense bf16 peak for H100/H200 SXM
STATE = Path(os.environ.get("CL_CAMPAIGN_STATE", "/tmp/cl-campaign"))
HOME = STATE / "home"

# Training overrides shared by the campaign's own adapters (the general-gpu recipe holds the same values).
LOOP_RECIPE = "general-gpu"


# ----------------------------------------------------------------------------------------------- utils
def _settings(**kw: Any) -> Any:
    from agent.settings import Settings

    return Settings(home=HOME, **kw)


def _write(out: Path, name: str, obj: Any) -> None:
    text = json.dumps(obj, indent=2, default=str)
    (out / f"{name}.json").write_text(text)
    (STATE / f"{name}.json").write_text(text)
    print(f"== {name}: {json.dumps(obj, default=str)[:1500]}", flush=True)


def _gpu() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"cuda": False}
    p = torch.cuda.get_device_properties(0)
    return {"cuda": True, "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1), "torch": torch.__version__}


EXTRA_OVERRIDES: list[str] = []  # --override (a CPU dry run shrinks every training with these)
EVAL_LIMIT: int | None = None  # --eval-limit (a CPU dry run scores a few questions per set)


def _recipe(name: str, overrides: list[str]) -> Any:
    from finetune.config import load_recipe

    return load_recipe(name, [*overrides, *EXTRA_OVERRIDES])


def _train(recipe: Any, data_dir: Path, out_dir: Path, base: Path, budget_s: float | None = None) -> dict[str, Any]:
    from finetune.train import train

    callbacks = [_TimeBudget(budget_s)] if budget_s else []
    res = train(recipe, data_dir=data_dir, output_dir=out_dir, base_model=base, overwrite=True, callbacks=callbacks)
    m = dict(res.metrics)
    m["adapter_dir"] = res.adapter_dir
    m["loss_log"] = res.loss_log
    m["recipe"] = recipe.name
    return m


def _TimeBudget(seconds: float) -> Any:  # noqa: N802 - a callback factory
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        """Stops training (cleanly, adapter saved) when a phase would outrun the machine's call limit."""

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if time.perf_counter() - self.t0 > seconds:
                log.warning("time budget of %.0f s reached at step %d: stopping", seconds, state.global_step)
                control.should_training_stop = True

    return TimeBudget()


# ----------------------------------------------------------------------------------------------- b7
def phase_b7(args: argparse.Namespace) -> dict[str, Any]:
    """Random-weight Llama-2-7B architecture (vocabulary of the SmolLM2 tokenizer): QLoRA speed and memory."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    model_dir = Path("/tmp/llama2-7b-random")
    tok_dir = args.data / "tokenizer"
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
                      vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=False)
    if args.b7_tiny:  # CPU dry run of the phase's plumbing
        cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads = 128, 256, 2, 4, 4
        model_dir = Path("/tmp/llama-tiny-random")
    t0 = time.perf_counter()
    if not (model_dir / "config.json").is_file():
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = LlamaForCausalLM(cfg).to(torch.bfloat16)
        n_params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(model_dir, max_shard_size="5GB")
        del model
        torch.cuda.empty_cache()
        AutoTokenizer.from_pretrained(tok_dir).save_pretrained(model_dir)
        (model_dir / "n_params.txt").write_text(str(n_params))
    n_params = int((model_dir / "n_params.txt").read_text())
    made_s = time.perf_counter() - t0
    data_dir = args.data / "b7data"
    runs = {}
    common = ["train.max_steps=8", "data.eval_fraction=0", "train.early_stopping_patience=0",
              "train.logging_steps=1", "train.save_steps=1000", "train.dataloader_num_workers=2"]
    variants = {
        "seeds-qlora": ("seeds-qlora", common),
        "fast-qlora": ("fast-gpu", [*common, "model.load_in_4bit=true", "model.bnb_4bit_quant_type=nf4",
                                     "model.bnb_4bit_use_double_quant=true", "model.bnb_4bit_compute_dtype=bfloat16",
                                     "train.gradient_checkpointing=true"]),
    }
    for label, (name, ov) in variants.items():
        import gc

        gc.collect()
        torch.cuda.empty_cache()
        m = _train(_recipe(name, ov), data_dir, STATE / f"b7-{label}", model_dir)
        tps = m.get("tokens_per_second") or 0
        m["mfu_6n"] = round(6 * n_params * tps / (H200_BF16_DENSE_TFLOPS * 1e12), 4)
        m["mfu_4n_lora"] = round(4 * n_params * tps / (H200_BF16_DENSE_TFLOPS * 1e12), 4)
        runs[label] = {k: m.get(k) for k in ("tokens_per_second", "samples_per_second", "steps_per_second", "train_seconds",
                                             "peak_memory_gb", "peak_memory_reserved_gb", "global_step", "train_loss",
                                             "quantization", "mfu_6n", "mfu_4n_lora", "trainable_params", "total_params",
                                             "tokens_seen")}
        runs[label]["all"] = {k: v for k, v in m.items() if k.startswith("peak") or k in ("optim", "attn_implementation")}
    shutil.rmtree(model_dir, ignore_errors=True)
    return {"gpu": _gpu(), "architecture": "Llama-2-7B shape (32 x 4096, MLP 11008, MHA 32 heads), vocab 49152 (SmolLM2 tokenizer)",
            "weights": "random (throughput and memory only)", "n_params": n_params, "model_made_s": round(made_s, 1),
            "peak_tflops_bf16_dense": H200_BF16_DENSE_TFLOPS, "runs": runs}


# ----------------------------------------------------------------------------------------------- setup
def phase_setup(args: argparse.Namespace) -> dict[str, Any]:
    from agent.demo import build_demo
    from agent.graphdb import open_graph
    from agent.graphdb.loader import load_script
    from agent.models.local import ensure_base_model

    s = _settings()
    t0 = time.perf_counter()
    base = ensure_base_model(s)
    convert_s = time.perf_counter() - t0
    counts = {}
    for name in ("demo", "movies", "northwind"):
        g = open_graph(s, name)
        if name == "demo":
            info = build_demo(g, replace=True)
            counts[name] = {k: info.get(k) for k in ("nodes", "relationships")}
        else:
            rep = load_script(g, args.data / "graphs" / f"{name}.cypher", replace=True)
            counts[name] = {"nodes": rep.nodes, "relationships": rep.relationships, "load_s": round(rep.seconds, 1)}
    return {"gpu": _gpu(), "base_model": str(base), "convert_s": round(convert_s, 1), "graphs": counts}


def _base() -> Path:
    from agent.models.local import ensure_base_model

    return ensure_base_model(_settings())


# ----------------------------------------------------------------------------------------------- speed
def phase_speed(args: argparse.Namespace) -> dict[str, Any]:
    steps = args.speed_steps
    common = [f"train.max_steps={steps}", f"train.eval_steps={steps + 1000}", f"train.save_steps={steps + 1000}",
              "train.early_stopping_patience=0", "data.max_eval_samples=256", "train.logging_steps=2"]
    out = {"gpu": _gpu(), "data": "general/train.jsonl (multi-schema CSV + offline demo + northwind)", "optimizer_steps": steps,
           "effective_batch": 16, "runs": {}}
    for name in ("seeds-qlora", "fast-gpu"):
        m = _train(_recipe(name, common), args.data / "general", STATE / f"speed-{name}", _base())
        out["runs"][name] = {k: m.get(k) for k in ("tokens_per_second", "samples_per_second", "steps_per_second", "train_seconds",
                                                  "peak_memory_gb", "peak_memory_reserved_gb", "eval_loss", "train_loss",
                                                  "global_step", "quantization", "attn_implementation", "padding_free", "optim",
                                                  "tokens_seen")}
        shutil.copy(m["loss_log"], args.out / f"speed-{name}-loss.jsonl")
    a, b = out["runs"]["seeds-qlora"], out["runs"]["fast-gpu"]
    out["ratio_tokens_per_second"] = round((b["tokens_per_second"] or 0) / max(a["tokens_per_second"] or 1e-9, 1e-9), 2)
    out["ratio_samples_per_second"] = round((b["samples_per_second"] or 0) / max(a["samples_per_second"] or 1e-9, 1e-9), 2)
    return out


# ----------------------------------------------------------------------------------------------- evaluation
class BatchScorer:
    """Greedy batched generation through the shared prompt + the agent's clean-up, scored by execution."""

    def __init__(self, base: Path, batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(base))
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.dev = dev
        dtype = torch.bfloat16 if dev == "cuda" else torch.float32
        self.base = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype).to(dev).eval()
        self.model = self.base
        self.peft: Any = None
        self.batch_size = batch_size
        vocab = self.tok.get_vocab()
        self.stop = sorted({self.tok.eos_token_id, *(vocab[t] for t in ("<|im_end|>", "<|endoftext|>") if t in vocab)})
        self._gold: dict[tuple[str, str], Any] = {}

    def use(self, adapter: str | Path | None) -> None:
        from peft import PeftModel

        if self.peft is not None:
            self.base = self.peft.unload()  # LoRA layers out (unload, not merge: the base stays clean)
            self.peft = None
        self.model = self.base
        if adapter:
            self.peft = self.model = PeftModel.from_pretrained(self.base, str(adapter)).eval()

    def predict(self, messages: list[list[dict[str, str]]], max_new_tokens: int = 200) -> list[str]:
        import torch

        outs: list[str] = []
        for i in range(0, len(messages), self.batch_size):
            texts = [self.tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages[i:i + self.batch_size]]
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.dev)
            with torch.inference_mode():
                gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=1.1,
                                          eos_token_id=self.stop, pad_token_id=self.tok.pad_token_id, temperature=None,
                                          top_p=None, top_k=None)
            outs += self.tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return outs

    def score(self, graph: Any, items: list[dict[str, Any]], schema_text: Any, examples: Any = None) -> dict[str, Any]:
        """``items``: dicts with question and cypher (gold). Returns accuracy and per-item correctness."""
        from agent.cleanup import clean_cypher
        from agent.evaluation import results_match
        from agent.graphdb.readonly import check_read_only
        from agent.prompt import build_messages

        items = items[:EVAL_LIMIT] if EVAL_LIMIT else items
        t0 = time.perf_counter()
        msgs = [build_messages(it["question"], schema_text(it["question"]), examples(it) if examples else ()) for it in items]
        raw = self.predict(msgs)
        gen_s = time.perf_counter() - t0
        correct, executable, rows_out = [], 0, []
        for it, r in zip(items, raw, strict=True):
            key = (graph.name, it["cypher"])
            if key not in self._gold:
                self._gold[key] = graph.query(it["cypher"], timeout_s=20, max_rows=100000).rows
            cy = clean_cypher(r)
            ok = False
            try:
                check_read_only(cy)
                res = graph.query(cy, timeout_s=5, max_rows=100000)
                executable += 1
                ok = results_match(self._gold[key], res.rows)
            except Exception:  # noqa: BLE001 - any failure is a wrong answer
                ok = False
            correct.append(ok)
            rows_out.append({"id": it.get("id"), "ok": ok, "pred": cy[:400]})
        n = len(items)
        return {"n": n, "correct": sum(correct), "accuracy": round(sum(correct) / max(n, 1), 4),
                "executable": round(executable / max(n, 1), 4), "generate_s": round(gen_s, 1), "items": rows_out}


def _schema_fn(graph: Any, max_chars: int = 6000) -> Any:
    full = graph.schema_text()
    if len(full) <= max_chars:
        return lambda q: full
    return lambda q: graph.schema_text(q)


def _dev_split(path: Path, seed: int = 7, heldout_share: float = 0.4) -> tuple[list[dict], list[list[dict]]]:
    items = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    random.Random(seed).shuffle(items)
    k = int(len(items) * heldout_share)
    heldout, stream = items[:k], items[k:]
    n = len(stream)
    chunks = [stream[i * n // 3:(i + 1) * n // 3] for i in range(3)]
    return heldout, chunks


def _heldout_demo(args: argparse.Namespace, limit: int = 200) -> list[dict]:
    items = []
    for ln in (args.data / "heldout_demo.jsonl").read_text().splitlines():
        r = json.loads(ln)
        items.append({"id": r["id"], "question": r["question"], "cypher": r["cypher"]})
    random.Random(0).shuffle(items)
    return items[:limit]


def _strip(score: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in score.items() if k != "items"}


# ----------------------------------------------------------------------------------------------- general
def phase_general(args: argparse.Namespace) -> dict[str, Any]:
    from agent.graphdb import open_graph

    s = _settings()
    m = _train(_recipe("general-gpu", []), args.data / "general", STATE / "general", _base(), budget_s=args.train_budget)
    ship = args.out / "shipped-adapter"
    _export_adapter(Path(m["adapter_dir"]), ship)
    shutil.copy(m["loss_log"], args.out / "general-loss.jsonl")
    scorer = BatchScorer(_base())
    graphs = {g: open_graph(s, g) for g in ("demo", "movies", "northwind")}
    sets = {"demo": _heldout_demo(args), "movies": _dev_split(args.data / "dev_movies.jsonl")[0],
            "northwind": _dev_split(args.data / "dev_northwind.jsonl")[0]}
    evals: dict[str, Any] = {}
    for label, adapter in (("base", None), ("general", ship)):
        scorer.use(adapter)
        evals[label] = {g: _strip(scorer.score(graphs[g], sets[g], _schema_fn(graphs[g]))) for g in sets}
    shutil.copytree(ship, STATE / "shipped-adapter", dirs_exist_ok=True)
    return {"gpu": _gpu(), "train": {k: v for k, v in m.items() if k not in ("adapter_dir",)},
            "eval_sets": {g: len(v) for g, v in sets.items()}, "eval": evals,
            "adapter_bytes": sum(f.stat().st_size for f in ship.rglob("*") if f.is_file())}


def _export_adapter(src: Path, dst: Path) -> None:
    """The adapter as shipped: its config and weights in bf16 (half the bytes; serving casts to the model's dtype)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name == "adapter_model.safetensors":
            save_file({k: v.to(torch.bfloat16).contiguous() for k, v in load_file(str(f)).items()}, str(dst / f.name),
                      metadata={"format": "pt"})
        elif f.is_file() and f.suffix in (".json", ".md"):
            shutil.copy(f, dst / f.name)


# ----------------------------------------------------------------------------------------------- loop
class PoolRetriever:
    """The agent's few-shot retrieval over the corrections so far: cosine similarity of the packaged MiniLM
    embeddings (precomputed on the CPU by gpu_prep, the same model and normalisation the feedback store uses)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def examples(self, item: dict, pool: list[dict], k: int = 3) -> list[Any]:
        from agent.prompt import Example

        q = self.vectors.get(item["id"])
        cands = [c for c in pool if c["id"] != item["id"] and c["id"] in self.vectors]
        if q is None or not cands or k <= 0:
            return []
        sims = sorted(((sum(a * b for a, b in zip(q, self.vectors[c["id"]], strict=True)), i) for i, c in enumerate(cands)), reverse=True)
        return [Example(cands[i]["question"], cands[i]["cypher"]) for _, i in sims[:k]]


def phase_loop(args: argparse.Namespace) -> dict[str, Any]:
    """Rounds 0..3; resumable: each finished round is saved in STATE (a later call goes on from there)."""
    from agent.graphdb import open_graph
    from finetune.dataset import BuildSpec, build_dataset

    s = _settings()
    graphs = {g: open_graph(s, g) for g in ("movies", "northwind")}
    splits = {g: _dev_split(args.data / f"dev_{g}.jsonl") for g in graphs}
    if args.loop_heldout:  # a fixed prefix of the (shuffled) held-out split, to fit the machine's call limit
        splits = {g: (h[:args.loop_heldout], c) for g, (h, c) in splits.items()}
    vectors: dict[str, list[float]] = {}
    for g in graphs:
        emb = args.data / f"emb_{g}.json"
        if emb.is_file():
            vectors.update(json.loads(emb.read_text()))
    retriever = PoolRetriever(vectors)
    state_file = STATE / "loop-state.json"
    st = json.loads(state_file.read_text()) if state_file.is_file() else {"rounds": [], "corrections": {g: [] for g in graphs}}
    rounds, corrections = st["rounds"], st["corrections"]
    if rounds:
        print(f"loop: resuming after round {rounds[-1]['round']}", flush=True)
    scorer = BatchScorer(_base(), batch_size=256)
    for r in range(len(rounds), 4):
        t0 = time.perf_counter()
        if r == 0:
            data_dir = args.data / "syn"
        else:  # the product's builder: synthetic pairs + approved corrections, corrections weighted xN
            data_dir = STATE / f"loop-data-{r}"
            shutil.rmtree(data_dir, ignore_errors=True)
            parts = []
            for g in graphs:
                corr = STATE / f"corrections-{g}-{r}.jsonl"
                corr.write_text("".join(json.dumps(c) + "\n" for c in corrections[g]))
                out = data_dir / g
                build_dataset(s, BuildSpec(graph=g, out_dir=out, offline=[args.data / f"offline_{g}.jsonl"], pairs=[corr],
                                           question_col="question", cypher_col="cypher", heldout_frac=0.0,
                                           regression_frac=0.0, seed=0), graph_store=graphs[g])
                parts.append(out / "train.jsonl")
            lines = []
            for p in parts:
                for ln in p.read_text().splitlines():
                    rec = json.loads(ln)
                    lines += [ln] * (args.correction_weight if rec.get("source") == "pairs" else 1)
            random.Random(r).shuffle(lines)
            (data_dir / "train.jsonl").write_text("\n".join(lines) + "\n")
        m = _train(_recipe(LOOP_RECIPE, []), data_dir, STATE / f"loop-{r}", _base(), budget_s=args.train_budget)
        train_s = time.perf_counter() - t0
        scorer.use(m["adapter_dir"])
        rec: dict[str, Any] = {"round": r, "train_records": m.get("n_train"), "train_s": round(train_s, 1),
                               "train_steps": m.get("global_step"), "train_loss": m.get("train_loss"), "eval_loss": m.get("eval_loss"),
                               "corrections_so_far": {g: len(corrections[g]) for g in graphs},
                               "heldout": {}, "heldout_retrieval": {}, "stream": {}}
        for g, (heldout, chunks) in splits.items():
            schema = _schema_fn(graphs[g])
            rec["heldout"][g] = _strip(scorer.score(graphs[g], heldout, schema))
            # as the agent serves: the 3 most similar verified examples (the corrections so far) in the prompt
            if corrections[g]:
                rec["heldout_retrieval"][g] = _strip(scorer.score(graphs[g], heldout, schema,
                                                                  examples=lambda it, g=g: retriever.examples(it, corrections[g])))
            else:
                rec["heldout_retrieval"][g] = rec["heldout"][g]
            if r < 3:
                sc = scorer.score(graphs[g], chunks[r], schema, examples=lambda it, g=g: retriever.examples(it, corrections[g]))
                rec["stream"][g] = _strip(sc)
                wrong = [it for it, row in zip(chunks[r], sc["items"], strict=False) if not row["ok"]]
                corrections[g] += [{"id": it["id"], "question": it["question"], "cypher": it["cypher"]} for it in wrong]
        rec["round_s"] = round(time.perf_counter() - t0, 1)
        rounds.append(rec)
        print(json.dumps(rec, default=str)[:1200], flush=True)
        state_file.write_text(json.dumps({"rounds": rounds, "corrections": corrections}, default=str))
        (args.out / "loop-partial.json").write_text(json.dumps(rounds, default=str))
    # held-out questions never trained on (nor retrieved): check it
    held_q = {it["question"] for g in splits for it in splits[g][0]}
    trained_q = {c["question"] for g in corrections for c in corrections[g]}
    return {"gpu": _gpu(), "recipe": LOOP_RECIPE, "correction_weight": args.correction_weight, "train_budget_s": args.train_budget,
            "retrieval": "top-3 cosine over the corrections so far (packaged all-MiniLM-L6-v2, precomputed)" if vectors else "none",
            "split": {g: {"heldout": len(splits[g][0]), "stream": [len(c) for c in splits[g][1]]} for g in splits},
            "heldout_trained_on": len(held_q & trained_q), "rounds": rounds}


# ----------------------------------------------------------------------------------------------- latency
def phase_latency(args: argparse.Namespace) -> dict[str, Any]:
    """The real agent (CypherAgent.ask: retrieve, generate, check, run, repair, answer) on the demo graph with
    the shipped adapter, once per KV-cache mode; every question is printed as it goes."""
    import torch

    from agent.evaluation import percentile
    from agent.graph import CypherAgent
    from agent.graphdb import open_graph
    from agent.models.factory import make_generator

    items = _heldout_demo(args, limit=args.latency_n + 3)
    out: dict[str, Any] = {"gpu": _gpu(), "adapter": "shipped (general-v1)", "runs": {}}
    for cache in ("dynamic", "static"):
        s = _settings(graph="demo", adapter="active", device="auto", generation_cache=cache)
        agent = CypherAgent(s, open_graph(s, "demo"), make_generator(s))
        warm = []
        for it in items[:3]:  # warm-up (the static cache compiles here)
            t0 = time.perf_counter()
            agent.ask(it["question"])
            warm.append(round((time.perf_counter() - t0) * 1000))
        print(f"latency {cache}: warm-up {warm} ms", flush=True)
        lat, statuses = [], {}
        for it in items[3:]:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            t0 = time.perf_counter()
            res = agent.ask(it["question"])
            lat.append((time.perf_counter() - t0) * 1000)
            statuses[res.get("status")] = statuses.get(res.get("status"), 0) + 1
            t = res.get("timings") or {}
            why = f" {str(res.get('error'))[:300]!r}" if res.get("status") in ("error", "failed") else ""
            # how long each raw model reply was, in tokens: tells slow steps from replies that do not stop
            toks = [len(agent.generator.tokenizer(a.get("raw") or "")["input_ids"]) for a in res.get("attempts") or []
                    if hasattr(getattr(agent, "generator", None), "tokenizer")]
            print(f"latency {cache} {len(lat)}: {lat[-1]:.0f} ms {res.get('status')} reply tokens {toks} {t}{why}", flush=True)
        out["runs"][cache] = {"n": len(lat), "warmup_ms": warm, "p50_ms": round(percentile(lat, 50), 1),
                              "p95_ms": round(percentile(lat, 95), 1), "mean_ms": round(sum(lat) / len(lat), 1),
                              "statuses": statuses, "latencies_ms": [round(x, 1) for x in lat]}
        (args.out / "latency-partial.json").write_text(json.dumps(out, default=str))
        del agent
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return out


PHASES = {"b7": phase_b7, "setup": phase_setup, "speed": phase_speed, "general": phase_general, "loop": phase_loop,
          "latency": phase_latency}


def main() -> int:
    ap = argparse.ArgumentParser(prog="gpu_campaign")
    ap.add_argument("phases", nargs="+", choices=sorted(PHASES))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--speed-steps", type=int, default=20)
    ap.add_argument("--train-budget", type=float, default=200.0, help="seconds; a training stops (saved) past this")
    ap.add_argument("--correction-weight", type=int, default=3)
    ap.add_argument("--latency-n", type=int, default=50)
    ap.add_argument("--loop-heldout", type=int, default=0, help="score only the first N held-out questions per graph")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--b7-tiny", action="store_true", help="b7 with a 2-layer model (CPU dry run)")
    ap.add_argument("--override", action="append", default=[], help="recipe override for every training (dry runs)")
    ap.add_argument("--eval-limit", type=int, default=None, help="score at most N questions per set (dry runs)")
    args = ap.parse_args()
    global EVAL_LIMIT
    EXTRA_OVERRIDES.extend(args.override)
    EVAL_LIMIT = args.eval_limit
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    STATE.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for phase in args.phases:
        done = STATE / f"{phase}.json"
        if done.is_file() and not args.force:
            shutil.copy(done, args.out / done.name)
            print(f"== {phase}: done before, copied", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            result = PHASES[phase](args)
        except Exception as e:  # noqa: BLE001 - report and go on with the next phase
            log.exception("phase %s failed", phase)
            (args.out / f"{phase}.error.txt").write_text(f"{type(e).__name__}: {e}")
            continue
        result["phase_seconds"] = round(time.perf_counter() - t0, 1)
        result["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        _write(args.out, phase, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
