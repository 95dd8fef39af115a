"""Load a multi-statement Cypher script into a graph (``cypherloop graph load``).

Script format (as in ``../shared/bench/graphs/``): a statement ends with ``;`` at the end of a line;
``//`` comments are dropped; ``;`` inside a string, a backtick name or a ``/* */`` comment does not
end a statement, nor does one followed by more code on the same line. A last statement without
``;`` still runs. Statements run one by one through ``store.write()``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agent.core.cypher_text import canonical_query, statements
from agent.core.errors import DataError, GraphError, LoaderError, UnknownGraph
from agent.graphdb.base import GraphStore

FIRST_LINE_CHARS = 80
"""How much of a failing statement's first line the error shows."""


@dataclass(frozen=True)
class LoadReport:
    """What a load did: statements run, wall time, and the graph's size afterwards."""

    statements: int
    seconds: float
    nodes: int
    relationships: int


def split_statements(script: str) -> list[tuple[int, str]]:
    """``[(line number where the statement starts, statement without its ';'), ...]``: the shared
    tokenizer's ``agent.core.cypher_text.statements``."""
    return statements(script)


def load_script(
    store: GraphStore, path: str | Path, *, replace: bool = False, progress: bool = False
) -> LoadReport:
    """Run every statement of ``path`` against ``store``; ``replace`` deletes the graph first.

    Raises ``DataError`` for a missing/unreadable/empty file and ``LoaderError`` (statement number,
    its first line, the database's message) when a statement fails; statements before it stay applied.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataError(f"no such Cypher script: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the Cypher script {path}: {e}") from e
    statements = split_statements(text)
    if not statements:
        raise DataError(f"{path} holds no Cypher statements (a statement ends with ';' at the end of a line)")

    from tqdm import tqdm

    started = time.perf_counter()
    if replace:
        store.delete_graph()
    bar = tqdm(
        statements,
        desc=f"loading {path.name}",
        unit="stmt",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    for number, (lineno, statement) in enumerate(bar, start=1):
        try:
            store.write(canonical_query(statement))
        except GraphError as e:
            bar.close()
            first = statement.splitlines()[0].strip()
            if len(first) > FIRST_LINE_CHARS:
                first = first[: FIRST_LINE_CHARS - 1] + "…"
            detail = " ".join(str(e.db_message).split())
            raise LoaderError(
                f"{path.name}: statement {number} (line {lineno}) failed: {first!r}: {detail}",
                statement_no=number,
                db_message=e.db_message,
            ) from e
    bar.close()
    seconds = time.perf_counter() - started
    try:
        stats = store.stats()
    except UnknownGraph:  # a script that created nothing leaves no graph behind on FalkorDB
        stats = {"nodes": {}, "relationships": {}}
    return LoadReport(
        len(statements), seconds, sum(stats["nodes"].values()), sum(stats["relationships"].values())
    )
