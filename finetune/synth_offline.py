"""Offline, schema-grounded question → Cypher pairs: no LLM, no network, any graph.

    cypherloop data generate --graph northwind --offline --n 5000 --out pairs.jsonl --seed 0

How it works:

1. **Profile** the graph through ``GraphStore``: ``schema()`` for labels, types and patterns, then one
   sampling query per label (``properties(n)``) and one per pattern (the key values at both ends
   and the relationship's properties). From those samples each property gets a *kind* (the key
   that names an entity, an id, a category, free text, a number, a number stored as text, a date,
   a date stored as ISO text, a boolean) and each pattern an adjacency table.
2. **Candidates** per *shape* (``SHAPES``): lookups, property filters, one- to three-hop traversals
   in both directions, counts and other aggregates, grouping, top-k, DISTINCT, OPTIONAL MATCH,
   negation, variable-length paths, date and number comparisons … Each is built from real values,
   worded the way people ask ("How many orders did Alfreds Futterkiste place?"), with labels,
   properties and relationship types turned into English (``ACTED_IN`` → "acted in", ``unitPrice``
   → "unit price", ``Person`` → "people").
3. **Keep** a candidate only if it runs read-only within a short timeout, returns rows that are not
   all empty, returns the same rows when run again, and (top-k) has no tie at the cut. Questions and
   queries are de-duplicated after normalisation (``finetune.dataset.normalize_*``); shapes take
   turns (round-robin), so a shape with thousands of candidates cannot crowd out one with fifty.

Everything is deterministic for a given graph and ``seed``.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import DataError, GraphError
from agent.graphdb.base import GraphStore

SHAPES: tuple[str, ...] = (
    "lookup",
    "filter_eq",
    "filter_range",
    "filter_string",
    "filter_in",
    "filter_null",
    "date_filter",
    "one_hop",
    "two_hop",
    "three_hop",
    "filtered_traversal",
    "rel_property",
    "count",
    "aggregate",
    "count_distinct",
    "collect",
    "group_by",
    "having",
    "top_k",
    "distinct",
    "optional_match",
    "negation",
    "var_length",
)
"""Every shape the generator knows, in the order they take turns."""

NODE_SAMPLE = 2000
"""Nodes read per label to profile its properties and pick entity names."""
EDGE_SAMPLE = 20000
"""Relationships read per pattern for the adjacency tables."""
ENTITIES_PER_LABEL = 400
"""Named entities per label that candidates may mention."""
MAX_FAILS_PER_TURN = 40
"""A shape that fails this many candidates in a row gives up its turn (and, after three such turns, retires)."""


# ============================================================================================
# English: words, plurals, verbs
# ============================================================================================

_ACRONYMS = {"id": "ID", "url": "URL", "uri": "URI", "ip": "IP", "iso": "ISO", "sku": "SKU", "isbn": "ISBN", "imdb": "IMDb"}
_IRREGULAR_PLURAL = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
                     "foot": "feet", "tooth": "teeth", "goose": "geese", "criterion": "criteria", "datum": "data",
                     "medium": "media", "analysis": "analyses", "thesis": "theses", "series": "series",
                     "species": "species", "news": "news", "info": "info", "staff": "staff", "equipment": "equipment"}
_PERSONS = frozenset(["person", "people", "user", "customer", "employee", "actor", "actress", "director", "author", "student", "teacher", "member", "patient", "doctor", "artist", "player", "manager", "writer", "reviewer", "friend", "contact", "client", "buyer", "seller", "owner", "agent", "officer", "character", "producer", "musician", "singer", "speaker", "researcher", "scientist", "engineer", "developer", "founder", "politician", "athlete", "coach", "referee", "supplier_contact", "individual", "human", "guest", "host"])
_PREPOSITIONS = frozenset(["in", "of", "at", "on", "from", "to", "with", "for", "by", "per", "via", "near", "under", "into", "onto", "over", "about", "as", "within"])
_COPULA_NOUNS = frozenset(["part", "member", "friend", "friends", "parent", "child", "owner", "head", "capital", "subclass", "instance", "type", "kind", "sibling", "spouse", "partner", "colleague", "neighbour", "neighbor", "sequel", "prequel", "successor", "predecessor", "version", "copy",
                           "next", "adjacent", "close", "similar", "equal", "opposite", "near"])
_ADJECTIVES = frozenset(["next", "adjacent", "close", "similar", "equal", "opposite", "near"])
_UNCOUNTED = frozenset(["part", "type", "kind", "friends"])
_INTRANSITIVE = frozenset(["interact", "work", "live", "arrive", "travel", "respond", "reply", "belong", "depend",
                           "participate", "collaborate", "talk", "speak", "listen", "compete", "vote", "contribute",
                           "act", "star", "play", "appear", "happen", "occur", "exist", "stay", "sleep", "die"])
_STATE_PARTICIPLES = frozenset(["located", "based", "born", "married", "related", "assigned", "interested", "involved", "connected", "linked", "associated", "tagged", "named", "made", "written", "published", "situated", "employed", "enrolled", "registered", "listed", "classified"])

# past -> (base, past, participle, third person)
_IRREGULAR_VERBS: dict[str, tuple[str, str, str, str]] = {}
for _base, _past, _part in [
    ("write", "wrote", "written"), ("buy", "bought", "bought"), ("sell", "sold", "sold"), ("make", "made", "made"),
    ("know", "knew", "known"), ("teach", "taught", "taught"), ("lead", "led", "led"), ("win", "won", "won"),
    ("pay", "paid", "paid"), ("hold", "held", "held"), ("build", "built", "built"), ("send", "sent", "sent"),
    ("give", "gave", "given"), ("take", "took", "taken"), ("see", "saw", "seen"), ("do", "did", "done"),
    ("run", "ran", "run"), ("meet", "met", "met"), ("find", "found", "found"), ("tell", "told", "told"),
    ("get", "got", "got"), ("leave", "left", "left"), ("lose", "lost", "lost"), ("bring", "brought", "brought"),
    ("think", "thought", "thought"), ("fight", "fought", "fought"), ("drive", "drove", "driven"),
    ("speak", "spoke", "spoken"), ("begin", "began", "begun"), ("choose", "chose", "chosen"), ("eat", "ate", "eaten"),
    ("fly", "flew", "flown"), ("grow", "grew", "grown"), ("hear", "heard", "heard"), ("keep", "kept", "kept"),
    ("mean", "meant", "meant"), ("sit", "sat", "sat"), ("stand", "stood", "stood"), ("become", "became", "become"),
    ("come", "came", "come"), ("go", "went", "gone"), ("have", "had", "had"), ("be", "was", "been"),
    ("sing", "sang", "sung"), ("draw", "drew", "drawn"), ("read", "read", "read"), ("lend", "lent", "lent"),
    ("spend", "spent", "spent"), ("feel", "felt", "felt"), ("shoot", "shot", "shot"), ("rise", "rose", "risen"),
    ("steal", "stole", "stolen"), ("wear", "wore", "worn"), ("bear", "bore", "borne"), ("forgive", "forgave", "forgiven"),
]:
    _third = {"have": "has", "be": "is", "do": "does", "go": "goes"}.get(_base) or (
        _base[:-1] + "ies" if _base.endswith("y") and _base[-2:-1] not in "aeiou" else _base + ("es" if _base.endswith(("s", "sh", "ch", "x", "z", "o")) else "s")
    )
    _IRREGULAR_VERBS[_past] = _IRREGULAR_VERBS[_base] = _IRREGULAR_VERBS[_third] = (_base, _past, _part, _third)
_ED_BASE = {"created": "create", "completed": "complete", "deleted": "delete", "competed": "compete",
            "quoted": "quote", "explored": "explore", "ignored": "ignore", "compared": "compare",
            "scheduled": "schedule", "controlled": "control", "described": "describe", "subscribed": "subscribe",
            "featured": "feature", "captured": "capture", "included": "include", "provided": "provide",
            "decided": "decide", "concluded": "conclude", "excluded": "exclude", "invited": "invite",
            "united": "unite", "visited": "visit", "edited": "edit", "limited": "limit", "credited": "credit",
            "followed": "follow", "allowed": "allow", "travelled": "travel", "cancelled": "cancel",
            "labelled": "label", "modelled": "model", "starred": "star", "referred": "refer", "preferred": "prefer"}
_VOWELS = "aeiou"


def split_words(identifier: str) -> list[str]:
    """``unitPrice`` → ['unit', 'price']; ``customer_id`` → ['customer', 'ID']; ``ACTED_IN`` → ['acted', 'in']."""
    raw = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", identifier or "")
    return [_ACRONYMS.get(w.lower(), w.lower()) for w in raw] or [identifier]


def pluralize(phrase: str) -> str:
    """Plural of a noun phrase: its head word ("unit price" → "unit prices", "quantity per unit" → "quantities per unit")."""
    words = phrase.split(" ")
    cut = next((i for i, w in enumerate(words) if i and w in _PREPOSITIONS), len(words))
    if cut < len(words):
        if _is_plural_word(words[cut - 1]):
            return phrase
        return " ".join([pluralize(" ".join(words[:cut])), *words[cut:]])
    head, _, last = phrase.rpartition(" ")
    low = last.lower()
    if _is_plural_word(low) and low not in _IRREGULAR_PLURAL:
        return phrase
    if low in _IRREGULAR_PLURAL:
        plural = _IRREGULAR_PLURAL[low]
    elif low in ("ID", "id") or last.isupper():
        plural = last + "s"
    elif re.search(r"[^aeiou]y$", low):
        plural = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", low):
        plural = last + "es"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _is_plural_word(word: str) -> bool:
    low = word.lower()
    if low in _IRREGULAR_PLURAL.values():
        return True
    return low.endswith("s") and not low.endswith(("ss", "us", "is")) and low not in ("status", "address", "news", "bus", "gas")


def _is_cvc(stem: str) -> bool:
    """Ends consonant-vowel-consonant with a single vowel letter (rat, lik, scor)."""
    return (len(stem) >= 3 and stem[-1] not in _VOWELS + "wxy" and stem[-2] in _VOWELS
            and stem[-3] not in _VOWELS)


def _ed_base(word: str) -> str:
    """Base form of a regular past tense (placed → place, supplied → supply, referred → refer)."""
    if word in _ED_BASE:
        return _ED_BASE[word]
    if word.endswith("ied"):
        return word[:-3] + "y"
    stem = word[:-2]
    if len(stem) >= 2 and stem[-1] == stem[-2] and stem[-1] not in _VOWELS + "lsfz":
        return stem[:-1]
    if re.search(r"(c|v|z|ur|id|ud|ib|rg|dg|[aeiou]g|ang|[^aeiou]at|[aiou]s|[rnpl]s|[bptdgk]l)$", stem):
        return stem + "e"
    vowel_groups = len(re.findall(r"[aeiou]+", stem))
    if vowel_groups == 1 and _is_cvc(stem):
        return stem + "e"
    return stem


def _past_of(base: str) -> str:
    if base in _IRREGULAR_VERBS:
        return _IRREGULAR_VERBS[base][1]
    if base.endswith("e"):
        return base + "d"
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ied"
    return base + "ed"


def _third_of(base: str) -> str:
    if base in _IRREGULAR_VERBS:
        return _IRREGULAR_VERBS[base][3]
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh|o)$", base):
        return base + "es"
    return base + "s"


def _s_base(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(sses|shes|ches|xes|zes|oes)$", word):
        return word[:-2]
    return word[:-1]


@dataclass(frozen=True)
class RelPhrase:
    """A relationship type in English. ``copula``: "is part of"; otherwise a verb with an optional particle."""

    copula: bool
    base: str  # verb: "act in" / copula: "part of"
    past: str = ""
    participle: str = ""
    third: str = ""
    present: bool = True  # tense of the type's name: SUPPLIES present, PLACED past
    particle: bool = False  # the verb carries a preposition (acted in): no natural passive
    plural_noun: str = ""  # copula nouns agree in number: "members of"

    def finite(self, plural: bool) -> str:
        """Verb phrase after a subject: "placed", "supply"/"supplies", "are part of"."""
        if self.copula:
            return ("are " + (self.plural_noun or self.base)) if plural else ("is " + self.base)
        if not self.present:
            return self.past
        return self.base if plural else self.third

    def ask(self, subject: str, plural: bool = False) -> str:
        """Question inversion: "did Tom Hanks act in", "does Exotic Liquids supply", "is Chai part of"."""
        if self.copula:
            return f"{'are' if plural else 'is'} {subject} {(self.plural_noun or self.base) if plural else self.base}"
        aux = "did" if not self.present else ("do" if plural else "does")
        return f"{aux} {subject} {self.base}"

    def ask_not(self, subject: str, plural: bool = False) -> str:
        """ "did Tom Hanks not act in", "is Chai not part of"."""
        if self.copula:
            return f"{'are' if plural else 'is'} {subject} not {(self.plural_noun or self.base) if plural else self.base}"
        aux = "did" if not self.present else ("do" if plural else "does")
        return f"{aux} {subject} not {self.base}"

    def negated(self, plural: bool) -> str:
        """ "never placed", "do not supply", "are not part of"."""
        if self.copula:
            return ("are not " + (self.plural_noun or self.base)) if plural else ("is not " + self.base)
        if not self.present:
            return "never " + self.past
        return ("do not " if plural else "does not ") + self.base

    @property
    def passive(self) -> str | None:
        """ "placed by", "supplied by"; None where a passive reads badly (particles, copulas)."""
        if self.copula or self.particle:
            return None
        return f"{self.participle} by"


def rel_phrase(rel_type: str, end_label: str | None = None) -> RelPhrase:
    """English for a relationship type: PLACED → placed, ACTED_IN → acted in, PART_OF → is part of."""
    words = split_words(rel_type)
    if end_label:  # IN_CATEGORY to :Category → "in" (the label noun comes with the entity)
        tail = split_words(end_label)
        if len(words) > len(tail) and words[-len(tail):] == tail:
            words = words[: -len(tail)]
    head, rest = words[0], words[1:]
    tail = (" " + " ".join(rest)) if rest else ""
    if head in ("is", "are", "was", "were", "be") and rest:
        return RelPhrase(True, " ".join(rest))
    if head in _PREPOSITIONS or head in _COPULA_NOUNS or (rest and rest[-1] == "by" and head.endswith("ed")) or (
        head in _STATE_PARTICIPLES and rest
    ):
        if head in _ADJECTIVES and not rest:
            words = [head, "to"]  # SIMILAR → "similar to"
        phrase = " ".join(words)
        plural = ""
        if head in _COPULA_NOUNS and head not in _UNCOUNTED and head not in _ADJECTIVES:
            plural = " ".join([pluralize(head), *rest])  # MEMBER_OF: "are members of" / "is a member of"
            phrase = f"{_a(head)} {phrase}"
        return RelPhrase(True, phrase, plural_noun=plural)
    if head in _IRREGULAR_VERBS:
        base, past, part, third = _IRREGULAR_VERBS[head]
        present = head not in (past,) or head == base
    elif head.endswith("ed") and len(head) > 3:
        base = _ed_base(head)
        past = part = head
        third = _third_of(base)
        present = False
    elif head.endswith("s") and not head.endswith("ss") and len(head) > 3:
        base = _s_base(head)
        past = part = _past_of(base)
        third = head
        present = True
    else:
        base = head
        past = part = _past_of(base)
        third = _third_of(base)
        present = True
    return RelPhrase(False, base + tail, past + tail, part + tail, third + tail, present, bool(rest) or base in _INTRANSITIVE)


@dataclass(frozen=True)
class Noun:
    singular: str
    plural: str
    person: bool = False

    @classmethod
    def of_label(cls, label: str) -> Noun:
        words = split_words(label)
        singular = " ".join(words)
        return cls(singular, pluralize(singular), words[-1] in _PERSONS or "_".join(words) in _PERSONS)

    @property
    def subj(self) -> str:
        """Subject pronoun for one entity ("they" for people, agreeing as a plural)."""
        return "they" if self.person else "it"

    @property
    def obj(self) -> str:
        return "them" if self.person else "it"

    @property
    def which(self) -> str:
        return "Who" if self.person else f"Which {self.plural}"

    @property
    def rel(self) -> str:
        """Relative pronoun: "who" for people, "that" otherwise."""
        return "who" if self.person else "that"


_THEY = Noun("they", "they", True)
"""A plural pronoun anchor for ``_clause`` ("that they placed", "placed by them")."""


def prop_phrase(label: str, prop: str) -> str:
    """``Product.productName`` → "name"; ``Product.unitPrice`` → "unit price"; ``Customer.customerID`` → "customer ID"."""
    words = split_words(prop)
    lab = split_words(label)
    if len(words) > len(lab) and words[: len(lab)] == lab and words[len(lab):] != ["ID"]:
        words = words[len(lab):]
    return " ".join(words)


# ============================================================================================
# Cypher text
# ============================================================================================

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = frozenset(["match", "optional", "where", "return", "with", "order", "by", "limit", "skip", "distinct", "as", "and", "or", "not", "xor", "in", "is", "null", "true", "false", "starts", "ends", "contains", "unwind", "call", "yield", "asc", "desc", "case", "when", "then", "else", "end", "union", "all", "exists", "create", "merge", "set", "delete", "detach", "remove", "foreach", "on", "count"])


def ident(name: str) -> str:
    """A label / type / property as Cypher: bare when it can be, backquoted otherwise."""
    if _IDENT.match(name):
        return name
    return "`" + name.replace("`", "``") + "`"


def lit(value: Any) -> str:
    """A Cypher literal for a sampled value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    s = str(value)
    if "'" in s and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _num(x: float | int) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return f"{x:.6g}" if abs(x) < 1e15 else repr(x)


def say_num(x: float | int) -> str:
    """A number as people write it in a question."""
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}".rstrip("0").rstrip(".") if abs(x) >= 1000 else _num(round(x, 4))
    return f"{int(x):,}" if abs(x) >= 10000 else str(int(x))


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def say_date(iso: str, rng: random.Random) -> str:
    """'1997-03-01' → "March 1, 1997", "1 March 1997" or "1997-03-01"."""
    y, m, d = int(iso[:4]), int(iso[5:7]), int(iso[8:10])
    return rng.choice([f"{_MONTHS[m - 1]} {d}, {y}", f"{d} {_MONTHS[m - 1]} {y}", iso[:10]])


# ============================================================================================
# Profile
# ============================================================================================

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_NUMERIC_TEXT = re.compile(r"^-?\d+(?:\.\d+)?$")
_MISSING = {None, "", "NULL", "null", "None", "N/A", "n/a"}
_LOCATION_WORDS = frozenset(["city", "country", "state", "region", "town", "county", "province", "continent", "location", "place", "area"])
_MONEY_WORDS = frozenset(["price", "cost", "amount", "total", "revenue", "budget", "salary", "fee", "freight", "value", "spend", "spent"])


@dataclass
class Prop:
    """A property of a label or relationship type, as the samples show it."""

    name: str
    phrase: str
    kind: str  # name | id | category | text | number | numtext | date | datetext | bool | list | other
    values: list[Any]  # distinct usable values, deterministic order
    counts: Counter
    present: int
    total: int
    db_type: str = ""

    @property
    def nullable(self) -> bool:
        return 0 < self.present < self.total

    @property
    def words(self) -> set[str]:
        return set(self.phrase.lower().split())

    @property
    def is_location(self) -> bool:
        return bool(self.words & _LOCATION_WORDS)

    @property
    def is_money(self) -> bool:
        return bool(self.words & _MONEY_WORDS)

    participle: str = ""  # "released", "born": the property reads as a verb ("movies released after 1999")

    @property
    def plural_phrase(self) -> bool:
        words = self.phrase.split()
        if not words:
            return False
        cut = next((i for i, w in enumerate(words) if i and w in _PREPOSITIONS), len(words))
        return _is_plural_word(words[cut - 1])


@dataclass
class Label:
    label: str
    var: str
    noun: Noun
    count: int
    props: dict[str, Prop]
    key: Prop | None = None  # the property that names an entity
    entities: list[Any] = field(default_factory=list)  # key values that name exactly one node

    def ref(self, value: Any, rng: random.Random, bare_ok: bool = True) -> str:
        """How a question mentions one entity: "Chai", "the product Chai", "order 10248"."""
        assert self.key is not None
        shown = say_num(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
        if self.key.kind == "name":
            if bare_ok and rng.random() < 0.6:
                return shown
            return f"the {self.noun.singular} {shown}"
        key = self.key.phrase
        if key.lower() in ("id", f"{self.noun.singular} id") or key.endswith("ID"):
            return rng.choice([f"{self.noun.singular} {shown}", f"the {self.noun.singular} with ID {shown}",
                               f"{self.noun.singular} #{shown}"])
        return f"the {self.noun.singular} with {key} {shown}"

    def node(self, var: str | None = None, value: Any = None, *, with_label: bool = True) -> str:
        v = var or self.var
        lab = f":{ident(self.label)}" if with_label else ""
        if value is None:
            return f"({v}{lab})"
        assert self.key is not None
        return f"({v}{lab} {{{ident(self.key.name)}: {lit(value)}}})"

    def show(self, var: str | None = None) -> str:
        """What a query returns for an entity of this label: its key property."""
        assert self.key is not None
        return f"{var or self.var}.{ident(self.key.name)}"


@dataclass
class Rel:
    """One (start)-[type]->(end) pattern with its sampled adjacency."""

    start: Label
    type: str
    end: Label
    phrase: RelPhrase
    props: dict[str, Prop]
    out: dict[Any, list[Any]]  # start key → end keys
    inc: dict[Any, list[Any]]  # end key → start keys
    edges: int

    @property
    def self_loop(self) -> bool:
        return self.start.label == self.end.label

    def arrow(self, var: str = "") -> str:
        return f"-[{var}:{ident(self.type)}]->"


@dataclass
class Profile:
    graph: str
    labels: dict[str, Label]
    rels: list[Rel]

    def named(self) -> list[Label]:
        return [x for x in self.labels.values() if x.key is not None and x.entities]


def _classify(name: str, values: list[Any], total: int, db_type: str) -> tuple[str, list[Any], Counter]:
    usable = [v for v in values if not (isinstance(v, str) and v.strip() in _MISSING) and v is not None]
    counts: Counter = Counter(_hashable(v) for v in usable)
    distinct = sorted(counts, key=lambda v: (-counts[v], str(v)))
    lname = name.lower()
    if not usable:
        return "other", [], counts
    if all(isinstance(v, bool) for v in usable):
        return "bool", distinct, counts
    if all(isinstance(v, (list, tuple)) for v in usable):
        return "list", [], counts
    if db_type in ("DATE", "DATETIME", "LOCALDATETIME"):
        return "date", distinct, counts
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in usable):
        if re.search(r"(^|_)id$|Id$|ID$", name) and len(counts) > 0.9 * len(usable):
            return "id", distinct, counts
        return "number", distinct, counts
    if not all(isinstance(v, str) for v in usable):
        return "other", [], counts
    avg_len = sum(len(v) for v in usable) / len(usable)
    if avg_len > 200 or re.match(r"^(0x)?[0-9A-Fa-f]{64,}$", usable[0]):
        return "other", [], counts
    if all(_ISO_DATE.match(v) for v in usable[:200]):
        return "datetext", distinct, counts
    id_like = bool(re.search(r"(^|_)id$|Id$|ID$|(^|_)(code|key|sku|isbn)$", name, re.IGNORECASE))
    if all(_NUMERIC_TEXT.match(v) for v in usable[:200]) and not id_like and len(counts) > 5:
        return "numtext", distinct, counts
    unique_ratio = len(counts) / len(usable)
    if len(counts) <= 50 and (len(counts) <= 0.5 * len(usable)) and avg_len <= 40:
        return "category", distinct, counts
    if id_like or lname in ("email", "phone", "fax", "url", "homepage", "postalcode", "zip"):
        return "id", distinct, counts
    if unique_ratio >= 0.5 and avg_len <= 120:
        return "text", distinct, counts
    return "other", [], counts


_PARTICIPLE_NOUNS = {"born": "birth", "released": "release", "created": "creation", "updated": "update", "joined": "join",
                     "published": "publication", "founded": "founding", "died": "death", "started": "start", "ended": "end",
                     "modified": "modification", "registered": "registration", "signed": "signing", "opened": "opening",
                     "closed": "closing", "shipped": "shipping", "delivered": "delivery", "completed": "completion",
                     "established": "establishment", "launched": "launch", "produced": "production", "recorded": "recording",
                     "posted": "posting", "retired": "retirement", "graduated": "graduation", "hired": "hiring"}


def _participle_noun(p: Prop) -> None:
    """ "released" (a year) → phrase "release year", participle "released"."""
    words = p.phrase.split()
    if len(words) != 1 or p.kind not in ("number", "date", "datetext"):
        return
    word = words[0]
    if word not in _PARTICIPLE_NOUNS and not (word.endswith("ed") and len(word) > 4):
        return
    stem = _PARTICIPLE_NOUNS.get(word, word)
    if p.kind == "number":
        if not all(isinstance(v, int) and 1000 <= v <= 2200 for v in p.values):
            return
        p.phrase = f"{stem} year"
    else:
        p.phrase = f"{stem} date"
    p.participle = word


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _key_score(label: str, p: Prop) -> float:
    """How well a property names the entities of a label (0: not at all)."""
    if p.kind not in ("text", "id", "category", "number") or p.present < 0.95 * p.total or not p.values:
        return 0
    unique = len(p.counts) / max(1, p.present)
    if unique < 0.9:
        return 0
    name = p.name.lower()
    lab = label.lower()
    if p.kind == "text":
        if name == "name":
            return 100
        if name == "title":
            return 95
        if name in (f"{lab}name", f"{lab}_name", f"{lab}title"):
            return 90
        if name.endswith("name") and ("company" in name or "full" in name or "display" in name):
            return 85
        if name.endswith("name") or name.endswith("title"):
            return 75
        if re.search(r"(^|_)id$|Id$|ID$|code$", p.name):
            return 40
        return 10 + (5 if unique == 1 else 0)
    if p.kind in ("id", "number"):
        if name in ("id", f"{lab}id", f"{lab}_id") or name.endswith("id"):
            return 50
        return 20 if p.kind == "id" else 0
    return 0


def profile_graph(graph: GraphStore, *, timeout_s: float = 30.0) -> Profile:
    """Read the schema and samples of values and adjacency (a few queries per label and pattern)."""
    schema = graph.schema()
    labels: dict[str, Label] = {}
    used_vars: set[str] = set()
    by_size = sorted((x for x in schema.labels if x.label), key=lambda x: (-(x.count or 0), x.label))
    var_of = {x.label: _pick_var(x.label, used_vars) for x in by_size}
    for nl in schema.labels:
        if not nl.label:
            continue
        rows = graph.query(f"MATCH (n:{ident(nl.label)}) WITH n LIMIT {NODE_SAMPLE} RETURN properties(n)",
                           timeout_s=timeout_s, max_rows=NODE_SAMPLE).rows
        recs = [r[0] for r in rows if isinstance(r[0], dict)]
        db_types = {p.name: p.type for p in nl.properties}
        names: list[str] = []
        for rec in recs:
            for k in rec:
                if isinstance(k, str) and k and k != "None" and not k.startswith("_") and k not in names:
                    names.append(k)
        props: dict[str, Prop] = {}
        for name in names:
            vals = [rec.get(name) for rec in recs if rec.get(name) is not None]
            kind, distinct, counts = _classify(name, vals, len(recs), db_types.get(name, ""))
            props[name] = Prop(name, prop_phrase(nl.label, name), kind, distinct, counts, len(vals), len(recs),
                               db_types.get(name, ""))
            _participle_noun(props[name])
        var = var_of[nl.label]
        lab = Label(nl.label, var, Noun.of_label(nl.label), nl.count or len(recs), props)
        scored = sorted(((s, p.name) for p in props.values() if (s := _key_score(nl.label, p)) > 0), reverse=True)
        if scored:
            key = props[scored[0][1]]
            if key.kind == "category":
                key.kind = "text"
            if key.kind == "text":
                key.kind = "name"
            lab.key = key
            lab.entities = [v for v in key.values if key.counts[v] == 1 and isinstance(v, (str, int))][:ENTITIES_PER_LABEL * 4]
        labels[nl.label] = lab
    rels: list[Rel] = []
    rel_types = {r.type: r for r in schema.relationships}
    for pat in schema.patterns:
        a, b = labels.get(pat.start), labels.get(pat.end)
        if a is None or b is None:
            continue
        ka = a.show("a") if a.key else "null"
        kb = b.show("b") if b.key else "null"
        rows = graph.query(
            f"MATCH (a:{ident(a.label)})-[r:{ident(pat.type)}]->(b:{ident(b.label)}) WITH a, r, b LIMIT {EDGE_SAMPLE} "
            f"RETURN {ka}, {kb}, properties(r)", timeout_s=timeout_s, max_rows=EDGE_SAMPLE).rows
        if not rows:
            continue
        out: dict[Any, list[Any]] = defaultdict(list)
        inc: dict[Any, list[Any]] = defaultdict(list)
        precs = []
        for x, y, p in rows:
            if x is not None and y is not None:
                out[_hashable(x)].append(_hashable(y))
                inc[_hashable(y)].append(_hashable(x))
            precs.append(p if isinstance(p, dict) else {})
        rt = rel_types.get(pat.type)
        db_types = {p.name: p.type for p in (rt.properties if rt else ())}
        pnames: list[str] = []
        for rec in precs:
            for k in rec:
                if isinstance(k, str) and k and k != "None" and not k.startswith("_") and k not in pnames:
                    pnames.append(k)
        props = {}
        for name in pnames:
            vals = [rec.get(name) for rec in precs if rec.get(name) is not None]
            kind, distinct, counts = _classify(name, vals, len(precs), db_types.get(name, ""))
            props[name] = Prop(name, " ".join(split_words(name)), kind, distinct, counts, len(vals), len(precs),
                               db_types.get(name, ""))
        rels.append(Rel(a, pat.type, b, rel_phrase(pat.type, b.label), props, dict(out), dict(inc), len(rows)))
    return Profile(graph.name, labels, rels)


def _pick_var(label: str, used: set[str]) -> str:
    """ "c" for Customer; "cat" for Category when "c" is taken; "oi" for OrderItem; then digits."""
    words = [w for w in split_words(label) if w and w[0].isalpha()] or ["n"]
    first = words[0].lower()
    candidates = [first[0], "".join(w[0].lower() for w in words), first[:3], first]
    for var in candidates:
        if var and var not in used and var not in _RESERVED and _IDENT.match(var):
            used.add(var)
            return var
    i = 2
    while f"{first[0]}{i}" in used:
        i += 1
    used.add(f"{first[0]}{i}")
    return f"{first[0]}{i}"


def _other_var(lab: Label, taken: Iterable[str]) -> str:
    taken = set(taken)
    for cand in (lab.var, lab.var + "2", lab.var + "3", "other", "x", "y"):
        if cand not in taken:
            return cand
    return "z"


# ============================================================================================
# Candidates
# ============================================================================================


@dataclass
class Candidate:
    """A question with its query, before execution."""

    question: str
    cypher: str
    category: str
    tie: tuple[str, int, int] | None = None  # (the query with LIMIT k+1, k, index of the sort column)


def _cap(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([?.,])", r"\1", text)
    return text[:1].upper() + text[1:]


def _pick(rng: random.Random, templates: list[str], **ctx: Any) -> str:
    return _cap(rng.choice(templates).format(**ctx))


def _alias(*parts: str) -> str:
    words = [w.lower() for p in parts for piece in re.findall(r"[A-Za-z0-9]+", p) for w in split_words(piece)]
    out = "_".join(words) or "value"
    return out if out[0].isalpha() and out not in _RESERVED else "n_" + out


def _mix(groups: list[list[Any]], rng: random.Random) -> Iterator[Any]:
    """Shuffle each group, then take one from each in turn (variety first)."""
    pools = []
    for g in groups:
        g = list(g)
        rng.shuffle(g)
        if g:
            pools.append(iter(g))
    while pools:
        for it in list(pools):
            item = next(it, None)
            if item is None:
                pools.remove(it)
            else:
                yield item


def _sample(items: Iterable[Any], k: int, rng: random.Random) -> list[Any]:
    items = list(items)
    rng.shuffle(items)
    return items[:k]


def _nice(x: float) -> float | int:
    """Round a threshold the way a person would (2 significant digits)."""
    if x == 0:
        return 0
    r = float(f"{x:.2g}")
    return int(r) if r.is_integer() else r


def _thresholds(values: list[Any], numtext: bool = False) -> list[float | int]:
    nums = sorted(float(v) for v in values if _is_num(v, numtext))
    if len(nums) < 3:
        return []
    out: list[float | int] = []
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        t = _nice(nums[min(len(nums) - 1, int(q * len(nums)))])
        if t not in out:
            out.append(t)
    return out


def _is_num(v: Any, numtext: bool = False) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return not (isinstance(v, float) and math.isnan(v))
    return numtext and isinstance(v, str) and bool(_NUMERIC_TEXT.match(v))


def _pv(var: str, p: Prop) -> str:
    """Property access; numbers stored as text are converted."""
    expr = f"{var}.{ident(p.name)}"
    return f"toFloat({expr})" if p.kind == "numtext" else expr


def _date_lit(p: Prop, iso: str) -> str:
    if p.kind == "date":
        if p.db_type == "DATE":
            return f"date('{iso[:10]}')"
        return f"localdatetime('{iso[:10]}T00:00:00')" if p.db_type == "LOCALDATETIME" else f"datetime('{iso[:10]}T00:00:00')"
    return lit(iso[:10])


def _show_val(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return say_num(v)
    return str(v)


def _is_participle(p: Prop) -> bool:
    return bool(p.participle)


_ACTIVE_PARTICIPLES = frozenset(["joined", "started", "ended", "arrived", "left", "died", "signed", "retired", "graduated"])


def _lookup_props(lab: Label) -> list[Prop]:
    return [p for p in lab.props.values() if p is not lab.key and p.kind not in ("other",) and p.values]


def _filter_props(lab: Label, kinds: tuple[str, ...]) -> list[Prop]:
    return [p for p in lab.props.values() if p.kind in kinds and p.values and p is not lab.key]


def _extra(lab: Label, rng: random.Random, chance: float = 0.25) -> Prop | None:
    """Sometimes return one more informative property next to the key."""
    if rng.random() >= chance:
        return None
    props = _filter_props(lab, ("number", "date", "datetext", "category", "numtext"))
    return rng.choice(props) if props else None


def _returning(lab: Label, var: str, rng: random.Random, extra: Prop | None = None) -> str:
    cols = [lab.show(var)]
    if extra is not None:
        cols.append(f"{var}.{ident(extra.name)}")
    return ", ".join(cols)


def _with_extra(text: str, extra: Prop | None) -> str:
    if extra is None:
        return text
    end = text[-1] if text[-1] in "?." else ""
    body = text[:-1] if end else text
    return f"{body}, with their {extra.phrase}{end}"


def _anchors(rel: Rel, forward: bool) -> list[Any]:
    """Entities at the start (forward) or the end of ``rel`` that have at least one neighbour."""
    lab = rel.start if forward else rel.end
    table = rel.out if forward else rel.inc
    if lab.key is None or not lab.entities:
        return []
    ents = set(_hashable(e) for e in lab.entities)
    return [k for k in table if k in ents]


def _hop_views(P: Profile) -> list[tuple[Rel, bool]]:
    """Every relationship pattern seen from both ends: (rel, forward)."""
    return [(r, fwd) for r in P.rels for fwd in (True, False)]


def _clause(target: Label, rel: Rel, target_is_start: bool, anchor: str | Noun, anchor_plural: bool,
            rng: random.Random, target_plural: bool = True) -> str:
    """A relative clause tying ``target`` to ``anchor``: "that placed order 10248", "placed by Alice".

    ``anchor`` may be a ``Noun``: it is then referred to by a pronoun ("it", "they"/"them").
    """
    ph = rel.phrase
    if isinstance(anchor, Noun):
        if target_is_start:
            return f"{target.noun.rel} {ph.finite(target_plural)} {anchor.obj}"
        if ph.passive and rng.random() < 0.5:
            return f"{ph.passive} {anchor.obj}"
        return f"that {anchor.subj} {ph.finite(anchor.person)}"
    if target_is_start:
        return f"{target.noun.rel} {ph.finite(target_plural)} {anchor}"
    if ph.passive and rng.random() < 0.5:
        return f"{ph.passive} {anchor}"
    return f"that {anchor} {ph.finite(anchor_plural)}"


def _np_question(rng: random.Random, np: str) -> str:
    return _pick(rng, ["List the {np}.", "Show me the {np}.", "Find all {np}.", "What are the {np}?",
                       "Give me the {np}.", "Which are the {np}?"], np=np)


def _hop_pattern(rel: Rel, forward: bool, left: str, right: str) -> str:
    """``left`` is the node we come from; ``forward`` means it is the start of the relationship."""
    return f"{left}-[:{ident(rel.type)}]->{right}" if forward else f"{left}<-[:{ident(rel.type)}]-{right}"


# --- shapes ---------------------------------------------------------------------------------------


def _shape_lookup(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        props = _lookup_props(lab)
        if not props:
            continue
        slots = [(lab, e, "one") for e in _sample(lab.entities, ENTITIES_PER_LABEL, rng)]
        slots += [(lab, e, rng.choice(["two", "node"])) for e in _sample(lab.entities, ENTITIES_PER_LABEL // 3, rng)]
        groups.append(slots)
    for lab, ent, mode in _mix(groups, rng):
        props = _lookup_props(lab)
        v = lab.var
        ref = lab.ref(ent, rng)
        match = f"MATCH {lab.node(v, ent)}"
        if mode == "node":
            q = _pick(rng, ["Show me everything about {r}.", "What do we know about {r}?", "Give me all the details of {r}.",
                            "Tell me about {r}."], r=ref)
            yield Candidate(q, f"{match} RETURN {v}", "lookup")
            continue
        if mode == "two" and len(props) >= 2:
            p1, p2 = _sample(props, 2, rng)
            q = _pick(rng, ["What are the {a} and {b} of {r}?", "Give me the {a} and the {b} of {r}.",
                            "Show the {a} and {b} for {r}."], a=p1.phrase, b=p2.phrase, r=ref)
            yield Candidate(q, f"{match} RETURN {v}.{ident(p1.name)}, {v}.{ident(p2.name)}", "lookup")
            continue
        p = rng.choice(props)
        words = p.phrase.split()
        bare = ref
        if p.kind == "bool":
            adj = " ".join(words[1:]) if words[0] in ("is", "has") and len(words) > 1 else p.phrase
            verb = "Does" if words[0] == "has" else "Is"
            q = f"{verb} {ref} {'have ' + adj if verb == 'Does' else adj}?"
        elif p.participle and p.kind in ("date", "datetext", "number"):
            if p.participle in _ACTIVE_PARTICIPLES:
                q = f"When did {ref} {_ed_base(p.participle)}?"
            elif rng.random() < 0.7:
                q = f"When was {ref} {p.participle}?"
            else:
                q = f"What is the {p.phrase} of {ref}?"
        elif p.is_location and p.phrase in _LOCATION_WORDS:
            q = _pick(rng, ["In which {p} is {r}?", "What is the {p} of {r}?", "Which {p} is {r} in?"], p=p.phrase, r=ref)
        elif p.plural_phrase and p.kind == "number":
            q = _pick(rng, ["How many {p} does {r} have?", "What is the number of {p} for {r}?"], p=p.phrase, r=ref)
        elif p.plural_phrase:
            q = _pick(rng, ["What are the {p} of {r}?", "Which {p} does {r} have?"], p=p.phrase, r=ref)
        else:
            templates = ["What is the {p} of {r}?", "Tell me the {p} of {r}.", "Show me the {p} for {r}.",
                         "What {p} does {r} have?"]
            if not bare.startswith("the "):
                templates.append("What's {r}' {p}?" if bare.endswith("s") else "What's {r}'s {p}?")
            if p.is_money:
                templates.append("How much is the {p} of {r}?")
            q = _pick(rng, templates, p=p.phrase, r=ref)
        yield Candidate(_cap(q), f"{match} RETURN {v}.{ident(p.name)}", "lookup")



@dataclass(frozen=True)
class Cond:
    """One condition on an entity, in English and in Cypher."""

    post: str  # after the plural noun: "in Berlin", "with a unit price over 20", "released after 1999"
    vp_plural: str  # after a plural subject: "are in Berlin", "have a unit price over 20"
    vp_singular: str
    cypher: str
    pre: str = ""  # before the noun: "discontinued"
    whose: str = ""  # alternative post-modifier: "whose unit price is over 20"

    def np(self, noun: Noun, rng: random.Random | None = None) -> str:
        post = self.whose if (self.whose and rng is not None and rng.random() < 0.35) else self.post
        return " ".join(x for x in (self.pre, noun.plural, post) if x)


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _bool_adj(p: Prop) -> str:
    words = p.phrase.split()
    return " ".join(words[1:]) if words[0] in ("is", "has") and len(words) > 1 else p.phrase


def _eq_cond(lab: Label, var: str, p: Prop, value: Any, rng: random.Random) -> Cond:
    """p = value on ``var`` (a node of ``lab``)."""
    cy = f"{var}.{ident(p.name)} = {lit(value)}"
    shown = _show_val(value)
    if p.kind == "bool":
        adj = _bool_adj(p)
        if value:
            return Cond("", f"are {adj}", f"is {adj}", cy, pre=adj, whose=f"that are {adj}")
        return Cond(f"that are not {adj}", f"are not {adj}", f"is not {adj}", cy)
    if p.is_location and p.phrase in _LOCATION_WORDS:
        prep = rng.choice(["in", "from", "based in", "located in"])
        return Cond(f"{prep} {shown}", f"are {prep} {shown}", f"is {prep} {shown}", cy, whose=f"whose {p.phrase} is {shown}")
    return Cond(f"with {p.phrase} {shown}", f"have {p.phrase} {shown}", f"has {p.phrase} {shown}", cy,
                whose=f"whose {p.phrase} is {shown}")



def _which(noun: Noun, cond: Cond, rng: random.Random) -> str:
    """ "Which products are discontinued?" / "Who is based in Berlin?" """
    if noun.person and rng.random() < 0.5:
        return _cap(f"Who {cond.vp_singular}?")
    return _cap(f"Which {noun.plural} {cond.vp_plural}?")


def _shape_filter_eq(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        slots = [(lab, p, val) for p in _filter_props(lab, ("category", "bool")) for val in p.values[:50]]
        groups.append(slots)
    for lab, p, val in _mix(groups, rng):
        v = lab.var
        c = _eq_cond(lab, v, p, val, rng)
        extra = _extra(lab, rng)
        if extra is p:
            extra = None
        q = _which(lab.noun, c, rng) if rng.random() < 0.5 else _np_question(rng, c.np(lab.noun, rng))
        if rng.random() < 0.5 and p.kind != "bool":
            cy = f"MATCH ({v}:{ident(lab.label)} {{{ident(p.name)}: {lit(val)}}}) RETURN {_returning(lab, v, rng, extra)}"
        else:
            cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {c.cypher} RETURN {_returning(lab, v, rng, extra)}"
        yield Candidate(_with_extra(q, extra), cy, "filter_eq")


_CMP_WORDS = {
    ">": ["greater than", "over", "above", "more than", "higher than"],
    "<": ["less than", "under", "below", "lower than"],
    ">=": ["at least", "no less than"],
    "<=": ["at most", "no more than"],
}



def _cmp_cond(lab: Label, var: str, p: Prop, op: str, t: Any, rng: random.Random, t2: Any = None) -> Cond:
    """A number comparison on ``var``."""
    pv = _pv(var, p)
    ph = p.phrase
    if op == "between":
        rng_txt = f"between {say_num(t)} and {say_num(t2)}"
        return Cond(f"with {_a(ph)} {ph} {rng_txt}", f"have {_a(ph)} {ph} {rng_txt}", f"has {_a(ph)} {ph} {rng_txt}",
                    f"{pv} >= {_num(t)} AND {pv} <= {_num(t2)}", whose=f"whose {ph} is {rng_txt}")
    cy = f"{pv} {op} {_num(t)}"
    words = rng.choice(_CMP_WORDS[op])
    if p.participle and op in (">", "<"):
        when = f"{'after' if op == '>' else 'before'} {say_num(t)}"
        if p.participle in _ACTIVE_PARTICIPLES:
            return Cond(f"that {p.participle} {when}", f"{p.participle} {when}", f"{p.participle} {when}", cy)
        return Cond(f"{p.participle} {when}", f"were {p.participle} {when}", f"was {p.participle} {when}", cy)
    if p.is_money and ("price" in p.words or "cost" in p.words) and op in (">", "<"):
        more = "more" if op == ">" else "less"
        return Cond(f"that cost {more} than {say_num(t)}", f"cost {more} than {say_num(t)}",
                    f"costs {more} than {say_num(t)}", cy, whose=f"whose {ph} is {words} {say_num(t)}")
    if p.plural_phrase:
        return Cond(f"with {words} {say_num(t)} {ph}", f"have {words} {say_num(t)} {ph}",
                    f"has {words} {say_num(t)} {ph}", cy)
    return Cond(f"with {_a(ph)} {ph} {words} {say_num(t)}", f"have {_a(ph)} {ph} {words} {say_num(t)}",
                f"has {_a(ph)} {ph} {words} {say_num(t)}", cy, whose=f"whose {ph} is {words} {say_num(t)}")



def _shape_filter_range(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        slots = []
        for p in _filter_props(lab, ("number", "numtext")):
            ts = _thresholds(p.values, p.kind == "numtext")
            slots += [(lab, p, op, t, None) for t in ts for op in (">", "<", ">=", "<=")]
            slots += [(lab, p, "between", a, b) for a, b in itertools.combinations(ts, 2)]
        groups.append(slots)
    for lab, p, op, t, t2 in _mix(groups, rng):
        v = lab.var
        c = _cmp_cond(lab, v, p, op, t, rng, t2)
        q = _np_question(rng, c.np(lab.noun, rng)) if rng.random() < 0.6 else _which(lab.noun, c, rng)
        cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {c.cypher} RETURN {lab.show(v)}, {v}.{ident(p.name)}"
        yield Candidate(q, cy, "filter_range")


def _shape_filter_string(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        slots = []
        for p in [x for x in lab.props.values() if x.kind in ("name", "text") and x.values]:
            seen: set[tuple[str, str]] = set()
            for val in _sample(p.values, 150, rng):
                if not isinstance(val, str):
                    continue
                words = [w for w in re.findall(r"[^\W\d_][\w'-]*", val) if len(w) >= 4]
                if words:
                    seen.add(("CONTAINS", rng.choice(words)))
                    if rng.random() < 0.3:
                        seen.add(("LOWER", rng.choice(words).lower()))
                first = val.split()[0] if val.split() else ""
                if first[:1].isalpha():
                    seen.add(("STARTS WITH", first[: rng.choice([1, 2, 3, len(first)])]))
                last = val.split()[-1] if val.split() else ""
                if len(last) >= 4 and last[-1:].isalpha():
                    seen.add(("ENDS WITH", last))
            slots += [(lab, p, op, s) for op, s in sorted(seen)]
        groups.append(slots)
    for lab, p, op, s in _mix(groups, rng):
        v = lab.var
        pl = lab.noun.plural
        ph = p.phrase
        if op == "CONTAINS":
            np = rng.choice([f"{pl} that have '{s}' in their {ph}", f"{pl} whose {ph} contains '{s}'",
                             f"{pl} with '{s}' in the {ph}"])
            cond = f"{v}.{ident(p.name)} CONTAINS {lit(s)}"
        elif op == "LOWER":
            np = rng.choice([f"{pl} whose {ph} mentions '{s}', ignoring case", f"{pl} with '{s}' in their {ph} (any capitalisation)"])
            cond = f"toLower({v}.{ident(p.name)}) CONTAINS {lit(s)}"
        elif op == "STARTS WITH":
            np = rng.choice([f"{pl} whose {ph} starts with '{s}'", f"{pl} with a {ph} beginning with '{s}'",
                             f"{pl} whose {ph} begins with '{s}'"])
            cond = f"{v}.{ident(p.name)} STARTS WITH {lit(s)}"
        else:
            np = rng.choice([f"{pl} whose {ph} ends with '{s}'", f"{pl} with a {ph} ending in '{s}'"])
            cond = f"{v}.{ident(p.name)} ENDS WITH {lit(s)}"
        ret = lab.show(v) if p is lab.key else f"{lab.show(v)}, {v}.{ident(p.name)}"
        yield Candidate(_np_question(rng, np), f"MATCH ({v}:{ident(lab.label)}) WHERE {cond} RETURN {ret}", "filter_string")


def _shape_filter_in(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        slots = []
        for p in _filter_props(lab, ("category",)):
            vals = [x for x in p.values[:30] if isinstance(x, (str, int, float))]
            if len(vals) < 3:
                continue
            combos = [c for k in (2, 3) for c in itertools.combinations(vals, k)]
            slots += [(lab, p, list(c)) for c in _sample(combos, 60, rng)]
        groups.append(slots)
    for lab, p, vals in _mix(groups, rng):
        rng.shuffle(vals)
        shown = [_show_val(x) for x in vals]
        listed = ", ".join(shown[:-1]) + " or " + shown[-1]
        v = lab.var
        pl = lab.noun.plural
        if p.is_location and p.phrase in _LOCATION_WORDS:
            q = _pick(rng, ["{w} {be} in {l}?", "List the {pl} located in {l}.", "Show me all {pl} from {l}."],
                      w=lab.noun.which, be="is" if lab.noun.person else "are", l=listed, pl=pl)
        else:
            q = _pick(rng, ["Which {pl} have a {p} of {l}?", "List the {pl} whose {p} is {l}.",
                            "Show {pl} with {p} {l}.", "Find the {pl} whose {p} is one of {c}."],
                      pl=pl, p=p.phrase, l=listed, c=", ".join(shown))
        cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {v}.{ident(p.name)} IN {lit(vals)} RETURN {lab.show(v)}, {v}.{ident(p.name)}"
        yield Candidate(q, cy, "filter_in")


def _shape_filter_null(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        props = [p for p in lab.props.values() if p.nullable and p is not lab.key and p.kind != "other"]
        groups.append([(lab, p, mode) for p in props for mode in ("null", "notnull", "count_null", "count_notnull")])
    for lab, p, mode in _mix(groups, rng):
        v = lab.var
        pl = lab.noun.plural
        a = "an" if p.phrase[:1] in "aeiou" else "a"
        if mode == "null":
            q = _pick(rng, ["Which {pl} have no {p}?", "Which {pl} are missing {a} {p}?", "List the {pl} without {a} {p}.",
                            "Show me {pl} that don't have {a} {p}."], pl=pl, p=p.phrase, a=a)
            cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {v}.{ident(p.name)} IS NULL RETURN {lab.show(v)}"
        elif mode == "notnull":
            q = _pick(rng, ["Which {pl} have {a} {p}?", "List the {pl} that have {a} {p} recorded.",
                            "Show the {pl} with a known {p}."], pl=pl, p=p.phrase, a=a)
            cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {v}.{ident(p.name)} IS NOT NULL RETURN {lab.show(v)}, {v}.{ident(p.name)}"
        elif mode == "count_null":
            q = _pick(rng, ["How many {pl} have no {p}?", "How many {pl} are missing {a} {p}?"], pl=pl, p=p.phrase, a=a)
            cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {v}.{ident(p.name)} IS NULL RETURN count({v})"
        else:
            q = _pick(rng, ["How many {pl} have {a} {p}?", "Count the {pl} with a known {p}."], pl=pl, p=p.phrase, a=a)
            cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {v}.{ident(p.name)} IS NOT NULL RETURN count({v})"
        yield Candidate(q, cy, "filter_null")


def _date_parts(values: list[Any]) -> tuple[list[str], list[str], list[str]]:
    days = sorted({str(x)[:10] for x in values if isinstance(x, str) and _ISO_DATE.match(str(x))})
    years = sorted({d[:4] for d in days})
    months = sorted({d[:7] for d in days})
    return days, months, years


def _shape_date_filter(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        slots = []
        dprops = _filter_props(lab, ("date", "datetext"))
        for p in dprops:
            days, months, years = _date_parts([str(x) for x in p.values])
            if not days:
                continue
            only = len(dprops) == 1
            slots += [(lab, p, "year", y, only) for y in years]
            slots += [(lab, p, "count_year", y, only) for y in years]
            slots += [(lab, p, "month", m, only) for m in _sample(months, 40, rng)]
            slots += [(lab, p, op, d, only) for d in _sample(days, 60, rng) for op in ("before", "since")]
            slots += [(lab, p, "day", d, only) for d in _sample(days, 40, rng)]
            if len(days) > 4:
                for _ in range(20):
                    a, b = sorted(rng.sample(days, 2))
                    slots.append((lab, p, "between", (a, b), only))
        groups.append(slots)
    for lab, p, mode, val, only in _mix(groups, rng):
        v = lab.var
        pl = lab.noun.plural
        pe = f"{v}.{ident(p.name)}"
        is_text = p.kind == "datetext"
        part = bool(p.participle)
        if mode in ("year", "count_year"):
            y = int(val)
            when = f"in {y}"
            cond = (f"{pe} >= {_date_lit(p, f'{y}-01-01')} AND {pe} < {_date_lit(p, f'{y + 1}-01-01')}"
                    if not is_text or rng.random() < 0.5 else f"{pe} STARTS WITH {lit(str(y))}")
        elif mode == "month":
            y, m = int(val[:4]), int(val[5:7])
            nxt = f"{y + (m == 12)}-{(m % 12) + 1:02d}-01"
            when = f"in {_MONTHS[m - 1]} {y}"
            cond = (f"{pe} STARTS WITH {lit(val)}" if is_text and rng.random() < 0.6
                    else f"{pe} >= {_date_lit(p, val + '-01')} AND {pe} < {_date_lit(p, nxt)}")
        elif mode == "before":
            when = f"before {say_date(val, rng)}"
            cond = f"{pe} < {_date_lit(p, val)}"
        elif mode == "since":
            when = rng.choice([f"on or after {say_date(val, rng)}", f"since {say_date(val, rng)}"]) if part else f"on or after {say_date(val, rng)}"
            cond = f"{pe} >= {_date_lit(p, val)}"
        elif mode == "day":
            when = f"on {say_date(val, rng)}"
            if is_text:
                cond = f"{pe} STARTS WITH {lit(val)}"
            else:
                cond = f"{pe} >= {_date_lit(p, val)} AND {pe} < {_date_lit(p, _next_day(val))}"
        else:
            a, b = val
            when = f"between {say_date(a, rng)} and {say_date(b, rng)}"
            cond = f"{pe} >= {_date_lit(p, a)} AND {pe} < {_date_lit(p, _next_day(b))}"
        np = _date_subject(lab, p, when, only, rng)
        if mode == "count_year":
            q = _cap(rng.choice([f"How many {np}?", f"Count the {np}."])).replace("How many " + pl + " with", "How many " + pl + " have", 1)
            cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {cond} RETURN count({v})"
        else:
            q = _np_question(rng, np)
            cy = f"MATCH ({v}:{ident(lab.label)}) WHERE {cond} RETURN {lab.show(v)}, {pe}"
        yield Candidate(q, cy, "date_filter")


def _date_subject(lab: Label, p: Prop, when: str, only: bool, rng: random.Random) -> str:
    """ "movies released before 1999", "orders from 1997", "orders with a shipped date in June 1997"."""
    pl = lab.noun.plural
    if p.participle:
        lead = "that " if p.participle in _ACTIVE_PARTICIPLES else rng.choice(["that were ", ""])
        return f"{pl} {lead}{p.participle} {when}"
    if only and rng.random() < 0.4:
        return f"{pl} from {when.removeprefix('in ')}" if when.startswith("in ") else f"{pl} dated {when}"
    return rng.choice([f"{pl} with a {p.phrase} {when}", f"{pl} whose {p.phrase} is {when}"])


def _next_day(iso: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(iso[:10]) + timedelta(days=1)).isoformat()


def _one_hop_texts(rel: Rel, forward: bool, ref: str, rng: random.Random) -> tuple[Label, str, str]:
    """(target label, question, noun phrase) for the neighbours of a named entity across ``rel``."""
    ph = rel.phrase
    if forward:  # anchor is the start; targets are ends
        t = rel.end
        qs = [f"Which {t.noun.plural} {ph.ask(ref)}?", f"What {t.noun.plural} {ph.ask(ref)}?"]
        np = _clause(t, rel, False, ref, False, rng)
        return t, rng.choice(qs), f"{t.noun.plural} {np}"
    t = rel.start
    if t.noun.person and rng.random() < 0.5:
        q = f"Who {ph.finite(False)} {ref}?"
    else:
        q = f"Which {t.noun.plural} {ph.finite(True)} {ref}?"
    return t, q, f"{t.noun.plural} {_clause(t, rel, True, ref, False, rng)}"


def _shape_one_hop(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel, fwd in _hop_views(P):
        target = rel.end if fwd else rel.start
        if target.key is None:
            continue
        groups.append([(rel, fwd, a) for a in _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)])
    for rel, fwd, a in _mix(groups, rng):
        anchor_lab = rel.start if fwd else rel.end
        ref = anchor_lab.ref(a, rng)
        target, q, np = _one_hop_texts(rel, fwd, ref, rng)
        tv = _other_var(target, [anchor_lab.var]) if rel.self_loop else target.var
        av = anchor_lab.var
        extra = _extra(target, rng)
        if rng.random() < 0.5:
            q = _np_question(rng, np)
        pat = _hop_pattern(rel, fwd, anchor_lab.node(av, a), f"({tv}:{ident(target.label)})")
        yield Candidate(_with_extra(q, extra), f"MATCH {pat} RETURN {_returning(target, tv, rng, extra)}", "one_hop")


def _chains(P: Profile, hops: int) -> list[list[tuple[Rel, bool]]]:
    """Paths of ``hops`` relationships (each in either direction), starting from a named label."""
    views = _hop_views(P)
    out: list[list[tuple[Rel, bool]]] = []

    def end_of(rel: Rel, fwd: bool) -> Label:
        return rel.end if fwd else rel.start

    def start_of(rel: Rel, fwd: bool) -> Label:
        return rel.start if fwd else rel.end

    def grow(chain: list[tuple[Rel, bool]]) -> None:
        if len(chain) == hops:
            if end_of(*chain[-1]).key is not None:
                out.append(list(chain))
            return
        here = end_of(*chain[-1])
        for rel, fwd in views:
            if start_of(rel, fwd).label != here.label:
                continue
            prev_rel, prev_fwd = chain[-1]
            if rel is prev_rel and fwd != prev_fwd and hops > 2:
                continue  # A-R->B<-R-A' only as the two-hop "same B as" question
            grow(chain + [(rel, fwd)])

    for rel, fwd in views:
        if start_of(rel, fwd).key is not None and start_of(rel, fwd).entities:
            grow([(rel, fwd)])
    return out


def _chain_match(chain: list[tuple[Rel, bool]], anchor: Label, value: Any, target_var: str) -> str:
    parts = anchor.node(anchor.var, value)
    for i, (rel, fwd) in enumerate(chain):
        nxt = rel.end if fwd else rel.start
        node = f"({target_var}:{ident(nxt.label)})" if i == len(chain) - 1 else f"(:{ident(nxt.label)})"
        parts = _hop_pattern(rel, fwd, parts, node)
    last, lfwd = chain[-1]
    same_label = (last.end if lfwd else last.start).label == anchor.label
    # FalkorDB may walk one relationship twice in a pattern (Neo4j never does): say "other" explicitly
    return "MATCH " + parts + (f" WHERE {target_var} <> {anchor.var}" if same_label else "")


def _chain_np(chain: list[tuple[Rel, bool]], ref: str, rng: random.Random) -> str:
    """ "products ordered by orders that Alfreds Futterkiste purchased" (innermost hop first)."""
    np = ref
    plural = False
    for rel, fwd in chain:
        target = rel.end if fwd else rel.start
        np = f"{target.noun.plural} {_clause(target, rel, not fwd, np, plural, rng)}"
        plural = True
    return np


def _chain_anchors(chain: list[tuple[Rel, bool]], rng: random.Random) -> list[Any]:
    rel, fwd = chain[0]
    return _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)


def _chain_labels(chain: list[tuple[Rel, bool]]) -> tuple[str, ...]:
    first, ffwd = chain[0]
    return ((first.start if ffwd else first.end).label, *((r.end if f else r.start).label for r, f in chain))


def _unambiguous(chains: list[list[tuple[Rel, bool]]]) -> set[tuple[str, ...]]:
    """Label sequences that only one chain follows: "connected to X through orders" names it exactly."""
    counts = Counter(_chain_labels(c) for c in chains)
    return {k for k, n in counts.items() if n == 1}


def _multi_hop(P: Profile, rng: random.Random, hops: int, category: str) -> Iterator[Candidate]:
    groups = []
    chains = _chains(P, hops)
    clear = _unambiguous(chains)
    for chain in chains:
        groups.append([(chain, a) for a in _chain_anchors(chain, rng)])
    for chain, a in _mix(groups, rng):
        first, ffwd = chain[0]
        anchor = first.start if ffwd else first.end
        last, lfwd = chain[-1]
        target = last.end if lfwd else last.start
        tv = _other_var(target, [anchor.var])
        ref = anchor.ref(a, rng)
        mids = [(r.end if f else r.start) for r, f in chain[:-1]]
        via = " and ".join(m.noun.plural for m in mids)
        same = hops == 2 and first is last and ffwd != lfwd
        if same:
            mid = mids[0]
            if ffwd:  # A-[R]->B<-[R]-A'
                q = _pick(rng, ["{w} {f} the same {m} as {r}?", "Which other {t} {fp} the same {m} as {r}?"],
                          w=target.noun.which, f=first.phrase.finite(not target.noun.person), fp=first.phrase.finite(True),
                          m=pluralize(mid.noun.singular), t=target.noun.plural, r=ref)
            else:  # A<-[R]-B-[R]->A'
                q = _pick(rng, ["Which {t} share {a} {m} with {r}?", "Which other {t} have {a} {m} in common with {r}?"],
                          t=target.noun.plural, m=mid.noun.singular, mp=mid.noun.plural, r=ref,
                          a="an" if mid.noun.singular[:1] in "aeiou" else "a")
        else:
            templates = ["__NP__", "__NP__"]
            if _chain_labels(chain) in clear:
                templates += [f"Which {target.noun.plural} are connected to {ref} through {via}?",
                              f"Which {target.noun.plural} are linked to {ref} via {via}?",
                              f"Starting from {ref}, which {target.noun.plural} can be reached through {via}?"]
            pick = rng.choice(templates)
            q = _np_question(rng, _chain_np(chain, ref, rng)) if pick == "__NP__" else _cap(pick)
        cy = f"{_chain_match(chain, anchor, a, tv)} RETURN DISTINCT {target.show(tv)}"
        yield Candidate(q, cy, category)


def _shape_two_hop(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    return _multi_hop(P, rng, 2, "two_hop")


def _shape_three_hop(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    return _multi_hop(P, rng, 3, "three_hop")


def _shape_filtered_traversal(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel, fwd in _hop_views(P):
        target = rel.end if fwd else rel.start
        if target.key is None:
            continue
        fprops = _filter_props(target, ("category", "number", "numtext", "bool"))
        if not fprops:
            continue
        groups.append([(rel, fwd, a) for a in _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)])
    for rel, fwd, a in _mix(groups, rng):
        anchor = rel.start if fwd else rel.end
        target = rel.end if fwd else rel.start
        tv = _other_var(target, [anchor.var]) if rel.self_loop else target.var
        # filter values taken from the anchor's actual neighbours where we know them
        p = rng.choice(_filter_props(target, ("category", "number", "numtext", "bool")))
        if p.kind in ("category", "bool"):
            c = _eq_cond(target, tv, p, rng.choice(p.values[:20]), rng)
        else:
            ts = _thresholds(p.values, p.kind == "numtext")
            if not ts:
                continue
            c = _cmp_cond(target, tv, p, rng.choice([">", "<"]), rng.choice(ts), rng)
        np = " ".join(x for x in (c.pre, target.noun.plural, c.post) if x)
        ref = anchor.ref(a, rng)
        ph = rel.phrase
        if fwd:
            q = rng.choice([f"Which {np} {ph.ask(ref)}?", f"List the {np} {_clause(target, rel, False, ref, False, rng)}."])
        else:
            q = rng.choice([f"Which {np} {ph.finite(True)} {ref}?", f"List the {np} {_clause(target, rel, True, ref, False, rng)}."])
        pat = _hop_pattern(rel, fwd, anchor.node(anchor.var, a), f"({tv}:{ident(target.label)})")
        ret = target.show(tv) + ("" if p.kind in ("category", "bool") else f", {tv}.{ident(p.name)}")
        yield Candidate(_cap(q), f"MATCH {pat} WHERE {c.cypher} RETURN {ret}", "filtered_traversal")


def _amount(p: Prop, words: str, t: Any) -> str:
    """ "more than 4 stars" for plural properties, "a quantity over 60" otherwise."""
    if p.plural_phrase:
        return f"{words} {say_num(t)} {p.phrase}"
    return f"{_a(p.phrase)} {p.phrase} {words} {say_num(t)}"


def _shape_rel_property(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel in P.rels:
        props = [p for p in rel.props.values() if p.kind not in ("other", "id") and p.values
                 and not re.search(r"(^|_)id$|Id$|ID$", p.name)]
        if not props or rel.start.key is None or rel.end.key is None:
            continue
        starts = set(_hashable(e) for e in rel.start.entities)
        ends = set(_hashable(e) for e in rel.end.entities)
        pairs = [(x, y) for x, ys in rel.out.items() if x in starts for y in sorted(set(ys), key=str) if y in ends]
        slots = [(rel, "lookup", pair, rng.choice(props)) for pair in _sample(pairs, ENTITIES_PER_LABEL, rng)]
        for p in props:
            if p.kind in ("number", "numtext"):
                slots += [(rel, "filter", (op, t), p) for t in _thresholds(p.values, p.kind == "numtext") for op in (">", "<")]
                anchors = _sample([x for x in rel.inc if x in ends], 60, rng)
                slots += [(rel, "anchored", (a, op, t), p) for a in anchors for op in (">",)
                          for t in _thresholds(p.values, p.kind == "numtext")[2:4]]
            elif p.kind == "category":
                slots += [(rel, "eq", val, p) for val in p.values[:20]]
        groups.append(slots)
    for rel, mode, data, p in _mix(groups, rng):
        a, b = rel.start, rel.end
        av, bv = a.var, (_other_var(b, [a.var]) if rel.self_loop else b.var)
        ph = rel.phrase
        rp = f"r.{ident(p.name)}"
        if mode == "lookup":
            x, y = data
            rx, ry = a.ref(x, rng), b.ref(y, rng)
            past = ph.finite(False) if ph.copula else ph.past
            be = "were" if p.plural_phrase else "was"
            q = _pick(rng, ["What {be} the {p} when {x} {v} {y}?", "For {x} and {y}, what {be} the {p}?"],
                      be=be, p=p.phrase, x=rx, v=past, y=ry)
            cy = f"MATCH {a.node(av, x)}-[r:{ident(rel.type)}]->{b.node(bv, y)} RETURN {rp}"
        elif mode == "filter":
            op, t = data
            amount = _amount(p, rng.choice(_CMP_WORDS[op]), t)
            q = _pick(rng, ["Which {ap} {v} {bp} with {am}?", "List the {ap} and {bp} linked with {am}."],
                      ap=a.noun.plural, v=ph.finite(True), bp=b.noun.plural, am=amount)
            cy = (f"MATCH ({av}:{ident(a.label)})-[r:{ident(rel.type)}]->({bv}:{ident(b.label)}) "
                  f"WHERE {_pv('r', p)} {op} {_num(t)} RETURN {a.show(av)}, {b.show(bv)}, {rp}")
        elif mode == "anchored":
            y, op, t = data
            ry = b.ref(y, rng)
            q = _pick(rng, ["Which {ap} {v} {y} with {am}?"], ap=a.noun.plural, v=ph.finite(True), y=ry,
                      am=_amount(p, rng.choice(_CMP_WORDS[op]), t))
            cy = (f"MATCH ({av}:{ident(a.label)})-[r:{ident(rel.type)}]->{b.node(bv, y)} "
                  f"WHERE {_pv('r', p)} {op} {_num(t)} RETURN {a.show(av)}, {rp}")
        else:
            val = data
            q = _pick(rng, ["Which {ap} {v} {bp} with {p} {val}?", "List the {ap} and {bp} where the {p} is {val}."],
                      ap=a.noun.plural, v=ph.finite(True), bp=b.noun.plural, p=p.phrase, val=_show_val(val))
            cy = (f"MATCH ({av}:{ident(a.label)})-[r:{ident(rel.type)}]->({bv}:{ident(b.label)}) "
                  f"WHERE {rp} = {lit(val)} RETURN {a.show(av)}, {b.show(bv)}")
        yield Candidate(_cap(q), cy, "rel_property")


_SUMMABLE = frozenset(["quantity", "units", "stock", "count", "total", "amount", "number", "points", "votes", "sales", "revenue", "price", "cost", "freight", "budget", "salary", "value", "spend", "spent", "sold", "orders"])


def _aggs(p: Prop) -> list[str]:
    aggs = ["avg", "min", "max"]
    if p.words & _SUMMABLE or p.is_money:
        aggs.append("sum")
    return aggs


_AGG_WORDS = {
    "avg": ["average", "mean"],
    "min": ["lowest", "smallest", "minimum"],
    "max": ["highest", "largest", "maximum"],
    "sum": ["total", "combined"],
}


def _shape_count(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = [[(lab, "all", None) for lab in P.labels.values()]]
    for lab in P.named():
        slots = [(lab, "eq", (p, val)) for p in _filter_props(lab, ("category", "bool")) for val in p.values[:30]]
        slots += [(lab, "cmp", (p, op, t)) for p in _filter_props(lab, ("number", "numtext"))
                  for t in _thresholds(p.values, p.kind == "numtext") for op in (">", "<")]
        groups.append(slots)
    for rel, fwd in _hop_views(P):
        groups.append([(rel, "hop", (fwd, a)) for a in _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)])
    for subject, mode, data in _mix(groups, rng):
        if mode == "all":
            lab = subject
            q = _pick(rng, ["How many {pl} are there?", "How many {pl} do we have?", "Count the {pl}.",
                            "What is the total number of {pl}?", "How many {pl} are in the database?"], pl=lab.noun.plural)
            yield Candidate(q, f"MATCH ({lab.var}:{ident(lab.label)}) RETURN count({lab.var})", "count")
        elif mode in ("eq", "cmp"):
            lab = subject
            c = _eq_cond(lab, lab.var, *data, rng) if mode == "eq" else _cmp_cond(lab, lab.var, *data, rng)
            q = _cap(rng.choice([f"How many {lab.noun.plural} {c.vp_plural}?", f"Count the {c.np(lab.noun, rng)}.",
                                 f"What is the number of {c.np(lab.noun, rng)}?"]))
            yield Candidate(q, f"MATCH ({lab.var}:{ident(lab.label)}) WHERE {c.cypher} RETURN count({lab.var})", "count")
        else:
            rel = subject
            fwd, a = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            tv = _other_var(target, [anchor.var]) if rel.self_loop else target.var
            ref = anchor.ref(a, rng)
            ph = rel.phrase
            if fwd:
                q = rng.choice([f"How many {target.noun.plural} {ph.ask(ref)}?",
                                f"What is the number of {target.noun.plural} {_clause(target, rel, False, ref, False, rng)}?"])
            else:
                q = rng.choice([f"How many {target.noun.plural} {ph.finite(True)} {ref}?",
                                f"Count the {target.noun.plural} {_clause(target, rel, True, ref, False, rng)}."])
            pat = _hop_pattern(rel, fwd, anchor.node(anchor.var, a), f"({tv}:{ident(target.label)})")
            yield Candidate(_cap(q), f"MATCH {pat} RETURN count({tv})", "count")


def _shape_aggregate(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.labels.values():
        nums = _filter_props(lab, ("number", "numtext"))
        slots = [(lab, "all", (p, agg)) for p in nums for agg in _aggs(p)]
        cats = _filter_props(lab, ("category", "bool"))
        slots += [(lab, "eq", (p, agg, c, val)) for p in nums for agg in _aggs(p) for c in cats for val in c.values[:10]]
        groups.append(_sample(slots, 300, rng))
    for rel, fwd in _hop_views(P):
        target = rel.end if fwd else rel.start
        nums = _filter_props(target, ("number", "numtext"))
        if not nums:
            continue
        groups.append([(rel, "hop", (fwd, a, rng.choice(nums))) for a in _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)])
    for rel in P.rels:
        rnums = [p for p in rel.props.values() if p.kind in ("number", "numtext")]
        if rnums:
            slots = [(rel, "relall", (p, agg)) for p in rnums for agg in _aggs(p)]
            slots += [(rel, "relend", (p, a)) for p in rnums for a in _sample(_anchors(rel, False), 200, rng)]
            groups.append(slots)
    for subject, mode, data in _mix(groups, rng):
        if mode == "all":
            lab, (p, agg) = subject, data
            v = lab.var
            w = rng.choice(_AGG_WORDS[agg])
            if agg == "sum":
                q = _pick(rng, ["What is the {w} {p} of all {pl}?", "What do all {pl} add up to in {p}?"], w=w, p=p.phrase, pl=lab.noun.plural)
            else:
                q = _pick(rng, ["What is the {w} {p} of {pl}?", "What's the {w} {p} across all {pl}?",
                                "What is the {w} {p} of any {s}?" if agg != "avg" else "On average, what is the {p} of {a} {s}?"],
                          w=w, p=p.phrase, pl=lab.noun.plural, s=lab.noun.singular,
                          a="an" if lab.noun.singular[:1] in "aeiou" else "a")
            yield Candidate(q, f"MATCH ({v}:{ident(lab.label)}) RETURN {agg}({_pv(v, p)})", "aggregate")
        elif mode == "eq":
            lab = subject
            p, agg, c, val = data
            cnd = _eq_cond(lab, lab.var, c, val, rng)
            w = rng.choice(_AGG_WORDS[agg])
            q = _pick(rng, ["What is the {w} {p} of {np}?", "What's the {w} {p} among {np}?"], w=w, p=p.phrase,
                      np=cnd.np(lab.noun, rng))
            yield Candidate(q, f"MATCH ({lab.var}:{ident(lab.label)}) WHERE {cnd.cypher} RETURN {agg}({_pv(lab.var, p)})", "aggregate")
        elif mode == "hop":
            rel = subject
            fwd, a, p = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            tv = _other_var(target, [anchor.var]) if rel.self_loop else target.var
            ref = anchor.ref(a, rng)
            agg = rng.choice(_aggs(p))
            w = rng.choice(_AGG_WORDS[agg])
            np = f"{target.noun.plural} {_clause(target, rel, not fwd, ref, False, rng)}"
            q = _pick(rng, ["What is the {w} {p} of the {np}?", "What's the {w} {p} among the {np}?"], w=w, p=p.phrase, np=np)
            pat = _hop_pattern(rel, fwd, anchor.node(anchor.var, a), f"({tv}:{ident(target.label)})")
            yield Candidate(q, f"MATCH {pat} RETURN {agg}({_pv(tv, p)})", "aggregate")
        elif mode == "relall":
            rel = subject
            p, agg = data
            w = rng.choice(_AGG_WORDS[agg])
            q = _pick(rng, ["What is the {w} {p} over all cases where {ap} {v} {bp}?",
                            "Across all {ap} that {v} {bp}, what is the {w} {p}?"],
                      w=w, p=p.phrase, ap=rel.start.noun.plural, v=rel.phrase.finite(True), bp=rel.end.noun.plural)
            yield Candidate(q, f"MATCH (:{ident(rel.start.label)})-[r:{ident(rel.type)}]->(:{ident(rel.end.label)}) RETURN {agg}({_pv('r', p)})", "aggregate")
        else:
            rel = subject
            p, a = data
            agg = rng.choice(_aggs(p))
            w = rng.choice(_AGG_WORDS[agg])
            ref = rel.end.ref(a, rng)
            q = _pick(rng, ["What is the {w} {p} over all {ap} {rel} {v} {y}?", "For {y}, what is the {w} {p} across all {ap}?"],
                      w=w, p=p.phrase, ap=rel.start.noun.plural, rel=rel.start.noun.rel, v=rel.phrase.finite(True), y=ref)
            yield Candidate(q, f"MATCH (:{ident(rel.start.label)})-[r:{ident(rel.type)}]->{rel.end.node(rel.end.var, a)} RETURN {agg}({_pv('r', p)})", "aggregate")


def _shape_count_distinct(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.labels.values():
        groups.append([(lab, "prop", p) for p in _filter_props(lab, ("category", "number", "text", "datetext"))])
    chains = _chains(P, 2)
    clear = _unambiguous(chains)
    for chain in chains:
        groups.append([(chain, "chain", a) for a in _chain_anchors(chain, rng)])
    for rel, fwd in _hop_views(P):
        target = rel.end if fwd else rel.start
        cats = _filter_props(target, ("category",))
        if cats:
            groups.append([(rel, "hopprop", (fwd, a, rng.choice(cats))) for a in _sample(_anchors(rel, fwd), 200, rng)])
    for subject, mode, data in _mix(groups, rng):
        if mode == "prop":
            lab, p = subject, data
            pp = pluralize(p.phrase) if not p.plural_phrase else p.phrase
            if p.is_location and p.phrase in _LOCATION_WORDS:
                q = _pick(rng, ["How many different {pp} are our {pl} from?", "In how many {pp} do we have {pl}?",
                                "How many distinct {pp} are there among {pl}?"], pp=pp, pl=lab.noun.plural)
            else:
                q = _pick(rng, ["How many different {pp} do {pl} have?", "How many distinct {pp} are there among {pl}?",
                                "Count the distinct {pp} of {pl}."], pp=pp, pl=lab.noun.plural)
            yield Candidate(q, f"MATCH ({lab.var}:{ident(lab.label)}) RETURN count(DISTINCT {lab.var}.{ident(p.name)})", "count_distinct")
        elif mode == "chain":
            chain, a = subject, data
            first, ffwd = chain[0]
            anchor = first.start if ffwd else first.end
            last, lfwd = chain[-1]
            target = last.end if lfwd else last.start
            mid = first.end if ffwd else first.start
            tv = _other_var(target, [anchor.var])
            ref = anchor.ref(a, rng)
            mid_np = f"{mid.noun.plural} {_clause(mid, first, not ffwd, ref, False, rng)}"
            templates = ["How many distinct {t} are there among the {np}?", "Count the different {np}."]
            if _chain_labels(chain) in clear:
                templates.append("How many different {t} are connected to {r} through {m}?")
            q = _pick(rng, templates, t=target.noun.plural, r=ref, m=mid.noun.plural, mnp=mid_np,
                      np=_chain_np(chain, ref, rng))
            yield Candidate(q, f"{_chain_match(chain, anchor, a, tv)} RETURN count(DISTINCT {tv})", "count_distinct")
        else:
            rel = subject
            fwd, a, p = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            tv = _other_var(target, [anchor.var]) if rel.self_loop else target.var
            ref = anchor.ref(a, rng)
            pp = pluralize(p.phrase) if not p.plural_phrase else p.phrase
            np = f"{target.noun.plural} {_clause(target, rel, not fwd, ref, False, rng)}"
            q = _pick(rng, ["How many different {pp} are there among the {np}?", "Count the distinct {pp} of the {np}."], pp=pp, np=np)
            pat = _hop_pattern(rel, fwd, anchor.node(anchor.var, a), f"({tv}:{ident(target.label)})")
            yield Candidate(q, f"MATCH {pat} RETURN count(DISTINCT {tv}.{ident(p.name)})", "count_distinct")


def _shape_collect(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel, fwd in _hop_views(P):
        target = rel.end if fwd else rel.start
        anchor = rel.start if fwd else rel.end
        if target.key is None:
            continue
        slots = [(rel, "hop", (fwd, a)) for a in _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)]
        if anchor.key is not None:
            slots.append((rel, "group", fwd))
        groups.append(slots)
    for lab in P.named():
        groups.append([(lab, "prop", p) for p in _filter_props(lab, ("category",))])
    for subject, mode, data in _mix(groups, rng):
        if mode == "hop":
            rel = subject
            fwd, a = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            tv = _other_var(target, [anchor.var]) if rel.self_loop else target.var
            ref = anchor.ref(a, rng)
            np = f"{target.noun.plural} {_clause(target, rel, not fwd, ref, False, rng)}"
            key = target.key.phrase if target.key else "name"
            q = _pick(rng, ["Give me the {k}s of the {np} as a single list, sorted.",
                            "Collect the {np} into one alphabetical list.",
                            "Put the {k}s of all {np} in one sorted list."], k=key, np=np)
            pat = _hop_pattern(rel, fwd, anchor.node(anchor.var, a), f"({tv}:{ident(target.label)})")
            alias = _alias(target.noun.plural)
            yield Candidate(q, f"MATCH {pat} WITH {tv} ORDER BY {target.show(tv)} RETURN collect({target.show(tv)}) AS {alias}", "collect")
        elif mode == "group":
            rel, fwd = subject, data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            av = anchor.var
            tv = _other_var(target, [av])
            np = f"{target.noun.plural} {_clause(target, rel, not fwd, anchor.noun, False, rng)}"
            q = _pick(rng, ["For each {a}, list the {np} in one sorted list.", "Group the {t} by {a} and collect them, sorted."],
                      a=anchor.noun.singular, np=np, t=target.noun.plural)
            pat = _hop_pattern(rel, fwd, f"({av}:{ident(anchor.label)})", f"({tv}:{ident(target.label)})")
            yield Candidate(q, f"MATCH {pat} WITH {av}, {tv} ORDER BY {target.show(tv)} RETURN {anchor.show(av)}, collect({target.show(tv)}) AS {_alias(target.noun.plural)}", "collect")
        else:
            lab, p = subject, data
            v = lab.var
            q = _pick(rng, ["For each {p}, list the {pl} as one sorted list.", "Group the {pl} by {p} and collect them, sorted."],
                      p=p.phrase, pl=lab.noun.plural)
            yield Candidate(q, f"MATCH ({v}:{ident(lab.label)}) WITH {v} ORDER BY {lab.show(v)} RETURN {v}.{ident(p.name)}, collect({lab.show(v)}) AS {_alias(lab.noun.plural)}", "collect")


def _shape_group_by(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.labels.values():
        cats = _filter_props(lab, ("category", "bool"))
        nums = _filter_props(lab, ("number", "numtext"))
        slots = [(lab, "count", (c,)) for c in cats]
        slots += [(lab, "agg", (c, p, agg)) for c in cats for p in nums for agg in _aggs(p)]
        groups.append(slots)
    for rel, fwd in _hop_views(P):
        anchor = rel.start if fwd else rel.end
        target = rel.end if fwd else rel.start
        if anchor.key is None:
            continue
        slots = [(rel, "hopcount", (fwd,))]
        slots += [(rel, "hopagg", (fwd, p, agg)) for p in _filter_props(target, ("number", "numtext")) for agg in ("avg", "max", "min", "sum") if agg in _aggs(p)]
        slots += [(rel, "hopcat", (fwd, c)) for c in _filter_props(anchor, ("category",))]
        groups.append(slots)
    for subject, mode, data in _mix(groups, rng):
        if mode == "count":
            lab, (c,) = subject, data
            v = lab.var
            if c.kind == "bool":
                adj = _bool_adj(c)
                q = _pick(rng, ["How many {pl} are {adj} and how many are not?", "Count the {pl} by whether they are {adj}."],
                          pl=lab.noun.plural, adj=adj)
            else:
                templates = ["How many {pl} are there per {c}?", "Show the number of {pl} for each {c}.",
                             "Count the {pl} for each {c}."]
                if c.is_location:
                    templates.append("How many {pl} are there in each {c}?")
                q = _pick(rng, templates, pl=lab.noun.plural, c=c.phrase)
            yield Candidate(q, f"MATCH ({v}:{ident(lab.label)}) RETURN {v}.{ident(c.name)}, count({v}) AS {_alias('num', lab.noun.plural)}", "group_by")
        elif mode == "agg":
            lab, (c, p, agg) = subject, data
            v = lab.var
            w = rng.choice(_AGG_WORDS[agg])
            if c.kind == "bool":
                q = _pick(rng, ["What is the {w} {p} of {pl} that are {adj} versus those that are not?",
                                "Compare the {w} {p} of {adj} and non-{adj} {pl}."], w=w, p=p.phrase, pl=lab.noun.plural,
                          adj=_bool_adj(c))
            else:
                q = _pick(rng, ["What is the {w} {p} of {pl} per {c}?", "For each {c}, what is the {w} {p} of the {pl}?",
                                "Show the {w} {p} of {pl} by {c}."], w=w, p=p.phrase, pl=lab.noun.plural, c=c.phrase)
            yield Candidate(q, f"MATCH ({v}:{ident(lab.label)}) RETURN {v}.{ident(c.name)}, {agg}({_pv(v, p)}) AS {_alias(agg, p.name)}", "group_by")
        else:
            rel = subject
            fwd = data[0]
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            av = anchor.var
            tv = _other_var(target, [av])
            pat = _hop_pattern(rel, fwd, f"({av}:{ident(anchor.label)})", f"({tv}:{ident(target.label)})")
            ph = rel.phrase
            if mode == "hopcount":
                if fwd:
                    q = _pick(rng, ["How many {t} {ask}?", "For each {a}, count the {t} {clause}."],
                              t=target.noun.plural, ask=ph.ask(f"each {anchor.noun.singular}"), a=anchor.noun.singular,
                              clause=_clause(target, rel, False, anchor.noun, False, rng))
                else:
                    q = _pick(rng, ["How many {t} {f} each {a}?", "For each {a}, how many {t} {f} {o}?"],
                              t=target.noun.plural, f=ph.finite(True), a=anchor.noun.singular, o=anchor.noun.obj)
                yield Candidate(q, f"MATCH {pat} RETURN {anchor.show(av)}, count({tv}) AS {_alias('num', target.noun.plural)}", "group_by")
            elif mode == "hopagg":
                _, p, agg = data
                w = rng.choice(_AGG_WORDS[agg])
                q = _pick(rng, ["What is the {w} {p} of the {t} {clause}, for each {a}?",
                                "For each {a}, what is the {w} {p} of the {t} {clause}?"],
                          w=w, p=p.phrase, t=target.noun.plural, a=anchor.noun.singular,
                          clause=_clause(target, rel, not fwd, anchor.noun, False, rng))
                yield Candidate(q, f"MATCH {pat} RETURN {anchor.show(av)}, {agg}({_pv(tv, p)}) AS {_alias(agg, p.name)}", "group_by")
            else:
                _, c = data
                q = _pick(rng, ["How many {t} are there per {a} {c}?", "Count the {t} {clause}, grouped by the {a}'s {c}."],
                          t=target.noun.plural, a=anchor.noun.singular, c=c.phrase,
                          clause=_clause(target, rel, not fwd, f"{anchor.noun.plural}", True, rng))
                yield Candidate(q, f"MATCH {pat} RETURN {av}.{ident(c.name)}, count({tv}) AS {_alias('num', target.noun.plural)}", "group_by")


def _degrees(rel: Rel, fwd: bool) -> list[int]:
    table = rel.out if fwd else rel.inc
    return sorted(len(v) for v in table.values())


def _shape_having(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel, fwd in _hop_views(P):
        anchor = rel.start if fwd else rel.end
        if anchor.key is None:
            continue
        degs = _degrees(rel, fwd)
        if len(degs) < 3 or degs[-1] < 2:
            continue
        ts = sorted({d for d in (_nice(degs[int(q * (len(degs) - 1))]) for q in (0.3, 0.5, 0.7, 0.85, 0.95)) if d >= 1})
        groups.append([(rel, fwd, op, t) for t in ts for op in (">", ">=") if op == ">" or t >= 2])
    for rel, fwd, op, t in _mix(groups, rng):
        anchor = rel.start if fwd else rel.end
        target = rel.end if fwd else rel.start
        av = anchor.var
        tv = _other_var(target, [av])
        ph = rel.phrase
        more = "more than" if op == ">" else "at least"
        n = say_num(t)
        if fwd:
            q = _pick(rng, ["{w} {f} {m} {n} {t}?", "List the {a} {rel} {fp} {m} {n} {t}."],
                      w=anchor.noun.which, f=ph.finite(not anchor.noun.person), fp=ph.finite(True), m=more, n=n,
                      t=target.noun.plural, a=anchor.noun.plural, rel=anchor.noun.rel)
        else:
            q = _pick(rng, ["Which {a} {ask}?", "Which {a} have {m} {n} {t} {rel} {f} them?"],
                      a=anchor.noun.plural, ask=ph.ask(f"{more} {n} {target.noun.plural}", plural=True), m=more, n=n,
                      t=target.noun.plural, rel=target.noun.rel, f=ph.finite(True))
        alias = _alias("num", target.noun.plural)
        pat = _hop_pattern(rel, fwd, f"({av}:{ident(anchor.label)})", f"({tv}:{ident(target.label)})")
        yield Candidate(_cap(q), f"MATCH {pat} WITH {av}, count({tv}) AS {alias} WHERE {alias} {op} {_num(t)} RETURN {anchor.show(av)}, {alias}", "having")


def _top_words(p: Prop, desc: bool, rng: random.Random) -> str:
    if p.is_money and "price" in p.phrase or "cost" in p.words:
        return "most expensive" if desc else "cheapest"
    if p.kind in ("date", "datetext") or p.phrase.endswith(("date", "year")):
        return ("latest " if desc else "earliest ") + p.phrase
    if p.plural_phrase:
        return ("most " if desc else "fewest ") + p.phrase
    return rng.choice(["highest", "largest"] if desc else ["lowest", "smallest"]) + " " + p.phrase


def _shape_top_k(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.named():
        groups.append([(lab, "prop", (p, k, desc)) for p in _filter_props(lab, ("number", "numtext", "datetext", "date"))
                       for k in (1, 3, 5, 10) for desc in (True, False)])
    for rel, fwd in _hop_views(P):
        anchor = rel.start if fwd else rel.end
        target = rel.end if fwd else rel.start
        if anchor.key is not None and len(rel.out if fwd else rel.inc) >= 3:
            groups.append([(rel, "degree", (fwd, k)) for k in (1, 3, 5, 10)])
        nums = _filter_props(target, ("number", "numtext"))
        if target.key is not None and nums:
            groups.append([(rel, "anchored", (fwd, a, rng.choice(nums), rng.choice((1, 3, 5)), rng.random() < 0.7))
                           for a in _sample(_anchors(rel, fwd), 200, rng)])
    for rel in P.rels:
        rnums = [p for p in rel.props.values() if p.kind in ("number", "numtext") and (p.words & _SUMMABLE or p.is_money)]
        if rnums and rel.end.key is not None:
            groups.append([(rel, "relsum", (p, k)) for p in rnums for k in (1, 3, 5, 10)])
    for subject, mode, data in _mix(groups, rng):
        if mode == "prop":
            lab, (p, k, desc) = subject, data
            v = lab.var
            words = _top_words(p, desc, rng)
            if k == 1:
                q = _pick(rng, ["Which {s} has the {w}?", "What is the {s} with the {w}?"] if words not in ("most expensive", "cheapest")
                          else ["What is the {w} {s}?", "Which {s} is the {w}?"], s=lab.noun.singular, w=words)
            else:
                q = _pick(rng, ["Which {k} {pl} have the {w}?", "List the top {k} {pl} by {p}." if desc else "List the {k} {pl} with the {w}.",
                                "Show the {k} {pl} with the {w}."] if words not in ("most expensive", "cheapest")
                          else ["What are the {k} {w} {pl}?", "List the {k} {w} {pl}."],
                          k=k, pl=lab.noun.plural, w=words, p=p.phrase)
            order = "DESC" if desc else "ASC"
            base = f"MATCH ({v}:{ident(lab.label)}) WHERE {v}.{ident(p.name)} IS NOT NULL RETURN {lab.show(v)}, {_pv(v, p)} AS {_alias(p.name)} ORDER BY {_alias(p.name)} {order}"
            yield Candidate(q, f"{base} LIMIT {k}", "top_k", (f"{base} LIMIT {k + 1}", k, 1))
        elif mode == "degree":
            rel = subject
            fwd, k = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            av = anchor.var
            tv = _other_var(target, [av])
            ph = rel.phrase
            if fwd:
                if k == 1:
                    q = f"{'Who' if anchor.noun.person else 'Which ' + anchor.noun.singular} {ph.finite(False)} the most {target.noun.plural}?"
                else:
                    q = _pick(rng, ["Which {k} {a} {f} the most {t}?", "List the top {k} {a} by number of {t} {c}."],
                              k=k, a=anchor.noun.plural, f=ph.finite(True), t=target.noun.plural,
                              c=_clause(target, rel, False, _THEY, True, rng))
            else:
                if k == 1:
                    q = _pick(rng, ["Which {a} has the most {t} {rel} {f} {o}?", "Which {a} {ask}?"],
                              o=anchor.noun.obj, a=anchor.noun.singular, t=target.noun.plural, rel=target.noun.rel, f=ph.finite(True),
                              ask=ph.ask(f"the most {target.noun.plural}", plural=True))
                else:
                    q = _pick(rng, ["Which {k} {a} {ask}?", "What are the top {k} {a} by number of {t} {rel} {f} them?"],
                              k=k, a=anchor.noun.plural, t=target.noun.plural, rel=target.noun.rel, f=ph.finite(True),
                              ask=ph.ask(f"the most {target.noun.plural}", plural=True))
            alias = _alias("num", target.noun.plural)
            pat = _hop_pattern(rel, fwd, f"({av}:{ident(anchor.label)})", f"({tv}:{ident(target.label)})")
            base = f"MATCH {pat} RETURN {anchor.show(av)}, count({tv}) AS {alias} ORDER BY {alias} DESC"
            yield Candidate(_cap(q), f"{base} LIMIT {k}", "top_k", (f"{base} LIMIT {k + 1}", k, 1))
        elif mode == "anchored":
            rel = subject
            fwd, a, p, k, desc = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            tv = _other_var(target, [anchor.var]) if rel.self_loop else target.var
            ref = anchor.ref(a, rng)
            words = _top_words(p, desc, rng)
            clause = _clause(target, rel, not fwd, ref, False, rng, target_plural=k > 1)
            if words in ("most expensive", "cheapest"):
                q = (f"What is the {words} {target.noun.singular} {clause}?" if k == 1
                     else f"What are the {k} {words} {target.noun.plural} {clause}?")
            else:
                q = (f"Which {target.noun.singular} {clause} has the {words}?" if k == 1
                     else f"Which {k} {target.noun.plural} {clause} have the {words}?")
            order = "DESC" if desc else "ASC"
            pat = _hop_pattern(rel, fwd, anchor.node(anchor.var, a), f"({tv}:{ident(target.label)})")
            base = f"MATCH {pat} WHERE {tv}.{ident(p.name)} IS NOT NULL RETURN {target.show(tv)}, {_pv(tv, p)} AS {_alias(p.name)} ORDER BY {_alias(p.name)} {order}"
            yield Candidate(_cap(q), f"{base} LIMIT {k}", "top_k", (f"{base} LIMIT {k + 1}", k, 1))
        else:
            rel = subject
            p, k = data
            b = rel.end
            bv = _other_var(b, [rel.start.var]) if rel.self_loop else b.var
            alias = _alias("total", p.name)
            if k == 1:
                q = _pick(rng, ["Which {s} has the highest total {p}?", "Which {s} has the largest total {p} across all {a}?"],
                          s=b.noun.singular, p=p.phrase, a=rel.start.noun.plural)
            else:
                q = _pick(rng, ["Which {k} {t} have the highest total {p}?", "List the top {k} {t} by total {p}."],
                          k=k, t=b.noun.plural, p=p.phrase)
            base = (f"MATCH (:{ident(rel.start.label)})-[r:{ident(rel.type)}]->({bv}:{ident(b.label)}) "
                    f"RETURN {b.show(bv)}, sum({_pv('r', p)}) AS {alias} ORDER BY {alias} DESC")
            yield Candidate(q, f"{base} LIMIT {k}", "top_k", (f"{base} LIMIT {k + 1}", k, 1))


def _shape_distinct(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for lab in P.labels.values():
        groups.append([(lab, "prop", p) for p in _filter_props(lab, ("category",))])
    for rel, fwd in _hop_views(P):
        target = rel.end if fwd else rel.start
        cats = _filter_props(target, ("category", "datetext", "number"))
        if cats:
            groups.append([(rel, "hop", (fwd, a, rng.choice(cats))) for a in _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)])
    for chain in _chains(P, 2):
        last, lfwd = chain[-1]
        target = last.end if lfwd else last.start
        cats = _filter_props(target, ("category",))
        if cats:
            groups.append([(chain, "chain", (a, rng.choice(cats))) for a in _chain_anchors(chain, rng)])
    for subject, mode, data in _mix(groups, rng):
        if mode == "prop":
            lab, p = subject, data
            pp = pluralize(p.phrase) if not p.plural_phrase else p.phrase
            if p.is_location and p.phrase in _LOCATION_WORDS:
                q = _pick(rng, ["Which {pp} are our {pl} in?", "List the different {pp} of the {pl}.",
                                "In which {pp} do we have {pl}?"], pp=pp, pl=lab.noun.plural)
            else:
                q = _pick(rng, ["What are the different {pp} of {pl}?", "List the distinct {pp} used by {pl}.",
                                "Which {pp} do {pl} have?"], pp=pp, pl=lab.noun.plural)
            yield Candidate(q, f"MATCH ({lab.var}:{ident(lab.label)}) RETURN DISTINCT {lab.var}.{ident(p.name)}", "distinct")
        elif mode == "hop":
            rel = subject
            fwd, a, p = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            tv = _other_var(target, [anchor.var]) if rel.self_loop else target.var
            ref = anchor.ref(a, rng)
            pp = pluralize(p.phrase) if not p.plural_phrase else p.phrase
            np = f"{target.noun.plural} {_clause(target, rel, not fwd, ref, False, rng)}"
            q = _pick(rng, ["What are the different {pp} of the {np}?", "List the distinct {pp} of the {np}."], pp=pp, np=np)
            pat = _hop_pattern(rel, fwd, anchor.node(anchor.var, a), f"({tv}:{ident(target.label)})")
            yield Candidate(q, f"MATCH {pat} RETURN DISTINCT {tv}.{ident(p.name)}", "distinct")
        else:
            chain = subject
            a, p = data
            first, ffwd = chain[0]
            anchor = first.start if ffwd else first.end
            last, lfwd = chain[-1]
            target = last.end if lfwd else last.start
            tv = _other_var(target, [anchor.var])
            ref = anchor.ref(a, rng)
            pp = pluralize(p.phrase) if not p.plural_phrase else p.phrase
            q = _pick(rng, ["Which distinct {pp} do the {np} have?", "List the different {pp} of the {np}."],
                      pp=pp, np=_chain_np(chain, ref, rng))
            yield Candidate(q, f"{_chain_match(chain, anchor, a, tv)} RETURN DISTINCT {tv}.{ident(p.name)}", "distinct")


def _shape_optional_match(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel, fwd in _hop_views(P):
        anchor = rel.start if fwd else rel.end
        target = rel.end if fwd else rel.start
        if anchor.key is None or target.key is None:
            continue
        table = rel.out if fwd else rel.inc
        lonely = [e for e in anchor.entities if _hashable(e) not in table]
        slots = [(rel, fwd, "all")]
        slots += [(rel, fwd, ("one", e)) for e in _sample(anchor.entities, 150, rng)]
        slots += [(rel, fwd, ("one", e)) for e in _sample(lonely, 50, rng)]
        groups.append(slots)
    for rel, fwd, mode in _mix(groups, rng):
        anchor = rel.start if fwd else rel.end
        target = rel.end if fwd else rel.start
        av = anchor.var
        tv = _other_var(target, [av])
        ph = rel.phrase
        if mode == "all":
            alias = _alias("num", target.noun.plural)
            if fwd:
                q = _pick(rng, ["List every {a} with the number of {t} {ask}, including those with none.",
                                "For every {a}, how many {t} {ask}? Include {ap} with zero."],
                          a=anchor.noun.singular, ap=anchor.noun.plural, t=target.noun.plural, ask=ph.ask(anchor.noun.subj, anchor.noun.person))
            else:
                q = _pick(rng, ["List every {a} with the number of {t} {rel} {f} {o}, including those with none.",
                                "For each {a}, count the {t} {rel} {f} {o}, also showing {ap} with zero."],
                          o=anchor.noun.obj, a=anchor.noun.singular, ap=anchor.noun.plural, t=target.noun.plural, rel=target.noun.rel,
                          f=ph.finite(True))
            pat = _hop_pattern(rel, fwd, f"({av})", f"({tv}:{ident(target.label)})")
            yield Candidate(q, f"MATCH ({av}:{ident(anchor.label)}) OPTIONAL MATCH {pat} RETURN {anchor.show(av)}, count({tv}) AS {alias}", "optional_match")
        else:
            e = mode[1]
            ref = anchor.ref(e, rng, bare_ok=False)
            np = f"{target.noun.plural} {_clause(target, rel, not fwd, anchor.noun, False, rng)}"
            q = _pick(rng, ["Show {r} together with any {np}, if there are any.", "List {r} and the {np}, even if there are none.",
                            "Give me {r} and, where they exist, the {np}."], r=ref, np=np)
            pat = _hop_pattern(rel, fwd, f"({av})", f"({tv}:{ident(target.label)})")
            yield Candidate(_cap(q), f"MATCH {anchor.node(av, e)} OPTIONAL MATCH {pat} RETURN {anchor.show(av)}, {target.show(tv)}", "optional_match")


def _shape_negation(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel, fwd in _hop_views(P):
        anchor = rel.start if fwd else rel.end
        target = rel.end if fwd else rel.start
        slots = []
        if anchor.key is not None:
            slots.append((rel, "none", fwd))
        if target.key is not None:
            slots += [(rel, "entity", (fwd, a)) for a in _sample(_anchors(rel, fwd), ENTITIES_PER_LABEL, rng)]
        groups.append(slots)
    chains = _chains(P, 2)
    clear = _unambiguous(chains)
    for chain in chains:
        first, ffwd = chain[0]
        last, lfwd = chain[-1]
        if (first is last and ffwd != lfwd) or _chain_labels(chain) not in clear:
            continue
        groups.append([(chain, "chain", a) for a in _chain_anchors(chain, rng)[:150]])
    for subject, mode, data in _mix(groups, rng):
        if mode == "none":
            rel, fwd = subject, data
            anchor = rel.start if fwd else rel.end  # the entities that lack the relationship
            other = rel.end if fwd else rel.start
            av = anchor.var
            ph = rel.phrase
            if fwd:
                a_or_an = "an" if other.noun.singular[:1] in "aeiou" else "a"
                templates = ["{w} {neg} any {o}?", "List the {ap} that {negp} any {o}."]
                if not ph.copula:
                    templates.append("Which {ap} have never {part} any {op}?")
                q = _pick(rng, templates, w=anchor.noun.which, neg=ph.negated(not anchor.noun.person), negp=ph.negated(True),
                          o=other.noun.singular, op=other.noun.plural, ap=anchor.noun.plural, part=ph.participle, a=a_or_an)
                cy = f"MATCH ({av}:{ident(anchor.label)}) WHERE NOT ({av})-[:{ident(rel.type)}]->(:{ident(other.label)}) RETURN {anchor.show(av)}"
            else:
                templates = ["Which {ap} have no {op} {rel} {f} them?", "Which {ap} {ask}?"]
                if ph.passive:
                    templates.append("Which {ap} have never been {part} by any {o}?")
                q = _pick(rng, templates, ap=anchor.noun.plural, op=other.noun.plural, rel=other.noun.rel, f=ph.finite(True),
                          ask=ph.ask(f"no {other.noun.singular}"), part=ph.participle, o=other.noun.singular)
                cy = f"MATCH ({av}:{ident(anchor.label)}) WHERE NOT (:{ident(other.label)})-[:{ident(rel.type)}]->({av}) RETURN {anchor.show(av)}"
            yield Candidate(_cap(q), cy, "negation")
        elif mode == "entity":
            rel = subject
            fwd, a = data
            anchor = rel.start if fwd else rel.end
            target = rel.end if fwd else rel.start
            av = anchor.var
            tv = _other_var(target, [av])
            ref = anchor.ref(a, rng)
            ph = rel.phrase
            if fwd:
                q = f"Which {target.noun.plural} {ph.ask_not(ref)}?"
                cond = f"NOT ({av})-[:{ident(rel.type)}]->({tv})"
            else:
                q = (f"Who {ph.negated(False)} {ref}?" if target.noun.person and rng.random() < 0.5
                     else f"Which {target.noun.plural} {ph.negated(True)} {ref}?")
                cond = f"NOT ({tv})-[:{ident(rel.type)}]->({av})"
            cy = f"MATCH {anchor.node(av, a)}, ({tv}:{ident(target.label)}) WHERE {cond}" + (f" AND {tv} <> {av}" if rel.self_loop else "") + f" RETURN {target.show(tv)}"
            yield Candidate(_cap(q), cy, "negation")
        else:
            chain, a = subject, data
            first, ffwd = chain[0]
            anchor = first.start if ffwd else first.end
            last, lfwd = chain[-1]
            target = last.end if lfwd else last.start
            mid = first.end if ffwd else first.start
            av = anchor.var
            tv = _other_var(target, [av])
            ref = anchor.ref(a, rng)
            q = _pick(rng, ["Which {t} are not connected to {r} through any {m}?", "Which {t} have no link to {r} via {mp}?"],
                      t=target.noun.plural, r=ref, m=mid.noun.singular, mp=mid.noun.plural)
            path = f"({av})"
            for i, (rel, fwd) in enumerate(chain):
                nxt = rel.end if fwd else rel.start
                node = f"({tv})" if i == len(chain) - 1 else f"(:{ident(nxt.label)})"
                path = _hop_pattern(rel, fwd, path, node)
            extra = f" AND {tv} <> {av}" if target.label == anchor.label else ""
            yield Candidate(q, f"MATCH {anchor.node(av, a)}, ({tv}:{ident(target.label)}) WHERE NOT {path}{extra} RETURN {target.show(tv)}", "negation")


def _shape_var_length(P: Profile, rng: random.Random) -> Iterator[Candidate]:
    groups = []
    for rel in P.rels:
        if rel.self_loop and rel.start.key is not None:
            for fwd in (True, False):
                groups.append([(rel, "typed", (fwd, a, k)) for a in _sample(_anchors(rel, fwd), 200, rng) for k in (2, 3)])
    named = P.named()
    if P.rels:
        for lab in named:
            targets = [t for t in P.labels.values() if t.key is not None]
            groups.append([(lab, "any", (e, rng.choice(targets), rng.choice((2, 3)), rng.random() < 0.3))
                           for e in _sample(lab.entities, 200, rng)])
    for subject, mode, data in _mix(groups, rng):
        if mode == "typed":
            rel = subject
            fwd, a, k = data
            lab = rel.start
            av, tv = lab.var, _other_var(lab, [lab.var])
            ref = lab.ref(a, rng)
            ph = rel.phrase
            if fwd:
                q = _pick(rng, ["Which {pl} {ask}, directly or indirectly, within {k} steps?",
                                "Which {pl} can be reached from {r} by following {w} links up to {k} times?"],
                          pl=lab.noun.plural, ask=ph.ask(ref), k=k, r=ref, w=" ".join(split_words(rel.type)))
                pat = f"{lab.node(av, a)}-[:{ident(rel.type)}*1..{k}]->({tv}:{ident(lab.label)})"
            else:
                q = _pick(rng, ["{w} {f} {r}, directly or through a chain of up to {k}?",
                                "Which {pl} lead to {r} through a chain of at most {k} {t} links?"],
                          w=lab.noun.which, f=ph.finite(not lab.noun.person), r=ref, k=k, pl=lab.noun.plural,
                          t=" ".join(split_words(rel.type)))
                pat = f"({tv}:{ident(lab.label)})-[:{ident(rel.type)}*1..{k}]->{lab.node(av, a)}"
            yield Candidate(_cap(q), f"MATCH {pat} WHERE {tv} <> {av} RETURN DISTINCT {lab.show(tv)}", "var_length")
        else:
            lab = subject
            e, target, k, count = data
            av = lab.var
            tv = _other_var(target, [av])
            ref = lab.ref(e, rng)
            t = target.noun.plural
            where = f" WHERE {tv} <> {av}" if target.label == lab.label else ""
            pat = f"MATCH {lab.node(av, e)}-[*1..{k}]-({tv}:{ident(target.label)}){where}"
            if count:
                q = _pick(rng, ["How many {t} are within {k} hops of {r}?", "How many different {t} can be reached from {r} in at most {k} steps?"],
                          t=t, k=k, r=ref)
                yield Candidate(q, f"{pat} RETURN count(DISTINCT {tv})", "var_length")
            else:
                q = _pick(rng, ["Which {t} are within {k} hops of {r}?", "Which {t} can be reached from {r} in at most {k} steps?",
                                "List the {t} connected to {r} by a path of up to {k} relationships."], t=t, k=k, r=ref)
                yield Candidate(q, f"{pat} RETURN DISTINCT {target.show(tv)}", "var_length")


_SHAPE_FUNCS: dict[str, Callable[[Profile, random.Random], Iterator[Candidate]]] = {
    "lookup": _shape_lookup,
    "filter_eq": _shape_filter_eq,
    "filter_range": _shape_filter_range,
    "filter_string": _shape_filter_string,
    "filter_in": _shape_filter_in,
    "filter_null": _shape_filter_null,
    "date_filter": _shape_date_filter,
    "one_hop": _shape_one_hop,
    "two_hop": _shape_two_hop,
    "three_hop": _shape_three_hop,
    "filtered_traversal": _shape_filtered_traversal,
    "rel_property": _shape_rel_property,
    "count": _shape_count,
    "aggregate": _shape_aggregate,
    "count_distinct": _shape_count_distinct,
    "collect": _shape_collect,
    "group_by": _shape_group_by,
    "having": _shape_having,
    "top_k": _shape_top_k,
    "distinct": _shape_distinct,
    "optional_match": _shape_optional_match,
    "negation": _shape_negation,
    "var_length": _shape_var_length,
}
assert set(_SHAPE_FUNCS) == set(SHAPES)


# ============================================================================================
# Execution and selection
# ============================================================================================


@dataclass
class Pair:
    """A kept question → Cypher pair (one JSONL line)."""

    question: str
    cypher: str
    category: str
    graph: str
    row_count: int
    source: str = "offline"

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "cypher": self.cypher, "category": self.category, "graph": self.graph,
                "source": self.source, "row_count": self.row_count}


@dataclass
class ShapeStats:
    kept: int = 0
    tried: int = 0
    failed: int = 0
    empty: int = 0
    unstable: int = 0
    ties: int = 0
    duplicates: int = 0
    exhausted: bool = False


@dataclass
class GenerationReport:
    """What a run produced: counts per shape and the time it took."""

    graph: str
    requested: int
    kept: int = 0
    seconds: float = 0.0
    profile_seconds: float = 0.0
    queries: int = 0
    shapes: dict[str, ShapeStats] = field(default_factory=dict)

    @property
    def pairs_per_second(self) -> float:
        return self.kept / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "requested": self.requested, "kept": self.kept, "seconds": round(self.seconds, 2),
                "profile_seconds": round(self.profile_seconds, 2), "queries": self.queries,
                "shapes": {k: vars(v) for k, v in self.shapes.items()}}

    def table(self) -> str:
        """Markdown table of counts per shape."""
        lines = ["| shape | kept | tried | error | no rows | unstable | tie at cut | duplicate | exhausted |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|:---:|"]
        for name, s in self.shapes.items():
            lines.append(f"| {name} | {s.kept} | {s.tried} | {s.failed} | {s.empty} | {s.unstable} | {s.ties} | "
                         f"{s.duplicates} | {'yes' if s.exhausted else ''} |")
        lines.append(f"| **total** | **{self.kept}** | {sum(s.tried for s in self.shapes.values())} | | | | | | |")
        return "\n".join(lines)


def _no_data(rows: list[list[Any]]) -> bool:
    """True for answers that say nothing: every cell empty, or one row of zeros/empties."""
    empty = (None, "", [], {})
    if all(all(c in empty for c in row) for row in rows):
        return True
    return len(rows) == 1 and all(
        c in empty or (isinstance(c, (int, float)) and not isinstance(c, bool) and c == 0) for c in rows[0])


def _canon(rows: list[list[Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


class _Checker:
    """Runs candidates read-only and decides whether they are kept."""

    def __init__(self, graph: GraphStore, timeout_s: float, max_rows: int, verify: bool) -> None:
        self.graph, self.timeout_s, self.max_rows, self.verify = graph, timeout_s, max_rows, verify
        self.queries = 0

    def _run(self, cypher: str) -> Any:
        self.queries += 1
        try:
            return self.graph.query(cypher, timeout_s=self.timeout_s, max_rows=self.max_rows)
        except GraphError:
            return None

    def check(self, cand: Candidate, stats: ShapeStats) -> int | None:
        """Row count when the candidate is kept, else None (the reason goes to ``stats``)."""
        res = self._run(cand.cypher)
        if res is None:
            stats.failed += 1
            return None
        if not res.rows or res.truncated or _no_data(res.rows):
            stats.empty += 1
            return None
        if self.verify:
            again = self._run(cand.cypher)
            if again is None or _canon(again.rows) != _canon(res.rows):
                stats.unstable += 1
                return None
        if cand.tie is not None:
            query, k, col = cand.tie
            if len(res.rows) < k:
                stats.empty += 1  # "the top 5" of three things reads wrong
                return None
            probe = self._run(query)
            if probe is None or (len(probe.rows) > k and probe.rows[k - 1][col] == probe.rows[k][col]):
                stats.ties += 1
                return None
        return len(res.rows)


def generate_pairs(
    graph: GraphStore,
    n: int,
    *,
    seed: int = 0,
    shapes: Iterable[str] | None = None,
    timeout_s: float = 2.0,
    max_rows: int = 1000,
    verify: bool = True,
    progress: bool = False,
) -> tuple[list[Pair], GenerationReport]:
    """Up to ``n`` executed, de-duplicated pairs, shapes taking turns; with a report per shape."""
    from finetune.dataset import normalize_cypher, normalize_question

    chosen = list(shapes) if shapes is not None else list(SHAPES)
    unknown = [s for s in chosen if s not in _SHAPE_FUNCS]
    if unknown:
        raise DataError(f"unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    if n <= 0:
        raise DataError("--n must be positive")
    start = time.perf_counter()
    report = GenerationReport(graph.name, n, shapes={s: ShapeStats() for s in chosen})
    profile = profile_graph(graph)
    report.profile_seconds = time.perf_counter() - start
    if not profile.labels:
        raise DataError(f"graph {graph.name!r} has no nodes to generate questions about")
    gens = {s: _SHAPE_FUNCS[s](profile, random.Random(f"{seed}:{s}")) for s in chosen}
    checker = _Checker(graph, timeout_s, max_rows, verify)
    seen_q: set[str] = set()
    seen_c: set[str] = set()
    pairs: list[Pair] = []
    strikes: Counter = Counter()
    active = list(chosen)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"offline pairs ({graph.name})", unit="pair")
    try:
        while active and len(pairs) < n:
            for shape in list(active):
                if len(pairs) >= n:
                    break
                st = report.shapes[shape]
                fails = 0
                while True:
                    cand = next(gens[shape], None)
                    if cand is None:
                        st.exhausted = True
                        active.remove(shape)
                        break
                    nq, nc = normalize_question(cand.question), normalize_cypher(cand.cypher)
                    if nq in seen_q or nc in seen_c:
                        st.duplicates += 1
                        continue
                    st.tried += 1
                    rows = checker.check(cand, st)
                    if rows is None:
                        fails += 1
                        if fails >= MAX_FAILS_PER_TURN:
                            strikes[shape] += 1
                            if strikes[shape] >= 3:
                                st.exhausted = True
                                active.remove(shape)
                            break
                        continue
                    seen_q.add(nq)
                    seen_c.add(nc)
                    pairs.append(Pair(cand.question, cand.cypher, cand.category, graph.name, rows))
                    st.kept += 1
                    if bar is not None:
                        bar.update(1)
                    break
    finally:
        if bar is not None:
            bar.close()
    report.kept = len(pairs)
    report.queries = checker.queries
    report.seconds = time.perf_counter() - start
    return pairs, report


def write_pairs(pairs: Iterable[Pair], path: Path) -> int:
    """Write pairs as JSONL (atomically); returns the count."""
    from agent.adapters import atomic_write_text

    lines = [json.dumps(p.to_dict(), ensure_ascii=False) for p in pairs]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file of pairs (for the dataset builder and tests)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i}: not valid JSON ({e.msg})") from e
    return out


__all__ = ["SHAPES", "Candidate", "GenerationReport", "Pair", "generate_pairs", "profile_graph", "read_pairs",
           "rel_phrase", "write_pairs"]
