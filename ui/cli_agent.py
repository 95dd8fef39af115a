"""``cypherloop ask``, ``cypherloop eval`` and ``cypherloop warm``.

    cypherloop ask "How many customers are there?" [--graph NAME] [--json] [--home DIR]
                   [--backend auto|ctranslate2|transformers|llamacpp|openai] [--model NAME]
                   [--adapter active|none|DIR]
    cypherloop eval --graph NAME --dataset FILE.jsonl [--limit N] [--out predictions.jsonl] [--json]
    cypherloop warm [--graph NAME]

``ask`` prints the answer, the Cypher and a table of rows, and logs the exchange to the feedback
store when one can be opened (a failing store never costs the answer: one warning, then silence).
``eval`` prints execution accuracy, executable share, first-try vs after-retry accuracy, accuracy
per category and latency p50/p95; ``--out`` writes one prediction per line. ``warm`` does once what the
first question would otherwise pay for (converting the packaged model, writing the base with the live
adapter merged, so a fresh ``ask`` loads one model and never imports peft) and loads the rest once, so
its files are in the page cache (``make demo`` runs it before opening the chat).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from agent.core.env import quiet_libraries, verbose_libraries
from agent.core.errors import DataError
from agent.core.feedback import FeedbackStore
from agent.core.settings import Settings, load_settings
from agent.evaluation import load_dataset, run_eval
from agent.factory import make_agent, open_graph_checked
from agent.models.base import ChatGenerator, PromptInput
from agent.models.ctranslate import resolve_backend
from agent.models.factory import FallbackGenerator, make_generator
from agent.state import AgentAnswer
from feedback_store.chroma import ChromaFeedbackStore
from feedback_store.pool import ExamplePool
from ui.cli_graph import format_table


# --- shared options -------------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--home",
        type=Path,
        default=None,
        help="cypherloop home directory (default: CYPHERLOOP_HOME or ./.cypherloop)",
    )
    p.add_argument("--graph", default=None, help="graph name (default: CYPHERLOOP_GRAPH, 'demo')")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--backend",
        choices=["auto", "ctranslate2", "transformers", "llamacpp", "openai"],
        default=None,
        help="model backend (default: CYPHERLOOP_MODEL_BACKEND)",
    )
    p.add_argument("--model", default=None, help="base model (transformers/llamacpp) or model name (openai)")
    p.add_argument(
        "--adapter", default=None, help="LoRA adapter: active (registry), none, a version or a directory"
    )
    p.add_argument(
        "--max-attempts", type=int, default=None, help="generate/correct attempts per question (default 3)"
    )
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (0 = greedy)")
    p.add_argument("--verbose", action="store_true",
                   help="let the ML libraries print their notices and progress bars (quiet by default)")


def set_library_output(args: argparse.Namespace) -> None:
    """Quiet libraries, unless ``--verbose``."""
    if args.verbose:
        verbose_libraries()
    else:
        quiet_libraries()


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from env/.env with the command-line overrides on top."""
    backend = args.backend
    overrides: dict[str, Any] = {
        "home": args.home,
        "graph": args.graph,
        "model_backend": backend,
        "adapter": args.adapter,
        "max_attempts": args.max_attempts,
        "temperature": args.temperature,
    }
    if args.model:
        chosen = backend or load_settings(home=args.home).model_backend
        overrides["openai_model" if chosen == "openai" else "base_model"] = args.model
    return load_settings(**overrides)


def open_feedback_store(settings: Settings, *, quiet: bool = False) -> FeedbackStore | None:
    """The Chroma feedback store when it opens; None otherwise (one warning)."""
    try:
        return ChromaFeedbackStore(settings)
    except Exception as e:  # noqa: BLE001 - the store is optional for answering
        if not quiet:
            print(f"warning: feedback store unavailable, answering without few-shot examples or logging: {e}",
                  file=sys.stderr)
        return None


# --- ask ------------------------------------------------------------------------------------------
def _ask_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cypherloop ask",
        description="Answer one question about the graph: question → Cypher → rows → answer.",
    )
    p.add_argument("question", nargs="+", help="the question (quote it, or pass several words)")
    _add_common(p)
    p.add_argument("--no-log", action="store_true", help="do not record the exchange in the feedback store")
    return p


def format_result(answer: AgentAnswer) -> str:
    """Answer, Cypher and a table of rows, for the terminal."""
    lines = [answer.answer]
    if answer.cypher:
        lines += ["", "Cypher:", *("  " + line for line in answer.cypher.splitlines())]
    if answer.columns and answer.rows:
        lines += ["", _table(answer.columns, answer.rows)]
    n_attempts = len(answer.attempts)
    meta = [f"{len(answer.rows)} row(s)" + (" (truncated)" if answer.truncated else "")]
    if n_attempts:
        meta.append(f"{n_attempts} attempt{'s' if n_attempts != 1 else ''}")
    meta += [f"{answer.latency_ms / 1000:.2f} s", answer.model_version]
    lines += ["", "(" + "; ".join(m for m in meta if m) + ")"]
    return "\n".join(lines)


def _table(columns: list[str], rows: list[list[Any]], limit: int = 50) -> str:
    text = format_table(list(columns), [list(r) for r in rows[:limit]])
    if len(rows) > limit:
        text += f"\n… {len(rows) - limit} more rows (use --json for all)"
    return text


def ask_main(argv: list[str] | None = None) -> int:
    """``cypherloop ask``: 0 when the agent replied (answer, no data, refusal or "could not answer"), 1 when
    the database or the model failed (``status == "error"``; ``--json`` always carries ``status``)."""
    args = _ask_parser().parse_args(argv)
    question = " ".join(args.question).strip()
    set_library_output(args)
    settings = settings_from_args(args)
    # The model loads in the background while the feedback store (chromadb) opens: a cold process's two
    # slowest starts overlap. The answer is printed before it is logged (logging embeds the question).
    with make_agent(settings, example_pool=ExamplePool.for_settings(settings), load_model_now=True) as agent:
        if not (args.no_log and settings.few_shot_k == 0):
            agent.use_feedback_store(open_feedback_store(settings))
        answer = agent.ask(question)
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2, default=str), flush=True)
        else:
            print(format_result(answer), flush=True)
        if not args.no_log:
            agent.log(answer)
    if answer.status == "error":
        print(f"error: {answer.error}", file=sys.stderr)
        return 1
    return 0


# --- warm -----------------------------------------------------------------------------------------
def _backend_label(settings: Settings) -> str:
    """The backend that serves, e.g. ``auto: ctranslate2 float32``."""
    backend = resolve_backend(settings)
    label = f"{backend} {settings.ct2_quantization}" if backend == "ctranslate2" else backend
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
    _add_common(p)
    args = p.parse_args(argv)
    set_library_output(args)
    settings = settings_from_args(args)
    loaded: dict[str, Any] = {}

    def graph() -> None:
        store = open_graph_checked(settings)
        loaded["schema"] = store.schema().to_text()
        store.close()

    def model() -> None:
        loaded["generator"] = gen = make_generator(settings)
        if isinstance(gen, ChatGenerator | FallbackGenerator):
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
    if args.json:
        print(json.dumps({"graph": settings.graph, "model_version": version, "seconds": timings}))
    else:
        print(f"ready: {version} answers on graph {settings.graph!r}")
    return 0


# --- eval -----------------------------------------------------------------------------------------
def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cypherloop eval",
        description="Execution accuracy of the agent on a JSONL question set (id, question, cypher[, "
                    "category]).",
    )
    _add_common(p)
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
    return p


def eval_main(argv: list[str] | None = None) -> int:
    """``cypherloop eval``: prints the report; 0 when it ran, non-zero for bad input."""
    args = _eval_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise DataError("--limit must be at least 1")
    items = load_dataset(args.dataset)
    set_library_output(args)
    settings = settings_from_args(args)
    out = args.out or settings.home_dir / "eval" / f"{settings.graph}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    feedback = open_feedback_store(settings) if args.few_shot else None
    with make_agent(
        settings, feedback_store=feedback, example_pool=ExamplePool.for_settings(settings)
    ) as agent:
        report = run_eval(agent, items, limit=args.limit, progress=True, predictions_path=out,
                          dataset=str(args.dataset), label=settings.graph, batch_size=max(1, args.batch_size))
    if args.json:
        print(json.dumps(report.summary(), ensure_ascii=False, indent=2))
    else:
        print(report.text())
        print(f"predictions: {out}")
    return 0


__all__ = ["ask_main", "eval_main", "format_result", "open_feedback_store", "settings_from_args"]
