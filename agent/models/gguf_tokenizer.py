"""Turn tokens and the tokenizer a GGUF describes (``agent.models.local`` converts GGUF bases with it).

transformers 5.17 reads Gemma 3's GGUF vocabulary wrongly (a character a token, the turn tokens in pieces):
``gguf_tokenizer`` rebuilds it as the BPE it is, and ``check_turn_tokens`` refuses any tokenizer that splits
a turn or stop token, before a fine-tune learns to end its replies with pieces (docs/BENCHMARKS.md A,
round 5).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agent.core.errors import ModelError

log = logging.getLogger(__name__)

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")
"""Turn-closing tokens of the chat formats in use (ChatML, Llama 3, Phi, Gemma): generation stops on any
that the tokenizer has, besides its eos."""
TURN_START = "<start_of_turn>"
TURN_END = "<end_of_turn>"


def gguf_tokenizer(gguf: Path) -> Any:
    """The tokenizer a GGUF describes, as transformers reads it; a Gemma vocabulary read wrongly is rebuilt.

    transformers 5.17 (the H200 image's, docs/BENCHMARKS.md A, round 5) reads Gemma's GGUF vocabulary as a
    Unigram over the file's scores and leaves its control tokens (``<start_of_turn>``, ``<end_of_turn>``)
    unregistered; saved and loaded again, as training and serving load it, that is a BPE without merges: one
    token a character, the turn tokens 15 and 13 pieces, so a fine-tune never sees the token generation
    stops on (huggingface/transformers#41494). 5.24 reads it as the BPE Gemma is; ``gemma_gguf_tokenizer``
    builds that same tokenizer whatever transformers is installed.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if _gemma_read_wrongly(tokenizer):
        log.info("transformers read %s's Gemma vocabulary wrongly; rebuilding it as BPE", gguf.name)
        tokenizer = gemma_gguf_tokenizer(gguf)
    return tokenizer


def _gemma_read_wrongly(tokenizer: Any) -> bool:
    """A Gemma-shaped vocabulary (it has the turn tokens) that is not BPE, or splits a turn token."""
    vocab = tokenizer.get_vocab()
    if TURN_START not in vocab or TURN_END not in vocab:
        return False
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = type(backend.model).__name__ if backend is not None else ""
    whole = tokenizer(TURN_START, add_special_tokens=False)["input_ids"] == [vocab[TURN_START]]
    return model != "BPE" or not whole


def gemma_gguf_tokenizer(gguf: Path) -> Any:
    """Gemma's tokenizer from a GGUF's metadata, as transformers 5.24 builds it (``integrations.gguf``): BPE
    whose merges are recovered from the vocabulary in file order (Gemma's GGUF stores none, and its scores do
    not follow the merge order), tokens of spaces spelt with ``▁``, control tokens special, user-defined
    tokens (runs of newlines) added whole."""
    import gguf as gguf_lib
    from tokenizers import AddedToken
    from transformers import GemmaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    fields = gguf_lib.GGUFReader(str(gguf)).fields

    def value(key: str, default: Any = None) -> Any:
        return fields[key].contents() if key in fields else default

    tokens: list[str] = value("tokenizer.ggml.tokens")
    types: list[int] = value("tokenizer.ggml.token_type", [1] * len(tokens))
    spelt = ["\u2581" * len(t) if " " in t and not t.strip() else t for t in tokens]
    vocab = {t: i for i, t in enumerate(spelt)}
    merges = generate_merges(vocab, {t: -i for i, t in enumerate(spelt)})
    names = {"bos_token": "bos_token_id", "eos_token": "eos_token_id", "unk_token": "unknown_token_id",
             "pad_token": "padding_token_id"}
    special = {k: tokens[i] for k, key in names.items() if (i := value(f"tokenizer.ggml.{key}")) is not None}
    add_bos = value("tokenizer.ggml.add_bos_token", True)
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=add_bos, **special)
    kinds = list(zip(tokens, types, strict=True))
    control = [AddedToken(t, normalized=False, special=True) for t, k in kinds if k == 3]
    tokenizer.add_special_tokens({"additional_special_tokens": control}, replace_extra_special_tokens=False)
    known = tokenizer.get_vocab()
    tokenizer.add_tokens([AddedToken(t, normalized=False, special=False)
                          for t, k in kinds if k == 4 and t in known])
    return tokenizer


def check_turn_tokens(tokenizer: Any, source: Path) -> None:
    """Each turn or stop token the vocabulary has must encode as itself: a fine-tune learns to end its reply
    with it and generation stops on its id. A ``ModelError`` names the one split into pieces (checked when a
    GGUF is converted and when a full fine-tune starts, so a base converted by a transformers that read it
    wrongly is refused before it trains)."""
    vocab = tokenizer.get_vocab()
    for token in (TURN_START, *STOP_TOKENS):
        if token in vocab and tokenizer(token, add_special_tokens=False)["input_ids"] != [vocab[token]]:
            raise ModelError(
                f"the tokenizer of {source} splits {token} into pieces: a model trained on it never learns "
                "where a reply ends (read wrongly from its GGUF: delete the converted folder and convert it "
                "again with this version)"
            )
