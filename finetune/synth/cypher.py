"""Cypher text for generated queries: identifiers and literals."""

from __future__ import annotations

from typing import Any

from agent.core.cypher_text import cypher_name as ident  # bare when it can be, backquoted otherwise

__all__ = ["ident", "lit", "num"]


def num(x: float | int) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return f"{x:.6g}" if abs(x) < 1e15 else repr(x)


def lit(value: Any) -> str:
    """A Cypher literal for a sampled value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return num(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    s = str(value)
    if "'" in s and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
