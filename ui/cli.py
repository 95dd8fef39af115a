"""The ``cypherloop`` command: a thin dispatcher over each part's own ``main(argv) -> int``.

Subcommand modules are imported only when chosen, so ``cypherloop --help`` stays fast and
never touches torch, gradio or the database.
"""

from __future__ import annotations

import importlib
import os
import sys

# name -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "graph": ("agent.cli_graph", "graph_main", "graph database: load | schema | query | stats | stop"),
    "demo": ("agent.cli_graph", "demo_main", "demo graph: init"),
    "ask": ("agent.cli_agent", "ask_main", "answer one question with the agent"),
    "eval": ("agent.cli_agent", "eval_main", "execution accuracy of the agent on a JSONL question set"),
    "feedback": ("feedback_store.cli", "main", "feedback store: stats | list | export | import | review"),
    "ui": ("ui.app", "main", "open the Gradio chat"),
    "data": ("finetune.cli_data", "main", "training data: teacher | generate | review | build"),
    "train": ("finetune.cli_train", "train_main", "train a LoRA/QLoRA adapter from a recipe"),
    "adapters": ("finetune.cli_train", "adapters_main", "adapter registry: list | show | promote | rollback | export"),
    "bootstrap": ("finetune.cli_bootstrap", "main", "make a graph answerable: generate, fine-tune, index, promote"),
    "retrain": ("finetune.cli_train", "retrain_main", "build dataset, train, evaluate, gate and promote, once"),
    "scheduler": ("finetune.cli_train", "scheduler_main", "run retrain on a cron schedule or after N new corrections"),
}

USAGE = "usage: cypherloop [-h] [--version] COMMAND [ARGS ...]"


def _help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [USAGE, "", "Chat with your graph through Cypher written by a small fine-tuned model.", "", "commands:"]
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
    return run_guarded(lambda: getattr(importlib.import_module(module_name), func_name)(rest))


def run_guarded(fn) -> int:
    """Run a subcommand; turn every failure into one line on stderr and a non-zero exit code."""
    from agent.errors import CypherloopError

    try:
        code = fn()
        return int(code or 0)
    except CypherloopError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # argparse errors and --help
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except Exception as e:  # noqa: BLE001 - the promise is: never a traceback for the user
        if os.environ.get("CYPHERLOOP_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (set CYPHERLOOP_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
