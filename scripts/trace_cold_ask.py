"""Where a cold ``cypherloop ask`` spends its time: one fresh process, the product's own ``main``, with a
timestamp (seconds since the process started, and the thread) at the first import of each heavy library and
around each start-up stage.

    PYTHONPATH=. .venv/bin/python scripts/trace_cold_ask.py ask "How many movies are there?" \\
        --home bench-output/home --graph movies --no-log --no-server --json >/dev/null

The timeline goes to stderr; the command's own output to stdout. Complements ``python -X importtime``
(which shows import costs but not what overlaps in the model-loading thread).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import sys
import threading
import time

T0 = time.perf_counter()
with open("/proc/self/stat") as f:
    _START_TICKS = int(f.read().rsplit(")", 1)[1].split()[19])
with open("/proc/uptime") as f:
    _SINCE_START = float(f.read().split()[0]) - _START_TICKS / os.sysconf("SC_CLK_TCK")
EVENTS: list[tuple[float, str, str]] = []
WATCH = {"torch", "transformers", "chromadb", "langgraph", "ctranslate2", "peft", "sentence_transformers",
         "falkordb", "numpy", "tokenizers"}
STAGES = {
    "agent.models.factory": ["load_ahead"],
    "agent.factory": ["open_graph_checked", "make_agent"],
    "agent.models.ctranslate": ["ensure_converted", "CTranslate2Generator._load",
                                "CTranslate2Generator.complete"],
    "feedback_store.chroma": ["ChromaFeedbackStore.__init__"],
    "feedback_store.embeddings": ["load_model"],
    "agent.graph": ["CypherAgent.ask"],
}
"""Functions timed, wrapped as their module finishes importing (so the trace changes no import order)."""


def mark(what: str) -> None:
    EVENTS.append((time.perf_counter() - T0 + _SINCE_START, threading.current_thread().name, what))


def _audit(event: str, args: tuple) -> None:
    if event == "import" and args[0] in WATCH:
        WATCH.discard(args[0])
        mark(f"import {args[0]} begins")


def _wrap(module: object, qualname: str) -> None:
    obj = module
    *owners, name = qualname.split(".")
    for part in owners:
        obj = getattr(obj, part)
    fn = getattr(obj, name, None)
    if fn is None:  # older code (a baseline) may not have it
        return

    @functools.wraps(fn)
    def timed(*a, **k):
        mark(f"> {qualname}")
        try:
            return fn(*a, **k)
        finally:
            mark(f"< {qualname}")

    setattr(obj, name, timed)


class _WrapOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in STAGES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            for qualname in STAGES[name]:
                _wrap(module, qualname)

        spec.loader.exec_module = exec_module
        return spec


def main() -> int:
    mark("interpreter up")
    sys.addaudithook(_audit)
    sys.meta_path.insert(0, _WrapOnImport())
    from ui.cli import main as cli_main

    mark("ui.cli imported")
    code = cli_main(sys.argv[1:])
    mark("exit")
    for t, thread, what in EVENTS:
        print(f"{t:7.2f}  {thread[:22]:22}  {what}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
