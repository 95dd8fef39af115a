"""Full fine-tuning of a small base (≤ 1B parameters) with a plain PyTorch loop.

    python -m finetune.full --data DATASET_DIR --base MODEL_DIR --output RUN_DIR [--recipe full-gpu]
    [key=value …]

For a 135M–1B model the whole network trains faster than a LoRA through trl's SFTTrainer and learns a
new graph better (docs/BENCHMARKS.md). What makes the loop fast:

- examples are tokenised once (the shared prompt's chat template, the assistant turn as the target),
  sorted by length into batches of a token budget and padded only to the longest in the batch;
- the language-model head and the loss run on the completion positions only (a 49k-word head over
  ~900 prompt tokens is most of a small model's cost, and the prompt carries no loss);
- bf16 autocast on CUDA with fp32 master weights and fused AdamW; optional ``torch.compile`` of the decoder
  layers one by one (regional compilation: the layers share one compiled graph, so compiling costs about one
  layer's time, not the whole network's; dynamic shapes, so the varying batch shapes cost ≤ 3 compiles);
- no attention mask: batches are right-padded, so under the causal mask a real token never sees a pad and
  the pads' outputs carry no loss (SDPA runs its flash kernel; nothing is checked for padding on the host);
- no host synchronisation in a step: the target positions are computed on the host and the loss is read
  back every ``log_every`` steps only.

The run is resumable: a checkpoint (weights, optimizer, step, batch order) is written atomically
every ``save_every_s`` seconds and at the end of the budget; running the same command again continues
from it. RUN_DIR/model/ receives the trained model (safetensors, tokenizer, generation config) and
RUN_DIR/train_result.json is written last.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.core.errors import DataError, TrainingError, run_guarded
from agent.core.files import atomic_write_text, read_jsonl, replace_dir
from agent.models.gguf_tokenizer import check_turn_tokens
from finetune.config import FULL_SECTION, parse_fields, read_recipe
from finetune.dataset import dataset_hash

log = logging.getLogger("cypherloop.full")

RESULT_FILE = "train_result.json"
CKPT_DIR = "checkpoint"
LOSS_LOG = "loss.jsonl"


@dataclass
class FullConfig:
    """Settings of a full fine-tune (a YAML recipe's ``full:`` section; every field can be overridden)."""

    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate (AdamW)"})
    min_lr_ratio: float = field(
        default=0.1, metadata={"help": "cosine decay ends at this fraction of the peak"}
    )
    warmup_steps: int = field(default=20, metadata={"help": "linear warm-up steps"})
    epochs: float = field(default=2.0, metadata={"help": "passes over the training set (fractions allowed)"})
    tokens_per_batch: int = field(default=32768, metadata={"help": "padded tokens per optimizer step"})
    max_length: int = field(default=2048, metadata={"help": "longer examples are dropped"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "gradient norm clip (0: off)"})
    budget_s: float = field(
        default=0.0, metadata={"help": "stop after this many seconds of training (0: no limit)"}
    )
    compile: bool = field(
        default=False, metadata={"help": "torch.compile the decoder layers (eager again if compiling fails)"}
    )
    pad_multiple: int = field(default=64, metadata={"help": "pad batch lengths to a multiple of this"})
    seed: int = field(default=0, metadata={"help": "batch order and initialisation seed"})
    save_every_s: float = field(default=300.0, metadata={"help": "checkpoint cadence in seconds"})
    log_every: int = field(default=10, metadata={"help": "log the loss every N steps"})
    dtype: str = field(
        default="auto", metadata={"help": "auto (bf16 autocast on CUDA, fp32 on CPU), bf16, fp32"}
    )
    save_dtype: str = field(default="bfloat16", metadata={"help": "dtype of the saved weights"})

    def __post_init__(self) -> None:
        # A YAML integer in a float field (``epochs: 1``) is kept as the float it means, so the recorded
        # config reads the same whichever way a value was written.
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise ValueError(f"dtype={self.dtype!r}: choose auto, bf16 or fp32")
        if self.tokens_per_batch < 64 or self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError("tokens_per_batch ≥ 64, epochs > 0 and learning_rate > 0")

    @classmethod
    def load(cls, recipe: str | Path | None, overrides: Sequence[str] = ()) -> FullConfig:
        """A config from a shipped recipe name or a YAML file (its ``full:`` section) plus overrides
        (``key=value``, ``full.key=value`` or ``--key value``), read by ``trl.TrlParser`` through
        ``finetune.config.parse_fields`` as the LoRA recipes are.

        An unknown key — in the file or an override — is a ``DataError`` naming the key, never ignored.
        """
        from trl import TrlParser

        source, section = "full fine-tune settings", {}
        if recipe:
            path, config = read_recipe(recipe, "full")
            source, section = str(path), config[FULL_SECTION] or {}
            extra = sorted(set(config) - {FULL_SECTION, "description"})
            if extra:
                raise DataError(
                    f"{path}: unknown section(s) {', '.join(extra)} (a full recipe has 'full:' only)"
                )
            if not isinstance(section, dict):
                raise DataError(f"{path}: expected a mapping under 'full:'")
        words = [w.removeprefix(f"{FULL_SECTION}.") for w in overrides]
        (cfg,), _ = parse_fields(TrlParser((cls,), exit_on_error=False), section, words, source=source)
        return cfg


@dataclass
class FullResult:
    """What a finished run produced (RUN_DIR/train_result.json)."""

    output_dir: str
    model_dir: str
    base_model: str
    dataset_hash: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    finished_at: float = 0.0

    @classmethod
    def load(cls, run_dir: Path) -> FullResult:
        return cls(**json.loads((Path(run_dir) / RESULT_FILE).read_text()))


# --------------------------------------------------------------------------------------------- data
def tokenize_records(
    tokenizer: Any, records: list[dict[str, Any]], max_length: int
) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per record: the serving prompt, then the assistant turn as the target.

    The assistant turn's tokens are those the chat template adds after the generation prompt (the Cypher
    and the end-of-turn token), so training teaches exactly the text serving decodes, and where to stop.
    """
    prompts = [
        tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        for r in records
    ]
    fulls = [tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False) for r in records]
    out: list[tuple[list[int], int]] = []
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(fulls, add_special_tokens=False)["input_ids"]
    for p, f, r in zip(p_ids, f_ids, records, strict=True):
        if f[: len(p)] != p:  # a template that rewrites the prompt: fall back to prompt + completion text
            c = tokenizer(
                r["completion"][0]["content"] + (tokenizer.eos_token or ""), add_special_tokens=False
            )["input_ids"]
            f = p + c
        if len(f) > max_length or len(f) <= len(p):
            continue
        out.append((f, len(p)))
    return out


def make_batches(
    lengths: list[int], tokens_per_batch: int, pad_multiple: int, rng: random.Random
) -> list[list[int]]:
    """Indexes grouped by similar length so that a batch's padded size stays under ``tokens_per_batch``."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        padded = _round_up(max([lengths[j] for j in cur] + [lengths[i]]), pad_multiple)
        if cur and padded * (len(cur) + 1) > tokens_per_batch:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def _round_up(n: int, m: int) -> int:
    return ((n + m - 1) // m) * m if m > 1 else n


# --------------------------------------------------------------------------------------------- the run
def train_full(
    data_dir: Path,
    base_model: Path,
    output_dir: Path,
    cfg: FullConfig,
    *,
    device: str = "auto",
    progress: Callable[[int, int, float], None] | None = None,
) -> FullResult:
    """Train the whole model on ``data_dir/train.jsonl``; resume RUN_DIR's checkpoint when there is one."""
    import torch
    from transformers import AutoTokenizer

    output_dir = Path(output_dir)
    train_file = Path(data_dir) / "train.jsonl"
    if not train_file.is_file():
        raise DataError(f"no training set at {train_file}")
    if (output_dir / RESULT_FILE).is_file():
        return FullResult.load(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data_hash = dataset_hash(data_dir)
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    on_cuda = dev.startswith("cuda")
    torch.manual_seed(cfg.seed)

    tok = AutoTokenizer.from_pretrained(str(base_model), local_files_only=True)
    check_turn_tokens(tok, Path(base_model))
    examples, tokenize_s = _load_examples(tok, train_file, cfg.max_length)
    lengths = [len(ids) for ids, _ in examples]
    steps_per_epoch = len(make_batches(lengths, cfg.tokens_per_batch, cfg.pad_multiple, random.Random(0)))
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))

    model, opt, state = _model_and_optimizer(base_model, cfg, dev, output_dir / CKPT_DIR, data_hash)
    if state["step"]:
        log.info("resumed at step %d of %d", state["step"], total_steps)
    ckpt = output_dir / CKPT_DIR
    decoder = model.get_decoder()
    graphs_before = _compiled_graphs()
    if cfg.compile:
        decoder = EagerFallback(decoder)
    loss_fn = functools.partial(_forward_loss, decoder, model.get_output_embeddings())

    losses: list[dict[str, Any]] = []
    loss_log = output_dir / LOSS_LOG
    last_save = time.perf_counter()
    started = time.perf_counter() - state["train_s"]
    stopped_by_budget = False
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    shapes: set[tuple[int, int]] = set()
    first_step_s: float | None = None
    while state["step"] < total_steps:
        batches = make_batches(
            lengths, cfg.tokens_per_batch, cfg.pad_multiple, random.Random(cfg.seed + state["epoch"])
        )
        while state["batch"] < len(batches) and state["step"] < total_steps:
            rows = [examples[i] for i in batches[state["batch"]]]
            batch = _collate(rows, cfg.pad_multiple, pad_id)
            input_ids, _, targets = batch
            n_tokens, n_targets = sum(len(ids) for ids, _ in rows), len(targets)  # on the host: no GPU sync
            shapes.add(tuple(input_ids.shape))
            step_started = time.perf_counter()
            lr = learning_rate(cfg, total_steps, state["step"], time.perf_counter() - started)
            try:
                loss = _optimizer_step(model, opt, loss_fn, batch, lr, cfg, dev)
            except Exception as e:
                # the compiled backward is built on the first backward pass, outside EagerFallback's call
                if not (isinstance(decoder, EagerFallback) and decoder.active):
                    raise
                decoder.disable(e)
                opt.zero_grad(set_to_none=True)
                loss = _optimizer_step(model, opt, loss_fn, batch, lr, cfg, dev)
            if first_step_s is None:  # the first step of this process: compiling, when on, happens here
                if on_cuda:
                    torch.cuda.synchronize()
                first_step_s = time.perf_counter() - step_started
            state["step"] += 1
            state["batch"] += 1
            state["tokens"] += n_tokens
            state["target_tokens"] += n_targets
            now = time.perf_counter()
            out_of_time = bool(cfg.budget_s) and now - started >= cfg.budget_s
            if state["step"] % cfg.log_every == 0 or state["step"] == total_steps or out_of_time:
                state["train_s"] = time.perf_counter() - started
                value = _log_loss(loss_log, losses, state, loss, lr)
                if progress is not None:
                    progress(state["step"], total_steps, value)
            state["train_s"] = now - started
            if out_of_time:
                stopped_by_budget = True
                break
            if now - last_save >= cfg.save_every_s:
                _save_checkpoint(model, opt, state, ckpt, data_hash, cfg)
                last_save = now
        if stopped_by_budget:
            break
        if state["batch"] >= len(batches):
            state["epoch"] += 1
            state["batch"] = 0
    if on_cuda:
        torch.cuda.synchronize()
    state["train_s"] = time.perf_counter() - started
    compiled = {"compiled": decoder.active, "compile_error": decoder.error} if isinstance(
        decoder, EagerFallback) else {"compiled": False}
    # the distinct (rows, width) batch shapes this process ran, the graphs torch.compile built for them
    # (0 when off) and the first step's seconds (the compile cost, when on)
    compiled.update(batch_shapes=len(shapes), compiled_graphs=_compiled_graphs() - graphs_before,
                    first_step_seconds=round(first_step_s, 2) if first_step_s is not None else None)
    return _save_run(model, tok, cfg, state, losses, output_dir, base_model, data_hash, total_steps,
                     steps_per_epoch, len(examples), tokenize_s, stopped_by_budget, dev, compiled)


def _load_examples(tok: Any, train_file: Path, max_length: int) -> tuple[list[tuple[list[int], int]], float]:
    """The training set tokenised (``tokenize_records``) and the seconds that took; an empty or all-too-long
    set is a DataError."""
    records = read_jsonl(train_file)
    if not records:
        raise DataError(f"{train_file} is empty")
    t0 = time.perf_counter()
    examples = tokenize_records(tok, records, max_length)
    if not examples:
        raise DataError(f"no example of {train_file} fits max_length={max_length}")
    return examples, time.perf_counter() - t0


def _optimizer_step(model: Any, opt: Any, loss_fn: Callable[..., Any],
                    batch: tuple[Any, ...], lr: float, cfg: FullConfig, dev: str) -> Any:
    """One step on one batch at learning rate ``lr``: to the device, forward (bf16 autocast on CUDA unless
    ``dtype`` is fp32), backward, clip, AdamW; returns the loss (not synchronised)."""
    import torch

    on_cuda = dev.startswith("cuda")
    if on_cuda:
        batch = tuple(t.pin_memory().to(dev, non_blocking=True) for t in batch)
    for g in opt.param_groups:
        g["lr"] = lr
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda and cfg.dtype in ("auto", "bf16")):
        loss = loss_fn(*batch)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


def _log_loss(
    loss_log: Path, losses: list[dict[str, Any]], state: dict[str, Any], loss: Any, lr: float
) -> float:
    """Append the step's loss to ``losses`` and RUN_DIR/loss.jsonl; returns it as a float (a GPU sync)."""
    value = float(loss.detach())
    losses.append(
        {"step": state["step"], "loss": round(value, 5), "lr": lr, "seconds": round(state["train_s"], 2)}
    )
    with loss_log.open("a") as f:
        f.write(json.dumps(losses[-1]) + "\n")
    return value


def _model_and_optimizer(base_model: Path, cfg: FullConfig, dev: str, ckpt: Path,
                         data_hash: str) -> tuple[Any, Any, dict[str, Any]]:
    """The model in training mode, its AdamW and the loop's state, resumed from ``ckpt`` when it holds a
    checkpoint of the same data and settings."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32, local_files_only=True)
    model.config.use_cache = False
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                            betas=(0.9, 0.95), fused=dev.startswith("cuda"))
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "tokens": 0, "target_tokens": 0,
                             "train_s": 0.0}
    if (ckpt / "state.json").is_file():
        saved = json.loads((ckpt / "state.json").read_text())
        if saved.get("dataset_hash") != data_hash or saved.get("config") != asdict(cfg):
            raise TrainingError(f"{ckpt.parent} holds a run on other data or settings; use a new output "
                                "folder")
        model.load_state_dict(torch.load(ckpt / "model.pt", map_location=dev))
        opt.load_state_dict(torch.load(ckpt / "optim.pt", map_location=dev))
        state.update(saved["state"])
    return model, opt, state


def learning_rate(cfg: FullConfig, total_steps: int, step: int, seconds: float = 0.0) -> float:
    """Linear warm-up, then cosine decay over the run's progress: steps done of all planned, or — with a
    time budget — the share of the budget spent, whichever is further (so a budgeted run still anneals)."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / max(1, cfg.warmup_steps)
    frac = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
    if cfg.budget_s:
        frac = max(frac, seconds / cfg.budget_s)
    frac = min(1.0, frac)
    cosine = 0.5 * (1 + math.cos(math.pi * frac))
    return cfg.learning_rate * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def _save_run(model: Any, tok: Any, cfg: FullConfig, state: dict[str, Any], losses: list[dict[str, Any]],
              output_dir: Path, base_model: Path, data_hash: str, total_steps: int, steps_per_epoch: int,
              n_examples: int, tokenize_s: float, stopped_by_budget: bool, dev: str,
              compiled: dict[str, Any]) -> FullResult:
    """The trained model into RUN_DIR/model/ (atomically), the metrics, and train_result.json last."""
    import torch

    on_cuda = dev.startswith("cuda")
    ckpt = output_dir / CKPT_DIR
    model_dir = output_dir / "model"
    tmp = output_dir / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.config.use_cache = True
    save_dtype = getattr(torch, cfg.save_dtype)
    model.to(save_dtype).save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    replace_dir(tmp, model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    tps = state["tokens"] / state["train_s"] if state["train_s"] else 0.0
    metrics = {
        "steps": state["step"],
        "total_steps": total_steps,
        "epochs": round(state["step"] / max(1, steps_per_epoch), 3),
        "examples": n_examples,
        "tokens": state["tokens"],
        "target_tokens": state["target_tokens"],
        "train_seconds": round(state["train_s"], 2),
        "tokenize_seconds": round(tokenize_s, 2),
        "tokens_per_second": round(tps, 1),
        "final_loss": losses[-1]["loss"] if losses else None,
        "stopped_by_budget": stopped_by_budget,
        "parameters": n_params,
        "device": dev,
        # model FLOPs utilisation against the H100/H200 dense bf16 peak: 6·N per non-padding token
        "mfu_h200": round(6 * n_params * tps / 989e12, 4) if on_cuda else None,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if on_cuda else None,
        **compiled,  # whether torch.compile ran to the end, or why it stopped
    }
    result = FullResult(
        str(output_dir), str(model_dir), str(base_model), data_hash, asdict(cfg), metrics, time.time()
    )
    atomic_write_text(output_dir / RESULT_FILE, json.dumps(asdict(result), indent=2))
    shutil.rmtree(ckpt, ignore_errors=True)
    return result


class EagerFallback:
    """The decoder with each of its layers ``torch.compile``d; if compiling or running fails, say so once and
    run the layers eagerly from then on.

    Regional compilation (the PyTorch recipe for repeated blocks): the layers are the same code, so dynamo
    builds one graph they all reuse, and the cold compile costs about one layer's time — compiling the whole
    decoder took the first 10 steps 250 s on an H200 in round 6 (countries, 1.4 epochs of an 8-minute budget),
    then ran at 9.6 steps/s. ``dynamic=True`` keeps the varying (rows, width) batch shapes to ≤ 3 graphs (one
    static first shape, then one dynamic; a 1-row batch specialises once more). The embedding, the mask and
    the final norm stay eager.

    ``torch.compile`` is a speed-up whose failures depend on the machine (torch, Triton and driver versions):
    a run must not be lost to one, so the first failure costs a warning, not the training.
    """

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.layers = list(decoder.layers)
        for layer in self.layers:
            layer.compile(dynamic=True)  # nn.Module.compile: torch.compile of the layer's call, in place
        self.active = True
        self.error: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.active:
            try:
                return self.decoder(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - any compiler failure: the eager layers compute the same
                self.disable(e)
        return self.decoder(*args, **kwargs)

    def disable(self, e: BaseException) -> None:
        """Run the layers eagerly from now on, because of ``e`` (kept in ``error``)."""
        self.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        log.warning("torch.compile failed (%s); training continues without it", self.error)
        for layer in self.layers:
            layer._compiled_call_impl = None  # what nn.Module.compile set; None is the module's eager call
        self.active = False


def _compiled_graphs() -> int:
    """Graphs torch.compile has built in this process so far (dynamo's own counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _forward_loss(decoder: Any, head: Any, input_ids: Any, positions: Any, targets: Any) -> Any:
    """Mean cross-entropy over the target tokens; the head runs on the positions that predict them only.

    ``positions`` (flat indexes into the batch's rows × width) and ``targets`` come from the host, so no step
    waits on the GPU for a data-dependent size. No attention mask: the rows are right-padded, so the causal
    mask alone keeps every real token from the pads after it (SDPA's flash kernel, no W × W mask), and the
    pads' own outputs are never picked. A 2-D padding mask would also make transformers check it on the host.
    """
    import torch

    hidden = decoder(input_ids=input_ids).last_hidden_state
    picked = hidden.flatten(0, 1).index_select(0, positions)
    logits = head(picked).float()
    return torch.nn.functional.cross_entropy(logits, targets)


def _collate(batch: list[tuple[list[int], int]], pad_multiple: int, pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded token ids (rows × width), the flat indexes of the positions that predict a target token
    (row · width + the position before it) and those targets, in order."""
    import torch

    width = _round_up(max(len(ids) for ids, _ in batch), pad_multiple)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    positions: list[int] = []
    targets: list[int] = []
    for row, (ids, plen) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        positions.extend(range(row * width + plen - 1, row * width + len(ids) - 1))
        targets.extend(ids[plen:])
    return input_ids, torch.tensor(positions, dtype=torch.long), torch.tensor(targets, dtype=torch.long)


def _save_checkpoint(
    model: Any, opt: Any, state: dict[str, Any], ckpt: Path, data_hash: str, cfg: FullConfig
) -> None:
    """Weights, optimizer and position, written to a temp folder and renamed (a kill leaves the old one)."""
    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / "model.pt")
    torch.save(opt.state_dict(), tmp / "optim.pt")
    (tmp / "state.json").write_text(
        json.dumps({"state": state, "dataset_hash": data_hash, "config": asdict(cfg)})
    )
    replace_dir(tmp, ckpt)


def main(argv: Sequence[str] | None = None) -> int:
    """Full fine-tune from a dataset folder; the same command again resumes the run.

        python -m finetune.full --data <home>/datasets/demo --base <home>/models/smollm2-135m-instruct \
            --output runs/demo-full --recipe full-gpu budget_s=170
    """
    p = argparse.ArgumentParser(prog="python -m finetune.full", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="dataset folder with train.jsonl (finetune.dataset)")
    p.add_argument("--base", required=True, help="base model directory (safetensors)")
    p.add_argument(
        "--output", required=True, help="run folder (checkpoint/, model/, loss.jsonl, train_result.json)"
    )
    p.add_argument("--recipe", default="full-gpu", help="shipped recipe (full-gpu, full-cpu) or a YAML file")
    p.add_argument("--device", default="auto")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. budget_s=170 epochs=1")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = FullConfig.load(args.recipe, args.overrides)
    log.info("full fine-tune: %s", json.dumps(asdict(cfg)))
    result = train_full(Path(args.data), Path(args.base), Path(args.output), cfg, device=args.device)
    print(json.dumps({"model": result.model_dir, **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_guarded(main))
