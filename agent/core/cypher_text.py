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
