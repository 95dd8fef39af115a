"""One exception tree for cypherloop. Every message is one actionable line, never a secret.

``run_guarded`` is where the tree meets a terminal: every command-line entry point runs through it, so a
``CypherloopError`` becomes one line on stderr and its ``exit_code``, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class CypherloopError(Exception):
    """Base class: the CLI prints ``str(error)`` on one line and exits non-zero."""

    exit_code = 1


class ConfigError(CypherloopError):
    """A setting is missing or wrong (names the variable to fix)."""

    exit_code = 2


class GraphError(CypherloopError):
    """Anything that went wrong talking to the graph database."""

    def __init__(self, message: str, *, db_message: str | None = None) -> None:
        super().__init__(message)
        self.db_message = db_message if db_message is not None else message


class GraphUnavailable(GraphError):
    """The database cannot be reached (down, wrong URI, server failed to start)."""


class GraphAuthError(GraphError):
    """The database refused the credentials."""


class UnknownGraph(GraphError):
    """The named graph does not exist."""


class CypherSyntaxError(GraphError):
    """The database rejected the query at parse/plan time (EXPLAIN); carries the database's message."""


class CypherExecutionError(GraphError):
    """The query planned but failed while running; carries the database's message."""


class QueryTimeout(GraphError):
    """The query ran past its time limit and was stopped."""


class QueryRefused(GraphError):
    """The gate refused a query before the database saw it (too long, too deeply nested, a procedure
    off the allow-list, a write)."""


class WriteRefused(QueryRefused):
    """The read-only gate refused a query that could change the graph."""


class LoaderError(GraphError):
    """A statement of a Cypher script failed; names the statement number and the database's error."""

    def __init__(self, message: str, *, statement_no: int, db_message: str | None = None) -> None:
        super().__init__(message, db_message=db_message)
        self.statement_no = statement_no


class ModelError(CypherloopError):
    """The text-generation model could not be loaded or failed to answer."""


class PromptOverWindow(ModelError):
    """A prompt longer than the model's sliding-attention window, which the backend would compute wrongly."""


class StoreError(CypherloopError):
    """The feedback store could not read or write."""


class InvalidCorrection(StoreError):
    """A corrected query was refused because it did not run read-only without error."""


class DataError(CypherloopError):
    """An input data file (dataset, recipe, question set) is missing or malformed."""

    exit_code = 2


class TrainingError(CypherloopError):
    """Training, evaluation or promotion failed; the live adapter is unchanged."""


class LockBusy(CypherloopError):
    """Another cypherloop process holds the lock for this job."""

    exit_code = 3


def run_guarded(fn: Callable[[], int | None]) -> int:
    """Run a command; turn every failure into one line on stderr and a non-zero exit code."""
    try:
        return int(fn() or 0)
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
        print(
            f"error: unexpected {type(e).__name__}: {e} (set CYPHERLOOP_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
