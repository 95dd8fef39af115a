"""The ``cypherloop`` command: a thin dispatcher over the command modules of the top floor (``ui/cli_*.py``).

Every subcommand is a ``main(argv) -> int`` in ``ui``; the library packages below hold no command line
(``docs/ARCHITECTURE.md``). The chosen module is imported by name, so ``cypherloop --help`` stays fast and
never touches torch, gradio or the database. Library environment defaults (``agent.core.env``) are set
here, before any command imports a library that reads them.
"""

from __future__ import annotations

import importlib
import sys

from agent.core.env import library_defaults, quiet_libraries
from agent.core.errors import run_guarded

# name -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "graph": ("ui.cli_graph", "graph_main", "graph database: load | schema | query | stats | stop"),
    "demo": ("ui.cli_graph", "demo_main", "demo graph: init"),
    "ask": ("ui.cli_ask", "ask_main", "answer one question with the agent"),
    "eval": ("ui.cli_agent", "eval_main", "execution accuracy of the agent on a JSONL question set"),
    "warm": ("ui.cli_agent", "warm_main", "convert and load the model once, so the first question is quick"),
    "serve": ("ui.cli_agent", "serve_main", "keep the model loaded and answer `ask` on this home and graph"),
    "feedback": ("ui.cli_feedback", "main", "feedback store: stats | list | export | import | review"),
    "ui": ("ui.app", "main", "open the Gradio chat"),
    "data": ("ui.cli_data", "main", "training data: teacher | generate | review | build"),
    "train": ("ui.cli_train", "train_main", "train a LoRA/QLoRA adapter from a recipe"),
    "adapters": ("ui.cli_train", "adapters_main",
                 "adapter registry: list | show | promote | rollback | export"),
    "bootstrap": ("ui.cli_bootstrap", "main", "make a graph answerable: generate, fine-tune, index, promote"),
    "retrain": ("ui.cli_train", "retrain_main", "build dataset, train, evaluate, gate and promote, once"),
    "scheduler": ("ui.cli_train", "scheduler_main",
                  "run retrain on a cron schedule or after N new corrections"),
}

TRAINING_LOGS = {"train", "retrain", "scheduler", "bootstrap"}
"""Commands whose output is a training log: library warnings stay on for them; the rest are quiet."""

USAGE = "usage: cypherloop [-h] [--version] COMMAND [ARGS ...]"


def _help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [USAGE, "", "Chat with your graph through Cypher written by a small fine-tuned model.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, _, text) in COMMANDS.items()]
    lines += ["", "Run `cypherloop COMMAND --help` for a command's options. Settings: see .env.example."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help())
        return 0 if args else 2
    if args[0] == "--version":
        from importlib.metadata import version

        print(f"cypherloop {version('cypherloop')}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"cypherloop: unknown command {name!r}; choose from: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    if name in TRAINING_LOGS:
        library_defaults()
    else:
        quiet_libraries()
    return run_guarded(lambda: getattr(importlib.import_module(module_name), func_name)(rest))


if __name__ == "__main__":
    sys.exit(main())
