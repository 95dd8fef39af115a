"""Rows as an aligned text table, for the terminal (``cypherloop graph query``, ``cypherloop ask``); standard
library only, so the light ``ask`` path can print without the graph commands' imports."""

from __future__ import annotations

import json
from typing import Any

MAX_CELL = 80
"""Table cells longer than this are shortened with '…' (``--json`` prints everything)."""


def _cell(value: Any) -> str:
    if value is None:
        text = "null"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    """An aligned text table: header, rule, one line per row (numbers right-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells if i < len(r)]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows)
        and all(
            isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
            for r in rows
            if i < len(r) and r[i] is not None
        )
        for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=False)
        ]
        return " | ".join(parts).rstrip()

    out = [line(columns), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


__all__ = ["MAX_CELL", "format_table"]
