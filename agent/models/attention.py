"""Decoding attention for grouped-query models: one query token against the key/value heads as they are.

transformers' SDPA attention (5.17, the GPU image's; 5.25 no longer) repeats every key/value head to the query
heads' count whenever a mask is passed, as it is in every padded batch and static cache: a decoding step then
writes and reads three copies of the whole cache for SmolLM2 (9 query heads, 3 key/value heads). For a single
query token the query heads of a group can instead stand in the query-length axis of their key/value head: the
same products, the cache read once. On the H200 a batched step of 400 rows (100 questions × 4 candidates) took
7.9 ms this way against 32.7 ms with the heads repeated (docs/BENCHMARKS.md A, round 12's batch probe). Newer
transformers packs the heads itself, but not inside ``torch.compile``; here the compiled single-question step
(4 rows over a 2,048-position cache: ~0.57 GB of repeated keys and values written and read a step, by the
sizes) packed them too, and that was slower: a 4-row step took 2.48 ms packed against 2.23 ms with the heads
repeated (round 13, the single-stream run's median step), as did the batch probe's 1 and 4 rows (3.48 against
3.23, 4.07 against 3.92) while 100 rows took 4.82 against 11.06. So a step of fewer rows than
``grouped_attention_min_rows`` (``MIN_ROWS``, 16: the crossover lies between 4 and 100 rows, unmeasured
between) keeps transformers' function; ``grouped_attention`` turns it all off. Anything else (a prompt's pass,
training, a model without groups) goes to transformers' own SDPA function unchanged."""

from __future__ import annotations

from typing import Any

from agent.models.graphed import text_config

NAME = "cypherloop_grouped_sdpa"
MIN_ROWS = 16
"""A step of fewer rows keeps the repeated heads (the setting ``grouped_attention_min_rows``)."""
_registered = False


def grouped_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                 scaling: float | None = None, is_causal: bool | None = None,
                 **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention-function signature: query (batch, heads, q, dim), key and value (batch,
    kv heads, kv, dim); returns (batch, q, heads, dim)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    min_rows = getattr(getattr(module, "config", None), "grouped_attention_min_rows", MIN_ROWS)
    one_token = query.shape[2] == 1 and groups > 1 and kwargs.get("position_bias") is None
    one_token = one_token and query.shape[0] >= min_rows
    shared_mask = attention_mask is None or attention_mask.shape[1] == 1  # one mask for every head
    if not one_token or not shared_mask or dropout or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    packed = query.reshape(batch, heads // groups, groups, dim)  # head h reads key/value head h // groups
    mask = attention_mask[:, :, :, : key.shape[-2]] if attention_mask is not None else None
    out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_grouped_decoding(model: Any, min_rows: int = MIN_ROWS) -> bool:
    """Switch ``model`` (loaded with SDPA attention) to ``grouped_sdpa`` for steps of ``min_rows`` rows or
    more, registered once with SDPA's mask function under ``NAME``. False (left as it is) for another
    attention implementation or a model whose query and key/value heads are as many."""
    global _registered
    from transformers import AttentionInterface

    config = text_config(model)
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    if getattr(config, "_attn_implementation", None) != "sdpa" or not heads or heads == kv_heads:
        return False
    if not _registered:
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(NAME, grouped_sdpa)
        AttentionMaskInterface.register(NAME, sdpa_mask)
        _registered = True
    config.grouped_attention_min_rows = min_rows  # read by each layer's attention (its ``config``)
    model.set_attn_implementation(NAME)
    return True
