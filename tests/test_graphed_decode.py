"""The graphed decoding loop (agent.models.graphed, ``decode_loop``): on a CPU the same passes run eagerly,
so its tokens and log-probabilities can be held against transformers' ``generate`` with the tiny model. The
CUDA graphs themselves are measured on a GPU (scripts/gpu_run.py latency:G)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.models.base import PromptInput
from tests.agent_helpers import make_tiny_model_dir

SCHEMA = ("Node properties:\nCustomer {name: STRING}\nProduct {price: FLOAT}\nRelationships:\n"
          "(:Customer)-[:BOUGHT]->(:Product)")
QUESTIONS = ("How many customers?", "Which products cost more than 10? " * 6, "a?")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "tiny-llama", seed=3)


def _gen(settings, tiny_dir, **kw):
    from agent.models.local import TransformersGenerator

    update = {"base_model": str(tiny_dir), "temperature": 0.0, "max_new_tokens": 24, "adapter": "none",
              "device": "cpu", **kw}
    return TransformersGenerator(settings.model_copy(update=update))


def test_greedy_replies_and_logprobs_equal_generates(settings, tiny_dir):
    graphed, plain = _gen(settings, tiny_dir, decode_loop="graphed"), _gen(settings, tiny_dir)
    prompts = [PromptInput(q, SCHEMA) for q in QUESTIONS]
    for p in prompts:  # prompts of different lengths: different buckets of the padded prefill
        assert graphed.complete(p.messages()) == plain.complete(p.messages())
        assert graphed.traces[-1].backend == "transformers-graphed"
        assert plain.traces[-1].backend == "transformers"
        [[got]], [[want]] = graphed.generate_batch([p], n=1), plain.generate_batch([p], n=1)
        assert got.text == want.text and got.logprob == pytest.approx(want.logprob, rel=1e-4, abs=1e-4)
        assert graphed.traces[-1].backend == "transformers-graphed-batch"
        assert graphed.traces[-1].row_tokens == plain.traces[-1].row_tokens
    assert graphed.graphed_error is None and list(graphed._decoders) == [(1, 2048)]


def test_a_questions_candidates_keep_their_greedy_first_row(settings, tiny_dir):
    """One sampled call of 4 rows with the first held greedy (``candidates_one_call``): the first row is the
    greedy reply with its raw log-probability, the others are sampled replies with finite ones."""
    import torch

    graphed, plain = _gen(settings, tiny_dir, decode_loop="graphed"), _gen(settings, tiny_dir)
    p = PromptInput(QUESTIONS[0], SCHEMA)
    [[want]] = plain.generate_batch([p], n=1)
    torch.manual_seed(0)
    [rows] = graphed.generate_batch([p], n=4, temperature=0.7, greedy_first=True)
    assert len(rows) == 4 and rows[0].text == want.text
    assert rows[0].logprob == pytest.approx(want.logprob, rel=1e-4, abs=1e-4)
    assert all(r.logprob <= 0 for r in rows)
    assert len(graphed.traces[-1].row_tokens) == 4 and (4, 2048) in graphed._decoders


def test_sampling_follows_temperature_and_top_p():
    """``choose`` as transformers' warpers: top-p keeps the fewest tokens whose probability reaches p, the
    sampled token's log-probability is the warped one, greedy rows take the argmax with the raw one."""
    import torch

    from agent.models.graphed import choose

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]]))
    seen = set()
    for seed in range(200):
        torch.manual_seed(seed)
        picked, lp = choose(logits, 1.0, 0.75, None)
        seen.add(int(picked[0]))
        if int(picked[0]) == 0:
            assert float(lp[0]) == pytest.approx(torch.log(torch.tensor(0.5 / 0.8)).item(), rel=1e-5)
    assert seen == {0, 1}  # 0.5 + 0.3 reach 0.75: the other two are never drawn
    picked, lp = choose(logits, 0.7, 0.9, torch.tensor([True, False]))
    assert int(picked[0]) == 0
    assert float(lp[0]) == pytest.approx(torch.log(torch.tensor(0.5)).item(), rel=1e-5)
    picked, lp = choose(logits, 0.0, 0.9, None)
    assert picked.tolist()[0] == 0


def _peaked_logits(rows: int, seed: int):
    """Rows of SmolLM2's vocabulary size as a model writing Cypher gives them: a few tokens far above a flat
    rest, so that a handful hold top-p."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, 49152, generator=generator) * 2
    spikes = torch.randint(0, 49152, (rows, 8), generator=generator)
    return logits.scatter_(1, spikes, torch.rand(rows, 8, generator=generator) * 12 + 12)


def test_the_top_k_nucleus_is_the_full_sorts():
    """Where a row's top ``TOP_P_K`` tokens settle its nucleus (flagged exact), it is the full sort's token
    for token, the warped log-probabilities are the sort's (to float32 rounding: the normaliser is summed in
    another order), and every draw comes from it with that log-probability; greedy rows and temperature 0
    are ``choose``'s to the bit."""
    import math

    import torch

    from agent.models.graphed import choose, choose_flagged, nucleus, nucleus_top_k

    logits = _peaked_logits(64, seed=0)
    scores = logits / 0.7
    full = nucleus(scores, 0.9)
    top, index, keep, exact = nucleus_top_k(scores, 0.9)
    assert int(exact.sum()) >= 60  # the rare rest: a cumulative sum near top-p, left to the sort
    warped_full = torch.log_softmax(full, dim=-1)
    warped_top = torch.log_softmax(top.masked_fill(~keep, -math.inf), dim=-1)
    for row in exact.nonzero().flatten().tolist():
        tokens = index[row][keep[row]]
        assert set(tokens.tolist()) == set(torch.isfinite(full[row]).nonzero().flatten().tolist()), row
        assert torch.allclose(warped_top[row][keep[row]], warped_full[row][tokens], rtol=0, atol=1e-6), row
    greedy = torch.arange(64) % 4 == 0
    torch.manual_seed(0)
    for _ in range(20):
        picked, lp, flags = choose_flagged(logits, 0.7, 0.9, greedy, prefilter=True)
        assert bool(flags[greedy].all()) and torch.equal(flags[~greedy], exact[~greedy])
        assert torch.isfinite(full.gather(1, picked[:, None])).all()
        sampled = exact & ~greedy
        want = warped_full.gather(1, picked[:, None]).squeeze(1)
        assert torch.allclose(lp[sampled], want[sampled], rtol=0, atol=1e-6)
    want_picked, want_lp = choose(logits, 0.7, 0.9, greedy)
    assert torch.equal(picked[greedy], want_picked[greedy]) and torch.equal(lp[greedy], want_lp[greedy])
    picked, lp, flags = choose_flagged(logits, 0.0, 0.9, None, prefilter=True)
    want_picked, want_lp = choose(logits, 0.0, 0.9, None)
    assert torch.equal(picked, want_picked) and torch.equal(lp, want_lp) and bool(flags.all())
    # a small nucleus is drawn whole: 0.5 + 0.3 reach 0.75, the other tokens (and the flat rest) never
    small = torch.full((1, 49152), -30.0)
    small[0, :4] = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    seen = set()
    for seed in range(100):
        torch.manual_seed(seed)
        picked, lp, flags = choose_flagged(small, 1.0, 0.75, None, prefilter=True)
        assert bool(flags[0])
        seen.add(int(picked[0]))
        share = 0.5 if int(picked[0]) == 0 else 0.3
        assert float(lp[0]) == pytest.approx(math.log(share / 0.8), rel=1e-5)
    assert seen == {0, 1}


def test_rows_the_top_k_cannot_settle_are_flagged():
    """A flat row (its top K hold far less than top-p), a tie between the last kept and the first dropped
    token (the sort keeps whichever it orders first) and a cumulative sum within float rounding of top-p are
    flagged for the full sort; a clear row beside them is not."""
    import torch

    from agent.models.graphed import TOP_P_K, TOP_P_MARGIN, nucleus_top_k

    scores = torch.full((4, 49152), -30.0)
    scores[0] = 0.0  # flat
    scores[1, :4] = torch.log(torch.tensor([0.4, 0.25, 0.25, 0.1]))  # 0.4 + 0.25 reach 0.6: which 0.25?
    scores[2, :2] = torch.log(torch.tensor([0.6 + TOP_P_MARGIN / 2, 0.4 - TOP_P_MARGIN / 2]))  # 0.6, nearly
    scores[3, :3] = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    _, _, keep, exact = nucleus_top_k(scores, 0.6)
    assert exact.tolist() == [False, False, False, True]
    assert keep[3].tolist()[:3] == [True, True, False] and keep.shape[1] == TOP_P_K


def test_flagged_rows_get_the_full_sorts_choice():
    """``settle`` chooses each flagged row again with the full sort — the token ``choose`` draws from that
    row's logits, its warped log-probability — writes it into the next step's input, and leaves the other
    rows as they were."""
    import torch

    from agent.models.graphed import choose, choose_flagged, nucleus, settle

    logits = _peaked_logits(3, seed=1)
    logits[1] = torch.randn(49152, generator=torch.Generator().manual_seed(2)) * 0.1  # nearly flat
    torch.manual_seed(3)
    picked, lp, exact = choose_flagged(logits, 0.7, 0.9, None, prefilter=True)
    assert exact.tolist() == [True, False, True]
    chosen = torch.stack([picked.double(), lp.double(), exact.double()]).tolist()
    step_ids = picked.view(3, 1).clone()
    torch.manual_seed(4)
    got = settle(logits, [list(r) for r in chosen], 0.7, 0.9, step_ids)
    torch.manual_seed(4)
    token, score = choose(logits[1:2], 0.7, 0.9, None)
    assert got == [[chosen[0][0], float(token), chosen[0][2]], [chosen[1][0], float(score), chosen[1][2]]]
    assert step_ids.flatten().tolist() == [int(picked[0]), int(token), int(picked[2])]
    assert torch.isfinite(nucleus(logits[1:2] / 0.7, 0.9)[0, int(token)])
    assert settle(logits, [list(r) for r in chosen[:2]] + [[1.0] * 3], 0.7, 0.9, step_ids) == chosen[:2]


def test_the_loop_chooses_flagged_rows_again_with_the_full_sort(settings, tiny_dir, monkeypatch):
    """Through the batch loop (its steps as ``step_choose`` takes them): the tiny random model's rows are
    flat, so every sampled row is flagged and each of its tokens and log-probabilities is the full sort's
    choice on the host, fed to the next step; greedy rows are never flagged. The setting reaches the
    generator's decoders, and off, nothing is chosen again."""
    import torch

    import agent.models.graphed as graphed
    from agent.models.graphed import BatchDecoder

    model = _gen(settings, tiny_dir).model
    made: list[tuple[list[int], list[float]]] = []
    real = graphed.choose

    def recording(logits, temperature, top_p, greedy_rows):
        picked, lp = real(logits, temperature, top_p, greedy_rows)
        made.append((picked.tolist(), lp.tolist()))
        return picked, lp

    monkeypatch.setattr(graphed, "choose", recording)
    torch.manual_seed(8)
    prompts = [torch.randint(0, model.config.vocab_size, (n,)).tolist() for n in (5, 9)]
    decoder = BatchDecoder(model, 2, 2, 64, "cpu", graphs=True)  # no CUDA: step_choose's eager path
    with torch.inference_mode():
        got = decoder.decode_many(prompts, max_new_tokens=5, temperature=0.9, top_p=0.9, stop_ids=[],
                                  greedy_first=True)
    assert len(made) == 5 and decoder.settled_rows == 10  # rows 1 and 3, each step
    assert (got.settled_rows, got.captures) == (10, 0)  # this call's own (no graphs on a CPU)
    for step, (tokens, scores) in enumerate(made):
        assert [got.tokens[1][step], got.tokens[3][step]] == tokens
        assert [got.logprobs[1][step], got.logprobs[3][step]] == scores
    made.clear()
    with torch.inference_mode():
        greedy = decoder.decode_many(prompts, max_new_tokens=5, temperature=0.0, top_p=0.9, stop_ids=[])
    assert not made and [got.tokens[0], got.tokens[2]] == [greedy.tokens[0], greedy.tokens[2]]
    assert greedy.settled_rows == 0 and decoder.settled_rows == 10  # the call's count, not the decoder's

    p = PromptInput(QUESTIONS[0], SCHEMA)
    for on in (True, False):
        gen = _gen(settings, tiny_dir, decode_loop="graphed", max_new_tokens=4, top_p_prefilter=on)
        gen.generate_batch([p, p], n=2, temperature=0.7, greedy_first=True)
        [decoder] = gen._decoders.values()
        assert decoder.top_p_prefilter is on and (decoder.settled_rows > 0) is on
        assert gen.traces[-1].settled_rows == decoder.settled_rows  # what eval --json lists per call


def test_a_repetition_loop_ends_the_row(settings, tiny_dir):
    """The loop rule (``repetition_loop``) ends a row in the graphed loop as ``LoopStop`` does in generate:
    the same tokens either way, the row shorter than max_new_tokens when it loops."""
    graphed = _gen(settings, tiny_dir, decode_loop="graphed", max_new_tokens=120)
    plain = _gen(settings, tiny_dir, max_new_tokens=120)
    for q in QUESTIONS:
        p = PromptInput(q, SCHEMA)
        [[got]], [[want]] = graphed.generate_batch([p], n=1), plain.generate_batch([p], n=1)
        assert got.text == want.text
        assert graphed.traces[-1].row_tokens == plain.traces[-1].row_tokens


def test_a_failure_falls_back_to_generate_for_good(settings, tiny_dir, caplog):
    from agent.models import graphed as module

    gen = _gen(settings, tiny_dir, decode_loop="graphed")
    plain = _gen(settings, tiny_dir)
    p = PromptInput(QUESTIONS[0], SCHEMA)

    def broken(self, *a, **kw):
        raise RuntimeError("capture failed")

    real = module.GraphedDecoder.decode
    module.GraphedDecoder.decode = broken
    try:
        assert gen.complete(p.messages()) == plain.complete(p.messages())
    finally:
        module.GraphedDecoder.decode = real
    assert "capture failed" in gen.graphed_error and "generate from now on" in caplog.text
    gen.complete(p.messages())
    assert gen.traces[-1].backend == "transformers" and not gen._decoders


def test_auto_takes_the_loop_on_cuda_only_and_not_with_generates_own_features(settings, tiny_dir):
    gen = _gen(settings, tiny_dir)
    gen.load()
    assert gen.settings.decode_loop == "auto" and not gen._graphed_ok()  # a CPU
    gen._device, gen._warmed = "cuda", True  # as a warmed-up GPU process would see it (nothing runs here)
    assert gen._graphed_ok()
    for kw in ({"repetition_penalty": 1.1}, {"prompt_lookup_tokens": 4}, {"decode_loop": "generate"},
               {"generation_cache": "dynamic"}):
        gen.settings = gen.settings.model_copy(update={**kw})
        assert not gen._graphed_ok(), kw
        gen.settings = _gen(settings, tiny_dir).settings


def test_new_weights_drop_the_decoders(settings, tiny_dir):
    gen = _gen(settings, tiny_dir, decode_loop="graphed")
    gen.complete(PromptInput(QUESTIONS[0], SCHEMA).messages())
    assert gen._decoders
    gen._swap_model(None)
    assert not gen._decoders


def test_sliding_window_caches_are_left_to_generate():
    """Gemma 3's sliding-window layers keep host-side positions a graph would not replay."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from agent.models.graphed import GraphedDecoder, Unsupported

    config = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8)
    with pytest.raises(Unsupported):
        GraphedDecoder(Gemma3ForCausalLM(config).eval(), 1, 64, "cpu", graphs=True)


def test_each_pass_gives_the_full_forward_logits(settings, tiny_dir):
    """The padded prefill and every step on the static cache give the logits of one full forward pass over
    the same tokens, for prompts in several buckets and a decoder used again (its cache is rewritten)."""
    import torch

    from agent.models.graphed import BUCKET, GraphedDecoder

    model = _gen(settings, tiny_dir).model
    torch.manual_seed(1)
    decoder = GraphedDecoder(model, 2, 512, "cpu", graphs=True)  # no CUDA: the same passes, eagerly
    with torch.inference_mode():
        for n in (5, BUCKET, BUCKET + 1, 150, 7):
            seq = torch.randint(0, model.config.vocab_size, (n + 6,)).tolist()
            got = [decoder.prefill(seq[:n])]
            got += [decoder.step(torch.tensor([t, t])) for t in seq[n:]]
            full = model(input_ids=torch.tensor([seq])).logits[0, n - 1:]
            for i, logits in enumerate(got):
                assert torch.allclose(logits[0], full[i], atol=1e-4), (n, i)
                assert torch.allclose(logits[0], logits[1], atol=1e-5), (n, i)  # the same prompt twice


def test_the_step_is_compiled_only_where_graphs_are_captured(settings, tiny_dir):
    """``graphed_compile`` fuses the CUDA step before its capture; on a CPU the loop runs the plain step."""
    from agent.models.graphed import GraphedDecoder

    model = _gen(settings, tiny_dir).model
    decoder = GraphedDecoder(model, 1, 64, "cpu", graphs=True, compile_step=True)
    assert not decoder.graphs and decoder._step_fn == decoder._step_pass


def test_a_batch_of_questions_decodes_as_each_alone(settings, tiny_dir):
    """Several questions' prompts (left-padded to the longest, chunks of 2: the last padded with a copy)
    give each question's greedy reply and log-probability as asked alone."""
    graphed, plain = _gen(settings, tiny_dir, decode_loop="graphed"), _gen(settings, tiny_dir)
    prompts = [PromptInput(q, SCHEMA) for q in QUESTIONS]
    got = graphed.generate_batch(prompts, n=2, batch_size=2)  # greedy: the one reply twice
    assert [t.backend for t in graphed.traces] == ["transformers-graphed-batches"] * 2
    assert len(graphed.traces[-1].row_tokens) == 1  # the copy padding the last chunk is not a reply
    for p, gens in zip(prompts, got, strict=True):
        [[want]] = plain.generate_batch([p], n=1)
        assert [g.text for g in gens] == [want.text] * 2
        assert gens[0].logprob == pytest.approx(want.logprob, rel=1e-4, abs=1e-4)
    assert graphed.graphed_batch_error is None and ("batches", 2, 1) in graphed._decoders
    from ui.cli_agent import _decoding  # what `cypherloop eval --json` reports of it

    said = _decoding(graphed)["transformers-graphed-batches"]
    assert said["calls"] == 2 and said["rows"] == 3  # the copy padding the last chunk is not a reply
    assert said["steps"] >= max(t.row_tokens[0] for t in graphed.traces) and said["decode_ms"] > 0
    assert [(b["rows"], b["steps"]) for b in said["batches"]] == [
        (len(t.row_tokens), t.new_tokens) for t in graphed.traces]  # each call, where a chunk's time went
    for b, t in zip(said["batches"], graphed.traces, strict=True):  # each step's time, after the first token
        assert len(b["step_ms_each"]) == t.new_tokens - 1 and b["step_ms_max"] >= b["step_ms_median"] > 0
    first = graphed.traces[0]  # as if a warm-up's: left out
    assert _decoding(graphed, [first])["transformers-graphed-batches"]["batches"] == said["batches"][1:]


def test_a_batch_of_questions_keeps_each_greedy_first_row(settings, tiny_dir):
    """The candidates of several questions from one sampled call: each question's first row is its greedy
    reply with the raw log-probability."""
    import torch

    graphed, plain = _gen(settings, tiny_dir, decode_loop="graphed"), _gen(settings, tiny_dir)
    prompts = [PromptInput(q, SCHEMA) for q in QUESTIONS]
    torch.manual_seed(0)
    got = graphed.generate_batch(prompts, n=4, temperature=0.7, greedy_first=True)
    assert graphed.traces[-1].backend == "transformers-graphed-batches"
    for p, rows in zip(prompts, got, strict=True):
        [[want]] = plain.generate_batch([p], n=1)
        assert len(rows) == 4 and rows[0].text == want.text
        assert rows[0].logprob == pytest.approx(want.logprob, rel=1e-4, abs=1e-4)
        assert all(r.logprob <= 0 for r in rows)


def test_a_batch_tells_each_question_as_soon_as_its_rows_are_done(settings, tiny_dir):
    """``generate_batch(on_ready=…)`` on the graphed batches: every real question once (never the copy
    padding the last chunk), with the replies the call returns, each before its chunk's call has ended (the
    loop tells rows as they end: the smaller decoder's test); greedy: the one reply n times; ``generate``'s
    path tells them all at the end."""
    import torch

    gen = _gen(settings, tiny_dir, decode_loop="graphed", max_new_tokens=40)
    prompts = [PromptInput(q, SCHEMA) for q in QUESTIONS]
    told: list[tuple[int, list[str], int]] = []  # (question, replies, the chunks' calls ended by then)

    def on_ready(i, gens):
        told.append((i, [g.text for g in gens], len(gen.traces)))

    torch.manual_seed(1)
    got = gen.generate_batch(prompts, n=3, temperature=0.8, greedy_first=True, batch_size=2,
                             on_ready=on_ready)
    assert gen.traces[-1].backend == "transformers-graphed-batches"
    assert sorted(i for i, _, _ in told) == list(range(len(prompts)))
    assert all(texts == [g.text for g in got[i]] for i, texts, _ in told)
    assert [ended for _, _, ended in told] == [0, 0, 1]  # chunks of 2: within their own call
    told.clear()
    greedy = gen.generate_batch(prompts, n=2, on_ready=on_ready)
    assert sorted(i for i, _, _ in told) == list(range(len(prompts)))
    assert all(texts == [g.text for g in greedy[i]] and len(texts) == 2 for i, texts, _ in told)
    told.clear()
    plain = _gen(settings, tiny_dir, max_new_tokens=40)  # the CPU's generate: told at the end, each once
    assert plain.generate_batch(prompts, n=1, on_ready=on_ready) and [i for i, _, _ in told] == [0, 1, 2]


def test_an_error_telling_a_question_goes_to_the_caller_and_the_loop_stays(settings, tiny_dir):
    """``on_ready`` raising inside the graphed loop is the caller's error: ``generate_batch`` raises it (not
    answered again by ``generate``, the graphed batches not given up), and the next call takes the loop."""
    gen = _gen(settings, tiny_dir, decode_loop="graphed", max_new_tokens=40)
    prompts = [PromptInput(q, SCHEMA) for q in QUESTIONS]

    def on_ready(i, gens):
        raise LookupError(f"question {i}")

    with pytest.raises(LookupError, match="question"):
        gen.generate_batch(prompts, n=2, temperature=0.8, greedy_first=True, batch_size=2, on_ready=on_ready)
    assert gen.graphed_batch_error is None
    told = []
    got = gen.generate_batch(prompts, n=2, on_ready=lambda i, gens: told.append((i, gens)))
    assert gen.traces[-1].backend == "transformers-graphed-batches"
    assert sorted(told, key=lambda t: t[0]) == list(enumerate(got))


def test_each_batch_pass_gives_the_full_forward_logits(settings, tiny_dir):
    """The left-padded prompts' pass and every step give, row by row, the logits of one full forward pass
    over that row's own tokens (its positions from 0, no pads), each prompt's rows alike; a decoder used
    again with other lengths rewrites its cache."""
    import torch

    from agent.models.graphed import BatchDecoder

    model = _gen(settings, tiny_dir).model
    torch.manual_seed(2)
    decoder = BatchDecoder(model, 3, 2, 256, "cpu", graphs=True)
    with torch.inference_mode():
        for lengths in ((5, 40, 17), (9, 9, 1)):
            seqs = [torch.randint(0, model.config.vocab_size, (n + 5,)).tolist() for n in lengths]
            got = [decoder.prefill_many([s[:n] for s, n in zip(seqs, lengths, strict=True)])]
            for k in range(5):  # each prompt's two rows fed the same next token
                tokens = torch.tensor([s[n + k] for s, n in zip(seqs, lengths, strict=True)])
                tokens = tokens.repeat_interleave(2)
                got.append(decoder.step(tokens))
            for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
                full = model(input_ids=torch.tensor([s])).logits[0, n - 1:]
                for k, logits in enumerate(got):
                    assert torch.allclose(logits[2 * i], full[k], atol=1e-4), (lengths, i, k)
                    assert torch.allclose(logits[2 * i + 1], full[k], atol=1e-5), (lengths, i, k)


def test_batches_fall_back_alone(settings, tiny_dir, caplog):
    """A batch decoder that fails gives the batches to generate for good; one question's loop stays."""
    import agent.models.graphed as module

    gen, plain = _gen(settings, tiny_dir, decode_loop="graphed"), _gen(settings, tiny_dir)
    prompts = [PromptInput(q, SCHEMA) for q in QUESTIONS[:2]]

    def broken(self, *a, **kw):
        raise RuntimeError("batch capture failed")

    real = module.BatchDecoder.decode_many
    module.BatchDecoder.decode_many = broken
    try:
        assert ([[g.text for g in r] for r in gen.generate_batch(prompts)]
                == [[g.text for g in r] for r in plain.generate_batch(prompts)])
    finally:
        module.BatchDecoder.decode_many = real
    assert "batch capture failed" in gen.graphed_batch_error and gen.graphed_error is None
    from ui.cli_agent import _decoding

    said = _decoding(gen)
    assert said["graphed_batch_error"] == "RuntimeError: batch capture failed" and "graphed_error" not in said
    assert gen.traces[-1].backend == "transformers-batch"
    gen.complete(prompts[0].messages())
    assert gen.traces[-1].backend == "transformers-graphed"


def test_a_choice_that_cannot_be_captured_is_made_between_replays(settings, tiny_dir, caplog):
    """Where the token choice cannot go into the step's graph (its random draw, say), the step is replayed
    alone and the choice made between replays: the same replies, the reason kept and said once."""
    import torch

    from agent.models.graphed import GraphedDecoder

    model = _gen(settings, tiny_dir).model
    seeded = torch.Generator().manual_seed(4)
    prompt = torch.randint(0, model.config.vocab_size, (30,), generator=seeded).tolist()
    kw = {"max_new_tokens": 12, "temperature": 0.0, "top_p": 1.0, "stop_ids": []}
    with torch.inference_mode():
        want = GraphedDecoder(model, 1, 256, "cpu", graphs=False).decode(prompt, **kw)
        decoder = GraphedDecoder(model, 1, 256, "cpu", graphs=False)
        decoder.graphs = True  # as on CUDA, with the capture failing and the step replayed eagerly

        def no_capture(fn, restore=None):
            raise RuntimeError("operation not permitted when stream is capturing")

        def eager(method):
            def call(*a):
                decoder.graphs = False
                try:
                    return method(*a)
                finally:
                    decoder.graphs = True
            return call

        decoder._capture = no_capture
        decoder.prefill, decoder.step = eager(decoder.prefill), eager(decoder.step)
        got = decoder.decode(prompt, **kw)
    assert got.tokens == want.tokens and got.logprobs[0] == pytest.approx(want.logprobs[0], abs=1e-5)
    assert decoder.choose_error.startswith("RuntimeError") and not decoder._choosing
    assert caplog.text.count("chosen between replays") == 1


def test_grouped_attention_equals_repeated_heads():
    """``grouped_sdpa`` on one query token (the key/value heads read as they are) gives what SDPA gives over
    the repeated heads, with a padding mask; a prompt's pass goes to transformers' own function."""
    import torch
    from transformers.integrations.sdpa_attention import repeat_kv

    from agent.models.attention import grouped_sdpa

    class Module(torch.nn.Module):
        num_key_value_groups = 3
        is_causal = True
        config = SimpleNamespace(grouped_attention_min_rows=1)

    torch.manual_seed(0)
    query, key, value = torch.randn(5, 6, 1, 8), torch.randn(5, 2, 20, 8), torch.randn(5, 2, 20, 8)
    mask = torch.rand(5, 1, 1, 20) > 0.3
    mask[:, :, :, 0] = True
    got, _ = grouped_sdpa(Module(), query, key, value, mask, scaling=0.5)
    want = torch.nn.functional.scaled_dot_product_attention(query, repeat_kv(key, 3), repeat_kv(value, 3),
                                                            attn_mask=mask, scale=0.5).transpose(1, 2)
    assert got.shape == (5, 1, 6, 8) and torch.allclose(got, want, atol=1e-6)
    prompt = torch.randn(5, 6, 4, 8)
    got, _ = grouped_sdpa(Module(), prompt, key[:, :, :4], value[:, :, :4], None)
    want = torch.nn.functional.scaled_dot_product_attention(prompt, repeat_kv(key[:, :, :4], 3),
                                                            repeat_kv(value[:, :, :4], 3), is_causal=True)
    assert torch.allclose(got, want.transpose(1, 2), atol=1e-6)


def test_grouped_attention_leaves_a_step_of_few_rows_to_transformers(monkeypatch):
    """A step of fewer rows than ``grouped_attention_min_rows`` keeps transformers' function (the heads
    repeated were faster at 1 and 4 rows on the H200); that many rows or more are packed."""
    import torch
    from transformers.integrations import sdpa_attention

    from agent.models.attention import grouped_sdpa

    seen: list[int] = []
    plain = sdpa_attention.sdpa_attention_forward

    def recorded(module, query, *a, **kw):
        seen.append(query.shape[0])
        return plain(module, query, *a, **kw)

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", recorded)

    class Module(torch.nn.Module):
        num_key_value_groups = 3
        is_causal = True
        config = SimpleNamespace(grouped_attention_min_rows=4)

    key, value = torch.randn(4, 2, 20, 8), torch.randn(4, 2, 20, 8)
    grouped_sdpa(Module(), torch.randn(3, 6, 1, 8), key[:3], value[:3], None)
    grouped_sdpa(Module(), torch.randn(4, 6, 1, 8), key, value, None)
    assert seen == [3]


def test_grouped_decoding_keeps_each_batch_rows_logits(settings, tiny_dir):
    """A model switched to the grouped attention (as loaded on CUDA) gives each batch row the logits of a
    full forward pass of its own tokens, and ``generate`` the same replies as before."""
    import torch

    from agent.models.attention import NAME, use_grouped_decoding
    from agent.models.graphed import BatchDecoder

    grouped, plain = _gen(settings, tiny_dir), _gen(settings, tiny_dir)
    prompts = [PromptInput(q, SCHEMA) for q in QUESTIONS]
    want = plain.generate_batch(prompts, n=1)
    model = grouped.model
    assert use_grouped_decoding(model, min_rows=1) and model.config._attn_implementation == NAME
    assert [[g.text for g in gens] for gens in grouped.generate_batch(prompts, n=1)] == \
        [[g.text for g in gens] for gens in want]
    torch.manual_seed(4)
    decoder = BatchDecoder(model, 2, 2, 128, "cpu", graphs=True)
    with torch.inference_mode():
        seqs = [torch.randint(0, model.config.vocab_size, (n + 4,)).tolist() for n in (6, 30)]
        got = [decoder.prefill_many([s[:-4] for s in seqs])]
        for k in range(4):
            got.append(decoder.step(torch.tensor([s[-4 + k] for s in seqs]).repeat_interleave(2)))
        for i, s in enumerate(seqs):
            full = plain.model(input_ids=torch.tensor([s])).logits[0, len(s) - 5:]
            for k, logits in enumerate(got):
                assert torch.allclose(logits[2 * i], full[k], atol=1e-4), (i, k)
                assert torch.allclose(logits[2 * i + 1], full[k], atol=1e-4), (i, k)


def test_a_shared_prefix_is_passed_once_and_gives_the_full_forward_logits(settings, tiny_dir):
    """Prompts that begin alike (the system prompt and schema of one graph) have that prefix passed once and
    copied to every row; each row's prompt pass and steps still give the logits of a full forward pass over
    its own tokens — the prefix, its own rest, then its steps — with the rests of several lengths (one of a
    single token), and a later chunk with no prefix in common uses no prefix."""
    import torch

    from agent.models.graphed import SHARED_PREFIX_MIN, BatchDecoder, shared_prefix

    model = _gen(settings, tiny_dir).model
    torch.manual_seed(5)
    vocab = model.config.vocab_size
    prefix = torch.randint(0, vocab, (SHARED_PREFIX_MIN + 9,)).tolist()
    seqs = [prefix + torch.randint(0, vocab, (n + 3,)).tolist() for n in (1, 12, 5)]
    prompts = [s[:-3] for s in seqs]
    assert shared_prefix(prompts) >= len(prefix)
    decoder = BatchDecoder(model, 3, 2, 128, "cpu", graphs=True)
    with torch.inference_mode():
        got = [decoder.prefill_many(prompts)]
        assert decoder.prefix_cache is not None
        for k in range(3):
            got.append(decoder.step(torch.tensor([s[-3 + k] for s in seqs]).repeat_interleave(2)))
        for i, s in enumerate(seqs):
            full = model(input_ids=torch.tensor([s])).logits[0, len(s) - 4:]
            for k, logits in enumerate(got):
                assert torch.allclose(logits[2 * i], full[k], atol=1e-4), (i, k)
                assert torch.allclose(logits[2 * i + 1], full[k], atol=1e-4), (i, k)
        decoder.prefix_cache = None
        other = [torch.randint(0, vocab, (n,)).tolist() for n in (7, 20, 3)]
        logits = decoder.prefill_many(other)
        assert decoder.prefix_cache is None  # nothing in common: one batch, no prefix pass
        for i, s in enumerate(other):
            full = model(input_ids=torch.tensor([s])).logits[0, -1]
            assert torch.allclose(logits[2 * i], full, atol=1e-4), i


def test_grouped_attention_compiles_whole_and_gives_the_eager_step(settings, tiny_dir):
    """The compiled single-question step (``graphed_compile`` on CUDA) runs the grouped attention too: the
    step, compiled as one graph by inductor (here on the CPU), gives the eager step's logits."""
    import shutil

    import torch

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("inductor's CPU code needs a C compiler")
    from transformers import StaticCache

    from agent.models.attention import use_grouped_decoding

    model = _gen(settings, tiny_dir).model
    assert use_grouped_decoding(model, min_rows=4)
    cache = StaticCache(config=model.config, max_cache_len=64)
    ids = torch.randint(0, model.config.vocab_size, (4, 1), generator=torch.Generator().manual_seed(6))
    mask = (torch.arange(64) < 11).expand(4, 1, 1, 64)

    def step() -> torch.Tensor:
        for layer in cache.layers:
            layer.cumulative_length.fill_(10)
        return model(input_ids=ids, attention_mask=mask, use_cache=True, past_key_values=cache).logits

    with torch.inference_mode():
        prompt = torch.randint(0, model.config.vocab_size, (4, 10))
        model(input_ids=prompt, past_key_values=cache, use_cache=True)
        eager = step()
        compiled = torch.compile(step, dynamic=False, fullgraph=True)()
    assert torch.allclose(eager, compiled, atol=1e-4)


def test_a_batchs_last_writers_go_on_in_a_smaller_decoder(settings, tiny_dir, monkeypatch):
    """Once few rows are still writing, a smaller decoder takes them over (and hands on again): each row's
    greedy reply and log-probabilities are what the whole batch's decoder gives, and so are the greedy rows
    of a sampled call (their flags move with them)."""
    import torch

    import agent.models.graphed as graphed
    from agent.models.graphed import BatchDecoder

    model = _gen(settings, tiny_dir).model
    torch.manual_seed(7)
    prompts = [torch.randint(0, model.config.vocab_size, (n,)).tolist() for n in (5, 9, 3, 12, 7, 4, 8, 6)]

    def finished(tokens: list[int]) -> bool:  # the rows stop after 4, 8, … 24 tokens, as their first says
        return len(tokens) >= 4 * (1 + tokens[0] % 6)

    def decode(share: int, **kw):
        monkeypatch.setattr(graphed, "TAIL_SHARE", share)
        monkeypatch.setattr(graphed, "TAIL_MIN_ROWS", 2)
        decoder = BatchDecoder(model, len(prompts), 2, 64, "cpu", graphs=True)
        with torch.inference_mode():
            got = decoder.decode_many(prompts, max_new_tokens=24, stop_ids=[], finished=finished, **kw)
        return decoder, got

    whole = decode(10**6, temperature=0.0, top_p=1.0)[1]
    told: list[tuple[int, list[int], int]] = []  # (row, its tokens then, the tokens the longest row had)
    handed, tails = decode(2, temperature=0.0, top_p=1.0,
                           row_done=lambda row, tokens, _: told.append((row, list(tokens), len(told))))
    assert sorted(row for row, _, _ in told) == list(range(16))  # each row told once
    assert all(tokens == tails.tokens[row] for row, tokens, _ in told)  # with its final reply
    assert [len(tokens) for _, tokens, _ in told] == sorted(len(t) for t in tails.tokens)  # as they ended
    assert handed.tail is not None and handed.tail.tail is not None  # 16 rows, then 8, then 4 …
    assert len({len(t) for t in whole.tokens}) >= 3  # rows stopped at several lengths: the tails were used
    assert tails.tokens == whole.tokens
    for a, b in zip(tails.logprobs, whole.logprobs, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    sampled = decode(2, temperature=0.9, top_p=0.9, greedy_first=True)[1]
    assert [sampled.tokens[i] for i in range(0, 16, 2)] == [whole.tokens[i] for i in range(0, 16, 2)]
    with torch.inference_mode():
        tail, taken = handed.tail_for([1, 2, 5])  # two sampled rows and a greedy one, the last padding
        assert handed.tail_for(list(range(9))) is None  # more than 1/TAIL_SHARE still writing: stay
    assert taken == [1, 2, 5, 1, 1, 1, 1, 1]
    assert tail.greedy_rows.tolist() == [False, True, False] + [False] * 5


def test_a_batch_warm_up_makes_the_smaller_decoders(settings, tiny_dir):
    """``cypherloop eval``'s warm-up (2 tokens a row: no batch of it hands on) makes each graphed batch's
    smaller decoders and steps them for both kinds of choice, so a measured batch captures nothing."""
    gen = _gen(settings, tiny_dir, decode_loop="graphed")
    calls = gen.warm_up([PromptInput("a?", SCHEMA)], candidates=4, batch_size=16)
    assert {"batch_tails": 1, "rows": 64} in calls  # 64 rows, then 16 (the smallest, TAIL_MIN_ROWS)
    [decoder] = gen._decoders.values()
    assert decoder.tail is not None and decoder.tail.rows == 16 and decoder.tail.tail is None


def test_a_batch_warm_up_given_the_chunks_makes_the_decoders_their_calls_take(settings, tiny_dir):
    """Given the eval's chunks, the warm-up makes one decoder per chunk size, from that size's chunk with the
    longest prompt, so that a later call of any chunk takes it (no new decoder, so no capture on a GPU);
    without them it warms ``batch_size`` copies of the first prompt, which a smaller chunk does not take."""
    short = [PromptInput(f"q{i}?", SCHEMA) for i in range(5)]
    long = [PromptInput("Which customers bought the most expensive product? " * 20, SCHEMA), *short[:4]]
    tail = short[:3]
    gen = _gen(settings, tiny_dir, decode_loop="graphed")
    calls = gen.warm_up([short[0]], candidates=4, batch_size=8, chunks=[short, long, tail])
    assert sorted(k for k in gen._decoders if k[0] == "batches") == [("batches", 3, 4), ("batches", 5, 4)]
    assert sorted(c["rows"] for c in calls if "prompt_tokens" in c) == [12, 20]  # one call per chunk size
    made = dict(gen._decoders)
    for chunk in (short, long, tail):
        gen.generate_batch(chunk, n=4, temperature=0.7, max_new_tokens=3, batch_size=8, greedy_first=True)
        assert gen._decoders == made  # the same decoders: none replaced for a longer prompt, none added
    plain = _gen(settings, tiny_dir, decode_loop="graphed")
    plain.warm_up([short[0]], candidates=4, batch_size=8)
    before = set(plain._decoders)
    plain.generate_batch(short, n=4, temperature=0.7, max_new_tokens=3, batch_size=8, greedy_first=True)
    assert set(plain._decoders) - before == {("batches", 5, 4)}


def test_a_warm_up_with_candidates_runs_the_full_sort_once(settings, tiny_dir, monkeypatch):
    """With sampled candidates the warm-up runs ``settle`` (the full sort that the top tokens' prefilter falls
    back to) on each of ``SETTLE_WARM_ROWS`` rows, every row flagged, so that no call loads its kernels;
    without the prefilter, or with one candidate (greedy), it does not."""
    import agent.models.graphed as graphed

    rows, real = [], graphed.settle

    def recording(logits, chosen, temperature, top_p, step_ids):
        rows.append((logits.shape[0], chosen[2].count(False)))
        return real(logits, chosen, temperature, top_p, step_ids)

    monkeypatch.setattr(graphed, "settle", recording)
    gen = _gen(settings, tiny_dir, decode_loop="graphed")
    calls = gen.warm_up([PromptInput("a?", SCHEMA)], candidates=4, batch_size=16)
    warmed = [(n, n) for n in graphed.SETTLE_WARM_ROWS]
    assert rows[-len(warmed):] == warmed and any(c.get("settle") for c in calls)
    for kw, candidates in (({"top_p_prefilter": False}, 4), ({}, 1)):
        rows.clear()
        gen = _gen(settings, tiny_dir, decode_loop="graphed", **kw)
        calls = gen.warm_up([PromptInput("a?", SCHEMA)], candidates=candidates, batch_size=16)
        assert calls and not any(c.get("settle") for c in calls)
