"""One question's replies decoded on a static KV cache, each model pass replayed as a CUDA graph.

Why not ``generate``: on the H200 the transformers backend spent ~50 ms on a question's prompt (an eager
forward pass: ~500 kernel launches from a host that needs 12-77 µs each) and ~3.9 ms a new token on the
static cache with transformers' compiled step (round 6: 52 tokens in 253 ms), where a 135M model's
arithmetic for one token is a fraction of a millisecond. ``generate``'s own loop (logits processors,
stopping criteria, its per-step host checks) launches tens of small kernels a token around the model.

Here the model's forward pass is captured once per shape with ``torch.cuda.graph`` and replayed: the prompt
right-padded to a multiple of ``BUCKET`` tokens (its pad positions are masked, then overwritten by the
reply's), and one token a step. The 4-D attention mask is passed in (transformers returns a 4-D mask as
is), so no data-dependent check runs inside a capture. What is left on the host a token: choosing it (argmax,
or transformers' temperature and top-p arithmetic), one copy back to read the tokens, the stop and
repetition-loop checks. Nothing is compiled, so capturing costs two eager passes per shape (no 20-60 s
``torch.compile`` at load).

On a CPU the same code runs eagerly (no graphs): the tests compare it token for token with ``generate``.
Only caches whose layers are all ``StaticLayer`` (full attention) are taken: a sliding-window layer keeps
host-side state a graph would not replay (Gemma 3) — ``Unsupported``, and the caller keeps ``generate``.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

BUCKET = 64
"""Prompts are right-padded to a multiple of this many tokens: one captured prefill per multiple."""


COMPILE_LIMIT = 256
"""Dynamo's recompilation limit while compiled steps are in use (``graphed_compile``): each decoder shape
(rows, cache length) is one more compilation of the same step function."""
SHARED_PREFIX_MIN = 32
"""A batch's prompts that begin with at least this many tokens in common (the system prompt and the schema:
221 tokens of the movies dev questions' prompts, whose median is 242) have that prefix passed once, on one
row, and its keys and values copied to every prompt's row; only the rest is passed as a batch. Below it the
whole prompts go as one batch."""


TAIL_SHARE = 4
"""A batch's decoding moves to a decoder of 1/TAIL_SHARE of its rows once that few rows are still writing."""
TAIL_MIN_ROWS = 16
"""No smaller decoder than this: below it a step costs about the same (its kernels' launches, not rows)."""

TOP_P_K = 128
"""A sampled step with top-p (``top_p_prefilter``) finds each row's nucleus among its top this many tokens
(``nucleus_top_k``) instead of sorting all 49,152: the full sort took 2.3 ms of a 10.7 ms step of 400 rows on
the H200 (round 12). ``torch.topk``'s cost is its radix selection over the whole row, nearly the same for any
small K: on the H200 the whole choice of 400 rows, replayed as a graph, took 0.84 / 0.85 / 0.87 ms with K 64
/ 128 / 256 against 2.77 ms with the sort (random peaked logits, 2026-12-04). What K sets is how often a
row's nucleus does not fit (its top K - 1 hold less than top-p) and goes to the full sort on the host (0.75
ms for a step with such rows). A fine-tuned model writing Cypher at temperature 0.7 puts 90 % on a handful
of tokens; 128 leaves room for the flatter steps (a string literal's first token) at no measurable cost."""
TOP_P_MARGIN = 1e-4
"""How far (in probability) each row's cumulative sums must lie from top-p for the top-K nucleus to be
taken as the full sort's: the two paths sum in float32 in different orders (the full sort's softmax and
cumulative sum over 49,152 tokens, the top-K's log-sum-exp and K terms), whose gap was at most 2.1e-6 on
the CPU and on the H200 (8,000 rows) and is ~3e-5 at worst by the sizes; a row closer goes to the sort."""


class Unsupported(Exception):
    """This model or call cannot take the graphed path (the caller uses ``generate``)."""


@dataclass
class Decoded:
    """Each row's new tokens (its stop token included when it stopped) and their log-probabilities."""

    tokens: list[list[int]]
    logprobs: list[list[float]]
    captures: int = 0
    """CUDA graphs captured during the call (a shape or a kind of choice that no warm-up captured)."""
    settled_rows: int = 0
    """Rows whose choice the top tokens could not settle, chosen again with the full sort (``settle``)."""


RowDone = Callable[[int, list[int], list[float]], None]
"""Told of a row whose reply is final: (row, its tokens, their log-probabilities)."""


def cache_keyword(model: Any) -> str:
    """The forward pass's name for the KV cache: ``past_key_values`` (transformers ≤ 5.2x) or ``cache``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    for name in ("past_key_values", "cache"):
        if name in params:
            return name
    raise Unsupported(f"{type(base).__name__}.forward takes no KV cache argument")


def text_config(model: Any) -> Any:
    """The decoder's config (a multimodal model's text part), which sizes a static cache."""
    config = model.config
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def choose(logits: Any, temperature: float, top_p: float, greedy_rows: Any | None) -> tuple[Any, Any]:
    """The next token of each row and its log-probability, as ``generate`` chooses them: greedy at
    temperature 0 (the raw log-softmax), else sampled after transformers' temperature then top-p warpers
    (the warped log-softmax, what ``output_scores`` holds; no top-k: the transformers backend passes
    ``top_k=0``, as the other backends sample); ``greedy_rows`` (a bool per row) are greedy
    inside a sampled call, scored on the raw logits (``GreedyRows`` + ``ChosenLogProbs``)."""
    picked, lp, _ = choose_flagged(logits, temperature, top_p, greedy_rows, prefilter=False)
    return picked, lp


def choose_flagged(logits: Any, temperature: float, top_p: float, greedy_rows: Any | None,
                   prefilter: bool) -> tuple[Any, Any, Any]:
    """``choose``, and a bool per row: whether that row's choice is ``choose``'s. With ``prefilter`` a
    sampled call with top-p draws from the top ``TOP_P_K`` tokens alone (``nucleus_top_k``), and a row whose
    nucleus that cannot settle is flagged: the host makes its choice again with the full sort (``settle``).
    No host synchronisation: this runs inside the step's graph."""
    import torch

    logits = logits.float()
    raw = torch.log_softmax(logits, dim=-1)
    best = logits.argmax(dim=-1)
    exact = torch.ones_like(best, dtype=torch.bool)
    if temperature <= 0:
        return best, raw.gather(1, best[:, None]).squeeze(1), exact
    scores = logits / temperature
    if prefilter and top_p < 1.0:
        top, index, keep, exact = nucleus_top_k(scores, top_p)
        picked, lp = _draw(top.masked_fill(~keep, -math.inf))
        picked = index.gather(1, picked[:, None]).squeeze(1)
    else:
        picked, lp = _draw(nucleus(scores, top_p))
    if greedy_rows is not None:
        picked = torch.where(greedy_rows, best, picked)
        lp = torch.where(greedy_rows, raw.gather(1, best[:, None]).squeeze(1), lp)
        exact = exact | greedy_rows
    return picked, lp, exact


def nucleus(scores: Any, top_p: float) -> Any:
    """``scores`` with the tokens outside each row's nucleus at -inf, as transformers' ``TopPLogitsWarper``
    (the full sort): ascending, the tokens whose cumulative probability is at most 1 - top_p dropped, the
    largest always kept."""
    import torch

    if top_p >= 1.0:
        return scores
    ordered, index = torch.sort(scores, descending=False)
    cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative <= (1 - top_p)
    drop[:, -1] = False  # keep at least one token
    return scores.masked_fill(drop.scatter(1, index, drop), -math.inf)


def nucleus_top_k(scores: Any, top_p: float) -> tuple[Any, Any, Any, Any]:
    """Each row's nucleus found among its top ``TOP_P_K`` scores: (those scores, descending; their tokens;
    which are in the nucleus; whether that nucleus is the full sort's, ``nucleus``'s).

    In the full sort a token is kept when the tokens below it hold more than 1 - top_p, that is when the
    tokens above it hold less than top_p: here the exclusive cumulative sum of the descending probabilities
    (each against the whole row's log-sum-exp) below top_p. That decides the same set wherever three things
    hold, checked per row: the top K - 1 hold top_p (by ``TOP_P_MARGIN``), so the first dropped token is among
    the K; no cumulative sum lies within ``TOP_P_MARGIN`` of top_p, where the two paths' float rounding could
    decide a token differently; the last kept and first dropped scores differ — with a tie there the full
    sort keeps whichever of the equal tokens its sort order puts first, which no top-K can know."""
    import torch

    k = min(TOP_P_K, scores.shape[-1])
    top, index = scores.topk(k, dim=-1)
    mass = (top - torch.logsumexp(scores, dim=-1, keepdim=True)).exp()
    cumulative = mass.cumsum(dim=-1)
    above = torch.nn.functional.pad(cumulative[:, :-1], (1, 0))  # what the tokens above each hold
    keep = above < top_p
    keep[:, 0] = True  # at least one token, as the full sort
    kept = keep.sum(dim=-1, keepdim=True).clamp(max=k - 1)
    tie = top.gather(1, kept) == top.gather(1, kept - 1)
    exact = ((cumulative[:, -2] if k > 1 else cumulative[:, -1]) >= top_p + TOP_P_MARGIN)
    exact &= ~((above - top_p).abs() < TOP_P_MARGIN).any(dim=-1) & ~tie.squeeze(1)
    return top, index, keep, exact


def _draw(scores: Any) -> tuple[Any, Any]:
    """A token drawn from softmax(``scores``) per row (its column) and its log-probability: each token's
    probability over an exponential variable, the largest wins (multinomial's own method for one sample,
    written out so that it is plain kernels inside a graph)."""
    import torch

    warped = torch.log_softmax(scores, dim=-1)
    picked = (warped.exp() / torch.empty_like(warped).exponential_()).argmax(dim=-1)
    return picked, warped.gather(1, picked[:, None]).squeeze(1)


def settle(logits: Any, chosen: list[list[float]], temperature: float, top_p: float,
           step_ids: Any) -> list[list[float]]:
    """[tokens, log-probabilities] of ``chosen`` ([tokens, log-probabilities, exact flags] on the host, as
    ``choose_flagged`` gave them), each row flagged inexact chosen again from its ``logits`` with the full
    sort (``choose``) — its token also written to ``step_ids``, the next step's input. A flagged row is never
    greedy (greedy rows are exact)."""
    import torch

    bad = [i for i, ok in enumerate(chosen[2]) if not ok]
    if bad:
        index = torch.tensor(bad, device=logits.device)
        picked, lp = choose(logits.index_select(0, index), temperature, top_p, None)
        step_ids.index_copy_(0, index, picked.view(-1, 1).to(step_ids.dtype))
        tokens, scores = torch.stack([picked.double(), lp.double()]).tolist()  # one copy back
        for i, token, score in zip(bad, tokens, scores, strict=True):
            chosen[0][i], chosen[1][i] = token, score
    return chosen[:2]


SETTLE_WARM_ROWS = (1, 2, 4, 16, 64)
"""Row counts ``warm_settle`` runs ``settle`` on (its sort picks its kernels by the rows it is given)."""


def warm_settle(device: str, vocab: int, temperature: float, top_p: float) -> None:
    """Run ``settle`` once on each of ``SETTLE_WARM_ROWS`` rows of flat logits (every row flagged, its
    nucleus the whole vocabulary), so that the full sort's kernels are loaded before a call needs them: a
    CUDA kernel is loaded on its first launch, and in round 14 the first step of every batched eval call took
    207-264 ms against 7.6 for the next ones, with nothing else of its own (the warm-up's rows, one prompt
    repeated, never needed the sort)."""
    import torch

    for rows in SETTLE_WARM_ROWS:
        step_ids = torch.zeros((rows, 1), dtype=torch.long, device=device)
        settle(torch.zeros((rows, vocab), device=device), [[0] * rows, [0.0] * rows, [False] * rows],
               temperature, top_p, step_ids)


def shared_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every prompt has in common, leaving each at least one of its own (the pass
    after the prefix gives a prompt's logits at its last token)."""
    import torch

    n = min(len(p) for p in prompts) - 1
    if n <= 0:
        return 0
    heads = torch.tensor([list(p[:n]) for p in prompts], dtype=torch.long)
    differ = (heads != heads[0]).any(dim=0).nonzero()
    return int(differ[0]) if len(differ) else n


class GraphedDecoder:
    """Decodes ``rows`` replies to one prompt on a static cache of ``cache_len`` positions with ``model``
    (the runner: a plain model or a PeftModel; its weights and adapter state must not change while this
    decoder lives — the generator drops its decoders on any change). ``graphs``: capture and replay CUDA
    graphs (CUDA only); else the same passes run eagerly."""

    def __init__(self, model: Any, rows: int, cache_len: int, device: str, graphs: bool,
                 compile_step: bool = False, top_p_prefilter: bool = True) -> None:
        import torch
        from transformers import StaticCache

        self.model, self.rows, self.cache_len, self.device = model, rows, cache_len, device
        self.graphs = graphs and device.startswith("cuda")
        self.keyword = cache_keyword(model)
        self.cache = StaticCache(config=text_config(model), max_cache_len=cache_len)
        if any(getattr(layer, "is_sliding", False) or type(layer).__name__ != "StaticLayer"
               for layer in self.cache.layers):
            raise Unsupported("the model's cache has sliding-window layers (host-side state)")
        # static inputs of the captured passes
        self.step_ids = torch.zeros((rows, 1), dtype=torch.long, device=device)
        self.step_mask = torch.zeros((rows, 1, 1, cache_len), dtype=torch.bool, device=device)
        self.prompt_len = torch.zeros((), dtype=torch.long, device=device)
        self.last_index = torch.zeros((1,), dtype=torch.long, device=device)
        self.positions = torch.arange(cache_len, device=device)
        # bucket -> (graph, ids, causal mask, logits): a graph reads its inputs where they were at capture
        self._prefills: dict[int, tuple[Any, Any, Any, Any]] = {}
        self._step: tuple[Any, Any] | None = None  # (graph, logits)
        # (temperature, top-p, greedy rows) -> the step and the token choice captured as one graph, which
        # feeds its chosen tokens to the next step itself and leaves them (and their log-probabilities and
        # exact flags, ``choose_flagged``) in ``chosen`` for the host's one copy back a step; the graph's
        # logits stay readable until the next replay for the rows the host chooses again (``settle``)
        self._choosing: dict[tuple[Any, ...], Any] = {}
        self.choose_error: str | None = None
        """Why the choice could not be captured with the step (then it runs between the step's replays)."""
        self.chosen = torch.zeros((3, rows), dtype=torch.float64, device=device)
        self.top_p_prefilter = top_p_prefilter
        """Sampled calls with top-p find their nuclei among the top ``TOP_P_K`` tokens (the setting)."""
        self.settled_rows = 0
        """How many rows' choices the full sort made again on the host (``settle``), for the probes."""
        # which rows a sampled call holds greedy when it asks for a greedy first reply (a graph reads this
        # tensor where it was at capture: it lives as long as the decoder); a batch's rows differ (below)
        self.greedy_rows = torch.arange(rows, device=device) == 0
        self._pool = torch.cuda.graph_pool_handle() if self.graphs else None
        self.captures = 0
        # the step's kernels fused by inductor before the capture (``graphed_compile``; CUDA only): the eager
        # step is ~600 small kernels, whose replay alone took 3.45 ms on the H200 (2026-12-03)
        self._step_fn = self._step_pass
        if compile_step and self.graphs:
            # one compilation per decoder shape, and decoders are made again after every adapter swap: past
            # dynamo's default of 8 recompilations it would run the step eagerly without a word
            import torch._dynamo.config as dynamo_config

            dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, COMPILE_LIMIT)
            self._step_fn = torch.compile(self._step_pass, mode="default", dynamic=False)

    # --- the two passes -----------------------------------------------------------------------------
    def _forward(self, ids: Any, mask: Any, **extra: Any) -> Any:
        return self.model(input_ids=ids, attention_mask=mask, use_cache=True,
                          **{self.keyword: self.cache}, **extra).logits

    def _prefill_pass(self, ids: Any, causal: Any) -> Any:
        """The padded prompt's pass: its logits at the prompt's last token; the cache then counts the
        prompt's tokens only (the pads' entries are masked, then overwritten), and the step mask shows the
        prompt."""
        for layer in self.cache.layers:  # the prompt goes in from position 0 (a layer counts what it holds)
            layer.cumulative_length.zero_()
        logits = self._forward(ids, causal, logits_to_keep=self.last_index)
        for layer in self.cache.layers:
            layer.cumulative_length.copy_(self.prompt_len)
        self.step_mask.copy_((self.positions < self.prompt_len).expand_as(self.step_mask))
        return logits

    def _step_pass(self) -> Any:
        """One token a row at the cache's next position (which the mask shows before the pass)."""
        at = self.cache.layers[0].cumulative_length.reshape(1)
        self.step_mask.index_fill_(-1, at, True)
        return self._forward(self.step_ids, self.step_mask)

    def _capture(self, fn: Callable[[], Any], restore: Callable[[], None] | None = None) -> tuple[Any, Any]:
        """``fn`` run twice on a side stream (allocating what it needs), ``restore`` (the state those runs
        moved), then ``fn`` captured — recorded, not run: (graph, output)."""
        import torch

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        if restore is not None:
            restore()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            out = fn()
        self.captures += 1
        return graph, out

    def _prefill_buffers(self, bucket: int) -> tuple[Any, Any]:
        import torch

        ids = torch.zeros((self.rows, bucket), dtype=torch.long, device=self.device)
        causal = (self.positions[None, :] <= torch.arange(bucket, device=self.device)[:, None])
        return ids, causal[None, None].expand(self.rows, 1, bucket, self.cache_len)

    def prefill(self, prompt: Sequence[int]) -> Any:
        """Run the prompt (every row the same); the last prompt token's logits, rows × vocab."""
        import torch

        n = len(prompt)
        bucket = -(-n // BUCKET) * BUCKET
        if n == 0 or bucket > self.cache_len:
            raise Unsupported(f"a prompt of {n} tokens does not fit a cache of {self.cache_len}")
        self.prompt_len.fill_(n)
        self.last_index.fill_(n - 1)
        if not self.graphs:
            ids, causal = self._prefill_buffers(bucket)
            ids[:, :n] = torch.tensor(prompt, dtype=torch.long, device=self.device)
            return self._prefill_pass(ids, causal)[:, -1]
        if bucket not in self._prefills:
            ids, causal = self._prefill_buffers(bucket)
            graph, out = self._capture(lambda: self._prefill_pass(ids, causal))
            self._prefills[bucket] = (graph, ids, causal, out)
        graph, ids, _, out = self._prefills[bucket]
        ids.zero_()
        ids[:, :n] = torch.tensor(prompt, dtype=torch.long).to(self.device, non_blocking=True)
        graph.replay()
        return out[:, -1]

    def step(self, tokens: Any) -> Any:
        """Feed each row's token; the next logits, rows × vocab."""
        self.step_ids.copy_(tokens.view(self.rows, 1))
        if not self.graphs:
            return self._step_pass()[:, -1]
        if self._step is None:  # the warm-up runs move the cache's position and mask: put them back
            self._step = self._capture(self._step_fn, self._restorer())
        graph, out = self._step
        graph.replay()
        return out[:, -1]

    def _restorer(self, *more: Any) -> Callable[[], None]:
        """What puts the step's state (and ``more`` tensors) back as it is now."""
        state = self._step_state() + list(more)
        kept = [t.clone() for t in state]

        def restore() -> None:
            for t, saved in zip(state, kept, strict=True):
                t.copy_(saved)

        return restore

    def _step_state(self) -> list[Any]:
        """The tensors a step moves (the cache's position, the mask), kept across the capture's warm-up."""
        return [layer.cumulative_length for layer in self.cache.layers] + [self.step_mask]

    def warm(self, prompt_lengths: Sequence[int]) -> None:
        """Capture the prefill of each length's bucket now (a server's load), not on a question; the steps
        are captured by the first call of each kind (the warm-up asks each)."""
        for n in prompt_lengths:
            self.prefill([0] * n)

    def step_choose(self, temperature: float, top_p: float, greedy_first: bool) -> list[list[float]]:
        """One step from the tokens in ``step_ids`` and the choice of the next ones, which go back into
        ``step_ids``: [tokens, log-probabilities] on the host. On CUDA the step and the choice are one graph
        per kind of choice (greedy, or a temperature and top-p with its greedy rows): the choice's ~20 small
        kernels are replayed, not launched one by one from the host. ``greedy_first``: the rows of
        ``greedy_rows`` greedy inside a sampled call."""
        greedy_rows = self.greedy_rows if greedy_first and temperature > 0 else None

        def run() -> Any:
            logits = self._step_fn()[:, -1]
            self._choose(logits, temperature, top_p, greedy_rows)
            return logits

        if not self.graphs:
            return self._settle(run(), temperature, top_p)
        key = (0.0, 1.0, False) if temperature <= 0 else (temperature, top_p, greedy_rows is not None)
        key += (self.top_p_prefilter,)
        captured = self._choosing.get(key)
        if captured is None and self.choose_error is None:
            restore = self._restorer(self.step_ids)
            try:
                captured = self._capture(run, restore)
                self._choosing[key] = captured
            except Exception as e:  # noqa: BLE001 - the choice on the host side, as round 11 measured it
                restore()
                self.choose_error = f"{type(e).__name__}: {e}"
                log.warning("the token choice was not captured with the step (%s); chosen between replays",
                            self.choose_error)
        if captured is None:
            logits = self.step(self.step_ids)
            self._choose(logits, temperature, top_p, greedy_rows)
            return self._settle(logits, temperature, top_p)
        graph, logits = captured
        graph.replay()
        return self._settle(logits, temperature, top_p)

    def _choose(self, logits: Any, temperature: float, top_p: float, greedy_rows: Any | None) -> None:
        """The next tokens into ``step_ids``, and with their log-probabilities and exact flags into ``chosen``
        (``choose_flagged``; inside the step's graph on CUDA)."""
        picked, lp, exact = choose_flagged(logits, temperature, top_p, greedy_rows, self.top_p_prefilter)
        self.chosen[0].copy_(picked)
        self.chosen[1].copy_(lp)
        self.chosen[2].copy_(exact)
        self.step_ids.copy_(picked.view(self.rows, 1))

    def _settle(self, logits: Any, temperature: float, top_p: float) -> list[list[float]]:
        """``chosen`` on the host (the one copy back a step), [tokens, log-probabilities], its inexact rows
        chosen again with the full sort (``settle``) before the next step reads ``step_ids``."""
        chosen = self.chosen.tolist()
        self.settled_rows += len(chosen[2]) - int(sum(chosen[2]))
        return settle(logits, chosen, temperature, top_p, self.step_ids)

    # --- the loop ------------------------------------------------------------------------------------
    def decode(self, prompt: Sequence[int], *, max_new_tokens: int, temperature: float, top_p: float,
               stop_ids: Sequence[int], greedy_first: bool = False,
               finished: Callable[[list[int]], bool] | None = None,
               tick: Callable[[], None] | None = None) -> Decoded:
        """Each row's reply: until its stop token, ``finished(tokens)`` (checked every 4 steps: the
        repetition loop), or ``max_new_tokens``. ``greedy_first``: row 0 greedy inside a sampled call.
        ``tick`` is called once before the prompt's pass and once per step (the trace's clock)."""
        return self._loop(len(prompt), lambda: self.prefill(prompt), max_new_tokens=max_new_tokens,
                          temperature=temperature, top_p=top_p, stop_ids=stop_ids, greedy_first=greedy_first,
                          finished=finished, tick=tick)

    def _loop(self, width: int, prefill: Callable[[], Any], *, max_new_tokens: int, temperature: float,
              top_p: float, stop_ids: Sequence[int], greedy_first: bool,
              finished: Callable[[list[int]], bool] | None, tick: Callable[[], None] | None,
              row_done: RowDone | None = None) -> Decoded:
        """The prompt's pass (``prefill``: its logits; ``width`` positions), then choose, copy back, check,
        step, until every row is done. ``row_done(row, tokens, log-probabilities)`` is told of each row once,
        as soon as its reply is final (before the next step), so that a caller can use it while the others
        are still written."""
        if width + max_new_tokens > self.cache_len:
            raise Unsupported(f"{width} + {max_new_tokens} tokens exceed a cache of {self.cache_len}")
        if tick:
            tick()
        logits = prefill()
        stops = set(stop_ids)
        tokens: list[list[int]] = [[] for _ in range(self.rows)]
        scores: list[list[float]] = [[] for _ in range(self.rows)]
        done = [False] * self.rows
        ended: list[int] = []  # rows done since ``row_done`` was last told
        greedy_rows = self.greedy_rows if greedy_first and temperature > 0 else None
        self._choose(logits, temperature, top_p, greedy_rows)
        both = self._settle(logits, temperature, top_p)  # one copy back a step
        decoder: GraphedDecoder = self
        rows: list[int | None] = list(range(self.rows))  # the decoder's rows -> this call's (None: a pad)
        for step in range(max_new_tokens):
            for i, row in enumerate(rows):
                if row is None or done[row]:
                    continue
                t = int(both[0][i])
                tokens[row].append(t)
                scores[row].append(both[1][i])
                if t in stops:
                    done[row] = True
                    ended.append(row)
            if tick:
                tick()
            if finished is not None and (step + 1) % 4 == 0:
                for row in range(self.rows):
                    if not done[row] and finished(tokens[row]):
                        done[row] = True
                        ended.append(row)
            if all(done) or step + 1 == max_new_tokens:
                break
            if row_done is not None:
                for row in ended:
                    row_done(row, tokens[row], scores[row])
                ended.clear()
            writing = [i for i, row in enumerate(rows) if row is not None and not done[row]]
            tail = decoder.tail_for(writing)
            if tail is not None:
                decoder, taken = tail
                rows = [rows[i] if k < len(writing) else None for k, i in enumerate(taken)]
            both = decoder.step_choose(temperature, top_p, greedy_first)
        if row_done is not None:  # the last step's and the rows the length cut
            for row in [*ended, *(r for r in range(self.rows) if not done[r])]:
                row_done(row, tokens[row], scores[row])
        return Decoded(tokens, scores)

    def tail_for(self, writing: list[int]) -> tuple[GraphedDecoder, list[int]] | None:
        """A smaller decoder to go on with when only the rows ``writing`` are still writing: (it, the rows of
        this decoder it took, in its row order, repeated rows padding it), or None to go on here. One
        question's decoder keeps its rows (``BatchDecoder`` hands its last rows on)."""
        return None


class BatchDecoder(GraphedDecoder):
    """Decodes ``per`` replies to each of ``prompts`` different prompts (a chunk of ``cypherloop eval``'s
    questions; rows = prompts × per, each prompt's replies together) on one static cache, the one-token step
    replayed as a CUDA graph.

    The prompts are left-padded to the longest: every row's reply then goes in at the same cache position,
    so one step serves them all; each row's positions (RoPE) start at its own first token and its mask hides
    its pads. The prompts' pass runs eagerly, once per prompt (not per reply) on a cache of ``prompts`` rows,
    whose entries are then copied to each prompt's rows: that pass is one large batch (compute, not kernel
    launches, is its cost), and its width changes from chunk to chunk, which a graph could not follow."""

    def __init__(self, model: Any, prompts: int, per: int, cache_len: int, device: str, graphs: bool,
                 compile_step: bool = False, top_p_prefilter: bool = True) -> None:
        import torch
        from transformers import StaticCache

        super().__init__(model, prompts * per, cache_len, device, graphs, compile_step, top_p_prefilter)
        self.prompts, self.per = prompts, per
        self.step_pos = torch.zeros((self.rows, 1), dtype=torch.long, device=device)
        self.prompt_cache = self.cache if per == 1 else StaticCache(config=text_config(model),
                                                                   max_cache_len=cache_len)
        self._expand = torch.arange(prompts, device=device).repeat_interleave(per)
        self.greedy_rows = torch.arange(self.rows, device=device) % per == 0  # each prompt's first reply
        self.prefix_cache: Any = None  # one row: the prompts' shared prefix (``SHARED_PREFIX_MIN``)
        self.tail: BatchDecoder | None = None  # for a batch's last writers (``tail_for``)

    def _step_pass(self) -> Any:
        """One token a row at the cache's next position, each row at its own next position id."""
        at = self.cache.layers[0].cumulative_length.reshape(1)
        self.step_mask.index_fill_(-1, at, True)
        logits = self._forward(self.step_ids, self.step_mask, position_ids=self.step_pos)
        self.step_pos.add_(1)
        return logits

    def _step_state(self) -> list[Any]:
        return super()._step_state() + [self.step_pos]

    def tail_for(self, writing: list[int]) -> tuple[GraphedDecoder, list[int]] | None:
        """Once at most a quarter of the rows (``TAIL_SHARE``) are still writing, a decoder of a quarter of
        the rows takes them over — their cache, mask, positions, next tokens and greedy flags copied — so
        that each step after costs what a quarter of the rows cost, not all of them (a batch steps until its
        longest reply ends; round 12's eval: ~95 steps of 512 rows, one question's 4 replies 48.5). It hands
        on in turn, down to ``TAIL_MIN_ROWS``."""
        import torch

        size = self.rows // TAIL_SHARE
        if size < TAIL_MIN_ROWS or not writing or len(writing) > size:
            return None
        if self.tail is None:
            self.tail = BatchDecoder(self.model, size, 1, self.cache_len, self.device, self.graphs,
                                     top_p_prefilter=self.top_p_prefilter)
        tail = self.tail
        taken = writing + [writing[0]] * (size - len(writing))
        index = torch.tensor(taken, device=self.device)
        for mine, its in zip(self.cache.layers, tail.cache.layers, strict=True):
            its.cumulative_length.zero_()  # the whole cache, from position 0, then its count
            its.update(mine.keys.index_select(0, index), mine.values.index_select(0, index))
            its.cumulative_length.copy_(mine.cumulative_length)
        for mine, its in ((self.step_mask, tail.step_mask), (self.step_pos, tail.step_pos),
                          (self.step_ids, tail.step_ids), (self.greedy_rows, tail.greedy_rows)):
            its.copy_(mine.index_select(0, index))
        return tail, taken

    def warm_tails(self, kinds: Sequence[tuple[float, float, bool]]) -> int:
        """Make the smaller decoders and capture their steps, one per kind of choice ((temperature, top-p,
        greedy first) as ``step_choose`` takes them), now (a warm-up after a first call, whose state they
        copy) rather than in a batch's decoding; how many there are."""
        decoder, made = self, 0
        while (tail := decoder.tail_for(list(range(decoder.rows // TAIL_SHARE)))) is not None:
            decoder, made = tail[0], made + 1
            for temperature, top_p, greedy_first in kinds:
                decoder.step_choose(temperature, top_p, greedy_first)
        return made

    def prefill_many(self, prompts: Sequence[Sequence[int]]) -> Any:
        """Run the prompts; each row's logits after its prompt, rows × vocab. Cache layout: the prompts'
        shared prefix (``SHARED_PREFIX_MIN``, else none), then each prompt's rest left-padded to the longest
        (positions ``shared`` … ``width``); a row's mask hides its pads, its position ids skip them."""
        import torch

        if len(prompts) != self.prompts or not all(prompts):
            raise Unsupported(f"{len(prompts)} prompts for a decoder of {self.prompts}")
        width = max(len(p) for p in prompts)
        if width >= self.cache_len:
            raise Unsupported(f"a prompt of {width} tokens does not fit a cache of {self.cache_len}")
        shared = shared_prefix(prompts)
        shared = shared if shared >= SHARED_PREFIX_MIN else 0
        for layer in self.prompt_cache.layers:
            layer.cumulative_length.zero_()
        if shared:
            self._prefill_prefix(prompts[0][:shared])
        rest = width - shared
        ids = torch.zeros((self.prompts, rest), dtype=torch.long)
        pads = torch.tensor([width - len(p) for p in prompts], dtype=torch.long)
        for row, p in enumerate(prompts):
            ids[row, width - len(p):] = torch.tensor(p[shared:], dtype=torch.long)
        ids, pads = ids.to(self.device), pads.to(self.device)
        query = torch.arange(shared, width, device=self.device)
        keys = self.positions[None, None, :]
        # the prefix, then causal over the row's own tokens, its pads hidden; a pad attends to itself so that
        # no row of the mask is empty
        mine = (keys <= query[None, :, None]) & (keys >= shared + pads[:, None, None])
        mask = (keys < shared) | mine | (keys == query[None, :, None])
        position_ids = (query[None, :] - pads[:, None]).clamp(min=0)
        logits = self.model(input_ids=ids, attention_mask=mask[:, None], position_ids=position_ids,
                            use_cache=True, logits_to_keep=1, **{self.keyword: self.prompt_cache})
        logits = logits.logits[:, -1]
        if self.per > 1:  # each prompt's entries into its rows of the decoding cache
            for small, big in zip(self.prompt_cache.layers, self.cache.layers, strict=True):
                big.cumulative_length.zero_()
                expand = self._expand
                big.update(small.keys.index_select(0, expand), small.values.index_select(0, expand))
            logits = logits.index_select(0, self._expand)
        for layer in self.cache.layers:
            layer.cumulative_length.fill_(width)
        row_pads = pads.index_select(0, self._expand)
        at = self.positions[None, :]
        seen = (at < shared) | (at >= shared + row_pads[:, None]) & (at < width)
        self.step_mask.copy_(seen[:, None, None, :])
        self.step_pos.copy_((width - row_pads)[:, None])
        return logits

    def _prefill_prefix(self, prefix: Sequence[int]) -> None:
        """The prompts' shared ``prefix`` passed once on a one-row cache, its keys and values then written to
        every prompt's row of the prompts' cache (at positions 0 … len(prefix)), which then counts them."""
        import torch
        from transformers import StaticCache

        if self.prefix_cache is None:
            self.prefix_cache = StaticCache(config=text_config(self.model), max_cache_len=self.cache_len)
        n = len(prefix)
        for layer in self.prefix_cache.layers:
            layer.cumulative_length.zero_()
        query = torch.arange(n, device=self.device)
        causal = self.positions[None, None, None, :] <= query[None, None, :, None]
        self.model(input_ids=torch.tensor([list(prefix)], dtype=torch.long, device=self.device),
                   attention_mask=causal, position_ids=query[None, :], use_cache=True, logits_to_keep=1,
                   **{self.keyword: self.prefix_cache})
        for one, many in zip(self.prefix_cache.layers, self.prompt_cache.layers, strict=True):
            shape = (self.prompts, *one.keys.shape[1:2], n, one.keys.shape[-1])
            many.update(one.keys[:, :, :n].expand(shape), one.values[:, :, :n].expand(shape))

    def decode_many(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float,
                    top_p: float, stop_ids: Sequence[int], greedy_first: bool = False,
                    finished: Callable[[list[int]], bool] | None = None,
                    tick: Callable[[], None] | None = None, row_done: RowDone | None = None) -> Decoded:
        """Each row's reply (row i × per + j: prompt i's reply j), as ``decode``; ``greedy_first``: each
        prompt's first row greedy inside a sampled call; ``row_done`` as ``_loop``'s. The result counts the
        graphs this decoder and its tails captured, and the rows they settled, during the call."""
        before = self._counts()
        decoded = self._loop(max((len(p) for p in prompts), default=0), lambda: self.prefill_many(prompts),
                             max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                             stop_ids=stop_ids, greedy_first=greedy_first, finished=finished, tick=tick,
                             row_done=row_done)
        after = self._counts()
        decoded.captures, decoded.settled_rows = after[0] - before[0], after[1] - before[1]
        return decoded

    def _counts(self) -> tuple[int, int]:
        """Graphs captured and rows settled so far by this decoder and its tails (made as calls need them)."""
        captures = settled = 0
        decoder: BatchDecoder | None = self
        while decoder is not None:
            captures, settled = captures + decoder.captures, settled + decoder.settled_rows
            decoder = decoder.tail
        return captures, settled
