"""Which retrieved examples a question is shown (pure): the few-shot selection rule.

The feedback store hands back the verified examples most similar to the question (cosine of the question
embeddings, above ``few_shot_min_similarity``). A small model copies what it is shown — the example's
literals, its filters, its properties — so similarity of wording alone is not enough. An example is shown
only when:

- **its query fits the live schema**: every label, relationship type (and direction) and property key it
  uses exists now (``schema_check.check_cypher`` without repairs). An example written before the schema
  changed, or one whose author used a property the graph does not have, teaches the model a name that
  cannot answer anything;
- **its literals are the question's**: every string literal of its query, and every number, occurs in the
  question (numbers also as the words one … twenty; a ``LIMIT 1`` also when the question asks for a
  "most …", "… -est" or "top" one). An example about 'V for Vendetta' or born after 1960 makes the model
  answer about 'V for Vendetta' or born after 1960, whatever the question said;
- **it names no property the question does not**: no property of its query is named by the example's own
  question and not by the asked one (a property is named when every word of its key, split at camelCase and
  underscores, prepositions aside, occurs in the question, words compared by their Snowball stems:
  "countries" names ``country``, "shipped cities" ``shipCity``). An example about "units on order" makes
  the model sort "units in stock" by ``unitsOnOrder``. A property a question implies without naming it (a
  title, the price of "the most expensive") does not count: the asked question implies it as much as the
  example's. Relationship types are left out: on movies' choose half the examples the same check on types
  drops ("directed and acted in" shown for "written and directed") had turned two answers right, one wrong;
- **it is corroborated or a paraphrase**: examples are shown only when at least two pass the rules above, or
  when the one that passes is a paraphrase of the question (similarity at least ``PARAPHRASE``, 0.9). One
  merely similar example is one author's way of writing another question, and the model copies it whole: its
  projection (``RETURN m.title, p.name`` for "which movies"), its entity ("the most reviewed movies" for "the
  people who reviewed the most movies"), its aggregate ("number of products" for "average units in stock").

Measured on the dev sets' choose halves (docs/BENCHMARKS.md 7): the examples that turned right answers
wrong carried another entity's literal, another question's filter or LIMIT, a property the live schema
lacks, or another property than the one the question asks about; of the examples still shown after 100
approvals, each that turned a right answer wrong (four) was alone and below 0.9, while the examples shown in
pairs or threes turned none wrong.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

import snowballstemmer

from agent.core.cypher_text import tokenize
from agent.core.prompt import Example
from agent.graphdb.base import GraphSchema
from agent.schema_check import check_cypher, used_names

NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
    ))
}
"""Numbers a question spells out ("the top three …")."""

_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_QUESTION_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SUPERLATIVE = re.compile(r"\b(?:most|least|top|\w{3,}est)\b", re.IGNORECASE)
"""Question words that ask for the one first row: "the most …", "the cheapest …", "the top …"."""
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
"""A word of a question or of an identifier: ``unitsOnOrder`` → units, On, Order; ``PART_OF`` → PART, OF."""
_GLUE = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "per", "from", "with", "into", "over",
    "under", "about", "as", "and", "or", "is", "are", "has", "have",
})
"""Words that do not name anything on their own (``unitsOnOrder`` is named by "units" and "order")."""
_STEMMER = snowballstemmer.stemmer("english")
PARAPHRASE = 0.9
"""Similarity (cosine of the question embeddings) at which one example may be shown alone: on the dev sets'
choose halves the lone examples at 0.90-0.97 turned two answers right and none wrong, those at 0.80-0.90
four wrong and two right."""


def literals(cypher: str) -> tuple[list[str], list[tuple[str, bool]]]:
    """The query's string literals (unquoted) and its numbers, each with whether it is a LIMIT's or a SKIP's
    count."""
    strings: list[str] = []
    numbers: list[tuple[str, bool]] = []
    prev = ""
    toks = [t for t in tokenize(cypher) if t.kind not in ("ws", "comment")]
    for i, t in enumerate(toks):
        if t.kind == "string":
            strings.append(t.text[1:-1])
        elif t.kind == "word" and _NUMBER.match(t.text):
            after_dot = i > 0 and toks[i - 1].text == "." and i > 1 and toks[i - 2].kind == "word" \
                and _NUMBER.match(toks[i - 2].text)
            if after_dot:
                continue  # the decimal part of 1.5, read with its integer part below
            text = t.text
            if i + 2 < len(toks) and toks[i + 1].text == "." and _NUMBER.match(toks[i + 2].text):
                text = f"{t.text}.{toks[i + 2].text}"
            numbers.append((text, prev in ("LIMIT", "SKIP")))
        prev = t.text.upper() if t.kind == "word" else ""
    return strings, numbers


def _question_numbers(question: str) -> set[str]:
    found = {m.group(0).replace(",", "") for m in _QUESTION_NUMBER.finditer(question)}
    found |= {NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", question.lower()) if w in NUMBER_WORDS}
    for decade in re.findall(r"\b(\d{2,3}0)'?s\b", question):  # "the 1960s": 1960 to 1969, or < 1970
        found |= {decade, str(int(decade) + 9), str(int(decade) + 10)}
    return found | {n.rstrip("0").rstrip(".") for n in found if "." in n}


def foreign_literal(example: Example, question: str) -> str | None:
    """The first literal of the example's query that the question does not contain, or None."""
    text = " ".join(question.lower().split())
    strings, numbers = literals(example.cypher)
    for s in strings:
        if " ".join(s.lower().split()) not in text:
            return repr(s)
    asked = _question_numbers(question)
    for n, is_limit in numbers:
        if n in asked or (is_limit and n == "1" and _SUPERLATIVE.search(question)):
            continue
        return n
    return None


@functools.lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def words(text: str) -> frozenset[str]:
    """The naming words of a question or an identifier, as stems (lower case), prepositions and articles
    aside."""
    return frozenset(_stem(w) for w in (w.lower() for w in _WORD.findall(text)) if w not in _GLUE)


def foreign_name(example: Example, question: str) -> str | None:
    """The first property of the example's query that its own question names and ``question`` does not, or
    None."""
    _, props = used_names(example.cypher)
    own, asked = words(example.question), words(question)
    for name in sorted(props):
        needed = words(name)
        if needed and needed <= own and not needed <= asked:
            return name
    return None


def why_not_shown(example: Example, question: str, schema: GraphSchema | None) -> str | None:
    """Why ``example`` must not be shown for ``question`` (one line), or None when it may be."""
    if schema is not None:
        check = check_cypher(example.cypher, schema, repair=False)
        if check.errors or check.fixes:  # a fix without repairs: an arrow the schema has the other way round
            return f"does not fit the live schema: {(check.errors or check.fixes)[0]}"
    lit = foreign_literal(example, question)
    if lit is not None:
        return f"its query has {lit}, which the question does not"
    name = foreign_name(example, question)
    if name is not None:
        return f"its question names {name!r}, which the question does not"
    return None


def select_examples(
    question: str,
    candidates: Iterable[Example],
    schema: GraphSchema | None,
    k: int,
    is_paraphrase: Callable[[Example], bool] = lambda _: False,
) -> list[Example]:
    """The first ``k`` of ``candidates`` (best first) that may be shown for ``question``: none when only one
    passes the rules and ``is_paraphrase`` (asked of that one only) says it is not one of the question."""
    kept = [ex for ex in candidates if why_not_shown(ex, question, schema) is None]
    if len(kept) == 1 and not is_paraphrase(kept[0]):
        return []
    return kept[:k]
