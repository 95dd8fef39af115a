"""Cypher as text, and results as values: the definitions every part shares (pure functions).

- **Tokenizer** (``tokenize``): comments, strings, backquoted identifiers, words and punctuation, the way
  Cypher reads them. The read-only gate, the schema check, the output cleanup and the normalisers all
  read queries through it, so none of them mistakes ``RETURN 'CREATE'`` or ``// ;`` for code.
- **Identifiers** (``quote_ident``, ``cypher_name``, ``unquote_ident``) and the **keywords** that are never
  variable names (``CYPHER_KEYWORDS``).
- **Normalised forms** (``normalize_question``, ``normalize_cypher``): two questions are "the same" when
  they differ only in case, punctuation and spacing; two queries when they differ only in whitespace,
  comments, keyword/function case, a trailing ``;``, quote style and the names of their variables
  (``MATCH (c:Customer) RETURN c.name`` equals ``match (x:Customer) return x.name``). Labels,
  relationship types, property keys and literals stay as written: they change what a query means.
  ``squash_spaces`` and ``strip_statement`` are the lighter forms the feedback store keys its records on.
- **The same result** (``same_result``, ``result_fingerprint``): the benchmark's rule
  (``../shared/bench/README.md``): rows are compared as a multiset; inside a row the column order is
  ignored; floats are compared at 4 significant digits and a float equal to an integer equals that
  integer; ``true`` is not ``1``; nodes and relationships are compared by their property dicts (the
  graph stores return them so); lists keep their order, maps do not. Evaluation, the feedback store's
  result fingerprint and the data generator's stability check all use it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# ============================================================================================
# Tokenizer
# ============================================================================================

TokenKind = Literal["ws", "comment", "string", "ident", "word", "punct"]


@dataclass(frozen=True)
class Token:
    """One token: ``ident`` is a backquoted identifier, ``word`` a run of word characters (a name, a keyword
    or a number), ``punct`` one other character (also an unterminated quote)."""

    kind: TokenKind
    text: str
    line: int


_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[Token]:
    """Split Cypher text into tokens; concatenating their texts gives ``text`` back."""
    toks: list[Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        start = i
        kind: TokenKind
        if c.isspace():
            while i < n and text[i].isspace():
                i += 1
            kind = "ws"
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            kind = "comment"
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            kind = "comment"
        elif c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:  # unterminated: treat the quote as punctuation and keep reading code
                i, kind = i + 1, "punct"
            else:
                i, kind = j + 1, "string"
        elif c == "`":
            j = i + 1
            while j < n:
                if text[j] == "`":
                    if text.startswith("``", j):
                        j += 2
                        continue
                    break
                j += 1
            if j >= n:
                i, kind = i + 1, "punct"
            else:
                i, kind = j + 1, "ident"
        else:
            m = _WORD.match(text, i)
            if m:
                i, kind = m.end(), "word"
            else:
                i, kind = i + 1, "punct"
        chunk = text[start:i]
        toks.append(Token(kind, chunk, line))
        line += chunk.count("\n")
    return toks


def mask_literals(text: str, *, comments: bool = True) -> str:
    """``text`` with string contents replaced by ``_`` and (optionally) comments by spaces, same offsets:
    pattern matching over the result never sees a keyword inside a literal."""
    out = []
    for t in tokenize(text):
        if t.kind == "string":
            out.append(t.text[0] + "_" * (len(t.text) - 2) + t.text[-1])
        elif t.kind == "comment" and comments:
            out.append(re.sub(r"[^\n]", " ", t.text))
        else:
            out.append(t.text)
    return "".join(out)


def first_statement_end(text: str) -> int | None:
    """Offset of the first ``;`` outside strings, identifiers and comments (None when there is none)."""
    offset = 0
    for t in tokenize(text):
        if t.kind == "punct" and t.text == ";":
            return offset
        offset += len(t.text)
    return None


def statements(text: str) -> list[tuple[int, str]]:
    """A script split at each ``;`` that ends its line (only blanks or a ``//`` comment after it):
    ``[(line where the statement starts, statement text without the ';' and ``//`` comments)]``.

    ``;`` inside strings, backquoted names and comments, or followed by more code on its line, does not
    split. ``/* */`` comments stay (they may span lines); a last statement without ``;`` counts.
    """
    toks = tokenize(text)
    out: list[tuple[int, str]] = []
    buf: list[Token] = []

    def flush() -> None:
        body = "".join(t.text for t in buf).strip()
        if body:
            first = next(t for t in buf if t.kind != "ws")
            out.append((first.line, body))
        buf.clear()

    for k, t in enumerate(toks):
        if t.kind == "comment" and t.text.startswith("//"):
            continue
        if t.kind == "punct" and t.text == ";" and _line_ends(toks, k + 1):
            flush()
            continue
        buf.append(t)
    flush()
    return out


def _line_ends(toks: list[Token], k: int) -> bool:
    """True when nothing but blanks and a ``//`` comment follows position ``k`` on its line."""
    for t in toks[k:]:
        if t.kind == "ws":
            if "\n" in t.text:
                return True
            continue
        return t.kind == "comment" and t.text.startswith("//")
    return True


def _is_name(t: Token) -> bool:
    return t.kind == "ident" or (t.kind == "word" and not t.text[0].isdigit())


def canonical_query(text: str) -> str:
    """The one form of a query that reaches the database: comments removed, every run of whitespace
    (and a comment counts as whitespace) one space, no space around the ``.`` of a dotted name
    (``db . labels`` → ``db.labels``), no trailing ``;``; strings and backquoted names untouched.

    FalkorDB's parser crashes on a comment inside a dotted procedure name (``CALL db./**/labels()``):
    what it parses never holds a comment.
    """
    sig: list[Token] = []
    gap: list[bool] = []  # gap[k]: whitespace or a comment stood before sig[k]
    pending = False
    for t in tokenize(text or ""):
        if t.kind in ("ws", "comment"):
            pending = bool(sig)
            continue
        sig.append(t)
        gap.append(pending)
        pending = False
    while sig and sig[-1].kind == "punct" and sig[-1].text == ";":
        sig.pop()
    dots = {k for k, t in enumerate(sig)
            if t.text == "." and 0 < k < len(sig) - 1 and _is_name(sig[k - 1]) and _is_name(sig[k + 1])}
    out = []
    for k, t in enumerate(sig):
        if gap[k] and k not in dots and k - 1 not in dots:
            out.append(" ")
        out.append(t.text)
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def with_row_limit(text: str, limit: int) -> str:
    """``text`` returning at most ``limit`` rows, the cap applied inside the database: ``LIMIT limit``
    appended to the final ``RETURN`` (or a smaller literal ``LIMIT`` already there kept, a larger one
    lowered). Unchanged when that cannot be done textually (a ``UNION``, no final ``RETURN``, a
    ``LIMIT`` expression): the server's own result-set cap still holds. Same rows as reading the first
    ``limit`` rows of the full result, without computing the rest.

    Remembered for the last 1,024 texts: the FalkorDB backend asks it on every read, and most reads of an
    eval are the grounding probes' few templates (one per label and property)."""
    sig = [t for t in tokenize(text) if t.kind not in ("ws", "comment")]
    depth, last_return, last_limit = 0, None, None
    for k, t in enumerate(sig):
        if t.kind == "punct" and t.text in "([{":
            depth += 1
        elif t.kind == "punct" and t.text in ")]}":
            depth -= 1
        elif depth == 0 and t.kind == "word":
            word = t.text.upper()
            if word == "UNION":
                return text
            if word == "RETURN":
                last_return, last_limit = k, None
            elif word == "LIMIT" and last_return is not None:
                last_limit = k
    if last_return is None:
        return text
    if last_limit is None:
        return f"{text} LIMIT {limit}"
    tail = sig[last_limit + 1:]
    if len(tail) == 1 and tail[0].kind == "word" and tail[0].text.isdigit():
        if int(tail[0].text) <= limit:
            return text
        cut = text.rstrip()
        assert cut.endswith(tail[0].text)
        return cut[: len(cut) - len(tail[0].text)] + str(limit)
    return text


@dataclass(frozen=True)
class QueryLimits:
    """What a read may be before the database parses it (``Settings.query_limits()`` builds one).

    FalkorDB parses outside the query timeout and its parser backtracks: each level of nesting costs it
    2–3× more (depth 20 took 6.5 s, depth 26 wedged the server), so depth and the parse cost are bounded.
    ``range()`` allocates its whole list before the query-memory check (``range(1, 1e8)`` took 1.6 GB),
    and one expression (``reduce``, a list comprehension) runs to its end whatever the timeout or the
    memory cap (a ``reduce`` concatenating over a million values ran for minutes, ``reduce(l = [1], x IN
    range(1, 40) | l + l)`` took the server past 4 GB and the kernel killed it): so range bounds must be
    literals, each range spans at most ``max_range`` values and all of a query's ranges together at most
    ``max_range_product`` combinations, and a ``reduce`` may neither grow its accumulator faster than
    linearly nor build a string or list costing more than ``max_reduce_work`` units of copying (the
    guard: a list item 100, a character 1; ``reduce(l = [], x IN range(1, 10000) | l + [x])``, 5e9 units,
    took 1.5 s on a loaded 2-core machine, ``s + 'xxxxxxxxxx'`` over the same range 0.12 s).
    ``extra_procedures`` are globs a read may CALL beyond the built-in allow-list.
    """

    max_chars: int = 4000
    max_depth: int = 10
    max_cost: int = 16384
    max_hops: int = 40
    max_range: int = 10_000
    max_range_product: int = 1_000_000
    max_reduce_work: int = 6_000_000_000
    extra_procedures: tuple[str, ...] = ()


NESTING_OPENERS = {"(": ")", "[": "]", "{": "}"}
UNARY = frozenset({"NOT", "-", "+"})


@dataclass(frozen=True)
class Shape:
    """How hard a query is to parse: ``depth`` is the deepest nesting (brackets, ``CASE … END``,
    a run of unary ``NOT`` / ``-`` / ``+``), ``cost`` sums ``2 ** level`` over the tokens (FalkorDB's
    parser backtracks: its time grows about 2–3× per level of nesting, and adds up over siblings),
    ``hops`` counts relationship patterns (a ``-`` or ``<`` right after a ``)``)."""

    depth: int
    cost: int
    hops: int


def query_shape(text: str) -> Shape:
    """The ``Shape`` of a query (pure; linear in its length)."""
    sig = [t for t in tokenize(text or "") if t.kind not in ("ws", "comment")]
    stack: list[str] = []
    depth = cost = hops = run = 0
    prev = ""
    for t in sig:
        word = t.text.upper() if t.kind == "word" else t.text if t.kind == "punct" else ""
        if word in UNARY:
            run += 1
        else:
            run = 0
        if t.kind == "punct" and t.text in NESTING_OPENERS or word == "CASE":
            stack.append(t.text.upper())
        elif stack and (t.kind == "punct" and t.text in NESTING_OPENERS.values() or word == "END"):
            stack.pop()
        level = len(stack) + run
        depth = max(depth, level)
        cost += 2 ** min(level, 40)
        if prev == ")" and t.text in ("-", "<"):
            hops += 1
        prev = t.text if t.kind == "punct" else ""
    return Shape(depth, cost, hops)


_CLOSERS = frozenset(NESTING_OPENERS.values())
_RETURN_ENDS = frozenset({"ORDER", "SKIP", "LIMIT", "UNION"})
_BEFORE_PATTERN = frozenset({"match", "merge", "create", "where", "and", "or", "xor", "not", "exists"})


def _code(text: str) -> list[Token]:
    return [t for t in tokenize(text or "") if t.kind not in ("ws", "comment")]


def return_items(text: str) -> list[str]:
    """The items of a query's last top-level ``RETURN`` (of its first statement), each without ``DISTINCT``
    or its alias, as its code with no spaces (``RETURN DISTINCT c.name AS n, count(*)`` gives ``["c.name",
    "count(*)"]``); [] when there is none. A ``RETURN`` inside brackets (a subquery) is not the query's."""
    code = _code(text)
    depth, start = 0, None
    for i, t in enumerate(code):
        if t.kind == "punct" and t.text in NESTING_OPENERS:
            depth += 1
        elif t.kind == "punct" and t.text in _CLOSERS:
            depth -= 1
        elif depth == 0 and t.kind == "word" and t.text.upper() == "RETURN":
            start = i + 1
        elif depth == 0 and t.text == ";":  # the first statement's
            break
    if start is None:
        return []
    items: list[list[Token]] = [[]]
    depth = 0
    for t in code[start:]:
        if depth == 0 and (t.kind == "word" and t.text.upper() in _RETURN_ENDS or t.text == ";"):
            break
        if t.kind == "punct" and t.text in NESTING_OPENERS:
            depth += 1
        elif t.kind == "punct" and t.text in _CLOSERS:
            depth -= 1
        elif depth == 0 and t.text == ",":
            items.append([])
            continue
        items[-1].append(t)
    if items[0] and items[0][0].kind == "word" and items[0][0].text.upper() == "DISTINCT":
        items[0] = items[0][1:]
    out = []
    for toks in items:
        if len(toks) > 2 and toks[-2].kind == "word" and toks[-2].text.upper() == "AS":
            toks = toks[:-2]
        if toks:
            out.append("".join(t.text for t in toks))
    return out


def node_labels(text: str) -> dict[str, str | None]:
    """Each variable a node pattern binds (``(c:Customer)``, ``(c)``, ``(c {name: 'x'})``) and its first label
    there (None when no pattern labels it): ``MATCH (c:Customer)-[:PLACED]->(o) RETURN c, o`` gives
    ``{"c": "Customer", "o": None}``. A function's brackets (``count(c)``) bind nothing."""
    code = _code(text)
    out: dict[str, str | None] = {}
    for i in range(len(code) - 2):
        opener, var, after = code[i], code[i + 1], code[i + 2]
        if opener.text != "(" or var.kind not in ("word", "ident") or after.text not in (":", ")", "{"):
            continue
        before = code[i - 1] if i else None
        called = before is not None and before.kind in ("word", "ident")
        if called and before.text.lower() not in _BEFORE_PATTERN:
            continue  # a function's call (``count(c)``)
        name = unquote_ident(var.text)
        label = None
        if after.text == ":" and i + 3 < len(code) and code[i + 3].kind in ("word", "ident"):
            label = unquote_ident(code[i + 3].text)
        if out.get(name) is None:
            out[name] = label
    return out


# ============================================================================================
# Identifiers and keywords
# ============================================================================================

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

CYPHER_KEYWORDS = frozenset(
    [
        "match",
        "optional",
        "where",
        "return",
        "with",
        "order",
        "by",
        "limit",
        "skip",
        "distinct",
        "as",
        "and",
        "or",
        "not",
        "xor",
        "in",
        "is",
        "null",
        "true",
        "false",
        "starts",
        "ends",
        "contains",
        "unwind",
        "call",
        "yield",
        "asc",
        "desc",
        "ascending",
        "descending",
        "case",
        "when",
        "then",
        "else",
        "end",
        "union",
        "all",
        "exists",
        "any",
        "none",
        "single",
        "create",
        "merge",
        "set",
        "delete",
        "detach",
        "remove",
        "foreach",
        "on",
        "load",
        "csv",
        "from",
        "headers",
        "using",
        "index",
        "explain",
        "profile",
        "count",
    ]
)
"""Words that are never variables (clauses, operators, literals, sort orders), lower case."""


def quote_ident(name: str) -> str:
    """A label, type, property or index name as a backquoted identifier (always quoted)."""
    return "`" + str(name).replace("`", "``") + "`"


def cypher_name(name: str) -> str:
    """A label, type or property as written in a query: bare when it can be, backquoted otherwise."""
    return name if _PLAIN.match(name) else quote_ident(name)


def unquote_ident(text: str) -> str:
    """``Customer`` from ``Customer`` or ``\\`Customer\\```` (doubled backquotes undone)."""
    return text[1:-1].replace("``", "`") if len(text) >= 2 and text[0] == text[-1] == "`" else text


# ============================================================================================
# Normalised forms
# ============================================================================================

_QUESTION_WORD = re.compile(r"[^\W_]+", re.UNICODE)


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with lone surrogates (``\\ud800`` from a JSON file) replaced by U+FFFD: storable as UTF-8."""
    return _SURROGATE.sub("\ufffd", text or "")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with ``…`` when cut (for logs, never for queries)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def squash_spaces(text: str) -> str:
    """Runs of whitespace as one space, trimmed."""
    return " ".join((text or "").split())


def strip_statement(cypher: str) -> str:
    """A query without surrounding whitespace and trailing ``;``."""
    return (cypher or "").strip().rstrip(";").strip()


def normalize_question(text: str) -> str:
    """Lower-case words of the question, accents kept, punctuation and spacing dropped."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return " ".join(_QUESTION_WORD.findall(text))


def normalize_cypher(cypher: str) -> str:
    """A canonical one-line form of a query (see the module docstring)."""
    tokens = [t for t in tokenize((cypher or "").strip()) if t.kind not in ("ws", "comment")]
    while tokens and tokens[-1].text == ";":
        tokens.pop()
    # a backquoted name that needs no quotes is the bare name
    texts = [unquote_ident(t.text) if t.kind == "ident" and _PLAIN.match(unquote_ident(t.text)) else t.text
             for t in tokens]
    names = [t.kind == "ident" or (t.kind == "word" and not t.text[0].isdigit()) for t in tokens]
    renamed: dict[str, str] = {}
    out: list[str] = []
    for i, (tok, text) in enumerate(zip(tokens, texts, strict=True)):
        if tok.kind == "string":
            body = text[1:-1]
            out.append("'" + body.replace("\\'", "'").replace('\\"', '"') + "'")
            continue
        if not names[i]:
            out.append(text)
            continue
        prev = texts[i - 1] if i else ""
        nxt = texts[i + 1] if i + 1 < len(texts) else ""
        low = text.lower()
        if prev in (":", ".", "|", "$"):
            out.append(text)  # label, type, property key, parameter: case matters
        elif nxt == "(" or low in CYPHER_KEYWORDS:
            out.append(low)  # function or keyword
        elif nxt == ":" and _inside_map(texts, i):
            out.append(text)  # a property key in a {key: value} map
        else:
            renamed.setdefault(text, f"v{len(renamed)}")
            out.append(renamed[text])
    return " ".join(out)


def _inside_map(texts: list[str], i: int) -> bool:
    """True when token ``i`` is a key of a ``{…}`` map (the nearest unclosed bracket is ``{``)."""
    depth = 0
    for j in range(i - 1, -1, -1):
        t = texts[j]
        if t in (")", "]", "}"):
            depth += 1
        elif t in ("(", "[", "{"):
            if depth == 0:
                return t == "{"
            depth -= 1
    return False


# ============================================================================================
# The same result
# ============================================================================================


def canonical_value(value: Any) -> Hashable:
    """A hashable form of one result value under the benchmark's rule (module docstring)."""
    if isinstance(value, bool):
        return ("b", value)
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return ("nan",)
        if math.isinf(value):
            return value
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
        return float(f"{value:.4g}")
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), canonical_value(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(canonical_value(v) for v in value))
    return str(value)


def canonical_row(row: Sequence[Any] | Mapping[str, Any]) -> tuple[Hashable, ...]:
    """A row as an order-free tuple of canonical values (column order inside a row is ignored)."""
    values = row.values() if isinstance(row, Mapping) else row
    return tuple(sorted((canonical_value(v) for v in values), key=repr))


def canonical_result(rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Counter[tuple[Hashable, ...]]:
    """A result as the multiset of its canonical rows."""
    return Counter(canonical_row(r) for r in rows)


def same_result(a: Iterable[Any], b: Iterable[Any]) -> bool:
    """True when two results hold the same rows (the module docstring's rule)."""
    return canonical_result(a) == canonical_result(b)


def result_fingerprint(rows: Iterable[Any]) -> str:
    """A hash that is equal exactly when ``same_result`` is true: same rows → same fingerprint."""
    lines = sorted(repr(row) for row in canonical_result(rows).elements())
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:32]


def says_nothing(rows: Sequence[Sequence[Any]]) -> bool:
    """True for results that answer nothing: every cell empty, or one row of zeros and empties."""
    empty = (None, "", [], {})
    if all(all(c in empty for c in row) for row in rows):
        return True
    return len(rows) == 1 and all(
        c in empty or (isinstance(c, (int, float)) and not isinstance(c, bool) and c == 0) for c in rows[0])
