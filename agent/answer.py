"""A short answer sentence from query rows: deterministic, never invented (pure).

The rows are the answer; the sentence only frames them: a single value, a list from one column, or a
summary of a small table, with a note when the row cap cut the result. No rows → "no matching data".
A model may rephrase (``AnswerWriter``), but only when asked for and only from these rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

NO_DATA = "No matching data was found in the graph for this question."
MAX_LISTED = 10
MAX_VALUE_CHARS = 80
NAME_KEYS = ("name", "title", "label", "id")

AnswerWriter = Callable[[str, list[str], list[list[Any]]], str]
"""Optional model-written answer: ``(question, columns, rows) -> sentence``; off by default."""


def format_value(value: Any) -> str:
    """One value for a sentence: floats rounded, nodes by their name-like property, long text cut."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}" if abs(value) >= 10000 else str(int(value))
        if abs(value) >= 1:
            return f"{value:,.2f}".rstrip("0").rstrip(".")
        return f"{value:.4g}"
    if isinstance(value, dict):
        for key in (
            *NAME_KEYS,
            *sorted(k for k in value if k.endswith(("name", "title", "_id", "Name", "ID", "Id"))),
        ):
            if key in value and value[key] is not None:
                return format_value(value[key])
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    elif isinstance(value, (list, tuple)):
        text = (
            "["
            + ", ".join(format_value(v) for v in value[:MAX_LISTED])
            + (", …" if len(value) > MAX_LISTED else "")
            + "]"
        )
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _column_name(col: str) -> str:
    """``c.name`` → ``name``; ``count(c)`` stays as it is."""
    return col.rsplit(".", 1)[-1] if "." in col and "(" not in col else col


def format_answer(
    question: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    truncated: bool = False,
    max_rows: int | None = None,
) -> str:
    """The sentence shown above the table of rows."""
    if not rows:
        return NO_DATA
    n = len(rows)
    note = f" (showing the first {n} rows; there are more)" if truncated else ""
    cols = list(columns) or [f"column {i + 1}" for i in range(len(rows[0]))]
    if n == 1 and len(cols) == 1:
        return f"The answer is {format_value(rows[0][0])}.{note}"
    if n == 1:
        parts = ", ".join(
            f"{_column_name(c)}: {format_value(v)}" for c, v in zip(cols, rows[0], strict=False)
        )
        return f"Found 1 result: {parts}.{note}"
    if len(cols) == 1:
        values = [format_value(r[0]) for r in rows[:MAX_LISTED]]
        more = f" and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
        return f"Found {n} results: {', '.join(values)}{more}.{note}"
    first = ", ".join(f"{_column_name(c)}: {format_value(v)}" for c, v in zip(cols, rows[0], strict=False))
    shown = ", ".join(_column_name(c) for c in cols)
    return f"Found {n} rows with {shown}; the first is {first}.{note}"


def write_answer(
    question: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    truncated: bool = False,
    writer: AnswerWriter | None = None,
) -> str:
    """``format_answer``, or the writer's sentence for multi-row results when a writer is given.

    The writer is used only where a template reads poorly (several rows and columns) and never for
    empty results; any failure or empty reply falls back to the deterministic sentence.
    """
    plain = format_answer(question, columns, rows, truncated)
    if writer is None or not rows or (len(rows) == 1 and len(columns) <= 1):
        return plain
    try:
        text = (writer(question, list(columns), [list(r) for r in rows[:MAX_LISTED]]) or "").strip()
    except Exception:  # noqa: BLE001 - a phrasing aid must never cost the answer
        return plain
    return (
        text + (f" (showing the first {len(rows)} rows; there are more)" if truncated and text else "")
        if text
        else plain
    )
