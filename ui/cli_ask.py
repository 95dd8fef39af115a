"""``cypherloop ask``: one question, answered by the running server for this home and graph when there is one
(``cypherloop serve`` or ``cypherloop ui``: ``ui/ask_server.py``), else in this process.

    cypherloop ask "How many customers are there?" [--graph NAME] [--json] [--home DIR] [--no-log]
                   [--no-server] [--backend auto|ctranslate2|transformers|llamacpp|openai] [--model NAME]
                   [--adapter active|none|DIR]

It prints the answer, the Cypher, a table of rows and which process answered, and logs the exchange to the
feedback store when one can be opened (a failing store never costs the answer: one warning, then silence).

Answered in this process, the question does not warm the model up: on a GPU the transformers backend's
``generation_cache=auto`` stays on the dynamic KV cache here (compiling the static decoding step would cost
45-65 s for one question); a running ``serve`` or ``ui`` compiled it at load and answers with it.

This module imports no heavy library at the top: asking a server costs a fresh process only Python, the
settings and one localhost request. The agent, the model and the feedback store are imported when this
process answers itself. The options shared with ``eval`` and ``warm`` live here for the same reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent.core.env import quiet_libraries, verbose_libraries
from agent.core.feedback import FeedbackStore
from agent.core.settings import Settings, load_settings
from agent.state import AgentAnswer
from ui.ask_server import ServerRefused, ask_server
from ui.text_table import format_table

HERE = "this process"


# --- options shared with eval, warm and serve -------------------------------------------------
def add_common(p: argparse.ArgumentParser) -> None:
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


def parse_common(p: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    """A command's arguments with the common options added, the libraries quieted and the settings loaded."""
    add_common(p)
    args = p.parse_args(argv)
    set_library_output(args)
    return args, settings_from_args(args)


def open_feedback_store(settings: Settings, *, quiet: bool = False) -> FeedbackStore | None:
    """The Chroma feedback store when it opens; None otherwise (one warning)."""
    try:
        from feedback_store.chroma import ChromaFeedbackStore

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
    add_common(p)
    p.add_argument("--no-log", action="store_true", help="do not record the exchange in the feedback store")
    p.add_argument("--no-server", action="store_true",
                   help="answer in this process even when `cypherloop serve` or `cypherloop ui` runs on this "
                        "home and graph")
    return p


def format_result(answer: AgentAnswer, served_by: str = "") -> str:
    """Answer, Cypher and a table of rows, for the terminal; ``served_by``: the process that answered."""
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
    if served_by:
        meta.append(f"answered by {served_by}")
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
    remote = None
    if not args.no_server:
        try:
            remote = ask_server(settings, question, log_answer=not args.no_log)
        except ServerRefused as e:
            print(f"note: {e}; answering in this process", file=sys.stderr)
    if remote is not None:
        data, endpoint = remote
        answer = AgentAnswer(**data)
        _show(answer, args.json, {"process": endpoint.process, "pid": endpoint.pid})
    else:
        answer = _ask_here(settings, question, args)
    if answer.status == "error":
        print(f"error: {answer.error}", file=sys.stderr)
        return 1
    return 0


def _show(answer: AgentAnswer, as_json: bool, served_by: dict[str, Any]) -> None:
    if as_json:
        data = {**answer.to_dict(), "served_by": served_by}
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str), flush=True)
    else:
        who = served_by["process"]
        print(format_result(answer, who if who == HERE else f"{who} (pid {served_by['pid']})"), flush=True)


def _ask_here(settings: Settings, question: str, args: argparse.Namespace) -> AgentAnswer:
    """Answer in this process. The model starts loading in a background thread first, while this thread
    imports the agent (langgraph), opens the graph and the feedback store (chromadb): a cold process's slowest
    starts overlap. The answer is printed before it is logged (logging embeds the question)."""
    from agent.models import factory as models
    from feedback_store.pool import ExamplePool

    generator = models.make_generator(settings)
    models.load_ahead(generator)
    from agent.factory import make_agent

    with make_agent(settings, generator=generator, example_pool=ExamplePool.for_settings(settings)) as agent:
        if not (args.no_log and settings.few_shot_k == 0):
            agent.use_feedback_store(open_feedback_store(settings))
        answer = agent.ask(question)
        _show(answer, args.json, {"process": HERE, "pid": os.getpid()})
        if not args.no_log:
            agent.log(answer)
    return answer


__all__ = ["add_common", "ask_main", "format_result", "open_feedback_store", "parse_common",
           "set_library_output", "settings_from_args"]
