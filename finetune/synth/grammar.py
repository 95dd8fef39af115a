"""The query grammar: a question's structure, sampled from real data and compiled to Cypher.

A ``Query`` is a small tree of nodes joined by relationship hops (0–3 hops, either direction, any
pattern the schema has; a chain, or a star around the focus), filters on any node or hop of it
(equality, ranges, CONTAINS / STARTS WITH / ENDS WITH, IN, IS NULL, dates, numbers stored as text),
existence or absence of a further relationship, and a *frame* — what the question asks for:

    list      entities (their naming key, or the whole node)     "Which movies did Tom Hanks act in?"
    props     1–3 properties of path nodes (a lookup when anchored) "What is the tagline of The Matrix?"
    pairs     an entity with a related one                        "List each movie with its director."
    count     how many                                            "How many people were born before 1950?"
    aggregate sum/avg/min/max of a node or relationship property  "What is the average rating of …?"
    distinct  the distinct values of a property                   "Which countries do our suppliers come
    from?"
    first     N entities in storage order (LIMIT, no ORDER BY)    "List the first 3 products in …"
    top       ORDER BY a property … LIMIT N                        "Top 5 products by unit price"
    group     a count or aggregate per group key (+ top N)        "How many movies has each person directed?"
    having    groups filtered on their aggregate (WITH … WHERE)   "Who acted in more than 5 movies?"; some
              with a second aggregate in that WITH              "… spoken in at least 5 countries, and
                                                                their total population?"
    collect   a group key with the collected related keys         "For each category, list its products."
    compare   a property across two nodes, or arithmetic over two  "Which countries have a larger population
              numeric properties (``Compare``)                      than Germany?", "How much larger is …"
    listprop  a list property's size ranked or summed, its elements "Which 5 countries have the most
              as rows (UNWIND), counted or ranked (``Listed``)      languages?", "the 5 most common tags"

Queries are sampled by walking the profile's sampled nodes and edges, so every filter value is
taken from an entity on the walk and the conjunction of filters holds for at least that walk: most
sampled queries return rows. ``render.py`` turns the same structure into English; ``run.py`` runs,
checks and keeps them.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field, replace
from typing import Any

from agent.core.errors import DataError
from finetune.synth.cypher import ident, lit, num
from finetune.synth.english import Noun, hop_role, is_adjacency, is_rank_one, plural, singular, split_words
from finetune.synth.profile import _MISSING, Label, Profile, Prop, Rel, is_number

FRAMES: dict[str, float] = {
    "list": 16,
    "props": 10,
    "pairs": 4,
    "count": 12,
    "aggregate": 8,
    "distinct": 4,
    "first": 14,
    "top": 20,
    "group": 12,
    "having": 6,
    "collect": 2,
    "same": 2,
    "relprop": 3,
    "compare": 2,
    "relcompare": 2,
    "listprop": 3,
}
"""Every frame with its sampling weight. ``first`` and ``top`` (ORDER BY … LIMIT) were 7 and 9: LIMIT
then closed 16 % of the pairs against 62 % of the packaged text2cypher rows (ORDER BY: 9 % against
46 %); "the first 3 …" and "the top 5 …" are how people ask. ``compare`` (added 2026-12-03 with weight 2,
about 2 % of draws) is what 5 of the 46 questions of the handwritten countries set's tune half ask and no
generated pair had: a comparison with a named node, a difference or a ratio of numeric properties.
``relcompare`` (added 2026-12-03 with weight 2) is the rest of those five: a comparison with a *related*
node's value, a share of a related node's measure and counts of relationships compared."""
COMPARE_KINDS = {"than": 0.5, "difference": 0.15, "ratio": 0.15, "rank": 0.2}
"""What a ``compare`` frame asks: entities whose measure is above / below / the same as a named one's
(``than``, a quarter of them counted), the difference of one measure between two named entities, the
ratio of two measures of one named entity, or the entities ranked by that ratio (``rank``: "the 5 countries
with the highest population per area", the ratio beside each; added 2026-12-03: the countries tune half's
"5 most densely populated countries" was wrong in every round, and no generated pair ordered by arithmetic).
Until then 0.6 / 0.2 / 0.2 / 0."""

LIST_KINDS = {
    "size_top": 0.22,
    "sum_size": 0.2,
    "distinct_items": 0.2,
    "distinct_lists": 0.06,
    "item_rank": 0.18,
    "items": 0.14,
}
"""What a ``listprop`` frame (added 2026-12-04 with weight 3, about 2.5 % of draws; no fit where the graph has
no list property) asks of a list property of a node or a relationship (``Listed``): the entities (or the two
ends of a relationship) ranked by the list's size (``size_top``: "Which 5 countries have the most
languages?"), its size summed per group (``sum_size``: "the total number of roles of each person"), the number
of different elements (``distinct_items``: ``UNWIND … count(DISTINCT x)``, "how many different roles"), the
number of different lists (``distinct_lists``: ``count(DISTINCT r.roles)``, said "different combinations of
roles"), the elements ranked by how often they occur (``item_rank``: ``UNWIND … RETURN x, count(*) AS n ORDER
BY n DESC``) and the distinct elements (``items``: ``UNWIND … RETURN DISTINCT x``, "Which roles did Tom Hanks
play?"). Until then a list property was only a condition (``'X' IN r.roles``, ``size(r.roles) > 1``) or
returned whole, and round 12's movies models failed questions that need these (docs/BENCHMARKS.md, "Generator
constructs that … does not write")."""
LIST_PER_P = 0.5
"""How often a ``distinct_items`` / ``distinct_lists`` count is asked per group ("for each person, how many
different roles …") rather than of one entity or one set of them."""

RELCOMPARE_KINDS = {"than": 0.4, "share": 0.25, "degree": 0.35}
"""What a ``relcompare`` frame asks: entities whose measure is above / below a related entity's of the same
label (``than``: "cities larger than their country's capital", "countries with a larger population than one of
their neighbours"), one measure of an entity as a share of a related entity's same measure (``share``: "what
share of Japan's population lives in its capital", or the entities above a share), or the counts of one
relationship compared between an entity and a related or a named one (``degree``: "countries that speak more
languages than one of their neighbours")."""
SHARES = (("half", 2), ("a third", 3), ("a quarter", 4), ("a fifth", 5), ("a tenth", 10))
"""Fractions a share is compared with, said as people say them; ``part > whole / k`` divides by a constant, so
a whole of 0 raises nothing."""
PERCENTS = (1, 5, 10, 20, 25, 50)
"""Until 2026-12-03 a share condition took the largest fraction the sampled node exceeds (or one at random
below it), so "a tenth" and percentages won: none of 20,000 countries pairs said "a third". Now every fraction
that some but not all nodes exceed is drawn alike, and the sampled node is one above it."""


def _share_of(fraction: tuple[str, float]) -> float:
    """ ("a third", 3) → 1/3; ("10 %", 0.1) → 0.1."""
    k = fraction[1]
    return 1 / k if k >= 1 else k
RELCOMPARE_MIDDLE_P = 0.4
"""How often a comparison along two hops returns the middle node: "countries that have a city larger than
their capital" (the tune half's question) beside "cities larger than the capital of their country"."""

HOPS_WEIGHTS = {0: 0.28, 1: 0.42, 2: 0.22, 3: 0.08}
FILTERS_WEIGHTS = {0: 0.45, 1: 0.4, 2: 0.15}
"""Filters asked for beyond a named path end. People's questions mostly carry one condition or none
(the packaged text2cypher rows: 18 % none, 71 % one, 11 % two or more); with 0.25/0.5/0.25 and the
named ends the generated pairs had 6 % none and 45 % two or more, and a model trained on them (movies,
2026-12-02) put a condition into questions that had none."""
NODE_STYLE = {"which": 0.75, "list": 0.8, "find": 1.0, "show": 1.0, "retrieve": 1.0}
"""How often an opener returns the whole node rather than its name; "what", "name" and "the names of"
always return the name. In the packaged text2cypher rows "Which …" returns the node in 45 % and one
property in 9 % (the rest: several columns or an aggregate), "List …" 54 % and 13 %, "Name …" 6 % and
49 %. Until 2026-12-02 "which" and "list" always returned the name, and the trained model answered
"List the first 5 suppliers with a home page" with names where people expect the suppliers."""
RETURN_STYLES = ("mixed", "names", "nodes")
"""How a generated query returns the entities a question asks for (``Sampler(return_style=…)``, ``cypherloop
bootstrap --return-style``): ``mixed`` as ``NODE_STYLE`` draws it from the question's opener (people's
text2cypher queries: "Which …" returns the whole node 5 times for each time it returns one property);
``names`` always its name (its key property), and nothing beside it where the question ranks or filters on a
value (a top N, a group filtered on its count), as the handwritten countries questions' answers are written;
``nodes`` always the whole node. A label with no name property returns its nodes in every style. The dev sets
and the handwritten questions disagree here (docs/BENCHMARKS.md A, round 13: ``names`` +17 points on
countries, −8 on movies), so it is the user's to choose for their graph; ``cypherloop bootstrap``'s ``auto``
(its default) follows the graph's approved corrections (``finetune.bootstrap.auto_return_style``), ``mixed``
until they agree."""
DISTINCT_REPEATS_P = 0.3
"""How often a query whose rows repeat returns them DISTINCT (``run.py`` sees whether they repeat). People
rarely write it: ``RETURN DISTINCT`` closes 3.4 % of the packaged text2cypher rows (4.7 % of those with a
relationship). Until 2026-12-03 every query with repeated rows got it, 840 of the 6,435 movies queries
(13 %) of round 4, and the trained model answered "Who are the first 3 directors of …?" with distinct names
where people's queries list each row."""
HAVING_SHOWS_P = 0.5
"""How often groups filtered on their aggregate return the aggregate beside the key (``WITH p, count(m) AS
n WHERE n > 3 RETURN p.name, n``): 233 of the 483 packaged text2cypher rows that filter an aggregate through
WITH (48 %). The generator never did, and the round-4 model, asked "Who produced more than 3 movies?",
returned the names alone or wrote the aggregate again after the WITH (``RETURN p.name, count(m)``, where
``m`` is gone)."""
HAVING_ALSO_P = 0.25
"""How often groups filtered on their count also get an aggregate of a measure of the counted node, computed
in the same WITH and returned (``WITH l, count(c) AS n, sum(c.population) AS total WHERE n >= 5 RETURN l.name,
total``: "For each language spoken in at least 5 countries, what is their total population?"). Until
2026-12-04 the having frame only counted, and round 13's model, asked that question, put ``sum(c.population)``
after the WITH that had dropped ``c`` (docs/BENCHMARKS.md, countries round 13, ``094``)."""
ANCHOR_LEAF_P = 0.45
"""How often a path's far end is named ("movies that Tom Hanks acted in")."""

RANK_ONE_P = 0.8
"""How often a condition on a rank-like relationship property (rank, priority, order, position) whose walked
value is 1 is the equality "= 1" ("countries whose main language is French"), not a drawn operator. Until
2026-12-03 it was one of seven operators and one of many values: 12 of 20,000 countries pairs had
``SPEAKS.rank = 1``, too few to teach "main language"."""
LIST_PROP_WEIGHT = 0.3
"""A list property (``'X' IN r.roles``) is picked this much less often as a filter than a scalar one: on
movies, where most relationships carry ``roles``, it ended up in 10 % of the pairs and the trained model
wrote ``'…' IN r.roles`` into a fifth of the dev answers (17 of 488 gold queries have one)."""

FILTER_OPS: dict[str, tuple[str, ...]] = {
    "key": ("eq", "contains", "starts"),
    "category": ("eq", "eq", "ne", "in"),
    "text": ("contains", "starts", "ends", "eq"),
    "number": ("gt", "lt", "ge", "le", "between", "eq", "decade"),
    "numtext": ("gt", "lt", "between"),
    "date": ("after", "before", "between", "year"),
    "datetext": ("after", "before", "between", "year", "month"),
    "bool": ("true", "false"),
    "id": ("eq",),
    "list": ("has", "has", "size"),
}
AGGS = ("avg", "sum", "min", "max")
NUMERIC_FRAMES = ("aggregate", "group", "top")
NUMERIC_HOP_P = 0.6
"""How often a frame that ranks or aggregates a measure, on a label that has none of its own (years are no
measure), walks first along a relationship that has one. Drawn uniformly, the movies paths met REVIEWED's
rating so rarely that 1 of 1,852 generated queries averaged anything ("What is the average rating of …",
a common question wherever relationships carry ratings, quantities or prices)."""


def _measures(label: Label) -> list[Prop]:
    """The label's own numeric properties that are not years."""
    return [p for p in label.usable("number", "numtext") if not p.is_year]
ROW_LIMITS = (3, 5, 10, 3, 5)
CODE_WORDS = frozenset({"code", "iso", "numeric", "id", "zip", "postal", "phone"})
"""Numbers that name rather than measure (``isoNumeric``, ``numericCode``): the compare frame leaves them."""
COORDINATE_WORDS = frozenset({"latitude", "longitude", "lat", "lon", "lng"})


def _comparable(label: Label, kind: str) -> list[Prop]:
    """The numeric properties a compare frame of ``kind`` uses: no codes; years compared but not divided;
    a ratio only of non-negative measures that are not coordinates."""
    props = [
        p for p in label.usable("number", "numtext") if not set(p.words.lower().split()) & CODE_WORDS
    ]
    if kind not in ("ratio", "rank"):
        return props
    return [
        p
        for p in props
        if not p.is_year
        and not set(p.words.lower().split()) & COORDINATE_WORDS
        and all(float(v) >= 0 for v in p.values[:200] if is_number(v, numtext=True))
    ]


def _some_end(q: Query) -> int | None:
    """Of a two-hop path's ends, one the middle node can have some of ("a city", "a director": the end is the
    pattern's start and the type is no HAS_X): the hop index, or None."""
    for j, h in enumerate(q.hops[:2]):
        end_is_start = h.outward if h.child == 1 else not h.outward  # the end node starts the pattern
        if end_is_start and not h.rel.verb.base.startswith("have "):
            return j
    return None


def _adjacent(h: Hop) -> bool:
    return h.rel.self_loop and is_adjacency(h.rel.type)


def _bare(q: Query, i: int) -> bool:
    """Node ``i`` is said by its noun alone: not named, no condition, nothing beyond it."""
    return not (q.children(i) or q.anchored(i) or any(f.on == "node" and f.index == i for f in q.filters))


def owned_noun(rel: Rel) -> str | None:
    """What the end node of a ``HAS_X`` type is to its start node: "capital" for
    (Country)-[:HAS_CAPITAL]->(City); None for any other type, or where X is the end label's own noun
    (HAS_GENRE to :Genre says "genre" anyway)."""
    x = rel.verb.owned
    if not x:
        return None
    end = rel.end.noun
    return None if x in (end.singular, end.plural) else x


def _says_a_role(q: Query, h: Hop) -> bool:
    """A bare ``HAS_X`` hop into its parent says that the parent is an X: "capital cities with fewer than
    50,000 inhabitants" is ``(:Country)-[:HAS_CAPITAL]->(c:City) WHERE …``, not every city. Unlike "products
    that suppliers supply" it restricts, where fewer than 95 % of the parent's label have one (the rule of
    an existence condition), so pruning keeps it (until 2026-12-03 it did not: 9 of 20,000 countries pairs
    asked for capitals with a condition on the capital)."""
    if h.outward or owned_noun(h.rel) is None:
        return False
    nodes = q.nodes[h.parent].label.nodes
    return sum(n in h.rel.inc for n in nodes) < 0.95 * len(nodes)


def _role(h: Hop) -> Noun | None:
    return hop_role(h.rel.type, h.rel.verb, h.rel.self_loop)


def _measured(label: Label) -> list[Prop]:
    """What a node is compared with a related one on: the compare frame's properties but coordinates ("cities
    larger than their capital", not "cities exceeding their capital in longitude")."""
    return [p for p in _comparable(label, "than") if not set(p.words.lower().split()) & COORDINATE_WORDS]


@dataclass
class Node:
    label: Label
    var: str
    id: int  # the sampled node on the walk

    @property
    def data(self) -> dict[str, Any]:
        return self.label.nodes.get(self.id, {})


@dataclass
class Hop:
    parent: int
    child: int
    rel: Rel
    outward: bool  # the parent is the pattern's start: (parent)-[:T]->(child)
    edge: int
    var: str = ""  # set when a filter or the return uses the relationship

    @property
    def data(self) -> dict[str, Any]:
        return self.rel.edges[self.edge][2]


@dataclass(frozen=True)
class Ref:
    """Something a query returns, orders by or aggregates: a node (its key or itself) or a property."""

    on: str  # "node" | "hop"
    index: int
    prop: Prop | None = None  # None: the node itself (or its key, by the query's return style)


@dataclass
class Filter:
    on: str  # "node" | "hop"
    index: int
    prop: Prop
    # eq ne gt ge lt le between contains starts ends in null notnull true false after before year month
    op: str
    value: Any = None
    value2: Any = None

    @property
    def inline(self) -> bool:
        """Equality on a node's key is written into the node pattern: ``(p:Person {name: 'Tom Hanks'})``."""
        return self.op == "eq" and self.on == "node" and self.prop.kind == "key"


@dataclass
class Exists:
    node: int
    rel: Rel
    outward: bool
    negated: bool


@dataclass
class Agg:
    func: str  # count sum avg min max collect
    target: Ref | None  # None: count(*) style over the focus node
    distinct: bool = False


@dataclass
class Compare:
    """A comparison across nodes or arithmetic over properties (the ``compare`` frame).

    than:       ``WHERE f.p > a.p`` — the focus (node 0) against the named node 1 (``op`` ">", "<" or "=",
                the last with ``AND f <> a``)
    difference: ``RETURN a.p - b.p`` — nodes 0 and 1 both named, node 0's value the larger
    ratio:      ``RETURN a.p / a.other`` — two measures of the named node 0
    rank:       ``WHERE f.other > 0 RETURN f.key, f.p / f.other AS r ORDER BY r DESC LIMIT k`` — every node
                ranked by that ratio (``order`` "agg": the ratio is the last column, as ``tie_probe`` needs)
    """

    kind: str
    prop: Prop
    op: str = ">"
    other: Prop | None = None


@dataclass
class Related:
    """A comparison along relationships (the ``relcompare`` frame).

    than:   ``WHERE f.p > n.p`` — the focus (node 0) against the path's last node, of the same label; on two
            hops the middle node may be the answer instead (``RETURN DISTINCT m.key``)
    degree: ``WITH f, n, size([(f)-[:T]->(:B) | 1]) AS mine, size([(n)-[:T]->(:B) | 1]) AS theirs WHERE mine >
            theirs`` — the path's last node, or a named node (no path); FalkorDB runs a pattern comprehension
            in a projection, not in WHERE, and has no ``COUNT { }``
    share:  ``RETURN toFloat(part.p) / whole.p`` for one named node (node 0) and the node its one hop reaches,
            or ``WHERE part.p > whole.p / k`` listing node 0 (``fraction`` k, or a percent as ``* 0.1``)
    """

    kind: str
    prop: Prop | None = None
    op: str = ">"
    counted: tuple[Rel, bool] | None = None  # degree: the relationship counted, outward from the focus
    part: int = 1  # share: the node whose measure is the part (the other is the whole)
    fraction: tuple[str, float] | None = None  # share as a condition: ("a third", 3) or ("10 %", 0.1)
    show: int = 0  # the node returned: the focus, or (than, two hops) the middle one ("countries with a city
    # larger than their capital")


@dataclass
class Listed:
    """A list property asked about as a list (the ``listprop`` frame, ``LIST_KINDS``): ``on`` "node" (node
    ``index``'s) or "hop" (the relationship's). The entities returned are ``Query.returns``, a group
    ``Query.group``; a ranking ``Query.order`` "agg" with ``limit``.

    size_top:       ``RETURN f.key, size(x.p) AS numPs ORDER BY numPs DESC LIMIT k``
    sum_size:       ``RETURN g.key, sum(size(x.p)) AS totalPs`` (ranked or not)
    distinct_items: ``UNWIND x.p AS e RETURN [g.key,] count(DISTINCT e)``
    distinct_lists: ``RETURN [g.key,] count(DISTINCT x.p)``
    item_rank:      ``UNWIND x.p AS e RETURN e, count(*) AS n ORDER BY n DESC [LIMIT k]``
    items:          ``UNWIND x.p AS e RETURN DISTINCT e``
    """

    kind: str
    on: str
    index: int
    prop: Prop


@dataclass
class Query:
    frame: str
    nodes: list[Node]
    hops: list[Hop] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    exists: list[Exists] = field(default_factory=list)
    returns: list[Ref] = field(default_factory=list)
    style: str = "key"  # how an entity is returned: "key" (its naming property) or "node" (the whole node)
    agg: Agg | None = None
    group: list[Ref] = field(default_factory=list)
    order: Ref | str | None = None  # a Ref, or "agg" to order by the aggregate
    desc: bool = True
    limit: int | None = None
    having: tuple[str, int] | None = None
    distinct: bool = False  # RETURN DISTINCT (decided by run.py: only when rows repeat)
    dedupe: bool = True  # may run.py make repeated rows DISTINCT (drawn: DISTINCT_REPEATS_P)
    having_shows: bool = False  # a having frame returns its aggregate beside the key (HAVING_SHOWS_P)
    also: Agg | None = None  # having: an aggregate of the counted node's measure, in the WITH and returned
    ranked_alone: bool = False  # a group ranked by its aggregate returns the keys alone (``names``)
    dedupe_first: bool = False  # WITH DISTINCT <focus> before aggregating (decided by run.py)
    split_match: int = 0  # >0: the hop index where a second MATCH clause starts
    opener: str = ""  # rendering choice made with the structure (it decides the return style)
    role_hops: set[int] = field(default_factory=set)  # hops said as a role noun of their parent ("directors")
    cycle: bool = False  # hops 0 and 1 both join the focus to the same node ("… and … the same movie")
    compare: Compare | None = None  # the compare frame's comparison or arithmetic
    related: Related | None = None  # the relcompare frame's comparison along relationships
    listed: Listed | None = None  # the listprop frame's list property

    # --- helpers -------------------------------------------------------------------------------------
    def anchored(self, i: int) -> Filter | None:
        return next((f for f in self.filters if f.on == "node" and f.index == i and f.inline), None)

    def pinned(self, i: int) -> bool:
        """Node ``i`` is one entity: named by its key, or filtered to one value of a unique property."""
        return any(
            f.on == "node"
            and f.index == i
            and f.op == "eq"
            and (f.prop.kind in ("key", "id") or len(f.prop.counts) >= 0.9 * max(1, f.prop.present))
            for f in self.filters
        )

    def children(self, i: int) -> list[int]:
        return [j for j, h in enumerate(self.hops) if h.parent == i]

    def features(self) -> list[str]:
        """The constructs this query uses (for the coverage report)."""
        out = [f"frame:{self.frame}", f"hops:{len(self.hops)}"]
        if len(self.hops) >= 2:
            out.append(
                "shape:" + ("chain" if all(h.parent == i for i, h in enumerate(self.hops)) else "star")
            )
        out += [f"dir:{'out' if h.outward else 'in'}" for h in self.hops]
        out += sorted({f"filter:{f.op}" for f in self.filters})
        out += sorted({f"filter_kind:{f.prop.kind}" for f in self.filters})
        if any(f.on == "hop" for f in self.filters):
            out.append("filter:on_relationship")
        if any(f.on == "node" and f.index > 0 and not f.inline for f in self.filters):
            out.append("filter:on_path_node")
        out.append(f"filters:{len(self.filters)}")
        out += ["negation" if e.negated else "existence" for e in self.exists]
        if self.agg:
            out.append(f"agg:{self.agg.func}" + ("_distinct" if self.agg.distinct else ""))
        if self.group:
            out.append("group_by")
        if self.order is not None:
            kind = "arithmetic" if self.compare else "aggregate" if self.order == "agg" else "property"
            out.append("order_by_" + kind)
        if self.limit:
            out.append("limit")
        if self.having:
            out.append("with_having")
        if self.having_shows:
            out.append("having_shows_aggregate")
        if self.also:
            out += ["having_second_aggregate", f"having_{self.also.func}"]
        if self.ranked_alone:
            out.append("ranked_group_alone")
        if self.distinct:
            out.append("return_distinct")
        if self.dedupe_first:
            out.append("with_distinct")
        if self.split_match:
            out.append("repeated_match")
        if self.role_hops:
            out.append("role_noun")
        if self.cycle:
            out.append("same_node")
        if self.compare:
            out.append(f"compare:{self.compare.kind}")
            out.append("arithmetic" if self.compare.kind != "than" else "cross_node_comparison")
        if self.related:
            out.append(f"relcompare:{self.related.kind}" + ("_named" if not self.hops else ""))
            if self.related.show:
                out.append("returns_middle_node")
            if self.related.kind == "share":
                out.append("arithmetic" if self.related.fraction is None else "share_condition")
            else:
                kind = self.related.kind
                out.append("aggregates_compared" if kind == "degree" else "cross_node_comparison")
        if self.listed:
            out.append(f"listprop:{self.listed.kind}")
            if self.listed.kind in ("distinct_items", "item_rank", "items"):
                out.append("unwind")
            if self.listed.on == "hop":
                out.append("relationship_property")
        if any(h.rel.self_loop and is_adjacency(h.rel.type) for h in self.hops):
            out.append("adjacency")
        if any(f.prop.kind == "list" for f in self.filters) or self.listed or any(
            r.prop is not None and r.prop.kind == "list" for r in self.returns
        ):
            out.append("list_property")
        if any(r.on == "hop" for r in self.returns) or (
            self.agg and self.agg.target and self.agg.target.on == "hop"
        ):
            out.append("relationship_property")
        if self.style == "node" and self.frame in ("list", "first"):
            out.append("return_node")
        aggs = (self.agg, self.also)
        if any(f.prop.kind == "numtext" for f in self.filters) or any(
            a and a.target and a.target.prop and a.target.prop.kind == "numtext" for a in aggs
        ):
            out.append("to_float")
        return out


# ================================================================================================
# Compiling to Cypher
# ================================================================================================


def _agg_alias(q: Query, a: Agg | None = None) -> str:
    """The alias of ``a`` (the query's aggregate unless given): ``numCountries``, ``totalPopulation``."""
    a = a or q.agg
    assert a is not None
    if a.func == "count":
        lab = q.nodes[a.target.index].label if a.target and a.target.on == "node" else q.nodes[0].label
        return "num" + "".join(
            w[:1].upper() + w[1:] for w in plural(" ".join(split_words(lab.label))).split()
        )
    prop = a.target.prop if a.target else None
    words = split_words(prop.name) if prop else ["value"]
    stem = "".join(w[:1].upper() + w[1:] for w in words)
    if a.func == "collect":
        lab = q.nodes[a.target.index].label if a.target else q.nodes[0].label
        return "".join(w.lower() for w in split_words(lab.label)[:1]) + "List"
    return {"avg": "avg", "sum": "total", "min": "min", "max": "max"}[a.func] + stem


def expr(q: Query, ref: Ref, *, entity: bool = True) -> str:
    """Cypher for a Ref; numbers stored as text read through toFloat when aggregated or ordered."""
    if ref.on == "hop":
        h = q.hops[ref.index]
        assert ref.prop is not None
        return f"{h.var}.{ident(ref.prop.name)}"
    node = q.nodes[ref.index]
    if ref.prop is not None:
        return f"{node.var}.{ident(ref.prop.name)}"
    if entity and q.style == "key" and node.label.key is not None:
        return f"{node.var}.{ident(node.label.key.name)}"
    return node.var


def _numeric(q: Query, ref: Ref) -> str:
    e = expr(q, ref)
    return f"toFloat({e})" if ref.prop is not None and ref.prop.kind == "numtext" else e


def _filter_expr(q: Query, f: Filter) -> str:
    var = q.hops[f.index].var if f.on == "hop" else q.nodes[f.index].var
    p = f"{var}.{ident(f.prop.name)}"
    kind = f.prop.kind
    if kind == "numtext" and f.op in ("gt", "lt", "ge", "le", "between", "eq"):
        p = f"toFloat({p})"
    v = f.value
    if kind == "date":
        fn = {"DATE": "date", "LOCALDATETIME": "localdatetime"}.get(f.prop.db_type, "datetime")

        def dlit(x: Any) -> str:
            return f"{fn}('{str(x)[:10]}')"
    else:

        def dlit(x: Any) -> str:
            return lit(str(x)[:10])

    ops = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    if f.op in ops:
        return f"{p} {ops[f.op]} {lit(v)}"
    if f.op == "between":
        return f"{p} >= {lit(v)} AND {p} <= {lit(f.value2)}"
    if f.op == "contains":
        return f"{p} CONTAINS {lit(v)}"
    if f.op == "starts":
        return f"{p} STARTS WITH {lit(v)}"
    if f.op == "ends":
        return f"{p} ENDS WITH {lit(v)}"
    if f.op == "in":
        return f"{p} IN {lit(list(v))}"
    if f.op == "null":
        return f"{p} IS NULL"
    if f.op == "notnull":
        return f"{p} IS NOT NULL"
    if f.op in ("true", "false"):
        return f"{p} = {f.op}"
    if f.op == "after":
        return f"{p} > {dlit(v)}"
    if f.op == "before":
        return f"{p} < {dlit(v)}"
    if f.op == "decade":
        return f"{p} >= {int(v)} AND {p} < {int(v) + 10}"
    if f.op == "has":
        return f"{lit(v)} IN {p}"
    if f.op == "size":
        return f"size({p}) {v[0]} {v[1]}"
    if f.op in ("year", "month"):
        if kind == "date":
            lo, hi = _period(str(v), f.op)
            return f"{p} >= {dlit(lo)} AND {p} < {dlit(hi)}"
        return f"{p} STARTS WITH {lit(str(v))}"
    raise ValueError(f"unknown filter op {f.op}")


def _period(v: str, op: str) -> tuple[str, str]:
    y = int(v[:4])
    if op == "year":
        return f"{y:04d}-01-01", f"{y + 1:04d}-01-01"
    m = int(v[5:7])
    return f"{y:04d}-{m:02d}-01", (f"{y + 1:04d}-01-01" if m == 12 else f"{y:04d}-{m + 1:02d}-01")


def _node_pat(q: Query, i: int, seen: set[int]) -> str:
    n = q.nodes[i]
    if i in seen:
        return f"({n.var})"
    seen.add(i)
    f = q.anchored(i)
    inline = f" {{{ident(f.prop.name)}: {lit(f.value)}}}" if f else ""
    return f"({n.var}:{ident(n.label.label)}{inline})"


def _rel_pat(h: Hop, left_is_parent: bool) -> str:
    inner = f"[{h.var}:{ident(h.rel.type)}]" if h.var else f"[:{ident(h.rel.type)}]"
    # the arrow points from the pattern's start to its end
    forward = h.outward == left_is_parent
    return f"-{inner}->" if forward else f"<-{inner}-"


def _chain_order(q: Query) -> list[tuple[int, list[int]]]:
    """The hops as linear pieces: [(first node, [hop indexes …])], written left to right.

    A chain (every hop leaves the node before it) is one piece; a star around the focus is written
    through the focus when it has two branches (``(a)<-[]-(f)-[]->(b)``), else as comma-separated pieces.
    """
    if not q.hops:
        return [(0, [])]
    if all(h.parent == h.child - 1 for h in q.hops):
        return [(0, list(range(len(q.hops))))]
    return [(0, [j]) for j in range(len(q.hops))]


def _piece(q: Query, start: int, hop_ids: list[int], seen: set[int], reverse: bool) -> str:
    """One linear pattern; ``reverse`` writes it from its far end back to ``start``."""
    nodes = [start] + [q.hops[j].child for j in hop_ids]
    if not reverse:
        out = _node_pat(q, nodes[0], seen)
        for j, nxt in zip(hop_ids, nodes[1:], strict=True):
            out += _rel_pat(q.hops[j], True) + _node_pat(q, nxt, seen)
        return out
    out = _node_pat(q, nodes[-1], seen)
    for j, nxt in zip(reversed(hop_ids), reversed(nodes[:-1]), strict=True):
        out += _rel_pat(q.hops[j], False) + _node_pat(q, nxt, seen)
    return out


def _match(q: Query) -> str:
    seen: set[int] = set()
    if q.cycle:  # (f)-[:R1]->(y)<-[:R2]-(f): the focus reaches one node twice
        a, b = q.hops[0], q.hops[1]
        text = _node_pat(q, 0, seen) + _rel_pat(a, True) + _node_pat(q, a.child, seen)
        return "MATCH " + text + _rel_pat(b, False) + _node_pat(q, 0, seen)
    pieces = _chain_order(q)
    if len(pieces) == 2 and len(pieces[0][1]) == 1 and len(pieces[1][1]) == 1:
        # two branches around the focus: one path through it, (a)<-[]-(f)-[]->(b)
        a, b = pieces[0][1][0], pieces[1][1][0]
        text = (
            _piece(q, 0, [a], seen, reverse=True)
            + _rel_pat(q.hops[b], True)
            + _node_pat(q, q.hops[b].child, seen)
        )
        return "MATCH " + text
    clauses: list[str] = []
    for start, hop_ids in pieces:
        if q.split_match and len(hop_ids) > q.split_match:
            first, rest = hop_ids[: q.split_match], hop_ids[q.split_match :]
            mid = q.hops[rest[0]].parent
            clauses.append(_piece(q, start, first, seen, _prefer_reverse(q, start, first)))
            clauses.append("MATCH " + _piece(q, mid, rest, seen, False))
            continue
        clauses.append(_piece(q, start, hop_ids, seen, _prefer_reverse(q, start, hop_ids)))
    if len(clauses) > 1 and not q.split_match:
        return "MATCH " + ", ".join(clauses)
    return (
        "MATCH " + " ".join(clauses)
        if not q.split_match
        else "MATCH " + clauses[0] + " " + " ".join(clauses[1:])
    )


def _prefer_reverse(q: Query, start: int, hop_ids: list[int]) -> bool:
    """Write a chain so that most arrows point right, as people usually write Cypher (ties: focus first)."""
    if not hop_ids:
        return False
    right = sum(1 for j in hop_ids if q.hops[j].outward)
    return right * 2 < len(hop_ids)


def _where(q: Query) -> str:
    conds = [_filter_expr(q, f) for f in q.filters if not f.inline]
    if q.compare is not None and q.compare.kind == "rank":  # no division by zero
        assert q.compare.other is not None
        conds.insert(0, f"{_numeric(q, Ref('node', 0, q.compare.other))} > 0")
    if q.compare is not None and q.compare.kind == "than":
        p = q.compare.prop
        conds.insert(0, f"{_numeric(q, Ref('node', 0, p))} {q.compare.op} {_numeric(q, Ref('node', 1, p))}")
        if q.compare.op == "=":  # "the same population as Germany": Germany itself is not the answer
            conds.insert(1, f"{q.nodes[0].var} <> {q.nodes[1].var}")
    for e in q.exists:
        v = q.nodes[e.node].var
        other = e.rel.end if e.outward else e.rel.start
        pat = (
            f"({v})-[:{ident(e.rel.type)}]->(:{ident(other.label)})"
            if e.outward
            else f"({v})<-[:{ident(e.rel.type)}]-(:{ident(other.label)})"
        )
        conds.append(("NOT " if e.negated else "") + pat)
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def _agg_expr(q: Query, a: Agg | None = None) -> str:
    a = a or q.agg
    assert a is not None
    d = "DISTINCT " if a.distinct else ""
    if a.func == "count":
        return f"count({d}{expr(q, a.target, entity=False) if a.target else q.nodes[0].var})"
    assert a.target is not None
    if a.func == "collect":
        return f"collect({d}{expr(q, a.target)})"
    return f"{a.func}({d}{_numeric(q, a.target)})"


def _compare_cypher(q: Query) -> str:
    """``MATCH (a {key}), (f) WHERE f.p > a.p RETURN …``, ``RETURN a.p - b.p`` or ``RETURN a.p / a.q``."""
    c = q.compare
    assert c is not None
    seen: set[int] = set()
    order = [1, 0] if len(q.nodes) > 1 else [0]  # the named node first, as people write it
    text = "MATCH " + ", ".join(_node_pat(q, i, seen) for i in order) + _where(q)
    if c.kind == "than":
        ret = f"count({q.nodes[0].var})" if q.agg else expr(q, Ref("node", 0))
        return text + " RETURN " + ret
    left = _numeric(q, Ref("node", 0, c.prop))
    if c.kind == "difference":
        return text + f" RETURN {left} - {_numeric(q, Ref('node', 1, c.prop))}"
    assert c.other is not None
    right = _numeric(q, Ref("node", 0, c.other))
    if all(p.kind == "number" and all(isinstance(v, int) for v in p.values[:200]) for p in (c.prop, c.other)):
        # integer / integer truncates in Cypher
        left = f"toFloat({left})"
    if c.kind == "rank":
        alias = ratio_alias(c.prop, c.other)
        return (
            text
            + f" RETURN {expr(q, Ref('node', 0))}, {left} / {right} AS {alias}"
            + f" ORDER BY {alias}{' DESC' if q.desc else ''} LIMIT {q.limit}"
        )
    return text + f" RETURN {left} / {right}"


def ratio_alias(p: Prop, other: Prop) -> str:
    """``density`` for a measure per area (as people name it), else ``populationPerArea``."""
    if other.words.lower() == "area":
        return "density"
    return p.name[:1].lower() + p.name[1:] + "Per" + other.name[:1].upper() + other.name[1:]


def _degree(q: Query, i: int) -> str:
    """``size([(f)-[:T]->(:B) | 1])``: how many relationships of the counted pattern node ``i`` has."""
    r = q.related
    assert r is not None and r.counted is not None
    rel, out = r.counted
    other = rel.end if out else rel.start
    arrow = f"-[:{ident(rel.type)}]->" if out else f"<-[:{ident(rel.type)}]-"
    return f"size([({q.nodes[i].var}){arrow}(:{ident(other.label)}) | 1])"


def _related_cypher(q: Query) -> str:
    """``MATCH path WHERE f.p > n.p RETURN f.key``, the counts of a relationship compared through ``WITH``, or
    a share of a related node's measure."""
    r = q.related
    assert r is not None
    last = len(q.nodes) - 1
    f, n = q.nodes[0].var, q.nodes[last].var
    if q.hops:
        text = _match(q)
    else:  # a named node and the focus: (a:L {key: …}), (f:L), the named one first
        seen: set[int] = set()
        text = "MATCH " + ", ".join(_node_pat(q, i, seen) for i in (1, 0))
    conds = [_filter_expr(q, x) for x in q.filters if not x.inline]
    if r.kind == "share":
        assert r.prop is not None
        part, whole = (
            _numeric(q, Ref("node", i, q.nodes[i].label.props.get(r.prop.name, r.prop)))
            for i in (r.part, 1 - r.part)
        )
        if r.fraction is None:
            where = " WHERE " + " AND ".join(conds) if conds else ""
            return text + where + f" RETURN toFloat({part}) / {whole}"
        k = r.fraction[1]
        conds.insert(0, f"{part} > {whole} / {num(k)}.0" if k >= 1 else f"{part} > {whole} * {k}")
        ret = expr(q, Ref("node", 0))
    elif r.kind == "than":
        assert r.prop is not None
        mine, theirs = (_numeric(q, Ref("node", i, r.prop)) for i in (0, last))
        conds.insert(0, f"{mine} {r.op} {theirs}")
        ret = expr(q, Ref("node", r.show))
        f = q.nodes[r.show].var
    else:
        text += (" WHERE " + " AND ".join(conds) if conds else "") + (
            f" WITH {f}, {n}, {_degree(q, 0)} AS mine, {_degree(q, last)} AS theirs WHERE mine {r.op} theirs"
        )
        conds = []
        ret = expr(q, Ref("node", 0))
    text += " WHERE " + " AND ".join(conds) if conds else ""
    if q.agg is not None:
        return text + f" RETURN count({'DISTINCT ' if q.agg.distinct else ''}{f})"
    return text + " RETURN " + ("DISTINCT " if q.distinct else "") + ret


def compile_cypher(q: Query) -> str:
    """The Cypher text of a query (one canonical writing per structure)."""
    if q.compare is not None:
        return _compare_cypher(q)
    if q.related is not None:
        return _related_cypher(q)
    if q.listed is not None:
        return _listed_cypher(q)
    text = _match(q) + _where(q)
    if q.dedupe_first:
        keep = sorted({q.nodes[0].var} | {q.nodes[g.index].var for g in q.group if g.on == "node"})
        text += " WITH DISTINCT " + ", ".join(keep)
    if q.agg is None:
        cols = [expr(q, r) for r in q.returns]
        text += " RETURN " + ("DISTINCT " if q.distinct else "") + ", ".join(cols)
        if q.order is not None and isinstance(q.order, Ref):
            text += f" ORDER BY {_numeric(q, q.order)}{' DESC' if q.desc else ''}"
        if q.limit:
            text += f" LIMIT {q.limit}"
        return text
    alias = _agg_alias(q)
    keys = [expr(q, g) for g in q.group]
    if q.having is not None:
        op, k = q.having
        carry = sorted({q.nodes[g.index].var for g in q.group if g.on == "node"})
        also = f", {_agg_expr(q, q.also)} AS {_agg_alias(q, q.also)}" if q.also else ""
        text += f" WITH {', '.join(carry)}, {_agg_expr(q)} AS {alias}{also} WHERE {alias} {op} {k}"
        cols = ([expr(q, r) for r in q.returns] or keys) + ([alias] if q.having_shows else [])
        cols += [_agg_alias(q, q.also)] if q.also else []  # the value asked for, under every return style
        text += " RETURN " + ", ".join(cols)
        if q.order == "agg":
            text += f" ORDER BY {alias}{' DESC' if q.desc else ''}"
        if q.limit:
            text += f" LIMIT {q.limit}"
        return text
    if q.ranked_alone:  # WITH c, count(o) AS orders RETURN c.name ORDER BY orders DESC LIMIT 5
        carry = sorted({q.nodes[g.index].var for g in q.group})
        text += f" WITH {', '.join(carry)}, {_agg_expr(q)} AS {alias} RETURN {', '.join(keys)}"
        text += f" ORDER BY {alias}{' DESC' if q.desc else ''} LIMIT {q.limit}"
        return text
    named = q.order == "agg" or bool(keys)
    text += " RETURN " + ", ".join([*keys, _agg_expr(q) + (f" AS {alias}" if named else "")])
    if q.order == "agg":
        text += f" ORDER BY {alias}{' DESC' if q.desc else ''}"
    if q.limit:
        text += f" LIMIT {q.limit}"
    return text


CYPHER_WORDS = frozenset(
    {
        "all", "and", "any", "as", "asc", "ascending", "by", "call", "case", "contains", "count", "create",
        "delete", "desc", "descending", "detach", "distinct", "else", "end", "ends", "exists", "false",
        "filter", "foreach", "in", "index", "is", "key", "limit", "match", "merge", "none", "not", "null",
        "on", "optional", "or", "order", "remove", "return", "set", "single", "skip", "starts", "then",
        "true", "union", "unwind", "when", "where", "with", "xor", "yield",
    }
)
"""Words an unwound element's variable may not be."""


def item_var(q: Query, p: Prop) -> str:
    """The variable an element of list property ``p`` is unwound into: its name in the singular (``roles`` →
    ``role``, ``spokenLanguages`` → ``spokenLanguage``); ``item`` where that is no free variable name."""
    words = split_words(p.name)
    last = singular(words[-1])
    name = p.name[: len(p.name) - len(words[-1])] + last if p.name.lower().endswith(words[-1]) else ""
    taken = {n.var for n in q.nodes} | {h.var for h in q.hops}
    ok = re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name or "") and last != words[-1]
    if not ok or name.lower() in CYPHER_WORDS or name in taken:
        return "item" if "item" not in taken else "element"
    return name


def list_alias(p: Prop, head: str) -> str:
    """``numRoles``, ``totalRoles``: a list property's size (or its sum) as people name it."""
    stem = "".join(w[:1].upper() + w[1:] for w in plural(" ".join(split_words(p.name))).split())
    return head + re.sub(r"[^A-Za-z0-9]", "", stem)


def _listed_cypher(q: Query) -> str:
    """The listprop frame's Cypher (``Listed``)."""
    L = q.listed
    assert L is not None
    x = expr(q, Ref(L.on, L.index, L.prop))
    text = _match(q) + _where(q)
    if L.kind == "size_top" and L.prop.nullable:  # a missing list has no size: not ranked first
        text += (" AND " if " WHERE " in text else " WHERE ") + f"{x} IS NOT NULL"
    keys = [expr(q, g) for g in q.group]
    order = ""
    if L.kind == "size_top":
        alias = list_alias(L.prop, "num")
        text += " RETURN " + ", ".join([*(expr(q, r) for r in q.returns), f"size({x}) AS {alias}"])
        order = alias
    elif L.kind == "sum_size":
        alias = list_alias(L.prop, "total")
        text += " RETURN " + ", ".join([*keys, f"sum(size({x})) AS {alias}"])
        order = alias
    elif L.kind in ("distinct_items", "distinct_lists"):
        e = x
        if L.kind == "distinct_items":
            e = item_var(q, L.prop)
            text += f" UNWIND {x} AS {e}"
        count = f"count(DISTINCT {e})"
        text += " RETURN " + ", ".join([*keys, count + (f" AS {list_alias(L.prop, 'num')}" if keys else "")])
    elif L.kind == "item_rank":
        e = item_var(q, L.prop)
        n = "n" if all(nd.var != "n" for nd in q.nodes) else "times"
        text += f" UNWIND {x} AS {e} RETURN {e}, count(*) AS {n}"
        order = n
    else:  # items
        e = item_var(q, L.prop)
        text += f" UNWIND {x} AS {e} RETURN DISTINCT {e}"
    if q.order == "agg" and order:
        text += f" ORDER BY {order}{' DESC' if q.desc else ''}"
    if q.limit:
        text += f" LIMIT {q.limit}"
    return text


def tie_probe(q: Query) -> tuple[str, int] | None:
    """For ORDER BY … LIMIT k: a query whose last column is the sort key, cut at k+1 rows, and k.

    The pair is kept only when rows k and k+1 differ in that key (no tie at the cut).
    """
    if not q.limit or q.order is None:
        return None
    text = compile_cypher(replace(q, ranked_alone=False))  # the same ranking, the aggregate shown
    body = text[: text.rfind(f" LIMIT {q.limit}")]
    if q.order == "agg":  # the aggregate is already the last column
        return f"{body} LIMIT {q.limit + 1}", q.limit
    assert isinstance(q.order, Ref)
    ret, order = body.rfind(" RETURN "), body.rfind(" ORDER BY ")
    cols = body[ret + len(" RETURN ") : order]
    return (
        f"{body[:ret]} RETURN {cols}, {_numeric(q, q.order)} AS __sort_key{body[order:]} LIMIT {q.limit + 1}",
        q.limit,
    )


# ================================================================================================
# Sampling
# ================================================================================================


class Sampler:
    """Samples query structures over a profile (deterministic for a seed)."""

    def __init__(self, profile: Profile, seed: int = 0, return_style: str = "mixed") -> None:
        if return_style not in RETURN_STYLES:
            styles = ", ".join(RETURN_STYLES)
            raise DataError(f"unknown return style {return_style!r}; choose one of {styles}")
        self.P = profile
        self.rng = random.Random(seed)
        self.also_rng = random.Random(f"{seed}:having-also")  # HAVING_ALSO_P: every other draw as before
        self.return_style = return_style
        self.labels = [lab for lab in profile.labels.values() if lab.nodes]
        self._thresholds: dict[int, list[float]] = {}

    # --- public ---------------------------------------------------------------------------------------
    def sample(self, frame: str | None = None) -> Query | None:
        """One query structure, or None when this draw did not fit the graph (the caller draws again)."""
        rng = self.rng
        frame = frame or rng.choices(list(FRAMES), weights=list(FRAMES.values()))[0]
        hops = rng.choices(list(HOPS_WEIGHTS), weights=list(HOPS_WEIGHTS.values()))[0]
        if frame in ("pairs", "collect", "having") or (frame == "group" and rng.random() < 0.75):
            hops = max(1, hops)
        if frame == "props" and hops == 0 and rng.random() < 0.7:
            frame = "lookup"
        if frame == "same":
            return self._same()
        if frame == "compare":
            return self._compare()
        if frame == "relcompare":
            return self._relcompare()
        if frame == "listprop":
            return self._listprop()
        if frame == "relprop":
            hops = 1
        if frame in NUMERIC_FRAMES and hops == 0 and rng.random() < NUMERIC_HOP_P:
            hops = 1  # _walk may then take a relationship with a measure (a rating, a quantity)
        q = self._walk(frame, hops)
        if q is None:
            return None
        self._add_filters(q)
        if rng.random() < 0.12 and frame not in ("lookup",):
            self._add_exists(q)
        if frame not in ("props", "lookup", "count", "pairs", "list") and q.pinned(0):
            return None  # ranking, grouping or aggregating one entity says nothing
        ok = getattr(self, f"_frame_{frame}")(q)
        if not ok or any(q.pinned(g.index) for g in q.group if g.on == "node" and g.prop is None):
            return None
        self._mark_roles(q)
        _prune(q)
        q.role_hops = {  # a pruned path may leave "neighbours" of no one ("How many neighbours do we have?")
            j
            for j in q.role_hops
            if not (_adjacent(q.hops[j]) and _bare(q, q.hops[j].child))
        }
        if q.frame == "lookup":
            q.frame = "props"
        if len(q.hops) >= 2 and rng.random() < 0.15:
            types = [h.rel.type for h in q.hops]
            if all(h.parent == h.child - 1 for h in q.hops) and len(set(types)) == len(types):
                q.split_match = rng.randint(1, len(q.hops) - 1)
        q.dedupe = rng.random() < DISTINCT_REPEATS_P
        self._name_hop_vars(q)
        return q

    # --- the path ---------------------------------------------------------------------------------------
    def _focus_label(self, frame: str) -> Label | None:
        rng = self.rng
        cands = self.labels
        if frame in ("list", "first", "top", "pairs", "lookup"):
            cands = [lab for lab in cands if lab.key is not None] or cands
        if not cands:
            return None
        weights = [1 + math.sqrt(len(self.P.rels_at(lab.label))) for lab in cands]
        return rng.choices(cands, weights=weights)[0]

    def _walk(self, frame: str, hops: int) -> Query | None:
        rng = self.rng
        focus = self._focus_label(frame)
        if focus is None:
            return None
        for _ in range(8):
            start = rng.choice(list(focus.nodes))
            q = Query(frame, [Node(focus, focus.var, start)])
            used: set[tuple[str, int]] = set()
            star = rng.random() < 0.3
            ok = True
            for h in range(hops):
                parent = 0 if (star and h > 0) or h == 0 else len(q.nodes) - 1
                pnode = q.nodes[parent]
                options = [
                    (r, o)
                    for r, o in self.P.rels_at(pnode.label.label)
                    if pnode.id in (r.out if o else r.inc)
                ]
                if parent > 0:  # do not walk straight back along the hop that led here, mostly
                    back = q.hops[parent - 1] if parent - 1 < len(q.hops) else None
                    if back is not None and rng.random() < 0.8:
                        options = [
                            (r, o) for r, o in options if not (r is back.rel and o != back.outward)
                        ] or options
                if not options:
                    ok = False
                    break
                wants_measure = frame in NUMERIC_FRAMES and not _measures(focus)
                if h == 0 and wants_measure and rng.random() < NUMERIC_HOP_P:
                    options = [(r, o) for r, o in options if r.usable("number", "numtext")] or options
                rel, out = rng.choice(options)
                edges = [e for e in (rel.out if out else rel.inc)[pnode.id] if (rel.type, e) not in used]
                if not edges:
                    ok = False
                    break
                e = rng.choice(edges)
                used.add((rel.type, e))
                src, dst, _ = rel.edges[e]
                child_id = dst if out else src
                child_label = rel.end if out else rel.start
                if any(n.id == child_id and n.label is child_label for n in q.nodes):
                    ok = False  # a cycle back to a node already on the path
                    break
                q.nodes.append(Node(child_label, self._var(q, child_label), child_id))
                q.hops.append(Hop(parent, len(q.nodes) - 1, rel, out, e))
            if ok:
                return q
        return None

    @staticmethod
    def _var(q: Query, label: Label) -> str:
        taken = {n.var for n in q.nodes}
        if label.var not in taken:
            return label.var
        i = 2
        while f"{label.var}{i}" in taken:
            i += 1
        return f"{label.var}{i}"

    @staticmethod
    def _name_hop_vars(q: Query) -> None:
        used = {r.index for r in q.returns if r.on == "hop"} | {f.index for f in q.filters if f.on == "hop"}
        if q.agg and q.agg.target and q.agg.target.on == "hop":
            used.add(q.agg.target.index)
        if isinstance(q.order, Ref) and q.order.on == "hop":
            used.add(q.order.index)
        taken = {n.var for n in q.nodes}
        for j in sorted(used):
            name = "r" if "r" not in taken else f"r{j + 1}"
            q.hops[j].var = name
            taken.add(name)

    # --- filters -------------------------------------------------------------------------------------
    def _add_filters(self, q: Query) -> None:
        rng = self.rng
        n = rng.choices(list(FILTERS_WEIGHTS), weights=list(FILTERS_WEIGHTS.values()))[0]
        leaves = [i for i in range(1, len(q.nodes)) if not q.children(i)]
        # A leaf of a path is usually named ("movies that Tom Hanks acted in").
        for i in leaves:
            if rng.random() < ANCHOR_LEAF_P and q.nodes[i].label.key is not None:
                f = self._filter_on(q, "node", i, anchor=True)
                if f:
                    q.filters.append(f)
        if q.frame == "lookup":
            f = self._filter_on(q, "node", 0, anchor=True)
            if f is None:
                return
            q.filters.append(f)
            return
        for _ in range(n - min(n, len([f for f in q.filters if f.inline]) // 2)):
            targets = [("node", i) for i in range(len(q.nodes)) if q.anchored(i) is None]
            targets += [("hop", j) for j, h in enumerate(q.hops) if h.data]
            if not targets:
                break
            weights = [3 if t == ("node", 0) else (1.5 if t[0] == "node" else 1) for t in targets]
            on, idx = rng.choices(targets, weights=weights)[0]
            f = self._filter_on(q, on, idx)
            if f and not any(g.on == f.on and g.index == f.index and g.prop is f.prop for g in q.filters):
                q.filters.append(f)

    def _filter_on(self, q: Query, on: str, idx: int, anchor: bool = False) -> Filter | None:
        rng = self.rng
        if on == "node":
            owner = q.nodes[idx].label
            data = q.nodes[idx].data
            props = owner.props
        else:
            data = q.hops[idx].data
            props = q.hops[idx].rel.props
        if anchor:
            key = q.nodes[idx].label.key
            if key is None or key.name not in data or data[key.name] not in q.nodes[idx].label.unique_keys:
                return None
            return Filter("node", idx, key, "eq", data[key.name])
        # IS NULL / IS NOT NULL on properties some entities lack
        nullable = [p for p in props.values() if p.nullable and p.kind not in ("other", "list")]
        if nullable and rng.random() < 0.1:
            p = rng.choice(nullable)
            return Filter(on, idx, p, "notnull" if data.get(p.name) is not None else "null")
        cands = [
            p
            for p in props.values()
            if p.kind in FILTER_OPS
            and data.get(p.name) is not None
            and not (on == "node" and idx == 0 and p.kind == "id")
        ]
        if on == "node" and idx > 0:
            cands = [p for p in cands if p.kind != "key"]  # a named path node is an anchor, handled above
        if not cands:
            return None
        p = rng.choices(cands, weights=[LIST_PROP_WEIGHT if c.kind == "list" else 1.0 for c in cands])[0]
        if p.kind == "list" and rng.random() > LIST_PROP_WEIGHT:
            return None  # also where the list is all a relationship has (movies' ACTED_IN.roles)
        ops = FILTER_OPS[p.kind]
        if p.kind == "key":  # naming the focus itself makes a lookup, sampled as its own frame
            ops = ("contains", "starts", "contains")
        op = rng.choice(ops)
        if on == "hop" and is_rank_one(p.name, "eq", data[p.name]) and rng.random() < RANK_ONE_P:
            op = "eq"  # "whose main language is …": the rank people ask about
        return self._valued(on, idx, p, op, data[p.name])

    def _valued(self, on: str, idx: int, p: Prop, op: str, v: Any) -> Filter | None:
        """A filter with ``op`` whose value the walk's entity (value ``v``) satisfies."""
        rng = self.rng
        if p.kind in ("number", "numtext"):
            if not is_number(v, numtext=True):
                return None
            x = float(v)
            ts = self._thresholds_of(p)
            if op == "eq":
                if isinstance(v, float) and not float(v).is_integer():
                    return None
                return Filter(on, idx, p, "eq", int(x) if p.kind == "number" else v)
            if op == "decade":
                return Filter(on, idx, p, "decade", int(x) // 10 * 10) if p.is_year else None
            below = [t for t in ts if t < x]
            above = [t for t in ts if t > x]
            if op in ("gt", "ge") and below:
                return Filter(on, idx, p, op, rng.choice(below))
            if op in ("lt", "le") and above:
                return Filter(on, idx, p, op, rng.choice(above))
            if op == "between" and below and above:
                return Filter(on, idx, p, op, rng.choice(below), rng.choice(above))
            return None
        if p.kind in ("date", "datetext"):
            iso = str(v)
            if not re.match(r"^\d{4}-\d{2}-\d{2}", iso):
                return None
            if op in ("year", "month"):
                return Filter(on, idx, p, op, iso[:4] if op == "year" else iso[:7])
            dates = sorted({str(x)[:10] for x in p.values if re.match(r"^\d{4}-\d{2}-\d{2}", str(x))})
            below = [d for d in dates if d < iso[:10]]
            above = [d for d in dates if d > iso[:10]]
            if op == "after" and below:
                return Filter(on, idx, p, op, _round_date(rng.choice(below), rng))
            if op == "before" and above:
                return Filter(on, idx, p, op, _round_date(rng.choice(above), rng, up=True))
            if op == "between" and below and above:
                lo, hi = _round_date(rng.choice(below), rng), _round_date(rng.choice(above), rng, up=True)
                return Filter(on, idx, p, "between", lo, hi) if lo < hi else None
            return None
        if p.kind == "bool":
            return Filter(on, idx, p, "true" if v else "false")
        if p.kind == "list":
            items = [x for x in (v or []) if isinstance(x, str) and x.strip()]
            if op == "size" and isinstance(v, (list, tuple)):
                n = len(v)
                return Filter(
                    on, idx, p, "size", rng.choice([("=", n), (">", n - 1)] if n > 1 else [("=", n)])
                )
            return Filter(on, idx, p, "has", rng.choice(items)) if items else None
        if not isinstance(v, str) or not v.strip() or v.strip() in _MISSING:
            return None
        if op == "eq" or p.kind == "id":
            return Filter(on, idx, p, "eq", v)
        if op == "ne":
            others = [x for x in p.values[:30] if x != v and isinstance(x, str)]
            return Filter(on, idx, p, "ne", rng.choice(others)) if others else None
        if op == "in":
            others = [x for x in p.values[:30] if x != v and isinstance(x, str)]
            if not others:
                return None
            vals = [v, *rng.sample(others, min(len(others), rng.choice([1, 1, 2])))]
            rng.shuffle(vals)
            return Filter(on, idx, p, "in", tuple(vals))
        words = re.findall(r"[A-Za-z][A-Za-z'-]{2,}", v)
        if op == "contains":
            if not words:
                return None
            return Filter(on, idx, p, "contains", rng.choice(words))
        if op == "starts":
            prefix = (
                words[0]
                if words and v.startswith(words[0]) and rng.random() < 0.6
                else v[: rng.choice([1, 1, 2, 3])]
            )
            return Filter(on, idx, p, "starts", prefix) if prefix.strip() else None
        if op == "ends":
            tail = words[-1] if words and v.endswith(words[-1]) else None
            return Filter(on, idx, p, "ends", tail) if tail else None
        return None

    def _thresholds_of(self, p: Prop) -> list[float]:
        key = id(p)
        if key not in self._thresholds:
            nums = sorted(float(v) for v in p.values if is_number(v, numtext=True))
            out: list[float] = []
            if len(nums) >= 3:
                for qt in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
                    t = _nice(nums[min(len(nums) - 1, int(qt * len(nums)))])
                    if t not in out:
                        out.append(t)
            self._thresholds[key] = out
        return self._thresholds[key]

    def _add_exists(self, q: Query) -> None:
        rng = self.rng
        i = 0 if rng.random() < 0.8 else rng.randrange(len(q.nodes))
        node = q.nodes[i]
        if q.anchored(i):
            return
        used = {(h.rel.type, h.outward) for h in q.hops if h.parent == i}
        options = [(r, o) for r, o in self.P.rels_at(node.label.label) if (r.type, o) not in used]
        if not options:
            return
        rel, out = rng.choice(options)
        table = rel.out if out else rel.inc
        has = node.id in table
        if has and len([n for n in node.label.nodes if n in table]) >= 0.95 * len(node.label.nodes):
            return  # nearly every node has one: saying so filters nothing
        q.exists.append(Exists(i, rel, out, negated=not has))

    # --- frames -------------------------------------------------------------------------------------
    def _entity_style(self, q: Query) -> None:
        """The opener decides whether an entity comes back as its name or as the whole node (see render)."""
        rng = self.rng
        if q.nodes[0].label.key is None:
            q.opener = rng.choice(["find", "show", "retrieve"])
            q.style = "node"
            return
        q.opener = rng.choices(
            ["which", "list", "what", "name", "find", "show", "retrieve", "names"],
            weights=[5, 5, 3, 2, 2, 2, 1, 3],
        )[0]
        if self.return_style == "mixed":
            q.style = "node" if rng.random() < NODE_STYLE.get(q.opener, 0.0) else "key"
        else:
            q.style = "key" if self.return_style == "names" else "node"

    def _frame_list(self, q: Query) -> bool:
        self._entity_style(q)
        q.returns = [Ref("node", 0)]
        if q.style == "key" and self.rng.random() < 0.2:
            extra = self._shown_prop(q.nodes[0].label, exclude=q.nodes[0].label.key)
            if extra:
                q.returns.append(Ref("node", 0, extra))
        return True

    def _frame_first(self, q: Query) -> bool:
        self._frame_list(q)
        q.limit = self.rng.choice(ROW_LIMITS)
        return True

    def _frame_lookup(self, q: Query) -> bool:
        if not q.anchored(0):
            return False
        lab = q.nodes[0].label
        props = [
            p
            for p in lab.props.values()
            if p is not lab.key and p.kind not in ("other",) and q.nodes[0].data.get(p.name) is not None
        ]
        if not props:
            return False
        k = self.rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
        q.returns = [Ref("node", 0, p) for p in self.rng.sample(props, min(k, len(props)))]
        return True

    def _frame_props(self, q: Query) -> bool:
        rng = self.rng
        if q.frame == "lookup":
            return self._frame_lookup(q)
        lab = q.nodes[0].label
        props = [p for p in lab.props.values() if p.kind not in ("other", "list") and p is not lab.key]
        if not props:
            return False
        chosen = rng.sample(props, min(len(props), rng.choices([1, 2], weights=[3, 2])[0]))
        q.returns = [Ref("node", 0)] if lab.key is not None and rng.random() < 0.6 else []
        q.returns += [Ref("node", 0, p) for p in chosen]
        q.style = "key"
        return True

    def _frame_pairs(self, q: Query) -> bool:
        j = self.rng.choice([h.child for h in q.hops if h.parent == 0 and q.anchored(h.child) is None] or [0])
        if j == 0 or q.nodes[0].label.key is None or q.nodes[j].label.key is None:
            return False
        q.style = "key"
        q.returns = [Ref("node", 0), Ref("node", j)]
        return True

    def _frame_count(self, q: Query) -> bool:
        q.agg = Agg("count", None)
        return True

    def _agg_target(self, q: Query) -> Ref | None:
        rng = self.rng
        fixed = {id(f.prop) for f in q.filters if f.op in ("eq", "in")}
        refs = [
            Ref("node", 0, p)
            for p in q.nodes[0].label.usable("number", "numtext")
            if not p.is_year and id(p) not in fixed
        ]
        refs += [
            Ref("hop", j, p)
            for j, h in enumerate(q.hops)
            if h.parent == 0
            for p in h.rel.usable("number", "numtext")
            if id(p) not in fixed  # not max(r.rank) where r.rank = 1
        ]
        return rng.choice(refs) if refs else None

    def _frame_aggregate(self, q: Query) -> bool:
        target = self._agg_target(q)
        years = [
            p
            for p in q.nodes[0].label.usable("number", "date", "datetext")
            if (p.is_year or p.kind != "number") and not any(f.prop is p for f in q.filters)
        ]
        if years and (target is None or self.rng.random() < 0.25):  # the earliest / latest year or date
            q.agg = Agg(self.rng.choice(("min", "max")), Ref("node", 0, self.rng.choice(years)))
            return True
        if target is None:
            return False
        q.agg = Agg(self.rng.choice(AGGS), target)
        return True

    def _frame_distinct(self, q: Query) -> bool:
        lab = q.nodes[0].label
        props = [
            p
            for p in lab.usable("category", "number", "key", "text")
            if len(p.counts) < 0.8 * p.present
            and not any(f.prop is p and f.on == "node" and f.index == 0 for f in q.filters)
        ]
        if not props:
            return False
        q.returns = [Ref("node", 0, self.rng.choice(props))]
        q.distinct = True
        q.style = "key"
        return True

    def _frame_top(self, q: Query) -> bool:
        rng = self.rng
        lab = q.nodes[0].label
        props = [
            p
            for p in lab.usable("number", "numtext", "date", "datetext")
            if not any(f.prop is p for f in q.filters)
        ]
        hop_props = [
            (j, p) for j, h in enumerate(q.hops) if h.parent == 0 for p in h.rel.usable("number", "numtext")
        ]
        if not props and not hop_props:
            return False
        if hop_props and (not props or rng.random() < 0.25):
            j, p = rng.choice(hop_props)
            order = Ref("hop", j, p)
        else:
            order = Ref("node", 0, rng.choice(props))
        q.style = "key" if lab.key is not None else "node"
        q.opener = "top"
        # names: the ranked names alone, as the handwritten countries answers (round 13's tune half: the
        # value beside the name was a wrong answer's only fault); else the value beside, as people's queries
        alone = self.return_style == "names" and lab.key is not None
        q.returns = [Ref("node", 0)] if alone else [Ref("node", 0), order]
        q.order, q.desc, q.limit = order, rng.random() < 0.7, rng.choice((1, 3, 5, 10, 3, 5))
        return True

    def _group_key(self, q: Query) -> Ref | None:
        """Group by a related node's key (via a hop from the focus), or by a category property of the
        focus."""
        rng = self.rng
        cands: list[Ref] = []
        for h in q.hops:
            if h.parent == 0 and q.anchored(h.child) is None and q.nodes[h.child].label.key is not None:
                cands.append(Ref("node", h.child))
        cats = [
            Ref("node", 0, p)
            for p in q.nodes[0].label.usable("category")
            if not any(f.prop is p for f in q.filters)
        ]
        if cats and (not cands or rng.random() < 0.3):
            return rng.choice(cats)
        return rng.choice(cands) if cands else None

    def _frame_group(self, q: Query) -> bool:
        rng = self.rng
        g = self._group_key(q)
        if g is None:
            return False
        if rng.random() < 0.6:
            q.agg = Agg("count", None)
        else:
            target = self._agg_target(q)
            if target is None:
                q.agg = Agg("count", None)
            else:
                q.agg = Agg(rng.choice(AGGS), target)
        q.group = [g]
        q.style = "key"
        if rng.random() < 0.5:
            q.order, q.desc, q.limit = "agg", rng.random() < 0.8, rng.choice((1, 3, 5, 5, 10))
            # names: "Top 5 currencies by the number of countries using them" lists the currencies alone
            q.ranked_alone = self.return_style == "names" and g.on == "node" and g.prop is None
        return True

    def _frame_having(self, q: Query) -> bool:
        rng = self.rng
        g = next(
            (
                Ref("node", h.child)
                for h in q.hops
                if h.parent == 0 and q.anchored(h.child) is None and q.nodes[h.child].label.key is not None
            ),
            None,
        )
        if g is None:
            return False
        q.agg = Agg("count", None)
        q.group = [g]
        q.style = "key"
        op = rng.choice([">", ">=", ">", "<"])
        q.having = (op, rng.choice([1, 2, 2, 3, 3, 4, 5, 10]))
        q.returns = [g]
        q.having_shows = self.return_style != "names" and rng.random() < HAVING_SHOWS_P  # names: alone
        fixed = {id(f.prop) for f in q.filters if f.on == "node" and f.index == 0 and f.op in ("eq", "in")}
        measures = [p for p in _measured(q.nodes[0].label) if not p.is_year and id(p) not in fixed]
        also = self.also_rng
        if measures and also.random() < HAVING_ALSO_P:  # the asked value: returned, the count not beside it
            q.also = Agg(also.choice(AGGS), Ref("node", 0, also.choice(measures)))
            q.having_shows = False
        return True

    def _frame_collect(self, q: Query) -> bool:
        g = self._group_key(q)
        if g is None or g.prop is not None or q.nodes[0].label.key is None:
            return False
        q.agg = Agg("collect", Ref("node", 0))
        q.group = [g]
        q.style = "key"
        return True

    def _mark_roles(self, q: Query) -> None:
        """Say some hops of the focus as a role noun: "directors of movies released after 2000" for "people
        who directed movies released after 2000", "actors" for "people who acted in a movie"."""
        if q.frame not in ("list", "first", "count", "top", "distinct", "aggregate", "props", "lookup"):
            return
        for j in q.children(0):
            h = q.hops[j]
            if not h.outward or _role(h) is None or q.anchored(0) is not None:
                continue
            bare = _bare(q, h.child)
            if bare and _adjacent(h):
                continue  # "neighbours" alone is nearly every country; "neighbours of France" says whose
            if self.rng.random() < (0.5 if bare else 0.25):
                q.role_hops.add(j)

    def _same(self) -> Query | None:
        """The focus joined to one node by two relationship types: "people who directed and acted in the same
        movie" (both from the focus) or "movies directed and written by the same person" (both into it)."""
        rng = self.rng
        pairs = [
            (a, b, out)
            for lab in self.labels
            for out in (True, False)
            for a in self.P.rels_at(lab.label)
            for b in self.P.rels_at(lab.label)
            if a[1] == out
            and b[1] == out
            and a[0].type < b[0].type
            and (a[0].end if out else a[0].start) is (b[0].end if out else b[0].start)
        ]
        if not pairs:
            return None
        (ra, _), (rb, _), out = rng.choice(pairs)
        focus = ra.start if out else ra.end
        other = ra.end if out else ra.start
        ends = {}
        for e in (ra.out if out else ra.inc).items():
            ends[e[0]] = {(ra.edges[i][1] if out else ra.edges[i][0]) for i in e[1]}
        found = []
        for x, ys in ends.items():
            table = rb.out if out else rb.inc
            both = ys & {(rb.edges[i][1] if out else rb.edges[i][0]) for i in table.get(x, [])}
            if both:
                found.append((x, sorted(both)[0]))
        if not found:
            return None
        x, y = rng.choice(found)
        ea = next(
            i for i in (ra.out if out else ra.inc)[x] if (ra.edges[i][1] if out else ra.edges[i][0]) == y
        )
        eb = next(
            i for i in (rb.out if out else rb.inc)[x] if (rb.edges[i][1] if out else rb.edges[i][0]) == y
        )
        q = Query("same", [Node(focus, focus.var, x)], cycle=True)
        q.nodes.append(Node(other, self._var(q, other), y))
        q.hops = [Hop(0, 1, ra, out, ea), Hop(0, 1, rb, out, eb)]
        if rng.random() < 0.3:
            f = self._filter_on(q, "node", 0)
            if f:
                q.filters.append(f)
        kind = rng.choice(["list", "list", "count", "first"])
        if kind == "count":
            q.agg = Agg("count", None)  # run.py counts each entity once when the pattern repeats it
        else:
            self._frame_list(q)
            q.returns = q.returns[:1]
            if kind == "first":
                q.limit = rng.choice(ROW_LIMITS)
        if focus.key is None and q.agg is None:
            return None
        self._name_hop_vars(q)
        return q

    def _compare(self) -> Query | None:
        """A measure compared with a named entity's ("Which countries have a larger population than
        Germany?"), its difference between two named entities, or the ratio of two measures of one."""
        rng = self.rng

        def fitting(kind: str) -> list[Label]:
            return [
                lab
                for lab in self.labels
                if lab.key is not None
                and lab.key.kind == "key"
                and lab.unique_keys
                and len(_comparable(lab, kind)) >= (2 if kind in ("ratio", "rank") else 1)
            ]

        # the kinds this graph can ask (movies has years only: no ratio, no ranking by one)
        kinds = {k: w for k, w in COMPARE_KINDS.items() if fitting(k)}
        if not kinds:
            return None
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        labels = fitting(kind)
        lab = rng.choice(labels)
        props = _comparable(lab, kind)
        p = rng.choice(props)
        named = [
            (i, float(d[p.name]))
            for i, d in lab.nodes.items()
            if d.get(lab.key.name) in lab.unique_keys and is_number(d.get(p.name), numtext=True)
        ]
        if len(named) < 2:
            return None
        q = Query("compare", [Node(lab, lab.var, 0)], style="key")
        if kind == "rank":  # every node with a non-zero divisor, ordered by the ratio, the ratio shown
            q.nodes[0].id = rng.choice(named)[0]
            q.compare = Compare("rank", p, "/", rng.choice([x for x in props if x is not p]))
            q.order, q.desc, q.limit = "agg", rng.random() < 0.75, rng.choice((1, *ROW_LIMITS))
            if rng.random() < 0.3:  # "… among countries in …"
                f = self._filter_on(q, "node", 0)
                if f is not None and f.prop not in (p, q.compare.other, lab.key):
                    q.filters.append(f)
                    if q.pinned(0):  # one node ranked: no ranking
                        q.filters.pop()
            return q
        if kind == "ratio":
            other = rng.choice([x for x in props if x is not p])
            named = [
                (i, v)
                for i, v in named
                if is_number(lab.nodes[i].get(other.name), numtext=True) and float(lab.nodes[i][other.name])
            ]
            if not named:
                return None
            q.nodes[0].id = rng.choice(named)[0]
            q.compare = Compare("ratio", p, "/", other)
        elif kind == "difference":
            (i, a), (j, b) = rng.sample(named, 2)
            if a == b:
                return None
            if a < b:
                i, j = j, i
            q.nodes[0].id = i
            q.nodes.append(Node(lab, self._var(q, lab), j))
            q.compare = Compare("difference", p, "-")
        else:
            q.nodes[0].id = rng.choice(list(lab.nodes))
            q.nodes.append(Node(lab, self._var(q, lab), rng.choice(named)[0]))
            q.compare = Compare("than", p, rng.choice((">", ">", "<", "=")))
            if rng.random() < 0.25:
                q.agg = Agg("count", None)
            if rng.random() < 0.3:  # "… larger than Germany's among countries in …"
                f = self._filter_on(q, "node", 0)
                if f is not None and f.prop is not p and f.prop is not lab.key:
                    q.filters.append(f)
        for i in range(len(q.nodes)) if kind != "than" else (1,):
            f = self._filter_on(q, "node", i, anchor=True)
            if f is None:
                return None
            q.filters.append(f)
        return q

    # --- relcompare: along relationships ------------------------------------------------------------
    def _same_label_paths(self) -> list[tuple[Label, list[tuple[Rel, bool]]]]:
        """Paths from a label back to itself that a question can say: one self-relationship ("a country they
        border", "a person who follows them"; an adjacency type one way only, its edges are stored both ways)
        or two hops through another label, not back along the same type ("the capital of their country",
        "the director of a movie they acted in"). The second hop is said from the middle node, so it leads
        into it (a role: "the director of …"; not a HAS_X type: "the land whose capital …") or is a HAS_X type
        out of it ("the capital of …")."""
        if hasattr(self, "_paths"):
            return self._paths
        out: list[tuple[Label, list[tuple[Rel, bool]]]] = []
        for lab in self.labels:
            for r, o in self.P.rels_at(lab.label):
                if r.self_loop and (o or not is_adjacency(r.type)):
                    out.append((lab, [(r, o)]))
                mid = r.end if o else r.start
                if mid is lab:
                    continue
                for r2, o2 in self.P.rels_at(mid.label):
                    far = r2.end if o2 else r2.start
                    if far is not lab or r2.self_loop or (r2 is r and o2 != o):
                        continue
                    if o2 != r2.verb.base.startswith("have "):
                        continue  # out of the middle node a HAS_X type ("the capital of"); into it any other
                    out.append((lab, [(r, o), (r2, o2)]))
        self._paths = out
        return out

    def _walk_path(self, lab: Label, path: list[tuple[Rel, bool]]) -> Query | None:
        """The path from a sampled start node, through sampled edges, to a different node at its end."""
        rng = self.rng
        starts = [i for i in lab.nodes if i in (path[0][0].out if path[0][1] else path[0][0].inc)]
        if not starts:
            return None
        fid = rng.choice(starts)
        q = Query("relcompare", [Node(lab, lab.var, fid)], style="key", dedupe=True)
        for r, o in path:
            table = r.out if o else r.inc
            here = q.nodes[-1].id
            if here not in table:
                return None
            e = rng.choice(table[here])
            nxt = r.edges[e][1] if o else r.edges[e][0]
            label = r.end if o else r.start
            q.nodes.append(Node(label, self._var(q, label), nxt))
            q.hops.append(Hop(len(q.nodes) - 2, len(q.nodes) - 1, r, o, e))
        if q.nodes[-1].id == fid:
            return None
        return q

    def _relcompare(self) -> Query | None:
        """A measure compared with a related node's, a share of a related node's measure, or the counts of a
        relationship compared (``Related``)."""
        rng = self.rng
        kind = rng.choices(list(RELCOMPARE_KINDS), weights=list(RELCOMPARE_KINDS.values()))[0]
        if kind == "share":
            return self._share()
        if kind == "degree" and rng.random() < 0.4:
            return self._degree_named()
        paths = [(lab, p) for lab, p in self._same_label_paths() if lab.key is not None]
        if kind == "than":
            paths = [(lab, p) for lab, p in paths if _measured(lab)]
        if not paths:
            return None
        lab, path = rng.choice(paths)
        q = self._walk_path(lab, path)
        if q is None:
            return None
        f, n = q.nodes[0].data, q.nodes[-1].data
        if kind == "than":
            props = [
                p
                for p in _measured(lab)
                if is_number(f.get(p.name), numtext=True) and is_number(n.get(p.name), numtext=True)
            ]
            if not props:
                return None
            p = rng.choice(props)
            a, b = float(f[p.name]), float(n[p.name])
            if a == b:
                return None
            q.related = Related("than", p, ">" if a > b else "<")
            if len(q.hops) == 2 and _some_end(q) is not None and rng.random() < RELCOMPARE_MIDDLE_P:
                q.related.show = 1
        else:
            counted = self._counted(q, 0, len(q.nodes) - 1)
            if counted is None:
                return None
            q.related = counted
        return self._finish_related(q)

    def _counted(self, q: Query, i: int, j: int) -> Related | None:
        """A relationship whose count differs between nodes ``i`` and ``j`` (the walk's): the comparison holds
        for them."""
        lab = q.nodes[i].label
        options = [
            (r, o) for r, o in self.P.rels_at(lab.label) if o or not (r.self_loop and is_adjacency(r.type))
        ]
        self.rng.shuffle(options)
        for r, o in options[:3]:
            table = r.out if o else r.inc
            if max(map(len, table.values()), default=0) < 2:
                continue  # one at most (a capital, a continent): "more capitals than …" says nothing
            a, b = len(table.get(q.nodes[i].id, ())), len(table.get(q.nodes[j].id, ()))
            if a != b:
                return Related("degree", op=">" if a > b else "<", counted=(r, o))
        return None

    def _degree_named(self) -> Query | None:
        """ "Which countries speak more languages than France?": a relationship's count against a named
        node's."""
        rng = self.rng
        labels = [
            lab for lab in self.labels if lab.key is not None and lab.key.kind == "key" and lab.unique_keys
        ]
        if not labels:
            return None
        lab = rng.choice(labels)
        named = [i for i, d in lab.nodes.items() if d.get(lab.key.name) in lab.unique_keys]
        if len(named) < 2:
            return None
        a, f = rng.sample(named, 2)
        q = Query("relcompare", [Node(lab, lab.var, f)], style="key")
        q.nodes.append(Node(lab, self._var(q, lab), a))
        counted = self._counted(q, 0, 1)
        anchor = self._filter_on(q, "node", 1, anchor=True)
        if counted is None or anchor is None:
            return None
        q.related = counted
        q.filters.append(anchor)
        return self._finish_related(q)

    def _finish_related(self, q: Query) -> Query:
        """A quarter counted; some with one more condition on the node returned."""
        shown = q.related.show if q.related is not None else 0
        if self.rng.random() < 0.25:
            q.agg = Agg("count", None)
        else:
            q.returns = [Ref("node", shown)]
        if self.rng.random() < 0.25:
            f = self._filter_on(q, "node", shown)
            if f is not None and (q.related is None or f.prop is not q.related.prop):
                q.filters.append(f)
        return q

    def _share_pairs(self) -> list[tuple[Rel, Prop, Prop, bool]]:
        """(relationship, start's measure, end's measure, the start is the part): two labels joined by a type,
        a measure of one name on both that a ratio may use, and the one end's value within the other's on
        (nearly) every sampled edge: a city's population within its country's, a country's within its
        continent's."""
        if hasattr(self, "_shares"):
            return self._shares
        out = []
        for r in self.P.rels:
            if r.self_loop or not r.edges:
                continue
            for ps in _comparable(r.start, "ratio"):
                pe = r.end.props.get(ps.name)
                if pe is None or pe not in _comparable(r.end, "ratio"):
                    continue
                vals = [
                    (float(a[ps.name]), float(b[pe.name]))
                    for x, y, _ in r.edges
                    if is_number((a := r.start.nodes.get(x, {})).get(ps.name), numtext=True)
                    and is_number((b := r.end.nodes.get(y, {})).get(pe.name), numtext=True)
                ]
                if len(vals) < 10:
                    continue
                for start_part in (True, False):
                    within = sum(1 for a, b in vals if (a <= b if start_part else b <= a))
                    if within >= 0.95 * len(vals) and any(a != b for a, b in vals):
                        out.append((r, ps, pe, start_part))
        self._shares = out
        return out

    def _share(self) -> Query | None:
        """ "What share of Japan's population lives in its capital?" (a named node and the one node its hop
        reaches) or "Which countries have a capital with more than a third of their population?" (a listed
        node whose hop reaches one node)."""
        rng = self.rng
        pairs = self._share_pairs()
        if not pairs:
            return None
        r, ps, pe, start_part = rng.choice(pairs)
        out = rng.random() < 0.5  # walk from the start (outward) or from the end
        have = r.verb.base.startswith("have ")
        if not (have or (out and r.verb.copula)):
            return None  # said from the walked node as "its capital", "the country it is in", "the country it
            # is the capital of"; "a city that is in it" names no one node
        lab = r.start if out else r.end
        table = r.out if out else r.inc
        ones = [i for i in lab.nodes if len(table.get(i, ())) == 1]  # the hop reaches one node
        if lab.key is None or len(ones) < 0.5 * len(table) or not ones:
            return None
        fid = rng.choice(ones)
        e = table[fid][0]
        oid = r.edges[e][1] if out else r.edges[e][0]
        other = r.end if out else r.start
        q = Query("relcompare", [Node(lab, lab.var, fid)], style="key")
        q.nodes.append(Node(other, self._var(q, other), oid))
        q.hops.append(Hop(0, 1, r, out, e))
        part = 0 if start_part == out else 1
        p = ps if out else pe
        related = Related("share", p, part=part)
        if rng.random() < 0.5:  # one named node
            whole = q.nodes[1 - part].data.get(p.name)
            anchor = self._filter_on(q, "node", 0, anchor=True)
            if anchor is None or not is_number(whole, numtext=True) or not float(whole):
                return None
            q.filters.append(anchor)
            q.related = related
            return q
        ratios = self._share_ratios(r, p, out, part, ones)
        fits = [
            (f, above)
            for f in [*SHARES, *((f"{x} %", x / 100) for x in PERCENTS)]
            if 0 < len(above := [i for i, x in ratios.items() if x > _share_of(f)]) < len(ratios)
        ]
        if not fits:
            return None
        related.fraction, above = rng.choice(fits)
        if fid not in above:  # the sampled node answers the question: "more than half" has a row
            fid = rng.choice(above)
            e = table[fid][0]
            oid = r.edges[e][1] if out else r.edges[e][0]
            q.nodes = [Node(lab, lab.var, fid), Node(other, q.nodes[1].var, oid)]
            q.hops = [Hop(0, 1, r, out, e)]
        q.related = related
        return self._finish_related(q)

    def _share_ratios(self, r: Rel, p: Prop, out: bool, part: int, ones: list[Any]) -> dict[Any, float]:
        """Each node that reaches one node through ``r`` and its part of the whole on ``p`` (node 0 is the
        walked node, ``part`` the one whose measure is the part), where the whole is above 0."""
        key = (r.type, r.start.label, r.end.label, p.name, out, part)
        cache: dict[tuple, dict[Any, float]] = self.__dict__.setdefault("_ratios", {})
        if key not in cache:
            table = r.out if out else r.inc
            near, far = (r.start, r.end) if out else (r.end, r.start)
            got = {}
            for i in ones:
                x, y, _ = r.edges[table[i][0]]
                vals = [near.nodes.get(i, {}).get(p.name), far.nodes.get(y if out else x, {}).get(p.name)]
                if not all(is_number(v, numtext=True) for v in vals):
                    continue
                a, b = float(vals[part]), float(vals[1 - part])
                if b > 0:
                    got[i] = a / b
            cache[key] = got
        return cache[key]

    # --- listprop: a list property as a list --------------------------------------------------------------
    def _list_owners(self) -> list[tuple[Label | Rel, Prop]]:
        """Every label and relationship type with a list property of strings or numbers that some sampled
        entity has non-empty."""
        if hasattr(self, "_lists"):
            return self._lists
        out: list[tuple[Label | Rel, Prop]] = []
        for lab in self.labels:
            out += [
                (lab, p) for p in lab.usable("list") if any(_items(d.get(p.name)) for d in lab.nodes.values())
            ]
        for r in self.P.rels:
            if r.edges:
                out += [(r, p) for p in r.usable("list") if any(_items(d.get(p.name)) for _, _, d in r.edges)]
        self._lists = out
        return out

    def _listprop(self) -> Query | None:
        """A list property asked about as a list (``Listed``, ``LIST_KINDS``)."""
        rng = self.rng
        owners = self._list_owners()
        if not owners:
            return None
        kind = rng.choices(list(LIST_KINDS), weights=list(LIST_KINDS.values()))[0]
        owner, p = rng.choice(owners)
        q = self._list_rel(owner, p, kind) if isinstance(owner, Rel) else self._list_node(owner, p, kind)
        if q is None:
            return None
        q.dedupe = False  # DISTINCT is the construct's own (items), never run.py's
        for j, h in enumerate(q.hops):
            h.var = "r" if q.listed is not None and q.listed.on == "hop" and j == q.listed.index else ""
        if any(n.var == "r" for n in q.nodes) and any(h.var for h in q.hops):
            return None
        return q

    def _list_rank(self, q: Query, k_choices: tuple[int, ...] = (1, 3, 5, 5, 10)) -> None:
        q.order, q.desc, q.limit = "agg", self.rng.random() < 0.85, self.rng.choice(k_choices)

    def _list_node(self, lab: Label, p: Prop, kind: str) -> Query | None:
        """A node's list: "Which 5 countries have the most languages?", "the total number of languages of the
        countries in each region", "the most common languages among countries in Europe"."""
        rng = self.rng
        have = [i for i, d in lab.nodes.items() if _items(d.get(p.name))]
        q = Query("listprop", [Node(lab, lab.var, rng.choice(have))], style="key")
        q.listed = Listed(kind, "node", 0, p)
        counted = kind in ("distinct_items", "distinct_lists")
        per = kind == "sum_size" or (counted and rng.random() < LIST_PER_P)
        if per:  # grouped by a related node's key or a category of the focus
            g = self._list_hop(q, keyed=True) if rng.random() < 0.7 else None
            if g is None:
                cats = [c for c in lab.usable("category") if q.nodes[0].data.get(c.name) is not None]
                if not cats:
                    return None
                q.group = [Ref("node", 0, rng.choice(cats))]
            else:
                q.group = [Ref("node", g)]
            if kind == "sum_size" and rng.random() < 0.5:
                self._list_rank(q)
        elif rng.random() < 0.35 and self._list_hop(q, keyed=True) is not None:
            key = q.nodes[1].label.key
            assert key is not None
            q.filters.append(Filter("node", 1, key, "eq", q.nodes[1].data[key.name]))
        if kind == "items" and not q.hops and not self._list_condition(q, 0):
            return None  # every element of every node, or one node's list (asked by the lookup frame)
        if kind != "items" and rng.random() < 0.3:
            self._list_condition(q, 0)
        if kind == "size_top":
            if lab.key is None:
                return None
            q.returns = [Ref("node", 0)]
            self._list_rank(q)
        elif kind == "item_rank":
            self._list_rank(q, (1, 3, 5, 5, 10, 0))
        return q if not q.pinned(0) else None

    def _list_hop(self, q: Query, keyed: bool) -> int | None:
        """One hop from the focus along a sampled edge to a node with a key (node 1), or None."""
        rng = self.rng
        f = q.nodes[0]
        options = [(r, o) for r, o in self.P.rels_at(f.label.label) if f.id in (r.out if o else r.inc)]
        options = [(r, o) for r, o in options if not keyed or (r.end if o else r.start).key is not None]
        options = [(r, o) for r, o in options if not r.self_loop]
        if not options:
            return None
        r, o = rng.choice(options)
        e = rng.choice((r.out if o else r.inc)[f.id])
        other = r.end if o else r.start
        oid = r.edges[e][1] if o else r.edges[e][0]
        if other.key is None or other.nodes.get(oid, {}).get(other.key.name) not in other.unique_keys:
            return None
        q.nodes.append(Node(other, self._var(q, other), oid))
        q.hops.append(Hop(0, 1, r, o, e))
        return 1

    def _list_condition(self, q: Query, i: int) -> bool:
        """One condition on node ``i`` (not on the list itself, not naming it alone)."""
        f = self._filter_on(q, "node", i)
        if f is None or f.prop.kind in ("list", "key") or (q.listed and f.prop is q.listed.prop):
            return False
        q.filters.append(f)
        if q.pinned(i):
            q.filters.pop()
            return False
        return True

    def _list_rel(self, r: Rel, p: Prop, kind: str) -> Query | None:
        """A relationship's list: "Which 5 people had the most roles in one movie?", "the total number of
        roles of each person", "How many different roles did Tom Hanks play?", "the most common roles"."""
        rng = self.rng
        out = rng.random() < 0.6  # the focus is the pattern's start (the actor), else its end (the movie)
        focus, other = (r.start, r.end) if out else (r.end, r.start)
        edges = [e for e, (_, _, d) in enumerate(r.edges) if _items(d.get(p.name))]
        if not edges or focus.key is None:
            return None
        e = rng.choice(edges)
        a, b, _ = r.edges[e]
        fid, oid = (a, b) if out else (b, a)
        q = Query("listprop", [Node(focus, focus.var, fid)], style="key")
        q.nodes.append(Node(other, self._var(q, other), oid))
        q.hops.append(Hop(0, 1, r, out, e))
        q.listed = Listed(kind, "hop", 0, p)
        counted = kind in ("distinct_items", "distinct_lists")
        anchor_f = self._filter_on(q, "node", 0, anchor=True)
        anchor_o = self._filter_on(q, "node", 1, anchor=True)
        # An entity named or a condition said of the far end reads as the focus's whole list ("the roles of
        # people who acted in Apollo 13" are all their roles): the far end is said with the focus only where
        # the question names its place ("in a single movie", "across the movies they acted in", "the most
        # roles in Apollo 13"); otherwise only the focus is named or conditioned.
        far = False
        if kind == "size_top":
            if anchor_o is not None and rng.random() < 0.5:  # "Which 3 people have the most roles in X?"
                q.filters.append(anchor_o)
                q.returns = [Ref("node", 0)]
            else:  # the pairs: "Which 5 people had the most roles in a single movie, and in which movie?"
                if other.key is None:
                    return None
                q.returns = [Ref("node", 0), Ref("node", 1)]
                far = True
            self._list_rank(q)
        elif kind == "sum_size" or (counted and rng.random() < LIST_PER_P):
            q.group = [Ref("node", 0)]
            far = True
            if kind == "sum_size" and rng.random() < 0.5:
                self._list_rank(q)
        elif kind in ("distinct_items", "distinct_lists", "items"):
            if anchor_f is None:
                return None
            q.filters.append(anchor_f)
            far = True
        else:  # item_rank
            self._list_rank(q, (1, 3, 5, 5, 10, 0))
        if kind != "items" and rng.random() < 0.3:
            free = [i for i in ((0, 1) if far else (0,)) if not q.anchored(i)]
            if free:
                self._list_condition(q, rng.choice(free))
        if q.group and q.pinned(0):
            return None
        return q

    def _frame_relprop(self, q: Query) -> bool:
        """A property of the relationship between two entities: "What roles did Tom Hanks have in …"."""
        if not q.hops:
            return False
        h = q.hops[0]
        props = [
            p
            for p in h.rel.props.values()
            if p.kind in ("list", "number", "text", "category", "numtext")
            and h.data.get(p.name) not in (None, "", [])
        ]
        if not props:
            return False
        if q.anchored(h.child) is None:
            f = self._filter_on(q, "node", h.child, anchor=True)
            if f is None:
                return False
            q.filters.append(f)
        q.filters = [
            f
            for f in q.filters
            if not (f.on == "hop" and f.index == 0)
            and not (f.on == "node" and f.index == h.child and not f.inline)
        ]
        q.style = "key"
        q.returns = ([Ref("node", 0)] if q.anchored(0) is None else []) + [
            Ref("hop", 0, self.rng.choice(props))
        ]
        return q.nodes[0].label.key is not None

    def _shown_prop(self, lab: Label, exclude: Prop | None) -> Prop | None:
        props = [
            p for p in lab.usable("number", "category", "date", "datetext", "numtext") if p is not exclude
        ]
        return self.rng.choice(props) if props else None


def _items(v: Any) -> list[Any]:
    """The usable elements of a list value (strings that say something, numbers)."""
    if not isinstance(v, (list, tuple)):
        return []
    return [x for x in v if (isinstance(x, str) and x.strip()) or (is_number(x) and not isinstance(x, bool))]


def _prune(q: Query) -> None:
    """Drop leaf hops that say nothing: an unnamed, unfiltered node that nothing returns or groups by
    ("products that suppliers supply" is every product). Real questions do not mention them."""
    while True:
        used = {r.index for r in [*q.returns, *q.group] if r.on == "node"}
        if q.agg and q.agg.target and q.agg.target.on == "node":
            used.add(q.agg.target.index)
        if isinstance(q.order, Ref) and q.order.on == "node":
            used.add(q.order.index)
        hop_used = {r.index for r in q.returns if r.on == "hop"} | {
            f.index for f in q.filters if f.on == "hop"
        }
        if q.agg and q.agg.target and q.agg.target.on == "hop":
            hop_used.add(q.agg.target.index)
        if isinstance(q.order, Ref) and q.order.on == "hop":
            hop_used.add(q.order.index)
        victim = None
        for j, h in enumerate(q.hops):
            c = h.child
            if (
                q.children(c)
                or c in used
                or j in hop_used
                or j in q.role_hops
                or q.cycle
                or any(f.on == "node" and f.index == c for f in q.filters)
                or any(e.node == c for e in q.exists)
                or _says_a_role(q, h)
            ):
                continue
            victim = j
            break
        if victim is None:
            return
        _remove_hop(q, victim)


def _remove_hop(q: Query, j: int) -> None:
    """Remove hop ``j`` and its (leaf) child node, renumbering every reference."""
    c = q.hops[j].child
    del q.hops[j]
    del q.nodes[c]

    def node_ix(i: int) -> int:
        return i - 1 if i > c else i

    def hop_ix(i: int) -> int:
        return i - 1 if i > j else i

    for h in q.hops:
        h.parent, h.child = node_ix(h.parent), node_ix(h.child)

    def fix(r: Ref) -> Ref:
        return Ref(r.on, node_ix(r.index) if r.on == "node" else hop_ix(r.index), r.prop)

    for f in q.filters:
        f.index = node_ix(f.index) if f.on == "node" else hop_ix(f.index)
    for e in q.exists:
        e.node = node_ix(e.node)
    q.role_hops = {hop_ix(x) for x in q.role_hops if x != j}
    q.returns = [fix(r) for r in q.returns]
    q.group = [fix(r) for r in q.group]
    if q.agg and q.agg.target:
        q.agg.target = fix(q.agg.target)
    if isinstance(q.order, Ref):
        q.order = fix(q.order)


def _nice(x: float) -> float | int:
    """Round a threshold the way a person would (2 significant digits)."""
    if x == 0:
        return 0
    r = float(f"{x:.2g}")
    return int(r) if r.is_integer() else r


def _round_date(iso: str, rng: random.Random, up: bool = False) -> str:
    """A date as people pick one: the day itself, the first of its month, or the first of its year."""
    choice = rng.random()
    if choice < 0.4:
        return iso[:10]
    y, m = int(iso[:4]), int(iso[5:7])
    if choice < 0.75:
        if up:
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return f"{y:04d}-{m:02d}-01"
    return f"{y + 1 if up else y:04d}-01-01"


__all__ = [
    "FRAMES",
    "Agg",
    "Compare",
    "Exists",
    "Filter",
    "Hop",
    "Listed",
    "Node",
    "Query",
    "Ref",
    "Related",
    "Sampler",
    "compile_cypher",
    "expr",
    "num",
    "tie_probe",
]
