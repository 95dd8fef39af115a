"""The static read-only gate: refuse Cypher that could change the graph before it reaches a database.

Defence in depth, not the only line: every backend also runs model-written queries through the
database's own read-only mechanism (FalkorDB ``GRAPH.RO_QUERY``, Neo4j READ access + EXPLAIN query
type). This check is a pure function over the query text:

1. Tokenise like Cypher does (``agent.core.cypher_text.tokenize``): ``//`` and ``/* */`` comments,
   ``'…'`` / ``"…"`` strings (backslash escapes) and backtick identifiers are recognised, so ``RETURN
   'CREATE'`` or a property
   ``n.`set``` passes, while a keyword outside them is seen.
2. Look at several variants of the text and refuse if any shows a write: comments as whitespace,
   comments removed (``CRE/**/ATE``), and the code Unicode-normalised (NFKC, zero-width and other
   format characters dropped, Cyrillic/Greek look-alikes mapped to Latin, accents stripped, ``\\uXXXX``
   escapes decoded) so fullwidth or homoglyph keywords are caught.
3. Refuse write and admin clauses, write/admin procedures, ``CALL {…} IN TRANSACTIONS`` and more than
   one statement. The message names the clause and its line.

``guard_query`` is what the backends run on every read: the checks above, then the bounds that keep a
query from crashing or wedging the database (``QueryLimits``: length, nesting depth and parse cost,
relationship hops, ``range()`` size, a ``reduce()`` that could outgrow them, a collected list searched
once per item of another), the procedure allow-list
(plus ``CYPHERLOOP_ALLOWED_PROCEDURES``), and it returns the canonical text
(``agent.core.cypher_text.canonical_query``: no comments, whitespace normalised) that the database gets.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any

from agent.core.cypher_text import QueryLimits, canonical_query, query_shape
from agent.core.cypher_text import Token as _Tok
from agent.core.cypher_text import tokenize as _tokenize
from agent.core.errors import QueryRefused, WriteRefused

# Clauses that write wherever they appear (Neo4j 5+ also accepts INSERT as a synonym of CREATE).
WRITE_KEYWORDS = frozenset({"CREATE", "MERGE", "SET", "DELETE", "REMOVE", "DROP", "FOREACH", "INSERT"})
# Administration commands: refused anywhere (they are never variable names in practice).
ADMIN_KEYWORDS = frozenset(
    {"ALTER", "GRANT", "REVOKE", "DENY", "TERMINATE", "DEALLOCATE", "REALLOCATE", "RENAME"}
)
# Admin commands whose first word is also a plausible variable name (``start``, ``show``): refused at
# the start of a statement or subquery, or when followed by an admin object.
STATEMENT_START_ADMIN = frozenset({"SHOW", "START", "STOP", "ENABLE", "USE"})
ADMIN_OBJECTS = frozenset({"DATABASE", "DATABASES", "SERVER", "SERVERS", "USER", "USERS", "ROLE", "ROLES",
                           "ALIAS", "ALIASES", "PRIVILEGES", "TRANSACTION", "TRANSACTIONS", "COMPOSITE"})

# Procedures and functions that write, administer or reach outside the graph. Patterns are matched
# case-insensitively against the dotted name; ``*`` matches anything (including dots).
WRITE_PROCEDURES = (
    "db.create.*", "db.index.*", "db.idx.*", "db.clearquerycaches", "db.checkpoint", "db.stats.*",
    "db.awaitindex*", "db.resampleindex*", "db.resampleoutdatedindexes", "db.prepareforreplanning",
    "dbms.*", "tx.*",
    "apoc.create.*", "apoc.merge.*", "apoc.refactor.*", "apoc.periodic.*", "apoc.do.*", "apoc.cypher.*",
    "apoc.load.*", "apoc.export.*", "apoc.import.*", "apoc.trigger.*", "apoc.schema.assert",
    "apoc.atomic.*", "apoc.lock.*", "apoc.nodes.delete", "apoc.custom.*", "apoc.uuid.*", "apoc.ttl.*",
    "apoc.systemdb.*", "apoc.redis.*", "apoc.mongo*", "apoc.es.*", "apoc.couchbase.*", "apoc.static.set",
    "apoc.trigger.*", "apoc.log.*", "apoc.util.sleep", "apoc.warmup.*",
    "gds.*.write*", "gds.*.mutate*", "gds.graph.drop*", "gds.graph.project*", "gds.graph.create*",
    "gds.graph.remove*", "gds.graph.nodeproperties.write*", "gds.graph.relationship*.write*",
    "graph.*",
)
# Read procedures inside otherwise refused namespaces (full-text / vector index search).
READ_PROCEDURE_EXCEPTIONS = (
    "db.index.fulltext.query*", "db.idx.fulltext.query*", "db.index.vector.query*", "db.idx.vector.query*",
)

# The only procedures a read may CALL (case-insensitive globs over the dotted name): schema listings and
# index searches, plus what CYPHERLOOP_ALLOWED_PROCEDURES adds. Anything else is refused before the database
# parses it. FalkorDB's algo.* procedures are not here: they ignore the query timeout
# (algo.labelPropagation({maxIterations: 1e8}) ran for 30 minutes), so a user opts in to each one.
ALLOWED_PROCEDURES = (
    "db.labels", "db.relationshipTypes", "db.propertyKeys", "db.indexes", "db.constraints", "db.meta.stats",
    "db.schema.visualization", "db.schema.nodeTypeProperties", "db.schema.relTypeProperties",
    "db.idx.fulltext.queryNodes", "db.idx.fulltext.queryRelationships",
    "db.idx.vector.queryNodes", "db.idx.vector.queryRelationships",
    "db.index.fulltext.queryNodes", "db.index.fulltext.queryRelationships",
    "db.index.vector.queryNodes", "db.index.vector.queryRelationships",
)

# Words after which a write keyword can only be an expression (a variable named ``create``), and the
# tokens that may follow such a variable: ``count(create)``, ``RETURN set``, ``WITH delete AS d``.
_EXPRESSION_BEFORE = frozenset({"(", ",", "[", "=", "<", ">", "+", "*", "/", "%", "^", "RETURN", "WITH",
                                "WHERE", "AND", "OR", "XOR", "IN", "BY", "DISTINCT", "UNWIND", "AS"})
_EXPRESSION_AFTER = frozenset({")", ",", "]", "}", "=", "<", ">", "+", "*", "/", "%", "^", "AS", "AND",
                               "OR", "XOR", "IN", "IS", "ORDER", "LIMIT", "SKIP", "STARTS", "ENDS",
                               "CONTAINS", "ASC", "DESC", "ASCENDING", "DESCENDING", "RETURN", "WITH",
                               "WHERE", "MATCH", "OPTIONAL", "UNWIND", "UNION", "CALL"})

_CONFUSABLES = str.maketrans({
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ү": "Y", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "α": "a", "ι": "i", "κ": "k", "τ": "t",
    "υ": "u", "ρ": "p",
    # Latin oddities
    "ı": "i", "ȷ": "j", "ℓ": "l",
})


MEMO_TEXTS = 1024
"""Query texts whose verdict ``check_read_only`` and ``guard_query`` remember (each a pure function of the
text and the limits). One question checks the same text several times (its candidates in the vote, the
chosen one again in validate, every read again in the backend's ``guard_query``, the grounding probes'
few templates on every question): 2,066 checks of 592 texts for 100 movies dev questions with 4 distinct
candidates (docs/benchmarks/cpu/eval-host-distinct/). Refusals raise and are not remembered."""
MEMO_MAX_CHARS = QueryLimits.max_chars
"""Longer texts are checked afresh each time: a memo holds at most ``MEMO_TEXTS`` × ``MEMO_MAX_CHARS``
characters of queries (4 M; ``guard_query``'s as many again in the canonical texts it returns)."""


def _remembered(check: Callable[..., Any], cypher: str, *args: Any) -> Any:
    """``check(cypher, *args)`` from its memo for a plain ``str`` up to ``MEMO_MAX_CHARS``, computed afresh
    otherwise (a ``str`` subclass could compare equal to a text it does not read as)."""
    if type(cypher) is str and len(cypher) <= MEMO_MAX_CHARS:
        return check(cypher, *args)
    return check.__wrapped__(cypher, *args)


def check_read_only(cypher: str) -> None:
    """Raise ``WriteRefused`` when ``cypher`` could write, administer, or hides more than one statement.

    Pure and cheap; safe to call on every model output. Passing it does not make a query safe on its
    own: the backends also use the database's read-only mode.
    """
    if not isinstance(cypher, str):
        raise TypeError(f"check_read_only expects a str, not {type(cypher).__name__}")
    reason = _remembered(_write_reason, cypher)
    if reason:
        raise WriteRefused(f"write refused: the query contains {reason}; only read-only queries may run")


@functools.lru_cache(maxsize=MEMO_TEXTS)
def _write_reason(cypher: str) -> str | None:
    """What makes ``cypher`` a write, with the variant that shows it; None for a read."""
    raw = _tokenize(cypher)
    reason = _find_write(raw)
    if reason:
        return reason
    for variant, note in _variants(cypher, raw):
        reason = _find_write(_tokenize(variant))
        if reason:
            return reason + note
    return None


def is_read_only(cypher: str) -> bool:
    """``True`` when ``check_read_only`` lets the query through."""
    try:
        check_read_only(cypher)
    except WriteRefused:
        return False
    return True


# --- variants of the text --------------------------------------------------------------------
def _variants(cypher: str, raw: list[_Tok]) -> list[tuple[str, str]]:
    """The texts besides ``cypher`` (whose tokens are ``raw``) that a parser might read, each with a note."""
    out = []
    # Comments removed outright: `CRE/**/ATE` becomes `CREATE`.
    joined = "".join("" if t.kind == "comment" else t.text for t in raw)
    if joined != cypher:
        out.append((joined, " (hidden by a comment)"))
    # The code (outside strings and comments) normalised: fullwidth, homoglyph and zero-width tricks.
    normalised = "".join(_normalise(t.text) if t.kind in ("word", "punct", "ws") else
                         ("" if t.kind == "comment" else t.text) for t in raw)
    if normalised != joined:
        out.append((normalised, " (after Unicode normalisation)"))
    # `\uXXXX` escapes decoded everywhere, in case a parser resolves them before lexing.
    if re.search(r"\\u[0-9A-Fa-f]{4}", cypher):
        decoded = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), cypher)
        out.append((decoded, " (after decoding \\u escapes)"))
    return out


def _normalise(text: str) -> str:
    if text.isascii():  # NFKC and NFKD keep ASCII, no look-alike is ASCII, no ASCII character is a mark
        return text
    text = unicodedata.normalize("NFKC", text).translate(_CONFUSABLES)
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Cf", "Me"))


# --- the rules -------------------------------------------------------------------------------
def _find_write(tokens: list[_Tok]) -> str | None:
    sig = [t for t in tokens if t.kind not in ("ws", "comment")]
    for k, t in enumerate(sig):
        prev = sig[k - 1] if k else None
        nxt = sig[k + 1] if k + 1 < len(sig) else None
        where = f" (line {t.line})"
        if t.kind == "punct" and t.text == ";":
            if nxt is not None:
                return "more than one statement (text after ';')" + where
            continue
        if t.kind != "word":
            continue
        word = t.text.upper()
        after_dot = (prev is not None and prev.text == "." and k >= 2
                     and sig[k - 2].kind in ("word", "ident") and not sig[k - 2].text[:1].isdigit())
        if after_dot:  # a property key such as `n.set` (dotted procedure names are checked below)
            continue
        # a label or type (`:Set`), a parameter (`$set`), a map key, a variable before its label or
        # property (`{set: 1}`, `(create:Person)`, `set.name`): no clause sits next to `:`, after `$`
        # or before `.`
        name_like = (prev is not None and prev.text in (":", "$")) or (
            nxt is not None and nxt.text in (":", ".")
        )
        variable = (prev is not None and (prev.text.upper() if prev.kind == "word" else prev.text)
                    in _EXPRESSION_BEFORE
                    and (nxt is None or (nxt.text.upper() if nxt.kind == "word" else nxt.text)
                         in _EXPRESSION_AFTER))
        if word in WRITE_KEYWORDS and not name_like and not variable:
            if word == "DELETE" and prev is not None and prev.text.upper() in ("DETACH", "NODETACH"):
                return f"{prev.text.upper()} DELETE" + where
            return word + where
        if word == "LOAD" and nxt is not None and nxt.text.upper() == "CSV":
            return "LOAD CSV" + where
        if word in ADMIN_KEYWORDS and not name_like:
            return f"the admin command {word}" + where
        if word in STATEMENT_START_ADMIN and not name_like:
            at_start = prev is None or prev.text in ("{", ";") or prev.text.upper() in ("UNION", "ALL")
            if at_start or (nxt is not None and nxt.text.upper() in ADMIN_OBJECTS):
                return f"the admin command {word}" + where
        if word == "IN" and prev is not None and prev.text == "}":
            ahead = [x.text.upper() for x in sig[k + 1:k + 5]]
            if "TRANSACTIONS" in ahead:
                return "CALL { … } IN TRANSACTIONS" + where
        if word == "CALL" or (nxt is not None and nxt.text == "."):
            name, end = _dotted_name(sig, k + 1 if word == "CALL" else k)
            is_call = word == "CALL" or (end < len(sig) and sig[end].text == "(")
            if name and is_call and _is_write_procedure(name):
                return f"the write/admin procedure {name}" + where
    return None


def _dotted_name(sig: list[_Tok], k: int) -> tuple[str, int]:
    parts: list[str] = []
    while k < len(sig) and sig[k].kind in ("word", "ident"):
        text = sig[k].text
        parts.append(text[1:-1].replace("``", "`") if sig[k].kind == "ident" else text)
        if k + 1 < len(sig) and sig[k + 1].text == ".":
            k += 2
        else:
            k += 1
            break
    return ".".join(parts), k


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\*", ".*") + r"\Z", re.IGNORECASE)


_WRITE_PROC_RES = tuple(_glob(p) for p in WRITE_PROCEDURES)
_READ_PROC_RES = tuple(_glob(p) for p in READ_PROCEDURE_EXCEPTIONS)


def _is_write_procedure(name: str) -> bool:
    name = _normalise(name).strip()
    if any(r.match(name) for r in _READ_PROC_RES):
        return False
    return any(r.match(name) for r in _WRITE_PROC_RES)



# --- bounds and the allow-list ---------------------------------------------------------------
def guard_query(cypher: str, limits: QueryLimits | None = None) -> str:
    """The canonical text of ``cypher`` when it may run read-only; ``QueryRefused`` (or ``WriteRefused``)
    naming the first bound or rule it breaks otherwise."""
    limits = limits or QueryLimits()
    if not isinstance(cypher, str):
        raise TypeError(f"guard_query expects a str, not {type(cypher).__name__}")
    if len(cypher) > limits.max_chars:
        raise QueryRefused(f"query refused: it is {len(cypher)} characters long, the limit is "
                           f"{limits.max_chars} (CYPHERLOOP_MAX_QUERY_CHARS)")
    return _remembered(_guarded, cypher, limits)


@functools.lru_cache(maxsize=MEMO_TEXTS)
def _guarded(cypher: str, limits: QueryLimits) -> str:
    """``guard_query`` past the length bound (remembered: ``MEMO_TEXTS``)."""
    check_read_only(cypher)
    text = canonical_query(cypher)
    if not text:
        raise QueryRefused("query refused: it is empty")
    check_read_only(text)
    shape = query_shape(text)
    if shape.depth > limits.max_depth:
        raise QueryRefused(f"query refused: it nests {shape.depth} levels deep (brackets, CASE, NOT), the "
                           f"limit is {limits.max_depth} (CYPHERLOOP_MAX_QUERY_DEPTH); write it flatter")
    if shape.cost > limits.max_cost:
        raise QueryRefused(f"query refused: too many deeply nested expressions (parse cost {shape.cost}, "
                           f"limit {limits.max_cost}); write it flatter")
    if shape.hops > limits.max_hops:
        raise QueryRefused(f"query refused: it has {shape.hops} relationship patterns, the limit is "
                           f"{limits.max_hops}")
    sig = [t for t in _tokenize(text) if t.kind not in ("ws", "comment")]
    product = 1
    calls = Counter(t.text.upper() for k, t in enumerate(sig)
                    if t.kind == "word" and k + 1 < len(sig) and sig[k + 1].text == "(")
    if calls["REPLACE"] > 1:
        raise QueryRefused("query refused: at most one replace() per query (nested replaces multiply a "
                           "string's length)")
    allowed = _ALLOWED_PROC_RES + tuple(_glob(p) for p in limits.extra_procedures)
    for k, t in enumerate(sig):
        word = t.text.upper() if t.kind == "word" else ""
        if word == "CALL" and k + 1 < len(sig) and sig[k + 1].kind in ("word", "ident"):
            name, _ = _dotted_name(sig, k + 1)
            if not any(r.match(_normalise(name)) for r in allowed):
                why = (" (FalkorDB's algo.* procedures ignore the query timeout)"
                       if name.lower().startswith("algo.") else "")
                raise QueryRefused(f"query refused: the procedure {name} is not one a read may call{why}; "
                                   f"allowed: {', '.join(ALLOWED_PROCEDURES[:3])}, … index searches, and "
                                   "what CYPHERLOOP_ALLOWED_PROCEDURES adds")
        is_call = k + 1 < len(sig) and sig[k + 1].text == "(" and not (k and sig[k - 1].text == ".")
        if word == "RANGE" and is_call:
            product *= _range_size(_arguments(sig, k + 2)[0], limits.max_range)
            if product > limits.max_range_product:
                raise QueryRefused(f"query refused: its range() calls make {product} combinations, the limit "
                                   f"is {limits.max_range_product} (CYPHERLOOP_MAX_QUERY_RANGE_PRODUCT)")
        if word == "REDUCE" and is_call:
            _check_reduce(sig, k + 2, limits)
    _check_nested_iterations(sig, limits)
    return text


_ALLOWED_PROC_RES = tuple(_glob(p) for p in ALLOWED_PROCEDURES)


def _arguments(sig: list[_Tok], k: int, separators: tuple[str, ...] = (",",)) -> tuple[list[list[_Tok]], int]:
    """The tokens of a call's arguments from ``k`` (just after its ``(``), split at the top-level
    ``separators``, and the index of the closing ``)``."""
    args: list[list[_Tok]] = [[]]
    depth = 0
    while k < len(sig):
        text = sig[k].text if sig[k].kind == "punct" else ""
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            if depth == 0:
                break
            depth -= 1
        elif text in separators and depth == 0:
            args.append([])
            k += 1
            continue
        args[-1].append(sig[k])
        k += 1
    return args, k


def _range_size(args: list[list[_Tok]], max_range: int) -> int:
    """How many values ``range(a, b[, step])`` builds: integer literal arguments, at most ``max_range``."""
    values = [_int_literal([t.text for t in a]) for a in args]
    if len(values) not in (2, 3) or any(v is None for v in values):
        raise QueryRefused("query refused: range() takes integer literals here (range(1, 10)), "
                           "not expressions")
    start, end, step = values[0], values[1], values[2] if len(values) == 3 else 1
    assert start is not None and end is not None and step is not None
    count = 0 if step == 0 else max(0, (end - start) // step + 1)
    if count > max_range:
        raise QueryRefused(f"query refused: range() would build {count} values, the limit is {max_range} "
                           "(CYPHERLOOP_MAX_QUERY_RANGE)")
    return max(count, 1)


# Functions in a reduce() step that can multiply a value's size at once (by name, lowercased, substring).
_MULTIPLYING_FUNCTIONS = ("replace", "pad", "range", "reduce")
# Lists whose length the text bounds: a path's nodes or relationships, a node's labels or keys.
_BOUNDED_LIST_FUNCTIONS = frozenset({"NODES", "RELATIONSHIPS", "LABELS", "KEYS"})
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|true|false|null", re.IGNORECASE)


def _check_reduce(sig: list[_Tok], k: int, limits: QueryLimits) -> None:
    """``reduce(acc = init, x IN list | step)`` may run unless it can outgrow every limit.

    A reduce cannot write, but FalkorDB evaluates one expression to its end whatever the timeout or the
    memory cap, so these shapes are refused: a step that can double the accumulator (it appears twice,
    ``l + l``; or a comprehension, replace/pad or a nested reduce could copy it); a string or list
    accumulator built over a list whose length the text does not bound, or whose quadratic copying
    (each step copies what was built) would exceed ``max_reduce_work`` units; and over a list only the
    data bounds, a numeric accumulator whose step could add anything but a number (``0 + 'a'`` is
    ``'0a'``: ``reduce(t = 0, x IN collect(n.name) | t + x)`` builds a string as quadratically).
    """
    head, end = _arguments(sig, k)
    shaped = len(head) == 2 and len(head[0]) >= 3 and head[0][1].text == "="
    if not shaped or head[0][0].kind not in ("word", "ident"):
        raise QueryRefused("query refused: write reduce() as reduce(acc = initial, x IN list | expression)")
    acc, init = head[0][0].text, head[0][2:]
    parts, _ = _arguments(head[1] + [_Tok("punct", ")", 0)], 0, ("|",))
    if len(parts) != 2 or len(parts[0]) < 3 or parts[0][1].text.upper() != "IN" or not parts[1]:
        raise QueryRefused("query refused: write reduce() as reduce(acc = initial, x IN list | expression)")
    items, step = parts[0][2:], parts[1]

    uses = sum(1 for i, t in enumerate(step) if t.text == acc and t.kind in ("word", "ident")
               and not (i and step[i - 1].text in (".", "$")))
    named = f"reduce()'s step uses its accumulator {acc}"
    if uses > 1:
        raise QueryRefused(f"query refused: {named} {uses} times, which can double it every step, past every "
                           f"time and memory limit; use it once ({acc} + x, or {acc} + CASE WHEN … THEN x "
                           "ELSE 0 END)")
    for i, t in enumerate(step):
        calls = i + 1 < len(step) and step[i + 1].text == "("
        comprehension = t.text == "[" and i + 2 < len(step) and (
            step[i + 1].text == "(" or step[i + 2].text.upper() == "IN")
        if comprehension or (calls and t.kind == "word" and any(f in t.text.lower()
                                                                for f in _MULTIPLYING_FUNCTIONS)):
            what = "a list comprehension" if comprehension else f"{t.text}()"
            raise QueryRefused(f"query refused: reduce()'s step may not use {what}: it can multiply the "
                               "accumulator's size every step, past every time and memory limit")

    numeric = _NUMBER.fullmatch("".join(t.text for t in init)) is not None
    length = _bounded_length(items, limits.max_range)
    if numeric and length is None:
        if _adds_only_numbers(step, acc):
            return  # a number stays a number: one step costs the same at the millionth item as at the first
        raise QueryRefused(f"query refused: reduce() over collected values may add only numbers to {acc} (a "
                           "number plus a string is a string here, and building one over the data's values "
                           "can outrun the time limit): wrap each value in toFloat() or toInteger(), or use "
                           "sum()")
    if numeric and not any(t.kind == "string" or t.text in ("[", "{") for t in step):
        return  # a number stays a number over a list the text bounds
    if length is None:
        raise QueryRefused("query refused: reduce() builds a string or list here, so it must iterate over "
                           "range(), a list literal, or nodes()/relationships() of a path (over collected "
                           "values the database could not stop it in time); for strings use a join function, "
                           "for lists collect()")
    # What one step may add: a list item per comma-separated term (100 units: FalkorDB copies an item in
    # ~30 ns) and a character per character of string literals (1 unit: strings copy at memcpy speed).
    growth = 100 * (1 + sum(t.text == "," for t in step))
    growth += sum(len(t.text) for t in step if t.kind == "string")
    work = length * length * growth // 2  # every step copies what the steps before it built
    if work > limits.max_reduce_work:
        raise QueryRefused(f"query refused: reduce() would copy about {work:,} units building its value over "
                           f"{length} items (each step copies what was built; a list item counts 100, a "
                           f"character 1), the limit is {limits.max_reduce_work:,}; iterate over fewer items "
                           "or add less per step")


# Functions that return a number (or null, or fail) whatever their arguments.
_NUMERIC_FUNCTIONS = frozenset({
    "TOINTEGER", "TOFLOAT", "TOINTEGERORNULL", "TOFLOATORNULL", "SIZE", "LENGTH", "CHAR_LENGTH",
    "CHARACTER_LENGTH", "ABS", "CEIL", "FLOOR", "ROUND", "SIGN", "SQRT", "EXP", "LOG", "LOG10", "POW", "RAND",
    "E", "PI", "ID", "SIN", "COS", "TAN", "COT", "ASIN", "ACOS", "ATAN", "ATAN2", "DEGREES", "RADIANS",
    "HAVERSIN", "TIMESTAMP", "INDEGREE", "OUTDEGREE",
})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "(", ")"})


def _adds_only_numbers(step: list[_Tok], acc: str) -> bool:
    """True when ``step`` can only make a number out of a numeric ``acc``: the accumulator, number literals,
    null, arithmetic, numeric function calls (whatever their arguments) and CASE whose results are such
    (its conditions may hold anything). Conservative: ``t + x`` over numbers is False (``t + toFloat(x)``)."""
    cases: list[str] = []  # each open CASE: "cond" (its subject or a WHEN condition) or "value"
    k = 0
    while k < len(step):
        t = step[k]
        word = t.text.upper() if t.kind == "word" else ""
        free = "cond" in cases  # inside a condition anything goes: its value never reaches the accumulator
        calls = k + 1 < len(step) and step[k + 1].text == "("
        if word == "CASE":
            cases.append("cond")
        elif word in ("WHEN", "THEN", "ELSE") and cases:
            cases[-1] = "cond" if word == "WHEN" else "value"
        elif word == "END" and cases:
            cases.pop()
        elif free:
            pass
        elif word in _NUMERIC_FUNCTIONS and calls:
            k = _arguments(step, k + 2)[1]  # past its closing bracket: the arguments may be anything
        elif not ((t.kind == "word" and (t.text == acc or t.text[:1].isdigit() or word == "NULL"))
                  or (t.kind == "punct" and t.text in _ARITHMETIC)
                  or (t.text == "." and k + 1 < len(step) and step[k + 1].text[:1].isdigit())):
            return False
        k += 1
    return not cases


_QUANTIFIERS = frozenset({"ANY", "ALL", "NONE", "SINGLE"})
_LIST_END = frozenset({"WHERE", "|"})
_MEMBERSHIP_END = frozenset({"AND", "OR", "XOR", ",", "|", "WHERE", "WHEN", "THEN", "ELSE", "END"})
SMALL_LIST = 1000
"""A list the text spells out (a literal, a small range) may be searched once per item of another."""


def _check_nested_iterations(sig: list[_Tok], limits: QueryLimits) -> None:
    """Refuse a data-sized list (``_data_sized``) searched or iterated once per item of another:
    ``[x IN xs WHERE x IN ys]``, ``[x IN xs | size([y IN xs WHERE y = x])]``, ``any(…)`` or ``reduce(…)``
    the same way.

    FalkorDB evaluates one expression to its end whatever the timeout, so over two collected lists this
    compares every pair inside one row (31,000 collected nodes: 40 s against a 2 s limit). When either
    list is small or the item's own (``ALL(c IN ['a', 'b'] WHERE c IN categories)``, ``x IN n.tags``) the
    work stays linear and the query runs.
    """
    # open brackets: (iteration variable or "", where its body starts, whether its list is data-sized)
    frames: list[tuple[str, int, bool]] = []
    k = 0
    while k < len(sig):
        t = sig[k]
        text = t.text if t.kind == "punct" else ""
        if text in ("(", "[", "{"):
            frames.append(("", len(sig), False))
        elif text in (")", "]", "}"):
            if frames:
                frames.pop()
        elif t.kind == "word" and t.text.upper() == "IN" and k:
            enclosing = {var for var, body, _ in frames if var and k >= body}
            outer = {var for var, body, big in frames if var and k >= body and big}
            head = _iteration_head(sig, k, frames)
            start = k + 1
            end = _expression_end(sig, start, _LIST_END if head else _LIST_END | _MEMBERSHIP_END)
            big = _data_sized(sig[start:end], enclosing, limits)
            if outer and big:
                what = "iterates over" if head else "searches"
                raise QueryRefused(f"query refused: it {what} {_spelled(sig[start:end])} once for every "
                                   f"{' and '.join(sorted(outer))}, inside one expression, which the "
                                   "database runs to its end past the time limit; MATCH or UNWIND one of "
                                   "the lists instead, so that each pair is a row")
            if head and frames:
                frames[-1] = (sig[k - 1].text, end, big)
        k += 1


def _spelled(tokens: list[_Tok]) -> str:
    """Tokens back as text (a space only between two words), at most 60 characters."""
    out = ""
    for i, t in enumerate(tokens):
        spaced = i and {t.kind, tokens[i - 1].kind} <= {"word", "ident", "string"}
        out += (" " if spaced else "") + t.text
    return out if len(out) <= 60 else out[:57] + "…"


def _iteration_head(sig: list[_Tok], k: int, frames: list[tuple[str, int, bool]]) -> bool:
    """True when the ``IN`` at ``k`` starts an iteration (``[x IN``, ``any(x IN``, ``reduce(s = 0, x IN``)."""
    if k < 2 or sig[k - 1].kind not in ("word", "ident") or not frames:
        return False
    before = sig[k - 2].text
    if before == "[":
        return True
    if before == "(" and k >= 3 and sig[k - 3].text.upper() in _QUANTIFIERS:
        return True
    return before == "," and _opened_by(sig, k - 2) == "REDUCE"


def _opened_by(sig: list[_Tok], k: int) -> str:
    """The word just before the bracket that encloses ``k`` (upper-case; "" when none)."""
    depth = 0
    for i in range(k - 1, -1, -1):
        text = sig[i].text if sig[i].kind == "punct" else ""
        if text in (")", "]", "}"):
            depth += 1
        elif text in ("(", "[", "{"):
            if depth == 0:
                return sig[i - 1].text.upper() if i and sig[i - 1].kind == "word" else ""
            depth -= 1
    return ""


def _expression_end(sig: list[_Tok], k: int, stops: frozenset[str]) -> int:
    """Where the expression from ``k`` ends: at a top-level word or mark in ``stops`` or a closing bracket."""
    depth = 0
    while k < len(sig):
        text = sig[k].text.upper() if sig[k].kind in ("word", "punct") else ""
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            if depth == 0:
                return k
            depth -= 1
        elif depth == 0 and text in stops:
            return k
        k += 1
    return k


def _data_sized(items: list[_Tok], enclosing: set[str], limits: QueryLimits) -> bool:
    """True when the list ``items`` can be as long as the data and is the same for every item of the
    iterations over ``enclosing``: a list the query built (``collect``, a variable holding one) or a
    parameter; not the items' own data, a stored property list, a path's nodes, labels or keys, or a list
    the text spells out with at most ``SMALL_LIST`` values."""
    if not items:
        return False
    if items[0].text.upper() in _BOUNDED_LIST_FUNCTIONS:
        return False
    length = _bounded_length(items, limits.max_range)
    if length is not None:
        return length > SMALL_LIST
    for i, t in enumerate(items):
        if t.kind not in ("word", "ident"):
            if t.text == "$":
                return True
            continue
        after_dot = i and items[i - 1].text in (".", ":", "$")
        nxt = items[i + 1].text if i + 1 < len(items) else ""
        if after_dot or nxt == "(" or t.text[:1].isdigit() or t.text.upper() in ("NULL", "TRUE", "FALSE"):
            continue
        if t.text in enclosing:
            return False  # the item's own data: x.tags, nodes(x)
        if nxt != ".":
            return True  # a variable holding a list the query built
    return False


def _bounded_length(items: list[_Tok], max_range: int) -> int | None:
    """How long the list a reduce iterates can be when the text says (None when only the data knows)."""
    if len(items) >= 3 and items[0].text.upper() == "RANGE" and items[1].text == "(":
        args, end = _arguments(items, 2)
        return _range_size(args, max_range) if end == len(items) - 1 else None
    if items and items[0].text.upper() in _BOUNDED_LIST_FUNCTIONS and len(items) > 1 and items[1].text == "(":
        return max_range  # a path as long as a range may be
    if items and items[0].text == "[" and items[-1].text == "]":
        inner, end = _arguments(items, 1)
        if end == len(items) - 1 and not (len(inner[0]) > 1 and inner[0][1].text.upper() == "IN"):
            return len(inner)
    return None


def _int_literal(parts: list[str]) -> int | None:
    text = "".join(parts)
    return int(text) if re.fullmatch(r"[+-]?\d{1,18}", text) else None
