"""English questions from query structures (``grammar.Query``), with many surface forms per construct.

A question is a *frame* (what is asked: "How many …?", "List the …", "Which 3 … have the most …?")
around noun phrases built recursively from the query's tree: a node's noun (or a synonym), its
filters as post-modifiers ("released after 2000", "whose title contains 'Matrix'", "from Germany"),
and its hops as relative clauses ("that Tom Hanks acted in", "directed by people born before 1950",
"who supply products in the Beverages category"). Property names come as words ("unit price"), as
quoted identifiers ('unitPrice') or bare identifiers; values with or without quotes; numbers and
dates as people write them. Every choice is drawn from the renderer's seeded RNG, so no wording of
one construct is tied to another.
"""

from __future__ import annotations

import random
import re
from typing import Any

from finetune.synth.english import (
    PLACE_LABELS,
    Noun,
    Verb,
    article,
    cap,
    demonym,
    fits,
    flag_verb,
    hop_role,
    is_adjacency,
    is_containment,
    is_plural,
    is_rank_one,
    plural,
    role_noun,
    say_big,
    say_date,
    say_half,
    say_month,
    say_num,
    singular,
)
from finetune.synth.grammar import (
    COORDINATE_WORDS,
    Exists,
    Filter,
    Hop,
    Query,
    Ref,
    _bare,
    _some_end,
    compile_cypher,
    expr,
    owned_noun,
)
from finetune.synth.profile import Prop

AGG_WORDS = {
    "avg": ["average", "average", "mean"],
    "sum": ["total", "total", "combined", "sum of the"],
    "min": ["minimum", "lowest", "smallest"],
    "max": ["maximum", "highest", "largest"],
}
_OTHER_AGG_WORD = {"total": "combined", "average": "mean", "mean": "average", "maximum": "highest",
                   "highest": "maximum", "largest": "maximum", "minimum": "lowest", "lowest": "minimum",
                   "smallest": "minimum"}
"""Another word for an aggregate whose property starts with the word drawn (a property named "total")."""
POLITE = [
    "Can you tell me {q}",
    "Could you tell me {q}",
    "I'd like to know {q}",
    "Please tell me {q}",
    "I want to know {q}",
]
POLITE_IMPERATIVE = ["Please {q}", "Can you {q}", "Could you {q}", "I need you to {q}"]


VERBOSE_P = 0.1
"""How often a question is asked the long, chatty way: a sentence of context before it ("I'm putting together
a report on our suppliers."), the question as a request ("I'd like a list of …", "Could you tell me …") and
an instruction about the answer after it ("- just the names, please.", "together with their population").
About 8 % of the public dev sets' questions (movies, northwind) are asked so; until 2026-12-04 no generated
question was (only 4 % wore a short polite form), and a model trained on them answered none of 14 such
questions on the held-out countries graph. A little above the dev sets' share: a few verbose renderings
repeat a question already kept and are dropped."""

VERBOSE_CONTEXT_P = 0.75
"""How often a verbose question opens with a sentence of context (of the query's own schema words)."""

VERBOSE_REQUEST_P = 0.5
"""How often a verbose question is put as a request ("I'd like to know …", "I need a list of …")."""

VERBOSE_INSTRUCTION_P = 0.7
"""How often a verbose question whose RETURN can be said truthfully ends with an instruction about it."""

CONTEXT_ONE = [
    "I'm looking into {things}.",
    "Quick question about the {things} in our data.",
    "For a report on {things}:",
    "I'm putting together a report on our {things}.",
    "I've got a question about {things}.",
    "I'm working on something about {things}.",
    "Question about the {things}:",
    "Hi, I need some help with the {things} in the database.",
    "I'm trying to learn more about {things}.",
    "This is for a project on {things}.",
    "Our database has a lot of {things} in it.",
    "We track {things} in this graph.",
    "I've been going through the {things} data.",
    "Some context: I'm analysing {things}.",
    "Hello! I'm curious about {things}.",
    "I'm preparing a summary of the {things} we have.",
    "Working on {things} today.",
    "So I have this dataset of {things}.",
]
"""Context sentences about the query's focus ({things}: its label's plural noun)."""

CONTEXT_TWO = [
    "We keep a database of {things} and {others}.",
    "I'm looking at how {things} and {others} are connected.",
    "My data has {things} and {others} in it.",
    "I'm studying {things} and their links to {others}.",
    "Quick one about {things} and {others}.",
    "For a report on {things} and {others}:",
    "The graph I'm using has {others} as well as {things}.",
    "I work with data on {others} and {things}.",
]
"""Context sentences about the focus and another label of the query ({others})."""

CONTEXT_PROP = [
    "I'm interested in the {prop} of {things}.",
    "I'm comparing {things} by {prop}.",
    "I have a question about {things} and their {prop}.",
    "For some analysis of {prop} across {things}:",
    "I've been looking at the {prop} of our {things}.",
    "Something about {prop} and {things}.",
]
"""Context sentences about a property the query filters, returns, aggregates or orders by ({prop})."""

CONTEXT_ROLE = [
    "I'm looking into {roles}.",
    "Question about {roles} in our data.",
    "I'm writing something about {roles}.",
]
"""Context sentences naming the focus by the role a relationship out of it gives ("actors", "directors")."""

CONTEXT_OWNED = [
    "I'm looking into {things} and their {roles}.",
    "A question about {things} and who their {roles} are.",
    "We have {things} and their {roles} in the database.",
]
"""Context sentences naming the focus with the role of the nodes that come into it ("movies and their
directors")."""

ASK_REQUEST = [
    "I'd like to know {q}",
    "I want to know {q}",
    "Can you tell me {q}",
    "Could you tell me {q}",
    "Could you find out {q}",
    "Do you know {q}",
    "I need to know {q}",
    "I was wondering {q}",
    "Please tell me {q}",
    "Can you check {q}",
]
"""A question asked as a request (the question's own words after it)."""

DO_REQUEST = [
    "Please {q}",
    "Can you {q}",
    "Could you {q}",
    "I need you to {q}",
    "I'd like you to {q}",
    "Would you {q}",
    "Could you please {q}",
    "Can you please {q}",
]
"""An imperative asked as a request."""

WANT_HEADS = [
    (
        re.compile(r"^(?:List|Give me a list of) (?:the |all )?(?!each )"),  # not "a list of the each city"
        ["I'd like a list of the ", "I need a list of the ", "I want a list of the "],
    ),
    (
        re.compile(r"^(?:Give me|Show me|Show|Display|Retrieve|Return) the "),
        ["I'd like the ", "I need the ", "I want to see the ", "Could I get the ", "I'd like to see the "],
    ),
    (
        re.compile(r"^What (?:is|are) the "),
        ["I need the ", "I'd like the ", "I'm after the ", "I need to know the "],
    ),
]
"""A question's head said as what the asker wants ("List the …" → "I'd like a list of the …")."""

INSTRUCTIONS = {
    "count": [
        "just the number",
        "only the count",
        "a number is enough",
        "I only need the count",
        "just the total, please",
        "no need to list them",
        "don't list them, just count",
        "a single number is fine",
        "just how many",
    ],
    "names": [
        "just the {keys}, please",
        "only their {keys}",
        "{keys} only",
        "I only need the {keys}",
        "just give me the {keys}",
        "the {keys} are enough",
        "just list the {keys}",
        "nothing but the {keys}",
        "only the {keys} please",
    ],
    "name": [
        "just the {key}, please",
        "only the {key}",
        "{key} only",
        "I only need the {key}",
        "just give me the {key}",
        "the {key} is enough",
    ],
    "extra": [
        "together with their {props}",
        "and show their {props} too",
        "with their {props} as well",
        "and include the {props}",
        "also give me their {props}",
        "please include their {props}",
        "along with their {props}",
        "and add the {props} of each",
    ],
}
"""Instructions about the answer, by what the query's RETURN holds: one count ("count"), a name-like key alone
("names"; "name" where one row is asked for), the key and properties ("extra", said here and not in the
question). "count" first: ``verbose_parts`` reads "I only need the count" as a count."""


DEMONYM_P = 0.3
"""How often a hop to a place named by its key is said as the place's adjective before the noun ("African
countries" for ``(:Country)-[:IN_CONTINENT]->(:Continent {name: 'Africa'})``). Until 2026-12-03 it never was
(0 of 20,000 countries pairs), and a model trained on them dropped the hop when people used the adjective."""

MAIN_P = 0.5
"""How often an equality with 1 on a rank-like relationship property (rank, priority, order, position) is said
as "main", "primary" or "first" ("countries whose main language is French") rather than "with rank 1"."""
MAIN_WORDS = ["main", "primary", "first"]


BIG_IN_WORDS_P = 0.5
"""How often a round number of millions or billions is said in words ("more than 20 million"), as people write
them: until 2026-12-03 every number was said in digits (1,031 of 20,000 countries pairs compared with a round
million, none in words), and a model trained on them wrote the wrong power of ten for such words."""


SHARED_SCALE_P = 0.5
"""How often a range whose two ends are round numbers of the same scale says the scale once, after the
second ("between 2 and 4 million", "from 1 to 3 billion"), as people write it, when both are said in words.
Until 2026-12-03 both ends always carried it (24 of 20,000 countries pairs said such a range, none with the
word once), and the round-10 model, asked for a range said the short way, wrote its first end without the
scale."""

HALF_IN_WORDS_P = 0.4
"""How often a number halfway between two whole ones (7.5; not a coordinate) is said "7 and a half" or
"seven and a half" rather than in digits. Until 2026-12-03 never (159 of 20,000 countries pairs compared with
such a value, all in digits); the round-8 and round-10 models read a half said in words as a range."""


OWNED_P = 0.6
"""How often a node at the end of a ``HAS_X`` type is said as the X of the node that has it ("the capital of
Australia", "capital cities", "capitals of countries in Africa") rather than by its label's noun and the verb
("the cities that Australia has as capital"; the node that has it is always said by the X: "whose
capital is Canberra", "that have Canberra as their capital"). Until 2026-12-03 it never was (of 1,417
countries pairs through ``HAS_CAPITAL``, "capital of" only in the relcompare frame), and the round-8 model,
asked "What is the capital of Australia?", returned Australia; 4 of the 34 questions it got wrong in the
countries tune half say "capital" that way."""


def _functional(h: Hop) -> bool:
    """Each start node has at most one such relationship in the sample (a country's one capital)."""
    return all(len(edges) <= 1 for edges in h.rel.out.values())


_A_WORD = re.compile(r"\b([Aa]) ([AEIOUaeiou][\w-]*|[A-Z]{2,}\b)")


def _an(m: re.Match[str]) -> str:
    """ "a area" → "an area", "a ISO code" → "an ISO code"; "a unit", "a one-off" stay (the frames put "a"
    before property words they do not know)."""
    return article(m.group(2)).replace("a", m.group(1), 1) if m.group(1) == "A" else article(m.group(2))


def _template_re(template: str) -> str:
    """A template as a regular expression; a slot matches words only."""
    return r"[\w' ]+?".join(re.escape(part) for part in re.split(r"\{\w+\}", template))


_CONTEXT_RE = re.compile(
    "^(?:" + "|".join(_template_re(t) for t in CONTEXT_ONE + CONTEXT_TWO + CONTEXT_PROP + CONTEXT_ROLE
                      + CONTEXT_OWNED) + ") "
)
_INSTRUCTION_RE = {
    kind: re.compile(r"(?:[?.] |, | - | \()(?:" + "|".join(_template_re(t) for t in ts) + r")\)?[?.]$", re.I)
    for kind, ts in INSTRUCTIONS.items()
}


def verbose_parts(question: str) -> tuple[bool, str | None]:
    """Whether a question opens with a verbose context sentence, and the kind of its answer instruction
    ("names", "name", "count", "extra") or None: for the tests and the coverage counts."""
    told = next((k for k, r in _INSTRUCTION_RE.items() if r.search(question)), None)
    return bool(_CONTEXT_RE.match(question)), told


_NAME_WORDS = frozenset(["name", "title"])
_STARTERS = frozenset(
    ["which", "what", "who", "whose", "how", "list", "show", "find", "give", "name", "count", "retrieve"]
    + ["return", "display", "top", "for", "in", "when", "calculate", "tell", "is", "are", "does", "do", "did"]
)

_IMPERATIVES = frozenset(
    ["list", "show", "find", "give", "name", "count", "retrieve", "return", "display", "calculate", "tell"]
)
"""The verbs a question may open with that read after "Could you" or "I need you to"."""


def _lower_first(text: str) -> str:
    """A question's first word in lower case where it is a frame's word ("which", "list"), not a name."""
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first.lower().removesuffix("'s") in _STARTERS else text


def _return_columns(cypher: str) -> list[str]:
    """The columns of a compiled query's last RETURN (without DISTINCT, ORDER BY, LIMIT)."""
    body = cypher[cypher.rfind(" RETURN ") + len(" RETURN ") :]
    body = re.split(r" ORDER BY | LIMIT ", body)[0].removeprefix("DISTINCT ")
    cols, depth, cur = [], 0, ""
    for ch in body:
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            cols.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*cols, cur.strip()]


def answer_shape(q: Query) -> tuple[str, list[Prop]] | None:
    """What a question may truthfully say about its answer, read from the query's RETURN: ("names", [key])
    for a node's name-like key alone, ("count", []) for one count, ("extra", props) for the focus and
    properties of it (the list and first frames, whose question says those properties after it); None for
    anything else."""
    cols = _return_columns(compile_cypher(q))
    if len(cols) == 1 and re.fullmatch(r"count\((DISTINCT )?\w+(\.\w+)?\)( AS \w+)?", cols[0]):
        return "count", []
    if len(cols) == 1:
        for i, n in enumerate(q.nodes):
            key = n.label.key
            named = key is not None and set(key.words.lower().split()) & _NAME_WORDS
            if key is not None and named and cols[0] == expr(q, Ref("node", i, key)):
                return "names", [key]
        return None
    extra = q.returns[1:]
    if (
        q.frame in ("list", "first")
        and q.agg is None
        and all(r.on == "node" and r.index == 0 and r.prop is not None for r in extra)
        and cols == [expr(q, r) for r in q.returns]
    ):
        return "extra", [r.prop for r in extra if r.prop is not None]
    return None


class Renderer:
    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.also_rng = random.Random(f"{seed}:having-also")  # the having frame's second aggregate
        self._nouns: dict[int, Noun] = {}
        self._owned: dict[int, bool] = {}
        self._main: dict[int, bool] = {}
        self._defer_extra = False  # a verbose question says the extra returns in its instruction

    # --- small choices ---------------------------------------------------------------------------
    def pick(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def noun(self, q: Query, i: int) -> Noun:
        if i not in self._nouns:
            base = q.nodes[i].label.noun
            syn = base.synonyms()
            self._nouns[i] = syn[1] if len(syn) > 1 and self.rng.random() < 0.2 else base
        return self._nouns[i]

    def pname(self, p: Prop) -> str:
        """A property as a question names it: "unit price", 'unitPrice' or unitPrice."""
        r = self.rng.random()
        if r < 0.72 or p.words == p.name:
            return p.words
        return f"'{p.name}'" if r < 0.88 else p.name

    def pname_plural(self, p: Prop) -> str:
        return plural(p.words) if self.rng.random() < 0.85 else f"'{p.name}' values"

    def value(self, v: Any, p: Prop | None = None, quote: float = 0.65) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            big = say_big(v)
            if big:
                return big if self.rng.random() < BIG_IN_WORDS_P else say_num(v)
            half = None if p is not None and set(p.words.lower().split()) & COORDINATE_WORDS else say_half(v)
            if half and self.rng.random() < HALF_IN_WORDS_P:  # drawn for such values only
                return say_half(v, words=self.rng.random() < 0.5) or half
            return say_num(v)
        s = str(v)
        if p is not None and p.kind in ("date", "datetext") and len(s) >= 10:
            return say_date(s, self.rng.randrange(3))
        r = self.rng.random()
        if r < quote:
            return f"'{s}'"
        if r < quote + 0.08:
            return f'"{s}"'
        return s

    def value_pair(self, a: Any, b: Any, p: Prop | None = None) -> tuple[str, str]:
        """Two ends of a range said alike: both round millions in words, or both in digits ("from 1100 to 740
        million" reads as millions at both ends)."""
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            return self.value(a, p), self.value(b, p)
        big = say_big(a), say_big(b)
        if big[0] and big[1] and self.rng.random() < BIG_IN_WORDS_P:
            scale = big[0].split()[1]
            if big[1].split()[1] == scale and self.rng.random() < SHARED_SCALE_P:
                return big[0].split()[0], big[1]  # "between 2 and 4 million"
            return big[0], big[1]
        return say_num(a), say_num(b)

    # --- noun phrases ---------------------------------------------------------------------------------
    def anchor(self, q: Query, i: int) -> str:
        """How a question names one entity: "Tom Hanks", "the movie 'The Matrix'", "order 10248"."""
        f = q.anchored(i)
        assert f is not None
        n = self.noun(q, i)
        v = f.value
        if f.prop.kind == "key" and not isinstance(v, (int, float)):
            name = self.value(v, quote=0.45)
            r = self.rng.random()
            if n.person and r < 0.75 or r < 0.45:
                return name
            if r < 0.85:
                if f.prop.name.lower() == "title" and self.rng.random() < 0.5:
                    return f"{self.pick(['the', 'a'])} {n.singular} titled {name}"
                return f"the {n.singular} {name}"
            return self.pick(
                [
                    f"the {n.singular} named {name}",
                    f"the {n.singular} called {name}",
                    f"the {n.singular} with {f.prop.words} {name}",
                ]
            )
        shown = say_num(v) if isinstance(v, (int, float)) else str(v)
        return self.pick(
            [
                f"{n.singular} {shown}",
                f"{n.singular} #{shown}",
                f"the {n.singular} with {self.pname(f.prop)} {shown}",
                f"{n.singular} {self.pname(f.prop)} {shown}",
            ]
        )

    def np(
        self,
        q: Query,
        i: int,
        *,
        plural_: bool = True,
        skip_hop: int | None = None,
        det: str = "",
        mods: bool = True,
        skipped_filters: bool = False,
    ) -> str:
        """The noun phrase of node ``i``: noun + filters + relative clauses for its hops (recursively).

        ``skip_hop`` leaves a hop to the caller, which says its verb; ``skipped_filters`` keeps that hop's
        conditions here ("movies with a rating above 80"), for callers that say the verb without them."""
        if q.anchored(i) is not None:
            return self.anchor(q, i)
        n = self.noun(q, i)
        pre, post = [], []
        if mods:
            for f in q.filters:
                if f.on == "node" and f.index == i:
                    a, b = self.filter_phrase(f, plural_)
                    pre += [a] if a else []
                    post += [b] if b else []
            for e in q.exists:
                if e.node == i:
                    post.append(self.exists_phrase(q, e, plural_))
        role = next((j for j in q.children(i) if j in q.role_hops and j != skip_hop), None)
        owned = self._owned_hop(q, i, skip_hop) if role is None else None
        if owned is not None:  # "capitals of countries in Africa", not "cities that countries … have capital"
            n, of = self._owned_np(q, owned, plural_)
            if of:
                post.insert(0, of)
            role = owned  # said: no relative clause for it below
        elif role is not None:  # "directors (of movies released after 2000)" for "people who directed …"
            h = q.hops[role]
            said = hop_role(h.rel.type, h.rel.verb, h.rel.self_loop)
            c = h.child
            bare = not (
                q.children(c)
                or q.anchored(c) is not None
                or any(f.on == "node" and f.index == c for f in q.filters)
                or any(e.node == c for e in q.exists)
            )
            other = "" if bare else self.np(q, c, plural_=q.anchored(c) is None) + self.hop_filters(q, role)
            tail = self.hop_filters(q, role) if bare else ""
            if bare and tail:
                tail = self.hop_filters(q, role)  # drawn twice, as it always was: the stream stays the seed's
            if said is not None and fits(said, n) is None:
                # a role that names people is no word for things: "countries that use currencies", not
                # "users" (until 2026-12-04, 1.6 % of countries questions called countries users). The label's
                # own noun, not its drawn synonym, which the role hid: paraphrases that were one stay one
                n = q.nodes[i].label.noun
                other = other or q.nodes[c].label.noun.plural + tail
                post.insert(0, f"{n.rel} {h.rel.verb.finite(plural_)} {other}")
            else:
                n = said or n
                if other:
                    post.insert(0, "of " + other)
                elif tail:  # "actors with the role 'Neo'": the condition is still said
                    post.insert(0, tail.strip())
        if skipped_filters and skip_hop is not None and self.hop_filters(q, skip_hop):
            post.insert(0, self.hop_filters(q, skip_hop).strip())
        for j in q.children(i):
            if j in (skip_hop, role):
                continue
            adj = self._place_adjective(q, j)
            if adj and self.rng.random() < DEMONYM_P:  # "African countries", not "countries in Africa"
                pre.append(adj)
            else:
                post.append(self.hop_clause(q, j, plural_))
        head = " ".join([*pre, n.plural if plural_ else n.singular])
        text = " ".join(x for x in [det, head, self._join(post)] if x)
        return text

    def _place_adjective(self, q: Query, j: int) -> str | None:
        """The adjective of the place at the end of hop ``j`` ("African" for a hop to the continent named
        Africa), where the hop is outward through a type that puts the start in the end (IN_CONTINENT,
        LOCATED_IN), to a node of a place label named by its key and nothing else, with no condition on the
        hop; else None. Not for a ``HAS_X`` type or one between nodes of one label
        ("Kenyan countries" are no neighbours of Kenya)."""
        h = q.hops[j]
        c = h.child
        f = q.anchored(c)
        if (
            f is None
            or not h.outward
            or not is_containment(h.rel.type)
            or h.rel.self_loop
            or owned_noun(h.rel) is not None
            or f.prop.kind != "key"
            or not isinstance(f.value, str)
            or q.nodes[c].label.label.lower() not in PLACE_LABELS
            or q.children(c)
            or any(x is not f and x.on == "node" and x.index == c for x in q.filters)
            or any(x.on == "hop" and x.index == j for x in q.filters)
            or any(e.node == c for e in q.exists)
        ):
            return None
        return demonym(f.value)

    def _says_main(self, q: Query, j: int) -> bool:
        """Whether hop ``j``'s condition "rank = 1" is said as "main"/"primary"/"first" (drawn once per
        question and hop, so the clause and its conditions agree)."""
        fs = [f for f in q.filters if f.on == "hop" and f.index == j]
        if not any(is_rank_one(f.prop.name, f.op, f.value) for f in fs):
            return False
        if j not in self._main:
            self._main[j] = self.rng.random() < MAIN_P
        return self._main[j]

    def _main_clause(self, q: Query, j: int, parent_plural: bool) -> str | None:
        """Hop ``j`` with the one condition "rank = 1", said by what the end is to the start: "whose main
        language is French", "with French as their primary language" (outward), "that are the main language
        of Peru" (inward); None where the hop has other conditions or joins nodes of one label."""
        h = q.hops[j]
        fs = [f for f in q.filters if f.on == "hop" and f.index == j]
        if len(fs) != 1 or h.rel.self_loop or not self._says_main(q, j):
            return None
        word = self.pick(MAIN_WORDS)
        x = h.rel.end.noun.singular
        c = h.child
        anchored = q.anchored(c) is not None
        if h.outward:
            if anchored:
                other = self.anchor(q, c)
                their = "their" if parent_plural else "its"
                return self.pick([f"whose {word} {x} is {other}", f"with {other} as {their} {word} {x}"])
            if _bare(q, c) and not any(e.node == c for e in q.exists):  # not "… main language is a language"
                return f"with {article(word)} {x}"
            return f"whose {word} {x} is {article(self.np(q, c, plural_=False))}"
        parent = self.noun(q, h.parent)
        other = self.anchor(q, c) if anchored else article(self.np(q, c, plural_=False))
        return f"{parent.rel} {'are' if parent_plural else 'is'} the {word} {x} of {other}"

    def _owned_hop(self, q: Query, i: int, skip_hop: int | None) -> int | None:
        """A hop into node ``i`` from the node that has it (``HAS_X``), said as X ("capital") with OWNED_P
        (drawn once per question and hop, so every mention of the node reads alike)."""
        for j in q.children(i):
            h = q.hops[j]
            if j == skip_hop or h.outward or owned_noun(h.rel) is None:
                continue
            if j not in self._owned:
                self._owned[j] = self.rng.random() < OWNED_P
            if self._owned[j]:
                return j
        return None

    def _owned_np(self, q: Query, j: int, plural_: bool) -> tuple[Noun, str]:
        """(the noun, its "of …" phrase) for the end of hop ``j`` said as X: "capital" + "of Australia",
        "capitals" + "of countries that …", with a bare owner "capital cities" / "capitals" and no phrase."""
        h = q.hops[j]
        x = owned_noun(h.rel)
        assert x is not None
        c = h.child
        if q.anchored(c) is not None:
            return Noun(x, plural(x)), "of " + self.anchor(q, c)
        if _bare(q, c) and not any(e.node == c for e in q.exists):
            base = self.noun(q, h.parent)
            word = self.pick([x, f"{x} {base.singular}"])
            return Noun(word, plural(word), base.person), ""
        return Noun(x, plural(x)), "of " + self.np(q, c, plural_=True) + self.hop_filters(q, j)

    def _join(self, parts: list[str]) -> str:
        if len(parts) <= 1:
            return "".join(parts)
        return ", ".join(parts[:-1]) + self.pick([" and ", ", and ", " and "]) + parts[-1]

    def hop_clause(self, q: Query, j: int, parent_plural: bool) -> str:
        """The relative clause for hop ``j`` seen from its parent: "who acted in movies …", "directed by
        …"."""
        h = q.hops[j]
        parent = self.noun(q, h.parent)
        v = h.rel.verb
        main = self._main_clause(q, j, parent_plural)
        if main is not None:
            return main
        tail = self.hop_filters(q, j)
        if h.rel.self_loop and is_adjacency(h.rel.type) and self.rng.random() < 0.5:
            # "countries neighbouring France", "countries that are neighbours of France"
            anchored = q.anchored(h.child) is not None
            if anchored or self.rng.random() < 0.5:
                other = self.np(q, h.child, plural_=not anchored)
                are = "are neighbours of" if parent_plural else "is a neighbour of"
                return self.pick([f"neighbouring {other}{tail}", f"{parent.rel} {are} {other}{tail}"])
            one = article(self.np(q, h.child, plural_=False))
            return f"{parent.rel} {'have' if parent_plural else 'has'} {one} as a neighbour{tail}"
        x = owned_noun(h.rel)
        if h.outward and (x is not None or v.owned):  # "whose capital is Oslo", not "that have capital Oslo"
            return self._owner_clause(q, j, x or v.owned, parent_plural) + tail
        if h.outward:
            one = q.anchored(h.child) is None and self.rng.random() < 0.3
            other = self.np(q, h.child, plural_=not one)
            if one:
                other = article(other)
            verb = v.finite(parent_plural) if self.rng.random() < 0.7 else v.perfect(parent_plural)
            return f"{parent.rel} {verb} {other}{tail}"
        child_anchor = q.anchored(h.child) is not None
        other = self.np(q, h.child, plural_=not child_anchor)
        if v.passive and self.rng.random() < 0.5:
            return f"{v.passive} {other}{tail}"
        return f"that {other} {v.finite(not child_anchor)}{tail}"

    def _owner_clause(self, q: Query, j: int, x: str, parent_plural: bool) -> str:
        """The node that has the X, said by it: "whose capital is Canberra", "with Canberra as their capital",
        "with a capital", "whose capital is a city with a population above 2 million"."""
        h = q.hops[j]
        parent = self.noun(q, h.parent)
        have = "have" if parent_plural else "has"
        their = "their" if parent_plural else "its"
        c = h.child
        if q.anchored(c) is not None:
            other = self.anchor(q, c)
            return self.pick(
                [
                    f"whose {x} is {other}",
                    f"with {other} as {their} {x}",
                    f"{parent.rel} {have} {other} as {their} {x}",
                ]
            )
        if _bare(q, c) and not any(e.node == c for e in q.exists):
            return self.pick([f"with {article(x)}", f"{parent.rel} {have} {article(x)}"])
        return f"whose {x} is {article(self.np(q, c, plural_=False))}"

    def hop_filters(self, q: Query, j: int) -> str:
        fs = [f for f in q.filters if f.on == "hop" and f.index == j]
        if not fs:
            return ""
        main = self._says_main(q, j)
        return " " + self._join([self._hop_filter_phrase(q, j, f, main) for f in fs])

    def _hop_filter_phrase(self, q: Query, j: int, f: Filter, main: bool) -> str:
        if main and is_rank_one(f.prop.name, f.op, f.value):  # "… speak French as the main language"
            return f"as the {self.pick(MAIN_WORDS)} {q.hops[j].rel.end.noun.singular}"
        return self.filter_phrase(f, True)[1] or ""

    def exists_phrase(self, q: Query, e: Exists, plural_: bool) -> str:
        n = q.nodes[e.node].label.noun
        other = (e.rel.end if e.outward else e.rel.start).noun
        v = e.rel.verb
        x = owned_noun(e.rel)
        if x is not None:  # "without a capital", "that are not capitals", not "that no country has capital"
            return self._owned_exists(e, x, n, other, plural_)
        if e.outward:
            if e.negated:
                return self.pick(
                    [
                        f"{n.rel} {v.negated(plural_)} any {other.plural}",
                        f"{n.rel} {'have' if plural_ else 'has'} never {v.participle or v.base} any "
                        f"{other.singular}"
                        if not v.copula
                        else f"{n.rel} {v.negated(plural_)} any {other.singular}",
                    ]
                )
            return self.pick(
                [
                    f"{n.rel} {v.finite(plural_)} at least one {other.singular}",
                    f"{n.rel} {v.perfect(plural_)} some {other.plural}",
                ]
            )
        if e.negated:
            opts = [f"that no {other.singular} {v.finite(False)}"]
            if v.passive:
                opts.append(f"that {'have' if plural_ else 'has'} never been {v.passive[:-3]}")
            return self.pick(opts)
        opts = [f"that at least one {other.singular} {v.finite(False)}"]
        if v.passive:
            opts.append(f"that {'have' if plural_ else 'has'} been {v.passive} at least one {other.singular}")
        return self.pick(opts)

    def _owned_exists(self, e: Exists, x: str, n: Noun, other: Noun, plural_: bool) -> str:
        """A ``HAS_X`` relationship present or absent, said by X: "with a capital" / "that have no capital"
        for its start, "that are capitals" / "that are not the capital of any country" for its end."""
        have, are = ("have", "are") if plural_ else ("has", "is")
        xs = plural(x) if plural_ else article(x)
        if e.outward:
            if e.negated:
                return self.pick([f"without {article(x)}", f"with no {x}", f"{n.rel} {have} no {x}"])
            return self.pick([f"with {article(x)}", f"{n.rel} {have} {article(x)}"])
        if e.negated:
            return self.pick(
                [f"{n.rel} {are} not {xs}", f"{n.rel} {are} not the {x} of any {other.singular}",
                 f"{n.rel} {are} no {other.singular}'s {x}"]
            )
        return self.pick([f"{n.rel} {are} {xs}", f"{n.rel} {are} the {x} of some {other.singular}"])

    def filter_phrase(self, f: Filter, plural_: bool) -> tuple[str, str]:
        """(pre-modifier, post-modifier) for a filter; one of them is empty."""
        p, op, rng = f.prop, f.op, self.rng
        pn = self.pname(p)
        part = p.participle if p.participle and rng.random() < 0.75 else ""
        have = "have" if plural_ else "has"
        their = "their" if plural_ else "its"
        if op in ("true", "false"):
            return self._flag_phrase(f, pn, "are" if plural_ else "is")
        if op in ("null", "notnull"):
            return "", self._presence_phrase(op, pn, have)
        if op == "decade":
            return "", self._decade_phrase(f, pn, part)
        if op in ("has", "size"):
            return "", self._list_phrase(f, pn, their)
        if p.kind in ("date", "datetext"):
            return "", self._date_phrase(f, pn, part)
        if p.kind in ("number", "numtext"):
            return "", self._number_phrase(f, pn, part, plural_)
        v = self.value(f.value, p)  # drawn for every op below, "in" too: the random sequence stays the seed's
        if op in ("eq", "ne", "in"):
            return "", self._value_phrase(f, pn, v)
        q = f"'{f.value}'" if rng.random() < 0.85 else f'"{f.value}"'
        return "", self._text_phrase(op, pn, q, their)

    def _flag_phrase(self, f: Filter, pn: str, be: str) -> tuple[str, str]:
        """A boolean property: "active customers", "products that are not discontinued", "time zones that
        observe DST" (a verb's name, ``flag_verb``)."""
        words = f.prop.words.split()
        adj = " ".join(words[1:]) if words[0] in ("is", "has") and len(words) > 1 else f.prop.words
        verb = flag_verb(f.prop.words)
        if verb is not None:  # the same draws as an adjective's
            does = verb[1] if be == "are" else verb[0]
            if f.op == "true":
                return self.pick([("", f"that {does}"), ("", f"that {does}"), ("", f"that {does}"),
                                  ("", f"where {pn} is true")])  # type: ignore[list-item]
            do = "do" if be == "are" else "does"
            return self.pick([("", f"that {do} not {verb[1]}"), ("", f"that {do} not {verb[1]}"),
                              ("", f"where {pn} is false")])  # type: ignore[list-item]
        if f.op == "true":
            return self.pick(
                [
                    (adj, ""),
                    ("", f"that {be} {adj}"),
                    ("", f"marked as {adj}"),
                    ("", f"where {pn} is true"),
                ]
            )  # type: ignore[list-item]
        return self.pick(
            [("", f"that {be} not {adj}"), ("", f"not marked as {adj}"), ("", f"where {pn} is false")]
        )  # type: ignore[list-item]

    def _presence_phrase(self, op: str, pn: str, have: str) -> str:
        """A property missing ("without a phone") or set ("with a phone")."""
        if op == "null":
            return self.pick(
                [
                    f"without a {pn}",
                    f"with no {pn}",
                    f"that {have} no {pn}",
                    f"whose {pn} is missing",
                    f"with an unknown {pn}",
                    f"where the {pn} is not set",
                ]
            )
        return self.pick(
            [
                f"with a {pn}",
                f"that {have} a {pn}",
                f"whose {pn} is known",
                f"with a {pn} on record",
                f"where {pn} is set",
                f"with a {pn} listed",
            ]
        )

    def _decade_phrase(self, f: Filter, pn: str, part: str) -> str:
        """A year in a decade: "released in the 1990s", "with a birth year in the '80s"."""
        d = int(f.value)
        decade = self.pick([f"the {d}s", f"the {d}s", f"the '{str(d)[2:]}s", f"the {str(d)[2:]}s"])
        if part:
            return self.pick([f"{part} in {decade}", f"{part} during {decade}"])
        return self.pick([f"with a {pn} in {decade}", f"whose {pn} falls in {decade}"])

    def _list_phrase(self, f: Filter, pn: str, their: str) -> str:
        """A list property: one value among it (``has``) or its length (``size``)."""
        p = f.prop
        if f.op == "has":
            v = self.value(f.value, p, quote=0.85)
            return self.pick(
                [
                    f"with {v} among {their} {self.pname_plural(p)}",
                    f"whose {pn} include {v}",
                    f"with {v} in {their} {pn}",
                    f"where {pn} contains {v}",
                ]
            )
        cmp, n = f.value
        many = "exactly" if cmp == "=" else "more than"
        return self.pick(
            [
                f"with {many} {n} {self.pname_plural(p) if n != 1 else p.words}",
                f"whose number of {self.pname_plural(p)} is {'more than ' if cmp == '>' else ''}{n}",
            ]
        )

    def _value_phrase(self, f: Filter, pn: str, v: str) -> str:
        """Equal to a value, not equal to it, or one of several (``eq``, ``ne``, ``in``); ``v`` is the value
        as said."""
        p, op, rng = f.prop, f.op, self.rng
        if op == "eq":
            if p.is_location and rng.random() < 0.6:
                return self.pick([f"from {v}", f"in {v}", f"located in {v}", f"based in {v}"])
            return self.pick(
                [
                    f"whose {pn} is {v}",
                    f"with {pn} {v}",
                    f"with a {pn} of {v}",
                    f"with the {pn} {v}",
                    f"where the {pn} is {v}",
                    f"having {pn} {v}",
                ]
            )
        if op == "ne":
            if p.is_location and rng.random() < 0.5:
                return self.pick([f"not from {v}", f"outside {v}", f"not located in {v}"])
            return self.pick(
                [f"whose {pn} is not {v}", f"with a {pn} other than {v}", f"where the {pn} isn't {v}"]
            )
        vals = [self.value(x, p) for x in f.value]
        listed = ", ".join(vals[:-1]) + self.pick([" or ", " or ", ", or "]) + vals[-1]
        if p.is_location and rng.random() < 0.5:
            return self.pick([f"from {listed}", f"in {listed}", f"located in either {listed}"])
        return self.pick(
            [
                f"whose {pn} is {listed}",
                f"with {pn} {listed}",
                f"with a {pn} of either {listed}",
                f"whose {pn} is one of {', '.join(vals)}",
            ]
        )

    def _text_phrase(self, op: str, pn: str, q: str, their: str) -> str:
        """Text that contains, starts with or ends with ``q`` (the quoted fragment)."""
        if op == "contains":
            return self.pick(
                [
                    f"whose {pn} contains {q}",
                    f"with {q} in {their} {pn}",
                    f"with a {pn} containing {q}",
                    f"whose {pn} includes {q}",
                    f"with a {pn} that mentions {q}",
                    f"whose {pn} has the word {q} in it",
                ]
            )
        if op == "starts":
            return self.pick(
                [
                    f"whose {pn} starts with {q}",
                    f"with a {pn} beginning with {q}",
                    f"whose {pn} begins with {q}",
                    f"with a {pn} starting with {q}",
                ]
            )
        if op == "ends":
            return self.pick(
                [f"whose {pn} ends with {q}", f"with a {pn} ending in {q}", f"whose {pn} ends in {q}"]
            )
        raise ValueError(op)

    def _number_phrase(self, f: Filter, pn: str, part: str, plural_: bool) -> str:
        p, op = f.prop, f.op
        v, w = self.value_pair(f.value, f.value2, p) if op == "between" else (self.value(f.value, p), "")
        if part:
            return {
                "gt": self.pick(
                    [
                        f"{part} after {v}",
                        f"{part} later than {v}",
                    ]
                ),
                "ge": self.pick([f"{part} in {v} or later", f"{part} in or after {v}"]),
                "lt": self.pick([f"{part} before {v}", f"{part} earlier than {v}", f"{part} prior to {v}"]),
                "le": self.pick([f"{part} in {v} or earlier", f"{part} in or before {v}"]),
                "eq": self.pick([f"{part} in {v}", f"{part} in the year {v}"]),
                "between": self.pick(
                    [
                        f"{part} between {v} and {w}",
                        f"{part} from {v} to {w}",
                    ]
                ),
            }[op]
        plural_words = is_plural(p.words.split()[0]) or is_plural(p.words.split()[-1])
        if plural_words and p.kind == "number" and op in ("gt", "lt", "ge", "le") and self.rng.random() < 0.6:
            word = {"gt": "more than", "lt": "fewer than", "ge": "at least", "le": "at most"}[op]
            return f"with {word} {v} {singular(pn) if f.value == 1 and pn == p.words else pn}"  # "1 star"
        if op == "eq":
            return self.pick(
                [f"with a {pn} of {v}", f"whose {pn} is {v}", f"with {pn} equal to {v}", f"with {pn} {v}"]
            )
        if op == "between":
            return self.pick(
                [
                    f"with a {pn} between {v} and {w}",
                    f"whose {pn} is between {v} and {w}",
                    f"with {pn} from {v} to {w}",
                    f"with a {pn} in the range {v} to {w}",
                ]
            )
        words = {
            "gt": ["above", "greater than", "more than", "over", "higher than", "exceeding"],
            "ge": ["of at least", "of {v} or more"],
            "lt": ["below", "less than", "under", "lower than"],
            "le": ["of at most", "of {v} or less"],
        }[op]
        w = self.pick(words)
        if "{v}" in w:
            return self.pick([f"with a {pn} {w.format(v=v)}", f"whose {pn} is {w.format(v=v)[3:]}"])
        return self.pick(
            [f"with a {pn} {w} {v}", f"whose {pn} is {w} {v}", f"with {pn} {w} {v}", f"where {pn} is {w} {v}"]
        )

    def _date_phrase(self, f: Filter, pn: str, part: str) -> str:
        op = f.op
        if op in ("year", "month"):
            when = str(f.value) if op == "year" else say_month(str(f.value) + "-01")
            return self.pick(
                [f"{part} in {when}"]
                if part
                else [f"with a {pn} in {when}", f"whose {pn} is in {when}", f"with {pn} during {when}"]
            )
        d = say_date(str(f.value), self.rng.randrange(3))
        if op == "between":
            d2 = say_date(str(f.value2), self.rng.randrange(3))
            return (
                f"{part} between {d} and {d2}"
                if part
                else self.pick([f"with a {pn} between {d} and {d2}", f"whose {pn} is between {d} and {d2}"])
            )
        word = self.pick(["after", "later than"] if op == "after" else ["before", "earlier than", "prior to"])
        return (
            f"{part} {word} {d}"
            if part
            else self.pick([f"with a {pn} {word} {d}", f"whose {pn} is {word} {d}"])
        )

    # --- frames --------------------------------------------------------------------------------------------
    def question(self, q: Query) -> str:
        self._nouns = {}
        self._owned = {}
        self._main = {}
        verbose = self.rng.random() < VERBOSE_P
        shape = answer_shape(q) if verbose else None
        told = shape if shape is not None and self.rng.random() < VERBOSE_INSTRUCTION_P else None
        self._defer_extra = told is not None and told[0] == "extra"  # said after the question instead
        try:
            text = getattr(self, f"_q_{q.frame}")(q)
        finally:
            self._defer_extra = False
        text = cap(_A_WORD.sub(_an, text))
        if verbose:
            return self._verbose(q, text, told)
        if self.rng.random() < 0.04:
            body = text[:1].lower() + text[1:]
            if text.endswith("?"):
                text = cap(self.pick(POLITE).format(q=body))
            else:
                polite = self.pick(POLITE_IMPERATIVE)
                asks = self.rng.random() < 0.5 and polite.startswith(("Can", "Could"))  # not "Please list …?"
                text = cap(polite.format(q=body.rstrip(".")) + ("?" if asks else "."))
        return text

    # --- verbose questions ---------------------------------------------------------------------------------
    def _verbose(self, q: Query, text: str, told: tuple[str, list[Prop]] | None) -> str:
        """The question said the long way (VERBOSE_P): a context sentence before it, as a request, with an
        instruction about the answer after it — at least the context or the instruction."""
        said = self._request(text) if self.rng.random() < VERBOSE_REQUEST_P else text
        if told is not None:
            said = self._instruction(q, text, said, told)
        if told is None or self.rng.random() < VERBOSE_CONTEXT_P:
            context = self._context(q)
            if context.endswith(":") and self.rng.random() < 0.5:
                said = _lower_first(said)
            said = f"{context} {said}"
        return said

    def _context(self, q: Query) -> str:
        """A sentence of context from the query's own words: its focus's noun, another label's, a property of
        the focus it uses, or the role a relationship gives the focus or the nodes that come into it."""
        things = self.noun(q, 0).plural
        first = q.nodes[0].label
        others = sorted({n.label.noun.plural for n in q.nodes[1:] if n.label is not first})
        used = [f.prop for f in q.filters if f.on == "node" and f.index == 0 and f.prop.kind != "key"]
        used += [r.prop for r in q.returns if r.on == "node" and r.index == 0 and r.prop is not None]
        for ref in (q.agg.target if q.agg else None, q.order if isinstance(q.order, Ref) else None):
            if ref is not None and ref.on == "node" and ref.index == 0 and ref.prop is not None:
                used.append(ref.prop)
        for extra in (q.compare, q.related):
            if extra is not None and extra.prop is not None:
                used.append(extra.prop)
        used = [p for p in used if p is not first.key]
        groups: list[tuple[list[str], dict[str, str]]] = [(CONTEXT_ONE, {})]
        if others:
            groups.append((CONTEXT_TWO, {"others": self.pick(others)}))
        if used:
            groups.append((CONTEXT_PROP, {"prop": self.rng.choice(used).words}))
        for j in q.children(0):
            h = q.hops[j]
            role = None if h.rel.self_loop else role_noun(h.rel.verb)
            if role is not None:  # "countries and their users" is said "… and their countries"
                role = fits(role, h.rel.start.noun) or h.rel.start.noun
                groups.append((CONTEXT_ROLE if h.outward else CONTEXT_OWNED, {"roles": role.plural}))
        templates, words = self.rng.choice(groups)
        return cap(_A_WORD.sub(_an, self.pick(templates).format(things=things, **words)))

    def _request(self, text: str) -> str:
        """The question as a request: "I'd like a list of the …", "Could you tell me which …?"."""
        end = text[-1] if text[-1] in "?." else ""
        if not end:  # a headline ("Top 5 products by price") stays one
            return text
        core = text[:-1]
        for pattern, heads in WANT_HEADS:
            m = pattern.match(core)
            if m and self.rng.random() < 0.6:
                head = self.pick(heads)
                return head + core[m.end() :] + ("?" if head.startswith("Could") else ".")
        body = _lower_first(core)
        if end == "?":
            t = self.pick(ASK_REQUEST)
            asks = t.startswith(("Can", "Could", "Do")) or self.rng.random() < 0.4
        elif core.split(" ", 1)[0].lower() in _IMPERATIVES:
            t = self.pick(DO_REQUEST)
            asks = t.startswith(("Can", "Could", "Would"))
        else:  # "For each country, list …" is no verb to put after "Could you"
            return text
        return t.format(q=body) + ("?" if asks else ".")

    def _instruction(self, q: Query, asked: str, said: str, told: tuple[str, list[Prop]]) -> str:
        """``said`` with an instruction about the answer after it, one that agrees with the RETURN
        (``answer_shape``), after a dash, a comma, in brackets or as a sentence of its own."""
        kind, props = told
        if kind == "names":
            one = q.limit == 1 or re.match(r"(What is|What's|Who is|Which [\w ]+ is the)\b", asked)
            kind = "name" if one else "names"
        words = props[0].words if props else ""
        instr = self.pick(INSTRUCTIONS[kind]).format(
            keys=plural(words) if words else "", key=words, props=self._and([self.pname(p) for p in props])
            if props else ""
        )
        end = said[-1] if said[-1] in "?." else ""
        core = said[:-1] if end else said
        form = self.rng.randrange(5)
        if form == 0:
            return f"{said} {cap(instr)}."
        if form == 1:
            return f"{core} - {instr}."
        if form == 2:
            return f"{core}, {instr}{end or '.'}"
        if form == 3:
            return f"{core} ({instr}){end or '.'}"
        return f"{said} {instr}."  # a new sentence typed in lower case, as people do

    def _main_hop(self, q: Query) -> int | None:
        """A hop of the focus that can become the question's main verb ("Which movies did Tom Hanks act
        in?")."""
        hops = q.children(0)
        if len(hops) == 1 and self.rng.random() < 0.6:
            return hops[0]
        return None

    def _verb_question(self, q: Query, j: int, head: str) -> str:
        """ "{head} did Tom Hanks act in" / "{head} acted in movies …" / "{head} were directed by …"."""
        h = q.hops[j]
        v: Verb = h.rel.verb
        main = self._main_verb(q, j, head)
        if main is not None:
            return main
        tail = self.hop_filters(q, j)
        x = owned_noun(h.rel)
        if x is not None and not h.outward:  # "Which cities are the capital of Australia?", not "does … have"
            anchor = q.anchored(h.child) is not None
            other = self.np(q, h.child, plural_=not anchor)
            are = "are" if head.startswith(("Which", "How many")) else "is"
            return f"{head} {are} the {x} of {other}{tail}"
        if x is not None:  # "Which countries have Canberra as their capital?", never "have capital Canberra"
            have = "have" if not head.startswith("Who") else "has"
            if q.anchored(h.child) is not None:
                return f"{head} {have} {self.anchor(q, h.child)} as their {x}{tail}"
            if _bare(q, h.child) and not any(e.node == h.child for e in q.exists):
                return f"{head} {have} {article(x)}{tail}"
            return f"{head} {have} {article(self.np(q, h.child, plural_=False))} as their {x}{tail}"
        if h.outward:
            other = self.np(q, h.child)
            return f"{head} {v.takes(not head.startswith('Who'), other)}{tail}"
        anchor = q.anchored(h.child) is not None
        other = self.np(q, h.child, plural_=not anchor)
        if v.passive and self.rng.random() < 0.4:
            return f"{head} {'were' if not v.present else 'are'} {v.passive} {other}{tail}"
        return f"{head} {v.ask(other, not anchor)}{tail}"

    def _main_verb(self, q: Query, j: int, head: str) -> str | None:
        """The question's verb for hop ``j`` with the one condition "rank = 1": "Which countries have French
        as their main language?", "Which languages are the primary language of a country in Europe?"."""
        h = q.hops[j]
        fs = [f for f in q.filters if f.on == "hop" and f.index == j]
        if len(fs) != 1 or h.rel.self_loop or not self._says_main(q, j):
            return None
        word, x, c = self.pick(MAIN_WORDS), h.rel.end.noun.singular, h.child
        other = self.anchor(q, c) if q.anchored(c) is not None else article(self.np(q, c, plural_=False))
        if h.outward:
            return f"{head} {'has' if head.startswith('Who') else 'have'} {other} as their {word} {x}"
        are = "are" if head.startswith(("Which", "How many")) else "is"
        return f"{head} {are} the {word} {x} of {other}"

    def _entity_opener(self, q: Query, np_text: str, count: int | None = None) -> str:
        k = f"{count} " if count else ""
        o = q.opener
        if o == "which":
            return self.pick([f"Which {np_text} are there?", f"Which are the {np_text}?"])
        if o == "list":
            return self.pick(
                [
                    f"List the {k}{np_text}.",
                    f"List all {np_text}." if not k else f"List {k}{np_text}.",
                    f"Give me a list of {k}{np_text}.",
                ]
            )
        if o == "what":
            return self.pick([f"What are the {k}{np_text}?", f"What {k}{np_text} are there?"])
        if o == "name":
            return self.pick(
                [f"Name the {k}{np_text}.", f"Name {k}{np_text}." if k else f"Name all {np_text}."]
            )
        if o == "names":
            key = q.nodes[0].label.key
            kw = plural(key.words) if key is not None else "names"
            return self.pick(
                [
                    f"What are the {kw} of the {k}{np_text}?",
                    f"List the {kw} of {k}{np_text}.",
                    f"Give me the {kw} of {k}{np_text}.",
                ]
            )
        if o == "find":
            return self.pick(
                [f"Find {k}{np_text}." if k else f"Find all {np_text}.", f"Find the {k}{np_text}."]
            )
        if o == "show":
            return self.pick(
                [
                    f"Show me the {k}{np_text}.",
                    f"Show {k}{np_text}." if k else f"Show all {np_text}.",
                    f"Display the {k}{np_text}.",
                ]
            )
        return self.pick(
            [
                f"Retrieve the {k}{np_text}.",
                f"Retrieve {k}{np_text}." if k else f"Retrieve all {np_text}.",
                f"Return the {k}{np_text}.",
            ]
        )

    def _with_extra(self, q: Query, text: str) -> str:
        extra = [r.prop for r in q.returns[1:] if r.prop is not None]
        if not extra or self._defer_extra:
            return text
        end = text[-1]
        names = " and ".join(self.pname(p) for p in extra)
        return (
            text[:-1]
            + self.pick([f", with their {names}", f" along with their {names}", f" and their {names}"])
            + end
        )

    def _q_list(self, q: Query) -> str:
        owner = self._owner_lookup(q)
        if owner is not None:
            return owner
        j = self._main_hop(q) if q.opener in ("which",) else None
        if j is not None:
            n = self.noun(q, 0)
            head = (
                "Who"  # "who" asks for a name; "which people" may return the people
                if n.person and q.style == "key" and not self._has_mods(q, 0)
                else f"Which {self.np(q, 0, skip_hop=j)}"
            )
            text = self._verb_question(q, j, head) + "?"
            return self._with_extra(q, text)
        return self._with_extra(q, self._entity_opener(q, self.np(q, 0)))

    def _owner_lookup(self, q: Query) -> str | None:
        """ "What is the capital of Australia?": the one X that a named node has (``HAS_X``, at most one per
        node), asked as people ask it; None where the query is anything more."""
        hops = q.children(0)
        if len(hops) != 1 or self._has_mods(q, 0) or len(q.returns) > 1:
            return None
        h = q.hops[hops[0]]
        x = owned_noun(h.rel)
        if x is None or h.outward or q.anchored(h.child) is None or not _functional(h):
            return None
        if self.rng.random() >= OWNED_P:
            return None
        owner = self.anchor(q, h.child)
        n = self.noun(q, 0)
        opts = [f"What is the {x} of {owner}?", f"Which {n.singular} is the {x} of {owner}?"]
        if not owner.startswith(("the ", "'", '"')):
            opts.append(f"What is {owner}'s {x}?")
        if q.style == "key":
            opts.append(f"Name the {x} of {owner}.")
        else:
            opts = opts[1:2] + [f"Show the {x} of {owner}.", f"Find the {x} of {owner}."]
        return self.pick(opts)

    def _has_mods(self, q: Query, i: int) -> bool:
        return (
            any(f.on == "node" and f.index == i for f in q.filters)
            or any(e.node == i for e in q.exists)
            or len(q.children(i)) > 1
        )

    def _q_first(self, q: Query) -> str:
        k = q.limit or 3
        np_text = self.np(q, 0)
        if self.rng.random() < 0.55:
            lead = {
                "which": "List",
                "list": "List",
                "what": "Give me",
                "name": "Name",
                "names": "List",
                "find": "Find",
                "show": "Show",
                "retrieve": "Retrieve",
            }[q.opener]
            first = self.pick(["first", "first", "first"])
            if q.opener == "names":
                key = q.nodes[0].label.key
                kw = plural(key.words) if key is not None else "names"
                return self._with_extra(q, f"List the {kw} of the first {k} {np_text}.")
            return self._with_extra(q, f"{lead} the {first} {k} {np_text}.")
        if q.opener == "which":
            return self._with_extra(
                q,
                self.pick([f"List {k} {np_text}.", f"Give me {k} {np_text}."]
                          + ([f"Name any {k} {np_text}."] if q.style == "key" else [])),
            )
        return self._with_extra(q, self._entity_opener(q, np_text, count=k))

    def _q_props(self, q: Query) -> str:
        props = [r.prop for r in q.returns if r.prop is not None]
        with_key = any(r.prop is None for r in q.returns)
        if q.anchored(0) is not None:
            return self._lookup(q, props)
        np_text = self.np(q, 0)
        names = self._and(
            [
                self.pname_plural(p) if i == 0 and self.rng.random() < 0.7 else self.pname(p)
                for i, p in enumerate(props)
            ]
        )
        if with_key:
            key = q.nodes[0].label.key
            assert key is not None
            return self.pick(
                [
                    f"List the {np_text} with their {names}.",
                    f"Show the {np_text} and their {names}.",
                    f"What are the {plural(key.words)} and {names} of {np_text}?",
                    f"For each of the {np_text}, give the {key.words} and the {names}.",
                    f"Give me the {np_text} along with their {names}.",
                ]
            )
        return self.pick(
            [
                f"What are the {names} of {np_text}?",
                f"List the {names} of {np_text}.",
                f"Show the {names} of the {np_text}.",
                f"Give me the {names} for {np_text}.",
                f"What {names} do {np_text} have?",
            ]
        )

    def _and(self, items: list[str]) -> str:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    def _lookup(self, q: Query, props: list[Prop]) -> str:
        ref = self.anchor(q, 0)
        if len(props) == 1:
            p = props[0]
            pn = self.pname(p)
            if p.participle and self.rng.random() < 0.7:
                return self.pick(
                    [f"When was {ref} {p.participle}?", f"In what year was {ref} {p.participle}?"]
                    if p.kind == "number"
                    else [f"When was {ref} {p.participle}?"]
                )
            opts = [
                f"What is the {pn} of {ref}?",
                f"Tell me the {pn} of {ref}.",
                f"What's the {pn} of {ref}?",
                f"Show the {pn} for {ref}.",
                f"Give me the {pn} of {ref}.",
            ]
            if not ref.startswith("the "):
                opts.append(f"What is {ref}'s {pn}?")
            if p.is_location and p.words in ("city", "country", "region", "state"):
                opts.append(f"In which {p.words} is {ref}?")
            return self.pick(opts)
        names = self._and([self.pname(p) for p in props])
        return self.pick(
            [
                f"What are the {names} of {ref}?",
                f"Give me the {names} of {ref}.",
                f"Show {ref}'s {names}." if not ref.startswith("the ") else f"Show the {names} of {ref}.",
            ]
        )

    def _q_pairs(self, q: Query) -> str:
        j = q.returns[1].index
        hop = next(h for h in q.hops if h.child == j)
        v = hop.rel.verb
        other = self.noun(q, j)
        np_text = self.np(q, 0, skip_hop=q.hops.index(hop), skipped_filters=True)
        other_np = self.np(q, j)
        if hop.outward:
            rel = (
                self.pick(
                    [f"the {other_np} that they {v.finite(True)}", f"the {other_np} they {v.finite(True)}"]
                )
                if other_np == other.plural
                else f"the {other_np} that they {v.finite(True)}"
            )
        else:
            rel = (
                f"the {other_np} that {v.takes(True, 'them')}"
                if not v.passive or self.rng.random() < 0.5
                else f"the {other_np} they {'are' if v.present else 'were'} {v.passive}"
            )
        return self.pick(
            [
                f"List the {np_text} and {rel}.",
                f"Show each of the {np_text} with {rel}.",
                f"For the {np_text}, list {rel}.",
                f"Give me the {np_text} together with {rel}.",
            ]
        )

    def _q_count(self, q: Query) -> str:
        hops = q.children(0)
        if (
            len(hops) == 1
            and q.hops[hops[0]].rel.self_loop
            and is_adjacency(q.hops[hops[0]].rel.type)
            and q.anchored(q.hops[hops[0]].child) is not None
            and not self._has_mods(q, 0)
            and self.rng.random() < 0.6
        ):  # "How many neighbours does France have?"
            x = self.anchor(q, q.hops[hops[0]].child)
            return self.pick([f"How many neighbours does {x} have?", f"How many neighbours has {x} got?"])
        j = self._main_hop(q)
        if j is not None:
            head = f"How many {self.np(q, 0, skip_hop=j)}"
            return self._verb_question(q, j, head) + "?"
        np_text = self.np(q, 0)
        return self.pick(
            [
                f"How many {np_text} are there?",
                f"How many {np_text} are there?",
                f"How many {np_text}?",
                f"Count the {np_text}.",
                f"What is the number of {np_text}?",
                f"Give me the number of {np_text}.",
                f"How many {np_text} do we have?",
                f"What's the total number of {np_text}?",
            ]
        )

    def _agg_word(self, func: str, p: Prop | None) -> str:
        if p is not None and (p.kind in ("date", "datetext") or p.is_year) and func in ("min", "max"):
            return self.pick(["earliest", "first"] if func == "min" else ["latest", "most recent"])
        word = self.pick(AGG_WORDS[func])
        if p is not None and p.words.split()[0] == word:  # "the combined total", not "the total total"
            return _OTHER_AGG_WORD.get(word, word)
        return word

    def _agg_target_text(self, q: Query, ref: Ref) -> str:
        assert ref.prop is not None
        pn = self.pname(ref.prop)
        if ref.on == "hop":
            h = q.hops[ref.index]
            return self.pick(
                [f"{pn}", f"{pn}", f"'{h.rel.type}' {pn}", f"{pn} on the {h.rel.type} relationships"]
            )
        return pn

    def _q_aggregate(self, q: Query) -> str:
        a = q.agg
        assert a is not None and a.target is not None
        word = self._agg_word(a.func, a.target.prop)
        target = self._agg_target_text(q, a.target)
        np_text = self.np(q, 0)
        return self.pick(
            [
                f"What is the {word} {target} of {np_text}?",
                f"What's the {word} {target} among {np_text}?",
                f"Find the {word} {target} of {np_text}.",
                f"Calculate the {word} {target} of {np_text}.",
                f"What is the {word} {target} for {np_text}?",
            ]
        )

    def _q_distinct(self, q: Query) -> str:
        p = q.returns[0].prop
        assert p is not None
        np_text = self.np(q, 0)
        pl = self.pname_plural(p)
        opts = [
            f"What are the distinct {pl} of {np_text}?",
            f"List the different {pl} of {np_text}.",
            f"Which {pl} do {np_text} have?",
            f"Show the unique {pl} among {np_text}.",
            f"What {pl} are there among {np_text}?",
        ]
        if p.is_location:
            opts.append(f"Which {pl} are {np_text} from?")
        return self.pick(opts)

    def _order_words(self, p: Prop, desc: bool) -> str:
        if p.kind in ("date", "datetext") or p.is_year:
            if p.participle == "born":
                return self.pick(["youngest"] if desc else ["oldest"])
            return self.pick(["most recent", "latest", "newest"] if desc else ["earliest", "oldest"])
        return ""

    def _q_top(self, q: Query) -> str:
        assert isinstance(q.order, Ref) and q.order.prop is not None
        k = q.limit or 1
        p = q.order.prop
        pn = self._agg_target_text(q, q.order) if q.order.on == "hop" else self.pname(p)
        hi = "highest" if q.desc else "lowest"
        dates = [x for x in q.nodes[0].label.props.values() if x.kind in ("date", "datetext") or x.is_year]
        special = self._order_words(p, q.desc) if q.order.on == "node" and len(dates) == 1 else ""
        n = self.noun(q, 0)
        if k == 1:
            np_sing = self.np(q, 0, plural_=False)
            opts = [
                f"Which {np_sing} has the {hi} {pn}?",
                f"What is the {np_sing} with the {hi} {pn}?",
                f"Find the {np_sing} with the {hi} {pn}.",
            ]
            if special:
                opts.append(f"Which is the {special} {np_sing}?")
            if n.person:
                opts.append(f"Who has the {hi} {pn} among {self.np(q, 0)}?")
            return self.pick(opts)
        np_text = self.np(q, 0)
        opts = [
            f"What are the top {k} {np_text} by {pn}?",
            f"Which {k} {np_text} have the {hi} {pn}?",
            f"List the {k} {np_text} with the {hi} {pn}.",
            f"Show the top {k} {np_text} ranked by {pn}.",
            f"Top {k} {np_text} by {pn}" + ("" if q.desc else " (lowest first)"),
            f"Give me the {k} {np_text} with the {hi} {pn}.",
        ]
        if not q.desc:
            opts = [o for o in opts if "top" not in o.lower() or "lowest" in o] + [
                f"Which {k} {np_text} have the smallest {pn}?"
            ]
        if special:
            opts.append(f"List the {k} {special} {np_text}.")
            opts.append(f"What are the {k} {special} {np_text}?")
        return self.pick(opts)

    # --- grouping ------------------------------------------------------------------------------------------
    def _group_parts(self, q: Query, plural_: bool = True) -> tuple[str, str, str, Hop | None]:
        """(focus NP without the group hop — singular for a count of 1 —, "each <group>", group plural NP,
        the hop to the group node or None)."""
        g = q.group[0]
        if g.prop is not None:  # a property of the focus
            pn = self.pname(g.prop)
            return self.np(q, 0, plural_=plural_), f"each {pn}", plural(g.prop.words), None
        hop = next(h for h in q.hops if h.child == g.index)
        x = self.np(q, 0, plural_=plural_, skip_hop=q.hops.index(hop), skipped_filters=True)
        each = self.np(q, g.index, plural_=False, det="each")
        return x, each, self.np(q, g.index), hop

    def _count_phrase(self, q: Query, x: str, each: str, hop: Hop | None) -> list[str]:
        if hop is None:
            return [
                f"How many {x} are there in {each}?",
                f"Count the {x} by {each[5:]}.",
                f"Number of {x} per {each[5:]}",
                f"For {each}, how many {x} are there?",
                f"How many {x} does {each} have?",
            ]
        v = hop.rel.verb
        it, obj, _, many = self._each_pronoun(q)
        if not hop.outward:  # the group node is the start: (g)-[:R]->(x)
            out = [
                f"How many {x} {'has' if not v.copula else 'is'} {each} "
                f"{v.participle if not v.copula else v.base}?",
                f"Count the {x} {each} {v.finite(False)}.",
                f"For {each}, how many {x} did {it} {v.base}?"
                if not v.copula and not v.present
                else f"For {each}, how many {x} {v.ask(it, many)}?",
            ]
            if v.passive:
                out.append(f"Number of {x} {v.passive} {each}")
            return out
        return [
            f"How many {x} {v.takes(True, each)}?",
            f"For {each}, how many {x} {v.takes(True, obj)}?",
            f"Count the {x} that {v.takes(True, each)}.",
            f"Number of {x} that {v.takes(True, each)}",
        ]

    def _q_group(self, q: Query) -> str:
        a = q.agg
        assert a is not None
        x, each, groups, hop = self._group_parts(q)
        if q.order == "agg" and q.limit:
            return self._group_top(q, x, groups, hop)
        if a.func == "count":
            text = self.pick(self._count_phrase(q, x, each, hop))
        else:
            assert a.target is not None
            word = self._agg_word(a.func, a.target.prop)
            target = self._agg_target_text(q, a.target)
            text = self.pick(
                [
                    f"What is the {word} {target} of {x} for {each}?",
                    f"For {each}, what is the {word} {target} of the {x}?",
                    f"{word.capitalize()} {target} of {x} per {each[5:]}",
                    f"Show {each} with the {word} {target} of its {x}.",
                ]
            )
        return text if text[-1] in "?." else text + self.pick(["", "?", "."])

    def _group_top(self, q: Query, x: str, groups: str, hop: Hop | None) -> str:
        """The groups with the most (or fewest) of x, or the highest (lowest) aggregate of x's property."""
        assert q.agg is not None
        k = q.limit or 1
        if q.agg.func != "count":
            return self._top_by_aggregate(q, x, groups, k)
        most = "most" if q.desc else "fewest"
        if hop is None:
            return self._top_by_property(q, x, k, most)
        return self._top_by_hop(q, x, groups, hop, k, most)

    def _top_by_aggregate(self, q: Query, x: str, groups: str, k: int) -> str:
        """Groups by an aggregate of a property of x: "Which customer has the highest average freight?"."""
        a = q.agg
        assert a is not None
        assert a.target is not None
        word = self._agg_word(a.func, a.target.prop)
        target = self._agg_target_text(q, a.target)
        hi = "highest" if q.desc else "lowest"
        if k == 1:
            return self.pick(
                [
                    f"Which {groups} has the {hi} {word} {target} of {x}?".replace(
                        groups, self._singular_groups(q, groups)
                    ),
                    f"Find the {self._singular_groups(q, groups)} with the {hi} {word} {target} of {x}.",
                ]
            )
        return self.pick(
            [
                f"Which {k} {groups} have the {hi} {word} {target} of {x}?",
                f"Top {k} {groups} by {word} {target} of {x}" + ("" if q.desc else " (lowest first)"),
                f"List the {k} {groups} with the {hi} {word} {target} of {x}.",
            ]
        )

    def _top_by_property(self, q: Query, x: str, k: int, most: str) -> str:
        """Groups by a property of x: "Which genre has the most movies?"."""
        g = q.group[0].prop
        assert g is not None
        if k == 1:
            return self.pick(
                [
                    f"Which {self.pname(g)} has the {most} {x}?",
                    f"What {self.pname(g)} has the {most} {x}?",
                ]
            )
        return self.pick(
            [
                f"Which {k} {plural(g.words)} have the {most} {x}?",
                f"Top {k} {plural(g.words)} by number of {x}" + ("" if q.desc else " (lowest first)"),
            ]
        )

    def _top_by_hop(self, q: Query, x: str, groups: str, hop: Hop, k: int, most: str) -> str:
        """Groups at the other end of a hop: "Which person directed the most movies?"."""
        v = hop.rel.verb
        gsing = self._singular_groups(q, groups)
        bare = hop.outward and x == self.noun(q, 0).plural  # x bare: nothing lost
        role = hop_role(hop.rel.type, v, hop.rel.self_loop) if bare else None
        if (
            role is not None and q.desc and self.rng.random() < 0.5
        ):  # (x)-[:FOLLOWS]->(g): "the most followers"
            if k == 1:
                return self.pick(
                    [
                        f"Which {gsing} has the most {role.plural}?",
                        f"Who has the most {role.plural}?"
                        if q.nodes[q.group[0].index].label.noun.person
                        else f"Which {gsing} has the most {role.plural}?",
                    ]
                )
            return self.pick(
                [
                    f"Which {k} {groups} have the most {role.plural}?",
                    f"Top {k} {groups} by number of {role.plural}",
                ]
            )
        if not hop.outward:  # (g)-[:R]->(x): "Which person directed the most movies?"
            if k == 1:
                return self.pick(
                    [
                        f"Which {gsing} {v.takes(False, f'the {most} {x}')}?",
                        f"Which {gsing} {v.takes(False, f'the {most} {x}', perfect=True)}?",
                    ]
                    + (
                        [f"Who {v.takes(False, f'the {most} {x}')}?"]
                        if q.nodes[q.group[0].index].label.noun.person
                        and gsing == q.nodes[q.group[0].index].label.noun.singular
                        else []
                    )
                )
            return self.pick(
                [
                    f"Which {k} {groups} {v.takes(True, f'the {most} {x}', perfect=True)}?",
                    f"Top {k} {groups} by number of {x} {v.passive[:-3] if v.passive else ''}".rstrip()
                    + ("" if q.desc else " (lowest first)"),
                    f"List the {k} {groups} that {v.takes(True, f'the {most} {x}')}.",
                ]
            )
        if k == 1:
            return self.pick(
                [
                    f"Which {gsing} has the {most} {x} that {v.takes(True, 'it')}?",
                    f"Which {gsing} do the {most} {x} {v.base if not v.copula else 'belong to'}?"
                    if not v.copula
                    else f"Which {gsing} has the {most} {x}?",
                ]
            )
        return self.pick(
            [
                f"Which {k} {groups} have the {most} {x} that {v.takes(True, 'them')}?",
                f"Top {k} {groups} by number of {x} that {v.takes(True, 'them')}"
                + ("" if q.desc else " (lowest first)"),
                f"List the {k} {groups} with the {most} {x}.",
            ]
        )

    def _singular_groups(self, q: Query, groups: str) -> str:
        g = q.group[0]
        if g.prop is not None:
            return g.prop.words
        return self.np(q, g.index, plural_=False)

    def _q_having(self, q: Query) -> str:
        assert q.having is not None
        op, k = q.having
        x, _, groups, hop = self._group_parts(q, plural_=k != 1)  # "more than 1 language", as after "one"
        assert hop is not None
        amount = {">": self.pick(["more than", "over"]), ">=": "at least", "<": "fewer than"}[op]
        focus = self.noun(q, 0)
        said = focus.plural if k != 1 else focus.singular
        adjacent = hop.rel.self_loop and is_adjacency(hop.rel.type) and x == said
        counted = self._having_count(q, amount, k, x, groups, hop, adjacent)
        if q.also is None:
            return counted
        # the question about the second aggregate draws from a stream of its own, after the counted one, so
        # that every later question is worded as it was before there were any (grammar.HAVING_ALSO_P)
        main, self.rng = self.rng, self.also_rng
        try:
            return self._having_also(q, amount, k, x, groups, hop, adjacent)
        finally:
            self.rng = main

    def _having_count(
        self, q: Query, amount: str, k: int, x: str, groups: str, hop: Hop, adjacent: bool
    ) -> str:
        """ "Which languages are spoken in at least 5 countries?"; a count of 1 says its noun and verb in the
        singular ("at least 1 country", "that more than 1 city is in")."""
        v = hop.rel.verb
        many = k != 1
        if adjacent and self.rng.random() < 0.6:  # "Which countries have more than 8 neighbours?"
            return self.pick(
                [
                    f"Which {groups} have {amount} {k} {'neighbour' if k == 1 else 'neighbours'}?",
                    f"List the {groups} with {amount} {k} {'neighbour' if k == 1 else 'neighbours'}.",
                ]
            )
        if not hop.outward:  # (g)-[:R]->(x)
            opts = [
                f"Which {groups} {v.takes(True, f'{amount} {k} {x}', perfect=True)}?",
                f"List the {groups} that {v.takes(True, f'{amount} {k} {x}')}.",
                f"Find {groups} {self.noun(q, q.group[0].index).rel} {v.takes(True, f'{amount} {k} {x}')}.",
            ]
            if (
                q.nodes[q.group[0].index].label.noun.person
                and groups == q.nodes[q.group[0].index].label.noun.plural
            ):
                opts.append(f"Who {v.takes(False, f'{amount} {k} {x}')}?")
            return self.pick(opts)
        return self.pick(
            [
                f"Which {groups} have {amount} {k} {x} that {v.takes(many, 'them')}?",
                f"List the {groups} with {amount} {k} {x}.",
                f"Find the {groups} that {amount} {k} {x} {v.finite(many)}.",
            ]
        )

    def _having_also(
        self, q: Query, amount: str, k: int, x: str, groups: str, hop: Hop, adjacent: bool
    ) -> str:
        """Groups filtered on their count, with an aggregate of the counted nodes' measure: "For each language
        spoken in at least 5 countries, what is their total population?", "Categories with more than 3
        products, with the average price of those products"."""
        a = q.also
        assert a is not None and a.target is not None and a.target.prop is not None
        v = hop.rel.verb
        many = f"{amount} {k} {x}"
        if adjacent:  # the counted countries are the group's neighbours
            x = "neighbour" if k == 1 else "neighbours"
            many = f"{amount} {k} {x}"
            kinds = [f"{groups} with {many}", f"{groups} that have {many}"]
        elif not hop.outward:  # (g)-[:R]->(x): "suppliers that supply more than 3 products"
            kinds = [f"{groups} that {v.takes(True, many)}", f"{groups} with {many}"]
        else:  # (x)-[:R]->(g): "languages spoken by at least 5 countries", "categories with over 3 products"
            kinds = [f"{groups} with {many}", f"{groups} that {many} {v.finite(k != 1)}"]
            if v.passive:
                kinds += [f"{groups} {v.passive} {many}"] * 2
        which = self.pick(kinds)
        each = f"each of the {which}" if self.rng.random() < 0.5 else which
        those = self.pick([f"those {self.noun(q, 0).plural}", f"their {self.noun(q, 0).plural}"])
        if adjacent:
            those = self.pick(["those neighbours", "their neighbours"])
        value = f"{self._agg_word(a.func, a.target.prop)} {self.pname(a.target.prop)}"
        opts = [
            f"For {each}, what is the {value} of {those}?",
            f"{cap(which)}, with the {value} of {those}",
            f"List the {which} and the {value} of {those}.",
            f"Show the {which} together with the {value} of {those}.",
            f"What is the {value} of {those} for {each}?",
            f"Give me the {which}, each with the {value} of {those}.",
            f"Find the {which} and the {value} of {those} for each.",
        ]
        if a.target.prop.name not in q.nodes[q.group[0].index].label.props:  # "their" is not the group's own
            opts.append(f"For {each}, what is their {value}?")
        return self.pick(opts)

    def _q_same(self, q: Query) -> str:
        """ "Which people directed and acted in the same movie?" / "Movies directed and written by the same
        person"."""
        a, b = (h.rel.verb for h in q.hops[:2])
        y = self.noun(q, 1)
        if q.hops[0].outward:  # the focus did both to one y
            np_text = self._focus_only(q)
            both = self.pick(
                [f"{a.finite(True)} and {b.finite(True)}", f"both {a.finite(True)} and {b.finite(True)}"]
            )
            same = f"the same {y.singular}"
            if q.agg is not None:
                return self.pick(
                    [f"How many {np_text} {both} {same}?", f"Count the {np_text} who {both} {same}."]
                )
            if q.limit:
                return (
                    f"{self.pick(['List', 'Name', 'Show'])} the first {q.limit} {np_text} who {both} {same}."
                )
            n = self.noun(q, 0)
            heads = [f"Which {np_text} {both} {same}?", f"List the {np_text} who {both} {same}."]
            if n.person and np_text == n.plural:
                heads.append(f"Who {a.finite(False)} and {b.finite(False)} {same}?")
            return self.pick(heads)
        np_text = self._focus_only(q)
        done = (
            f"{a.passive[:-3]} and {b.passive}"
            if a.passive and b.passive
            else f"that {article(y.singular).split()[0]} {y.singular} {a.finite(False)} and {b.finite(False)}"
        )
        same = f"the same {y.singular}" if a.passive and b.passive else ""
        tail = (
            f"{done} {same}".strip()
            if same
            else f"that the same {y.singular} {a.finite(False)} and {b.finite(False)}"
        )
        if q.agg is not None:
            return self.pick(
                [
                    f"How many {np_text} were {tail}?" if same else f"How many {np_text} are there {tail}?",
                    f"Count the {np_text} {tail}.",
                ]
            )
        if q.limit:
            return f"List the first {q.limit} {np_text} {tail}."
        return self.pick(
            [
                f"Which {np_text} were {tail}?"
                if same
                else f"Which {np_text} did the same {y.singular} {a.base} and {b.base}?",
                f"List the {np_text} {tail}.",
            ]
        )

    def _focus_only(self, q: Query) -> str:
        """The focus's noun with its own filters (a cycle's hops are said by the frame)."""
        saved = q.hops
        q.hops = []
        try:
            return self.np(q, 0)
        finally:
            q.hops = saved

    def _q_ratio_rank(self, q: Query) -> str:
        """ "Which 5 countries have the highest population per area, and what is it?", "What are the 3 most
        densely populated countries and their population density?": entities ranked by a ratio of two of
        their measures, the ratio shown beside each."""
        c = q.compare
        assert c is not None and c.other is not None
        pn, on = c.prop.words, c.other.words
        k = q.limit or 1
        hi = "highest" if q.desc else "lowest"
        names = [f"{pn} per {on}", f"ratio of {pn} to {on}", f"{pn} per unit of {on}"]
        if on.lower() == "area":  # "population density", as people say a measure per area
            names += [f"{pn} density"] * 2
        x = self.pick(names)
        show = self.pick(["and what is it", f"showing the {x}", "with the value"])
        if k == 1:
            np_sing = self.np(q, 0, plural_=False)
            opts = [
                f"Which {np_sing} has the {hi} {x}, {show}?",
                f"What is the {np_sing} with the {hi} {x}, and its value?",
                f"Find the {np_sing} with the {hi} {x} and show that value.",
            ]
        else:
            np_text = self.np(q, 0)
            low = "" if q.desc else " (lowest first)"
            opts = [
                f"Which {k} {np_text} have the {hi} {x}, {show}?",
                f"What are the top {k} {np_text} by {x}{low}, with their {x}?",
                f"List the {k} {np_text} with the {hi} {x} and their {x}.",
                f"Rank the {np_text} by {x}{low} and give the first {k} with their values.",
            ]
            if c.prop.words.lower() == "population" and on.lower() == "area":
                most = "most" if q.desc else "least"
                opts.append(f"What are the {k} {most} densely populated {np_text}, and what is their {x}?")
        return self.pick(opts)

    def _q_compare(self, q: Query) -> str:
        """ "Which countries have a larger population than Germany?", "How much larger is the area of France
        than that of Spain?", "What is the population per area of Japan?"."""
        c = q.compare
        assert c is not None
        pn = self.pname(c.prop)
        if c.kind == "rank":
            return self._q_ratio_rank(q)
        a = self.anchor(q, 0 if c.kind != "than" else 1)
        if c.kind == "ratio":
            assert c.other is not None
            on = self.pname(c.other)
            return self.pick(
                [
                    f"What is the {pn} per {on} of {a}?",
                    f"What is the ratio of {pn} to {on} for {a}?",
                    f"What is the {pn} of {a} divided by its {on}?",
                    f"Divide the {pn} of {a} by its {on}.",
                    f"How much {pn} per unit of {on} does {a} have?",
                ]
            )
        if c.kind == "difference":
            b = self.anchor(q, 1)
            more = self.pick(["larger", "higher", "greater", "bigger"])
            return self.pick(
                [
                    f"How much {more} is the {pn} of {a} than that of {b}?",
                    f"What is the difference in {pn} between {a} and {b}?",
                    f"By how much does the {pn} of {a} exceed the {pn} of {b}?",
                    f"How much more {pn} does {a} have than {b}?",
                    f"Subtract the {pn} of {b} from the {pn} of {a}.",
                ]
            )
        up = c.op == ">"
        np_text = self.np(q, 0)
        how_many = q.agg is not None
        if c.op == "=":  # "Which movies were released in the same year as Top Gun?"
            ask = self.pick([f"Which {np_text}", f"List the {np_text} that"])
            ask = f"How many {np_text}" if how_many else ask
            opts = [f"{ask} have the same {pn} as {a}?", f"{ask} share the {pn} of {a}?"]
            if c.prop.is_year and c.prop.participle:
                opts.append(f"{ask} were {c.prop.participle} in the same year as {a}?")
            text = self.pick(opts)
            return text if text.startswith(("How", "Which")) else text[:-1] + "."
        if c.prop.is_year:  # "Which movies were released before Top Gun?"
            when = self.pick(["after", "later than"] if up else ["before", "earlier than"])
            part = c.prop.participle
            opts = [
                f"How many {np_text} have {article(pn)} {when} that of {a}?"
                if how_many
                else f"Which {np_text} have {article(pn)} {when} that of {a}?",
                f"Count the {np_text} whose {pn} is {when} that of {a}."
                if how_many
                else f"List the {np_text} whose {pn} is {when} that of {a}.",
            ]
            if part:
                opts += (
                    [f"How many {np_text} were {part} {when} {a}?"] * 2
                    if how_many
                    else [
                        f"Which {np_text} were {part} {when} {a}?",
                        f"List the {np_text} {part} {when} {a}.",
                    ]
                )
            return self.pick(opts)
        more = self.pick(["larger", "higher", "greater", "bigger"] if up else ["smaller", "lower"])
        above = self.pick(["above", "greater than", "more than"] if up else ["below", "less than"])
        beat = "exceed" if up else "fall below"
        if how_many:
            return self.pick(
                [
                    f"How many {np_text} have a {more} {pn} than {a}?",
                    f"Count the {np_text} whose {pn} is {above} that of {a}.",
                    f"How many {np_text} {beat} {a} in {pn}?",
                ]
            )
        return self.pick(
            [
                f"Which {np_text} have a {more} {pn} than {a}?",
                f"List the {np_text} whose {pn} is {above} that of {a}.",
                f"Find {np_text} with {article(pn)} {above} the {pn} of {a}.",
                f"Which {np_text} {beat} {a} in {pn}?",
                f"Name the {np_text} with a {more} {pn} than {a}.",
            ]
        )

    # --- relcompare: along relationships ------------------------------------------------------------------
    def _from(self, h: Hop, near_is_parent: bool, pron: tuple[str, str, str, str]) -> str:
        """The node at the other end of hop ``h``, said from the near one ("they", "their", "them", "are"):
        "their capital", "the country they are in", "a movie they acted in", "one of their neighbours", "its
        director", "a person who follows them", "the country they are the capital of"."""
        rel, v = h.rel, h.rel.verb
        they, their, them, are = pron
        out = h.outward == near_is_parent  # the near node is the pattern's start
        far = rel.end if out else rel.start
        n = far.noun
        if rel.self_loop and is_adjacency(rel.type):
            return self.pick([f"one of {their} neighbours", f"a neighbouring {n.singular}", "a neighbour"])
        if out:
            if v.owned:
                return f"{their} {v.owned}"
            if v.copula:
                mine = [f"{their} {n.singular}"] if not rel.self_loop else []
                return self.pick([*mine, f"the {n.singular} {they} {are} {v.base}"])
            verb = v.finite(True) if they == "they" else v.finite(False)
            return f"{article(n.singular)} {they} {verb}"
        if v.owned:
            return f"the {n.singular} {they} {are} the {v.owned} of"
        role = role_noun(v)
        if role is not None and self.rng.random() < 0.6:
            return self.pick([f"one of {their} {role.plural}", f"{article(role.singular)} of {them}"])
        return f"{article(n.singular)} {n.rel} {v.takes(False, them)}"

    def _related_np(self, q: Query, pron: tuple[str, str, str, str]) -> str:
        """The path's last node said from the focus: one hop, or two ("the capital of their country", "the
        director of a movie they acted in", "a city that is in the country they are the capital of")."""
        first = self._from(q.hops[0], True, pron)
        if len(q.hops) == 1:
            return first
        h = q.hops[1]
        v = h.rel.verb
        n = q.nodes[2].label.noun
        if h.outward:  # a HAS_X type out of the middle node (the sampler allows no other)
            return self.pick([f"the {v.owned} of {first}", f"the {v.owned} of {first}"])
        role = role_noun(v)
        if role is not None and self.rng.random() < 0.6:
            return f"{self.pick(['the', article(role.singular).split()[0]])} {role.singular} of {first}"
        return f"{article(n.singular)} {n.rel} {v.takes(False, first)}"

    def _more(self, q: Query, fewer: bool) -> tuple[str, str]:
        """("speak more languages", "with more languages"): the counted relationship said as a verb phrase of
        the focus and as a "with" phrase."""
        r = q.related
        assert r is not None and r.counted is not None
        rel, out = r.counted
        other = (rel.end if out else rel.start).noun
        v = rel.verb
        more = "fewer" if fewer else "more"
        if rel.self_loop and is_adjacency(rel.type):
            return f"have {more} neighbours", f"with {more} neighbours"
        with_ = f"with {more} {other.plural}"
        if out:
            if v.owned:
                return f"have {more} {plural(v.owned)}", with_
            if v.copula:
                return f"are {v.plural_noun or v.base} {more} {other.plural}", with_
            return f"{v.finite(True)} {more} {other.plural}", ""  # "with more movies" says not which
        role = role_noun(v)
        if role is not None:
            with_ = self.pick([with_, f"with {more} {role.plural}"])
        if v.passive and self.rng.random() < 0.5:
            return f"are {v.passive} {more} {other.plural}", with_
        return f"have {more} {role.plural if role else other.plural}", with_

    def _ask(self, q: Query, np_text: str) -> str:
        """The head of a question that lists or counts ``np_text``: "Which cities", "Count the cities
        that"."""
        if q.agg is not None:
            return self.pick([f"How many {np_text}", f"Count the {np_text} that"])
        return self.pick([f"Which {np_text}", f"List the {np_text} that", f"Find the {np_text} that"])

    def _than(self, ask: str, some: str, p: Prop, up: bool, other: str) -> list[str]:
        """Wordings of "{ask} have a larger {p} than {other}" — of the listed things themselves (``some``
        empty) or of something they have ("a city", "a director"); years as "born before", "a birth year
        before" (not "a 'born' before")."""
        when = self.pick(["after", "later than"] if up else ["before", "earlier than"])
        more = self.pick(["larger", "higher", "greater", "bigger"] if up else ["smaller", "lower"])
        above = self.pick(["above", "greater than", "more than"] if up else ["below", "less than"])
        have = f"have {some} with" if some else "have"
        if p.is_year:
            opts = [f"{ask} {have} {article(p.words)} {when} that of {other}?"]
            if p.participle:
                opts += [f"{ask} {f'have {some}' if some else 'were'} {p.participle} {when} {other}?"] * 2
            return opts
        pn = self.pname(p)
        if some:
            return [
                f"{ask} {have} a {more} {pn} than {other}?",
                f"{ask} have {some} whose {pn} is {above} that of {other}?",
            ]
        return [
            f"{ask} have a {more} {pn} than {other}?",
            f"{ask} have {article(pn)} {above} that of {other}?",
            f"{ask} {'exceed' if up else 'fall below'} {other} in {pn}?",
        ]

    def _q_relcompare(self, q: Query) -> str:
        """ "Which cities have a larger population than the capital of their country?", "What share of Japan's
        population is in its capital?", "Which countries speak more languages than one of their
        neighbours?"."""
        r = q.related
        assert r is not None
        if r.kind == "share":
            return self._q_share(q)
        if r.show:
            return self._q_middle(q)
        np_text = self._focus_only(q)
        they = ("they", "their", "them", "are")
        other = self._related_np(q, they) if q.hops else self.anchor(q, 1)
        ask = self._ask(q, np_text)
        if r.kind == "degree":
            verb, with_ = self._more(q, r.op == "<")
            opts = [f"{ask} {verb} than {other}?", f"{ask} {verb} than {other}?"]
            if ask.startswith("Which") and with_:
                opts.append(f"{ask} are there {with_} than {other}?")
            elif ask.startswith("How many") and with_:
                opts.append(f"{ask} have {with_[5:]} than {other}?")
            n, past = self.noun(q, 0), not r.counted[0].verb.present and r.counted[1]
            if n.person and np_text == n.plural and q.agg is None and past:  # "Who acted in more movies …"
                opts.append(f"Who {verb} than {other}?")
            text = self.pick(opts)
        else:
            assert r.prop is not None
            opts = self._than(ask, "", r.prop, r.op == ">", other)
            text = self.pick(opts)
        if not text.startswith(("Which", "How", "Who")):
            text = text[:-1] + "."
        return text

    def _q_middle(self, q: Query) -> str:
        """ "Which countries have a city with a larger population than their capital?", "Which movies have a
        director born before one of their actors?": the two ends compared, the middle node asked for."""
        r = q.related
        assert r is not None and r.prop is not None
        j = _some_end(q)
        assert j is not None
        some_h, other_h = q.hops[j], q.hops[1 - j]
        up = (r.op == ">") == (j == 0)  # the comparison as the end said first ("a city") sees it
        end = q.nodes[0 if j == 0 else 2]
        role = role_noun(some_h.rel.verb)
        some = article(role.singular if role is not None else end.label.noun.singular)
        other = self._from(other_h, j == 0, ("they", "their", "them", "are"))
        saved, q.hops = q.hops, []
        try:
            np_text = self.np(q, 1)
        finally:
            q.hops = saved
        text = self.pick(self._than(self._ask(q, np_text), some, r.prop, up, other))
        return text if text.startswith(("Which", "How")) else text[:-1] + "."

    def _q_share(self, q: Query) -> str:
        """ "What share of the population of Japan lives in its capital?" (one named node) or "Which countries
        have a capital with more than a third of their population?" (a share as a condition)."""
        r = q.related
        assert r is not None and r.prop is not None
        pn = self.pname(r.prop)
        if r.fraction is None:
            x = self.anchor(q, 0)
            person = self.noun(q, 0).person
            it = ("they", "their", "them", "are") if person else ("it", "its", "it", "is")
            y = self._from(q.hops[0], True, it)
            if r.part == 1:  # the named node is the whole: "What share of Japan's population is in its …"
                return self.pick(
                    [
                        f"What share of the {pn} of {x} does {y} account for?",
                        f"What fraction of the {pn} of {x} is in {y}?",
                        f"What proportion of the {pn} of {x} is that of {y}?",
                    ]
                )
            return self.pick(  # the named node is the part: "What share of its country's population …"
                [
                    f"What share of the {pn} of {y} does {x} account for?",
                    f"What fraction of the {pn} of {y} does {x} have?",
                    f"What is the {pn} of {x} as a share of the {pn} of {y}?",
                    f"What proportion of the {pn} of {y} is that of {x}?",
                ]
            )
        np_text = self._focus_only(q)
        they = ("they", "their", "them", "are")
        y = self._from(q.hops[0], True, they)
        share = r.fraction[0]
        ask = self._ask(q, np_text)
        if r.part == 0:  # the listed nodes hold the part: "cities with more than 10 % of their country's …"
            opts = [
                f"{ask} have more than {share} of the {pn} of {y}?",
                f"{ask} account for more than {share} of the {pn} of {y}?",
            ]
        else:
            opts = [
                f"{ask} have {y.replace('their ', 'a ', 1) if y.startswith('their ') else y} with more than "
                f"{share} of their {pn}?",
                f"{ask} have more than {share} of their {pn} in {y}?",
            ]
        text = self.pick(opts)
        return text if text.startswith(("Which", "How")) else text[:-1] + "."

    def _q_relprop(self, q: Query) -> str:
        """ "What roles did Keanu Reeves have in The Matrix?" — a property of the relationship itself."""
        ref = next(r for r in q.returns if r.on == "hop")
        assert ref.prop is not None
        h = q.hops[ref.index]
        v = h.rel.verb
        pn = self.pname_plural(ref.prop) if ref.prop.kind == "list" else self.pname(ref.prop)
        other = self.np(q, h.child, plural_=False)
        if q.anchored(0) is not None:
            who = self.anchor(q, 0)
            return self.pick(
                [
                    f"What {'are' if ref.prop.kind == 'list' else 'is'} the {pn} of {who} for {other}?",
                    f"What {pn} did {who} have when they {v.takes(False, other)}?"
                    if not v.copula and not v.present
                    else f"What {pn} does {who} have for {other}?",
                    f"Show the '{h.rel.type}' {pn} between {who} and {other}.",
                ]
            )
        focus = self.np(q, 0, skip_hop=ref.index, skipped_filters=True)
        who = "who" if self.noun(q, 0).person else "that"
        if h.outward:
            rel = f"{who} {v.takes(True, other)}"
        else:
            rel = f"{v.passive} {other}" if v.passive else f"that {other} {v.finite(False)}"
        return self.pick(
            [
                f"List the {focus} {rel} and their {pn}.",
                f"What are the {pn} of the {focus} {rel}?",
                f"For each of the {focus} {rel}, give the {pn}.",
                f"Show the {focus} {rel} with the {pn}.",
            ]
        )

    def _each_pronoun(self, q: Query) -> tuple[str, str, str, bool]:
        """("it", "it", "its", False) for "each <group>", ("they", "them", "their", True) where the group is
        people: "For each country, list the languages it speaks", not "… they speak"."""
        if self.noun(q, q.group[0].index).person:
            return "they", "them", "their", True
        return "it", "it", "its", False

    def _q_collect(self, q: Query) -> str:
        x, each, groups, hop = self._group_parts(q)
        assert hop is not None
        v = hop.rel.verb
        it, obj, its, many = self._each_pronoun(q)
        if not hop.outward:
            return self.pick(
                [
                    f"For {each}, list the {x} {it} {v.finite(many)}.",
                    f"List {each} with the {x} {it} {v.finite(many)}.",
                    f"Show {each} and the {x} {v.passive or 'related to'} {obj}."
                    if v.passive
                    else f"Show {each} and {its} {x}.",
                ]
            )
        return self.pick(
            [
                f"For {each}, list the {x} that {v.takes(True, obj)}.",
                f"List {each} with {its} {x}.",
                f"Show {each} together with the {x} that {v.takes(True, obj)}.",
            ]
        )

    # --- listprop: a list property as a list ------------------------------------------------------------
    def _across(self, q: Query, subject: str, many: bool) -> str:
        """The relationship's other ends seen from the focus, for a list on the relationship: "the movies they
        acted in" (outward), "the people who acted in it" (inward); ``subject`` is the focus as said ("they",
        "it" or its name; said by its pronoun as an object)."""
        h = q.hops[0]
        v = h.rel.verb
        other = self.np(q, 1)
        if h.outward:
            that = "that " if self.rng.random() < 0.5 or not _bare(q, 1) else ""
            return f"the {other} {that}{subject} {v.finite(many)}"
        obj = {"they": "them", "it": "it"}.get(subject, "them" if self.noun(q, 0).person else "it")
        return f"the {other} {self.noun(q, 1).rel} {v.takes(True, obj)}"

    def _pronoun(self, q: Query) -> tuple[str, bool]:
        """The focus said again after its name: ("they", True) for people, ("it", False) for things."""
        return ("they", True) if self.noun(q, 0).person else ("it", False)

    def _list_size_in(self, q: Query, items: str, k: int, most: str) -> str:
        """The entities ranked by the size of their list on the relationship with a named one: "Which 3 people
        have the most roles in Apollo 13?" (the named one is the end), "In which movie does Tom Hanks have the
        most roles?" (the start)."""
        a = self.anchor(q, 1)
        n = self.noun(q, 0)
        said = self.np(q, 0, plural_=k != 1, skip_hop=0, skipped_filters=True)  # its conditions too
        things = said if k == 1 else f"{k} {said}"
        if not q.hops[0].outward:  # the named one starts the pattern: "In which movie does Tom Hanks have …"
            return self.pick(
                [
                    f"In which {things} does {a} have the {most} {items}?",
                    f"Which {things} does {a} have the {most} {items} in?",
                    f"For which {things} does {a} have the {most} {items}?",
                ]
            )
        prep = self.pick(["in", "for"])
        which = "Who" if k == 1 and n.person and not self._has_mods(q, 0) and self.rng.random() < 0.5 else (
            f"Which {things}"
        )
        return self.pick(
            [
                f"{which} {'has' if k == 1 else 'have'} the {most} {items} {prep} {a}?",
                f"List the {things} with the {most} {items} {prep} {a}.",
            ]
        )

    def _list_each(self, q: Query) -> tuple[str, str, bool]:
        """("each person", the pronoun the focus is said by after it, plural pronoun)."""
        each = self.np(q, 0, plural_=False, skip_hop=0, det="each") if q.hops else self.np(q, 0, det="each")
        person = self.noun(q, 0).person
        return each, ("they" if person else "it"), person

    def _q_listprop(self, q: Query) -> str:
        L = q.listed
        assert L is not None
        p = L.prop
        items = self.pname_plural(p)
        item = singular(p.words)
        on_hop = L.on == "hop"
        k = q.limit or 0
        most = "most" if q.desc else "fewest"
        if L.kind == "size_top":
            if on_hop and len(q.returns) == 2:  # the pairs, from the pattern's start: "people … in a movie"
                si = 0 if q.hops[0].outward else 1
                f, o = self.noun(q, si), self.noun(q, 1 - si)
                fx = (self.np(q, 0, plural_=k != 1, skip_hop=0, skipped_filters=True) if si == 0
                      else self.np(q, 1, plural_=k != 1))
                ox = (self.np(q, 1, plural_=False) if si == 0
                      else self.np(q, 0, plural_=False, skip_hop=0, skipped_filters=True))
                prep = self.pick(["in", "for"])
                if k == 1:
                    opts = [
                        f"Which {fx} has the {most} {items} {prep} a single {ox}, and {prep} which "
                        f"{o.singular}?",
                        f"Which {f.singular}-{o.singular} pair has the {most} {items}?",
                    ]
                else:
                    opts = [
                        f"Which {k} {fx} have the {most} {items} {prep} a single {ox}, and {prep} which "
                        f"{o.plural}?",
                        f"List the {k} {f.singular}-{o.singular} pairs with the {most} {items}.",
                        f"Top {k} pairs of {article(f.singular)} and {article(o.singular)} by number of "
                        f"{items}"
                        + ("" if q.desc else " (fewest first)"),
                    ]
                if self._has_mods(q, 0) or self._has_mods(q, 1):
                    opts = opts[:1]  # conditions are said in the noun phrases of the first form only
                return self.pick(opts)
            if on_hop and q.anchored(1):  # the place of the list named: "the most roles in Apollo 13"
                return self._list_size_in(q, items, k, most)
            bare = not self._has_mods(q, 0) and not q.hops  # "with the most" after a clause reads as its
            if k == 1:
                one = self.np(q, 0, plural_=False)
                opts = [f"Which {one} has the {most} {items}?", f"Among the {self.np(q, 0)}, which has the "
                        f"{most} {items}?"]
                if bare:
                    opts += [
                        f"What is the {one} with the {most} {items}?",
                        f"Find the {one} with the {most} {items}, and how many it has.",
                    ]
                    if q.desc:
                        opts.append(f"Which {one} has the longest list of {items}?")
                return self.pick(opts)
            np_text = self.np(q, 0)
            opts = [
                f"Which {k} {np_text} have the {most} {items}?",
                f"Among the {np_text}, which {k} have the {most} {items}?",
            ]
            if bare:
                opts += [
                    f"List the {k} {np_text} with the {most} {items}.",
                    f"What are the {k} {np_text} with the {most} {items}, and how many does each have?",
                    f"Top {k} {np_text} by number of {items}" + ("" if q.desc else " (fewest first)"),
                ]
            return self.pick(opts)
        if L.kind == "sum_size":
            return self._list_sum(q, items, k, most)
        if L.kind in ("distinct_items", "distinct_lists"):
            return self._list_distinct(q, items, item)
        if L.kind == "item_rank":
            np_text = self.np(q, 0)
            common = self.pick(["most common", "most frequent"] if q.desc else ["least common", "rarest"])
            if k == 1:
                return self.pick(
                    [
                        f"What is the {common} {item} among {np_text}?",
                        f"Which {item} occurs most often among {np_text}?"
                        if q.desc
                        else f"Which {item} occurs least often among {np_text}?",
                        f"Find the {common} {item} of {np_text}.",
                    ]
                )
            if k:
                return self.pick(
                    [
                        f"What are the {k} {common} {items} among {np_text}?",
                        f"Which {k} {items} occur {'most' if q.desc else 'least'} often among {np_text}?",
                        f"List the {k} {common} {items} of {np_text} and how often each occurs.",
                    ]
                )
            first = "most common first" if q.desc else "least common first"
            return self.pick(
                [
                    f"How many times does each {item} occur among {np_text}, {first}?",
                    f"List every {item} of {np_text} with how often it occurs, {first}.",
                    f"Count how often each {item} appears among {np_text}, {first}.",
                ]
            )
        return self._of_owners(  # items: the distinct elements
            q,
            [
                f"Which {items} does {{a}} have across {{across}}?",
                f"What are the different {items} of {{a}} across {{across}}?",
                f"List the distinct {items} {{a}} has across {{across}}.",
            ],
            [
                f"Which {items} do {{np}} have?",
                f"List the distinct {items} of {{np}}.",
                f"What are the different {items} among {{np}}?",
            ],
        )

    def _of_owners(self, q: Query, named: list[str], unnamed: list[str]) -> str:
        """One of ``named`` (a template of ``{a}``, the named focus, and ``{across}``, the other ends of its
        relationships) where the list is on the relationships of one named entity, else one of ``unnamed`` (of
        ``{np}``, the focus's noun phrase)."""
        L = q.listed
        assert L is not None
        if L.on == "hop" and q.anchored(0):
            a = self.anchor(q, 0)
            across = self._across(q, *self._pronoun(q))
            return self.pick([t.format(a=a, across=across) for t in named])
        np_text = self.np(q, 0)
        return self.pick([t.format(np=np_text) for t in unnamed])

    def _list_sum(self, q: Query, items: str, k: int, most: str) -> str:
        """A list's size summed per group: "the total number of roles of each person across the movies they
        acted in", "the number of languages summed over the countries of each region"."""
        if q.listed is not None and q.listed.on == "hop":
            each, it, many = self._list_each(q)
            across = self._across(q, it if not many else "they", many)
            if k:
                them = "their" if many else "its"
                groups = self.np(q, 0, plural_=k != 1, skip_hop=0, skipped_filters=True)
                across_k = self._across(q, "they" if k != 1 or many else "it", k != 1 or many)
                if k == 1:
                    return self.pick(
                        [
                            f"Which {groups} has the {most} {items} in total across {across_k}?",
                            f"Find the {groups} with the {most} {items} summed over all {them} "
                            f"{self.noun(q, 1).plural}.",
                        ]
                    )
                return self.pick(
                    [
                        f"Which {k} {groups} have the {most} {items} in total across {across_k}?",
                        f"Top {k} {groups} by total number of {items}"
                        + ("" if q.desc else " (fewest first)"),
                        f"List the {k} {groups} with the highest total number of {items}."
                        if q.desc
                        else f"List the {k} {groups} with the lowest total number of {items}.",
                    ]
                )
            return self.pick(
                [
                    f"What is the total number of {items} of {each} across {across}?",
                    f"For {each}, how many {items} are there in total across {across}?",
                    f"For {each}, add up the number of {items} over {across}.",
                    f"How many {items} does {each} have in total, summed over {across}?",
                ]
            )
        x, each, groups, _ = self._group_parts(q)
        g = each[5:]
        if k:
            if k == 1:
                return f"Which {self._singular_groups(q, groups)} has the {most} {items} summed over its {x}?"
            return self.pick(
                [
                    f"Which {k} {groups} have the {most} {items} summed over their {x}?",
                    f"Top {k} {groups} by the total number of {items} of their {x}"
                    + ("" if q.desc else " (fewest first)"),
                ]
            )
        return self.pick(
            [
                f"For {each}, what is the number of {items} summed over its {x}?",
                f"What is the total number of {items} of the {x} per {g}, adding up each one's {items}?",
                f"Sum the number of {items} of the {x} for {each}.",
            ]
        )

    def _list_distinct(self, q: Query, items: str, item: str) -> str:
        """How many different elements (``distinct_items``) or different lists (``distinct_lists``)."""
        L = q.listed
        assert L is not None
        lists = L.kind == "distinct_lists"
        what = (
            self.pick([f"different combinations of {items}", f"distinct lists of {items}",
                       f"different lists of {items}"])
            if lists
            else self.pick([f"different {items}", f"distinct {items}", f"unique {items}"])
        )
        if q.group:
            if L.on == "hop":
                each, it, many = self._list_each(q)
                across = self._across(q, "they" if many else it, many)
                return self.pick(
                    [
                        f"For {each}, how many {what} are there across {across}?",
                        f"How many {what} does {each} have across {across}?",
                        f"Count the {what} of {each} over {across}.",
                    ]
                )
            x, each, groups, _ = self._group_parts(q)
            return self.pick(
                [
                    f"For {each}, how many {what} do its {x} have?",
                    f"How many {what} are there among the {x} of {each}?",
                    f"Number of {what} of {x} per {each[5:]}",
                ]
            )
        return self._of_owners(
            q,
            [
                f"How many {what} does {{a}} have across {{across}}?",
                f"Count the {what} of {{a}} over {{across}}.",
                f"What is the number of {what} {{a}} has across {{across}}?",
            ],
            [
                f"How many {what} do {{np}} have?",
                f"How many {what} are there among {{np}}?",
                f"Count the {what} of {{np}}.",
            ],
        )
