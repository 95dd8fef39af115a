"""``cypherloop eval``, ``cypherloop warm`` and ``cypherloop serve`` (``ask`` is ``ui/cli_ask.py``).

    cypherloop eval --graph NAME --dataset FILE.jsonl [--limit N] [--out predictions.jsonl] [--json]
    cypherloop warm [--graph NAME]
    cypherloop serve [--graph NAME]

``eval`` prints execution accuracy, executable share, first-try vs after-retry accuracy, accuracy
per category and latency p50/p95; ``--out`` writes one prediction per line. ``warm`` does once what the
first question would otherwise pay for (converting the packaged model, writing the base with the live
adapter merged, so a fresh ``ask`` loads one model and never imports peft) and loads the rest once, so
its files are in the page cache (``make demo`` runs it before opening the chat). ``serve`` keeps the agent
loaded and answers ``cypherloop ask`` on the same home and graph over localhost (``ui/ask_server.py``).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.core.errors import DataError, ModelError
from agent.core.settings import Settings
from agent.evaluation import eval_chunks, load_dataset, run_eval
from agent.factory import make_agent, open_graph_checked
from agent.models import factory as models
from agent.models.base import ChatGenerator, PromptInput
from agent.models.ctranslate import resolve_backend
from feedback_store.chroma import ChromaFeedbackStore
from feedback_store.pool import ExamplePool
from ui.ask_server import AskServer
from ui.cli_ask import add_common, open_feedback_store, parse_common, set_library_output, settings_from_args


# --- warm -----------------------------------------------------------------------------------------
def _backend_label(settings: Settings) -> str:
    """The backend that serves, e.g. ``auto: llamacpp f32 + ngram-mod`` or ``auto: ctranslate2 float32``."""
    backend = resolve_backend(settings)
    label = backend
    if backend == "ctranslate2":
        label = f"{backend} {settings.ct2_quantization}"
    elif backend == "llamacpp":
        draft = f" + {settings.llamacpp_draft}" if settings.llamacpp_draft != "none" else ""
        label = f"{backend} {settings.llamacpp_weights}{draft}"
    return f"auto: {label}" if settings.model_backend == "auto" else label


def warm_main(argv: list[str] | None = None) -> int:
    """``cypherloop warm``: the graph's schema, the model (converted once, with the live adapter, one token
    generated), the embedding model and the feedback store, each timed."""
    p = argparse.ArgumentParser(
        prog="cypherloop warm",
        description="Do now what the first question would: convert the packaged model once (about a minute "
        "on 2 cores), merge the live adapter into it once (kept on disk), load it, load the embedding model "
        "and open the graph and the feedback store. Run it once after installing; `make demo` does.",
    )
    args, settings = parse_common(p, argv)
    loaded: dict[str, Any] = {}

    def graph() -> None:
        store = open_graph_checked(settings)
        loaded["schema"] = store.schema().to_text()
        store.close()

    def model() -> None:
        loaded["generator"] = gen = models.make_generator(settings)  # looked up now: tests replace it
        if isinstance(gen, ChatGenerator | models.FallbackGenerator):
            gen.prepare()  # the transformers backend keeps the base with the live LoRA merged, on disk
        gen.generate_batch([PromptInput("How many nodes are there?", loaded["schema"], ())], max_new_tokens=1)

    def feedback() -> None:
        ChromaFeedbackStore(settings).warm_up()

    timings: dict[str, float] = {}
    for name, what, run in (
        ("graph", f"graph {settings.graph!r}: schema", graph),
        ("model", f"model ({_backend_label(settings)}, {settings.base_model}): converted once, loaded",
         model),
        ("feedback", "embedding model and feedback store", feedback),
    ):
        if not args.json:
            print(f"{what} …", end=" ", flush=True)
        start = time.perf_counter()
        run()
        timings[name] = round(time.perf_counter() - start, 2)
        if not args.json:
            print(f"{timings[name]:.1f} s", flush=True)
    version = loaded["generator"].version
    serving = getattr(loaded["generator"], "backend", None)  # auto on a CPU: what serves after any fallback
    if args.json:
        print(json.dumps({"graph": settings.graph, "model_version": version, "seconds": timings,
                          **({"serving": serving} if serving else {})}))
    else:
        print(f"ready: {version} answers on graph {settings.graph!r}" + (f" ({serving})" if serving else ""))
    return 0


# --- serve ----------------------------------------------------------------------------------------
WARM_UP_QUESTION = "How many nodes are there?"


def serve_main(argv: list[str] | None = None) -> int:
    """``cypherloop serve``: load the agent once (the model, the graph's prompt state, the embedding model),
    then answer ``cypherloop ask`` on this home and graph over localhost until SIGINT or SIGTERM."""
    p = argparse.ArgumentParser(
        prog="cypherloop serve",
        description="Keep the agent loaded and answer `cypherloop ask` on this home and graph, so a question "
        "from a fresh command costs about what it costs the chat. Listens on 127.0.0.1 only; `ask` finds it "
        "through a file with a random token in the private home. Ctrl+C stops it.",
    )
    args, settings = parse_common(p, argv)
    store = open_feedback_store(settings)
    if store is not None:
        store.warm_up()
    with make_agent(settings, feedback_store=store, example_pool=ExamplePool.for_settings(settings)) as agent:
        agent.warm_up()  # on a GPU: the static decoding step compiled before the first question
        warm = agent.ask(WARM_UP_QUESTION)  # loads the model and computes the graph's prompt state once
        if warm.status == "error":
            raise ModelError(f"cannot serve: the warm-up question failed: {warm.error}")
        server = AskServer(agent, settings, "cypherloop serve")
        endpoint = server.start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        ready = {"graph": settings.graph, "host": endpoint.host, "port": endpoint.port, "pid": endpoint.pid,
                 "model_version": agent.generator.version}
        if args.json:
            print(json.dumps(ready), flush=True)
        else:
            print(f"cypherloop serve: answering `cypherloop ask` for graph {settings.graph!r} on "
                  f"{endpoint.host}:{endpoint.port} (pid {endpoint.pid}, {ready['model_version']}); "
                  "Ctrl+C stops",
                  flush=True)
        try:
            stop.wait()
        finally:
            server.close()
    return 0


# --- eval -----------------------------------------------------------------------------------------
def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cypherloop eval",
        description="Execution accuracy of the agent on a JSONL question set (id, question, cypher[, "
                    "category]).",
    )
    add_common(p)
    p.add_argument(
        "--dataset",
        required=True,
        type=Path,
        help="JSONL file with id, question, cypher (gold) and optional category",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="predictions file (id, question, predicted_cypher, correct, attempts, latency_ms), JSONL; "
             "default <home>/eval/<graph>-<time>.jsonl",
    )
    p.add_argument(
        "--few-shot",
        action="store_true",
        help="retrieve few-shot examples from the feedback store (off: reproducible zero-shot)",
    )
    p.add_argument("--batch-size", type=int, default=1,
                   help="first replies of N questions per batched model call (fast on a GPU; latencies then "
                        "exclude generation)")
    p.add_argument("--workers", type=int, default=1,
                   help="questions answered at once from threads (checks, database and scoring overlap; the "
                        "model calls take turns)")
    return p


def eval_main(argv: list[str] | None = None) -> int:
    """``cypherloop eval``: prints the report; 0 when it ran, non-zero for bad input."""
    args = _eval_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise DataError("--limit must be at least 1")
    if args.workers < 1:
        raise DataError("--workers must be at least 1")
    items = load_dataset(args.dataset)
    set_library_output(args)
    settings = settings_from_args(args)
    if args.batch_size > 1:  # the generator's batched calls take the chunks whole
        settings = settings.model_copy(update={"generation_batch_size": args.batch_size})
    out = args.out or settings.home_dir / "eval" / f"{settings.graph}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    feedback = open_feedback_store(settings) if args.few_shot else None
    with make_agent(
        settings, feedback_store=feedback, example_pool=ExamplePool.for_settings(settings)
    ) as agent:
        if isinstance(agent.generator, ChatGenerator | models.FallbackGenerator):
            agent.generator.prepare(keep=False)  # loaded before the clock starts: wall_s is the answering
        # one question at a time: the single-question path, compiled on a GPU first; batches: their shapes
        # when batch_cache=static (their repairs keep the dynamic cache), before the clock starts
        warm_s = time.perf_counter()
        if args.batch_size > 1:  # the eval's own chunks: the decoders its calls take, made and captured here
            chosen = items[: args.limit] if args.limit else items
            chunks = eval_chunks(chosen, args.batch_size, args.workers)
            agent.warm_up(batch_size=args.batch_size, chunks=[[item.question for item in c] for c in chunks])
        else:
            agent.warm_up()
        warm_s = time.perf_counter() - warm_s
        warm_traces = list(getattr(agent.generator, "traces", []))
        report = run_eval(agent, items, limit=args.limit, progress=True, predictions_path=out,
                          dataset=str(args.dataset), label=settings.graph, batch_size=max(1, args.batch_size),
                          workers=args.workers)
    if args.json:
        summary = {**report.summary(), "warmup_s": round(warm_s, 1),
                   "decoding": _decoding(agent.generator, warm_traces)}
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(report.text())
        print(f"predictions: {out}")
    return 0


def _spread(times: list[float]) -> dict[str, object]:
    """A batched call's steps: median, 90th percentile and slowest, then each (ms; a step that waited for the
    interpreter or the host stands out against its neighbours)."""
    if not times:
        return {}
    ranked = sorted(times)
    return {"step_ms_median": round(ranked[len(ranked) // 2], 2),
            "step_ms_p90": round(ranked[min(len(ranked) - 1, len(ranked) * 9 // 10)], 2),
            "step_ms_max": round(ranked[-1], 2), "step_ms_each": [round(x, 2) for x in times]}


BATCHES_SHOWN = 8
"""The batched calls ``cypherloop eval --json`` lists one by one (a 100-question eval at batch 64 makes 2)."""


def _decoding(generator: object, warm: Sequence[object] = ()) -> dict[str, object]:
    """How the eval's model calls were decoded (the last ones a generator keeps, less the warm-up's:
    ``warm``, the traces kept before the eval), per path (``transformers-graphed-batches``,
    ``transformers-batch`` …): calls, milliseconds, the prompts' pass and the steps (a batch steps until its
    longest row stops: ``steps`` against ``rows``' median reply says how much a long row held its batch), the
    batched calls one by one (``batches``: where a chunk's time went), and why a graphed path was given up."""
    import statistics

    before = {id(t) for t in warm}
    paths: dict[str, list] = {}
    for trace in list(getattr(generator, "traces", [])):
        if id(trace) not in before:
            paths.setdefault(trace.backend, []).append(trace)
    out: dict[str, object] = {}
    for name, traces in paths.items():
        rows = [n for t in traces for n in (t.row_tokens or [])]
        out[name] = {"calls": len(traces), "ms": round(sum(t.total_ms for t in traces), 1),
                     "prefill_ms": round(sum(t.prefill_ms for t in traces), 1),
                     "decode_ms": round(sum(t.decode_ms for t in traces), 1),
                     "steps": sum(t.new_tokens for t in traces), "rows": len(rows),
                     "row_tokens_median": statistics.median(rows) if rows else None}
        batches = [t for t in traces if t.row_tokens is not None][:BATCHES_SHOWN]
        if batches:
            out[name]["batches"] = [
                {"rows": len(t.row_tokens), "prompt_tokens": t.prompt_tokens, "ms": round(t.total_ms, 1),
                 "tokenize_ms": round(t.tokenize_ms, 1), "prefill_ms": round(t.prefill_ms, 1),
                 "decode_ms": round(t.decode_ms, 1), "steps": t.new_tokens, "step_ms": round(t.step_ms, 2),
                 "graph_captures": t.graph_captures, "settled_rows": t.settled_rows,
                 **_spread(t.step_times_ms or [])}
                for t in batches]
    for name in ("graphed_error", "graphed_batch_error"):
        if getattr(generator, name, None):
            out[name] = str(getattr(generator, name)).strip().splitlines()[-1]
    return out


__all__ = ["eval_main", "serve_main", "warm_main"]
