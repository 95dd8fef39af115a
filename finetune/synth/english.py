"""English for a schema: identifiers as words, nouns with plurals, relationship types as verbs.

Plurals, singulars and articles come from ``inflect`` (a maintained inflection library); what it cannot
know — how a relationship type such as ``ACTED_IN`` or ``PART_OF`` reads as a verb — is derived here
from the type's words: the tense of its head word, whether it carries a particle, whether it is a
copula ("is part of").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import inflect

_INFLECT = inflect.engine()

ACRONYMS = {
    "id": "ID",
    "url": "URL",
    "uri": "URI",
    "ip": "IP",
    "iso": "ISO",
    "sku": "SKU",
    "isbn": "ISBN",
    "imdb": "IMDb",
    "usa": "USA",
    "uk": "UK",
    "api": "API",
    "dst": "DST",
    "utc": "UTC",
}
PREPOSITIONS = frozenset(
    [
        "in",
        "of",
        "at",
        "on",
        "from",
        "to",
        "with",
        "for",
        "by",
        "per",
        "via",
        "near",
        "under",
        "into",
        "onto",
        "over",
        "about",
        "as",
        "within",
        "between",
    ]
)
# Words that mark a person-like label: "who" instead of "that", "Who …?" questions.
PERSON_WORDS = frozenset(
    [
        "person",
        "people",
        "user",
        "customer",
        "employee",
        "actor",
        "actress",
        "director",
        "author",
        "student",
        "teacher",
        "member",
        "patient",
        "doctor",
        "artist",
        "player",
        "manager",
        "writer",
        "reviewer",
        "friend",
        "contact",
        "client",
        "buyer",
        "seller",
        "owner",
        "officer",
        "character",
        "producer",
        "musician",
        "singer",
        "speaker",
        "researcher",
        "scientist",
        "engineer",
        "developer",
        "founder",
        "politician",
        "athlete",
        "coach",
        "individual",
        "human",
        "guest",
        "host",
        "user",
        "follower",
        "scholar",
        "candidate",
        "voter",
        "worker",
        "staff",
        "leader",
        "president",
    ]
)
# A few common synonyms so questions do not always use the label's own word.
SYNONYMS = {
    "movie": ["film"],
    "film": ["movie"],
    "person": ["individual"],
    "customer": ["client"],
    "product": ["item"],
    "employee": ["staff member"],
    "company": ["firm"],
    "organization": ["organisation"],
    "article": ["paper"],
    "city": ["town"],
    "country": ["nation"],
    "order": ["purchase order"],
    "supplier": ["vendor"],
    "book": ["title"],
    "song": ["track"],
    "user": ["account"],
}
COPULA_HEADS = frozenset(
    [
        "part",
        "member",
        "friend",
        "friends",
        "parent",
        "child",
        "owner",
        "head",
        "capital",
        "subclass",
        "instance",
        "type",
        "kind",
        "sibling",
        "spouse",
        "partner",
        "colleague",
        "neighbour",
        "neighbor",
        "sequel",
        "prequel",
        "successor",
        "predecessor",
        "version",
        "copy",
        "next",
        "adjacent",
        "close",
        "similar",
        "equal",
        "opposite",
        "near",
        "located",
        "based",
        "related",
        "connected",
        "linked",
        "associated",
        "tagged",
        "married",
    ]
)
ADJECTIVE_HEADS = frozenset(["next", "adjacent", "close", "similar", "equal", "opposite", "near"])
STATE_PARTICIPLES = frozenset(
    [
        "located",
        "based",
        "born",
        "married",
        "related",
        "assigned",
        "interested",
        "involved",
        "connected",
        "linked",
        "associated",
        "tagged",
        "named",
        "situated",
        "employed",
        "enrolled",
        "registered",
        "listed",
        "classified",
    ]
)
INTRANSITIVE = frozenset(
    [
        "interact",
        "work",
        "live",
        "arrive",
        "travel",
        "respond",
        "reply",
        "belong",
        "depend",
        "participate",
        "collaborate",
        "talk",
        "speak",
        "listen",
        "compete",
        "vote",
        "contribute",
        "act",
        "star",
        "play",
        "appear",
        "happen",
        "occur",
        "exist",
        "stay",
        "sleep",
        "die",
    ]
)
_IRREGULAR = [
    ("write", "wrote", "written"),
    ("buy", "bought", "bought"),
    ("sell", "sold", "sold"),
    ("make", "made", "made"),
    ("know", "knew", "known"),
    ("teach", "taught", "taught"),
    ("lead", "led", "led"),
    ("win", "won", "won"),
    ("pay", "paid", "paid"),
    ("hold", "held", "held"),
    ("build", "built", "built"),
    ("send", "sent", "sent"),
    ("give", "gave", "given"),
    ("take", "took", "taken"),
    ("see", "saw", "seen"),
    ("do", "did", "done"),
    ("run", "ran", "run"),
    ("meet", "met", "met"),
    ("find", "found", "found"),
    ("tell", "told", "told"),
    ("get", "got", "got"),
    ("leave", "left", "left"),
    ("lose", "lost", "lost"),
    ("bring", "brought", "brought"),
    ("fight", "fought", "fought"),
    ("drive", "drove", "driven"),
    ("speak", "spoke", "spoken"),
    ("begin", "began", "begun"),
    ("choose", "chose", "chosen"),
    ("eat", "ate", "eaten"),
    ("fly", "flew", "flown"),
    ("grow", "grew", "grown"),
    ("hear", "heard", "heard"),
    ("keep", "kept", "kept"),
    ("sit", "sat", "sat"),
    ("stand", "stood", "stood"),
    ("become", "became", "become"),
    ("come", "came", "come"),
    ("go", "went", "gone"),
    ("have", "had", "had"),
    ("sing", "sang", "sung"),
    ("draw", "drew", "drawn"),
    ("read", "read", "read"),
    ("lend", "lent", "lent"),
    ("spend", "spent", "spent"),
    ("feel", "felt", "felt"),
    ("shoot", "shot", "shot"),
    ("steal", "stole", "stolen"),
    ("wear", "wore", "worn"),
    ("forgive", "forgave", "forgiven"),
    ("ship", "shipped", "shipped"),
    ("star", "starred", "starred"),
    ("refer", "referred", "referred"),
]
_VERB_FORMS: dict[str, tuple[str, str, str]] = {}
for _b, _p, _pp in _IRREGULAR:
    _VERB_FORMS[_b] = _VERB_FORMS[_p] = (_b, _p, _pp)
# Regular past tenses whose base the rules below get wrong.
_ED_BASE = {
    "created": "create",
    "completed": "complete",
    "included": "include",
    "provided": "provide",
    "featured": "feature",
    "described": "describe",
    "subscribed": "subscribe",
    "scheduled": "schedule",
    "visited": "visit",
    "edited": "edit",
    "credited": "credit",
    "followed": "follow",
    "allowed": "allow",
    "travelled": "travel",
    "cancelled": "cancel",
    "labelled": "label",
    "rated": "rate",
    "liked": "like",
    "placed": "place",
    "purchased": "purchase",
    "reviewed": "review",
    "directed": "direct",
    "produced": "produce",
    "acted": "act",
    "ordered": "order",
    "supplied": "supply",
    "used": "use",
    "owned": "own",
    "managed": "manage",
    "contained": "contain",
    "hosted": "host",
    "posted": "post",
    "invited": "invite",
    "united": "unite",
    "wrote": "write",
    "located": "locate",
    "based": "base",
}


# Who does what: the noun for the subject of a verb ("people who direct" → "directors"). A list, not a rule:
# "order" → "orderer" or "place" → "placer" would read wrong; a verb missing here gets no role noun.
ROLE_NOUNS = {
    "act": "actor",
    "direct": "director",
    "produce": "producer",
    "write": "writer",
    "review": "reviewer",
    "follow": "follower",
    "supply": "supplier",
    "buy": "buyer",
    "purchase": "buyer",
    "sell": "seller",
    "own": "owner",
    "manage": "manager",
    "teach": "teacher",
    "lead": "leader",
    "create": "creator",
    "edit": "editor",
    "invest": "investor",
    "visit": "visitor",
    "rate": "rater",
    "employ": "employer",
    "play": "player",
    "sing": "singer",
    "compose": "composer",
    "publish": "publisher",
    "develop": "developer",
    "design": "designer",
    "found": "founder",
    "attend": "attendee",
    "subscribe": "subscriber",
    "author": "author",
    "host": "host",
    "ship": "shipper",
    "report": "reporter",
    "mentor": "mentor",
    "coach": "coach",
    "train": "trainer",
    "use": "user",
    "like": "fan",
    "watch": "viewer",
    "read": "reader",
    "borrow": "borrower",
    "contribute": "contributor",
}


ADJACENCY_WORDS = frozenset(
    ["border", "borders", "bordering", "adjacent", "neighbour", "neighbours", "neighbor", "neighbors",
     "touches"]
)
"""Words of a relationship type that mean adjacency (BORDERS, ADJACENT_TO, NEIGHBOUR_OF, NEIGHBORS,
SHARES_BORDER_WITH, NEXT_TO): between nodes of one label such a type is also said as "neighbours"
("How many neighbours does France have?"). A list, not the profile's symmetry: KNOWS, FRIENDS_WITH or
MARRIED_TO are stored both ways too and are no neighbours."""


def is_adjacency(rel_type: str) -> bool:
    """BORDERS, ADJACENT_TO, NEIGHBOUR_OF, NEXT_TO …: a type whose words say two things are neighbours."""
    words = split_words(rel_type)
    return bool(set(words) & ADJACENCY_WORDS) or words[:2] == ["next", "to"]


def role_noun(verb: Verb) -> Noun | None:
    """ "directors" for DIRECTED, "actors" for ACTED_IN, "followers" for FOLLOWS; None for verbs not
    listed."""
    if verb.copula:
        return None
    word = ROLE_NOUNS.get(verb.base.split(" ")[0])
    return Noun(word, plural(word), True) if word else None


def hop_role(rel_type: str, verb: Verb, self_loop: bool) -> Noun | None:
    """The role noun of a relationship's subject: "neighbours" for an adjacency type between nodes of one
    label ("neighbours of France"), else ``role_noun`` ("directors", "followers")."""
    if self_loop and is_adjacency(rel_type):
        return NEIGHBOUR
    return role_noun(verb)


def fits(role: Noun | None, noun: Noun) -> Noun | None:
    """The role noun where it may stand for ``noun``'s label: one that names people ("users", "readers") only
    for a label of people; countries that use currencies are no "users"."""
    return None if role is None or (role.singular in PERSON_WORDS and not noun.person) else role


PLACE_LABELS = frozenset(
    ["continent", "country", "region", "state", "province", "city", "nation", "territory"]
)
"""Labels whose named nodes people say as an adjective before the noun of what lies in them ("African
countries", "Kenyan cities")."""


def demonym(name: str) -> str | None:
    """The adjective of a place name by conservative rules, None where they do not apply: "-ia", "-ica",
    "-ya" + "n" (Asia → Asian, South America → South American, Kenya → Kenyan), "-ope" → "-opean" (Europe →
    European), "-ctica" → "-ctic" (Antarctica → Antarctic). Other names ending in "a" are left out (China,
    Canada, Malta, Argentina would come out wrong), as are names of more than three words or with anything
    but letters and spaces. No maintained Python package does demonyms (the ones found are Dart and Ruby
    country tables), and a table of countries would not cover a user's regions or cities."""
    words = name.split()
    if not words or len(words) > 3 or not all(w.isalpha() and w[0].isupper() for w in words):
        return None
    if name.endswith("ctica"):  # Antarctica → Antarctic
        return name[:-1]
    if name.endswith(("ia", "ica", "ya")):
        return name + "n"
    if name.endswith("ope"):
        return name[:-3] + "opean"
    return None


CONTAINMENT_WORDS = frozenset(["in", "within", "located", "part", "from", "based", "belongs"])
"""Words of a relationship type that put its start inside its end (IN_CONTINENT, LOCATED_IN, PART_OF, FROM,
BASED_IN): only through such a type is a named place said as an adjective ("Asian countries"), not through
SUCCEEDED_BY or EXPORTS_TO ("Indian former countries" are none)."""


def is_containment(rel_type: str) -> bool:
    return bool(set(split_words(rel_type)) & CONTAINMENT_WORDS)


RANK_PROPS = frozenset(["rank", "priority", "order", "position"])
"""Integer relationship properties whose value 1 people say as "main", "primary" or "first" ("the main
language of Peru" for ``SPEAKS {rank: 1}``)."""


def is_rank_one(prop_name: str, op: str, value: object) -> bool:
    """An equality with 1 on a rank-like property (rank, priority, order, position; any case)."""
    return (
        op == "eq"
        and prop_name.lower() in RANK_PROPS
        and isinstance(value, int)
        and not isinstance(value, bool)
        and value == 1
    )


def split_words(identifier: str) -> list[str]:
    """``unitPrice`` → ['unit', 'price']; ``customer_id`` → ['customer', 'ID']; ``ACTED_IN`` → ['acted',
    'in']."""
    raw = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", identifier or "")
    return [ACRONYMS.get(w.lower(), w.lower()) for w in raw] or [identifier]


def words_of(identifier: str) -> str:
    return " ".join(split_words(identifier))


@functools.lru_cache(maxsize=4096)
def plural(phrase: str) -> str:
    """Plural of a noun phrase's head: "unit price" → "unit prices", "quantity per unit" → "quantities per
    unit"."""
    words = phrase.split(" ")
    cut = next((i for i, w in enumerate(words) if i and w in PREPOSITIONS), len(words))
    head, tail = words[:cut], words[cut:]
    last = head[-1]
    if last.isupper() or last.isdigit() or last in ACRONYMS.values():  # "customer IDs", "ISO 2s"
        new = last + "s"
    elif is_plural(last):
        new = last
    else:
        new = _INFLECT.plural_noun(last) or last + "s"
    return " ".join([*head[:-1], new, *tail])


def singular(phrase: str) -> str:
    """Singular of a plural noun phrase's head, the other way from ``plural``: "stars" → "star", "units in
    stock" → "unit in stock"; a head that is not plural stays."""
    words = phrase.split(" ")
    cut = next((i for i, w in enumerate(words) if i and w in PREPOSITIONS), len(words))
    i = cut - 1
    if not is_plural(words[i]) or words[i] in ("data", "media", "staff", "news", "series", "species", "info"):
        return phrase
    return " ".join([*words[:i], _INFLECT.singular_noun(words[i]) or words[i], *words[i + 1 :]])


@functools.lru_cache(maxsize=4096)
def is_plural(word: str) -> bool:
    low = word.lower()
    if low in ("data", "people", "media", "staff", "news", "series", "species", "info", "equipment"):
        return True
    if low.endswith(("ss", "us", "is")) or not low.endswith("s"):
        return low in ("people", "children", "men", "women")
    return bool(_INFLECT.singular_noun(low))


NOT_VERBS = frozenset(
    ["sales", "goods", "news", "always", "series", "species", "status", "plus", "bus", "gas"]
)
"""First words of a flag's name that end in "s" and are no verb ("salesTaxExempt", "goodsReceived")."""


def flag_verb(words: str) -> tuple[str, str] | None:
    """A boolean property named by a verb and its object, as (third person, base): "observes DST" →
    ("observes DST", "observe DST"), "allows pets" → ("allows pets", "allow pets"); None for other names
    ("active", "is active", "has discount", "discontinued"). Said "time zones that observe DST", not
    "observes DST time zones" or "time zones that are not observes DST"."""
    head, _, rest = words.partition(" ")
    if not rest or head in ("is", "has") or head in NOT_VERBS:
        return None
    base = _INFLECT.plural_verb(head)
    return (words, f"{base} {rest}") if base != head else None


def article(phrase: str) -> str:
    """ "an order", "a product", "a UTC offset": inflect says "an URL" and "an UTC" (yet "a URI"), and an
    initialism that starts with U is said "you"."""
    head = phrase.split(" ", 1)[0]
    if len(head) > 1 and head.isupper() and head.startswith("U"):
        return f"a {phrase}"
    return _INFLECT.a(phrase)


def number_word(n: int) -> str:
    return _INFLECT.number_to_words(n) if 0 <= n <= 12 else str(n)


@dataclass(frozen=True)
class Noun:
    """How a label reads: "movie"/"movies", "person"/"people"; ``person`` picks "who" over "that"."""

    singular: str
    plural: str
    person: bool = False

    @classmethod
    def of_label(cls, label: str) -> Noun:
        words = split_words(label)
        singular = " ".join(words)
        return cls(singular, plural(singular), words[-1] in PERSON_WORDS)

    def synonyms(self) -> list[Noun]:
        """This noun and its synonyms (a small built-in list), e.g. movie → [movie, film]."""
        out = [self]
        head = self.singular.split()[-1]
        for s in SYNONYMS.get(head, []):
            word = " ".join([*self.singular.split()[:-1], s])
            out.append(Noun(word, plural(word), self.person))
        return out

    @property
    def rel(self) -> str:
        """Relative pronoun: "who" for people, "that" otherwise."""
        return "who" if self.person else "that"

    @property
    def which(self) -> str:
        return "Who" if self.person else f"Which {self.plural}"


NEIGHBOUR = Noun("neighbour", "neighbours")
"""What nodes joined by an adjacency type are to each other (``is_adjacency``)."""


@dataclass(frozen=True)
class Verb:
    """A relationship type in English. ``copula``: "is part of"; otherwise a verb with an optional
    particle."""

    copula: bool
    base: str  # verb: "act in" / copula: "part of"
    past: str = ""
    participle: str = ""
    third: str = ""
    present: bool = True  # tense of the type's name: SUPPLIES present, PLACED past
    particle: bool = False  # the verb carries a preposition (acted in): no natural passive
    plural_noun: str = ""  # copula nouns agree in number: "members of"
    owned: str = ""  # HAS_CAPITAL: "capital", what the object is to the subject ("have … as capital")

    def finite(self, plural_subject: bool) -> str:
        """Verb phrase after a subject: "placed", "supply"/"supplies", "are part of"."""
        if self.copula:
            return ("are " + (self.plural_noun or self.base)) if plural_subject else ("is " + self.base)
        if not self.present:
            return self.past
        return self.base if plural_subject else self.third

    def perfect(self, plural_subject: bool) -> str:
        """ "have acted in" / "has supplied" / "are part of"."""
        if self.copula:
            return self.finite(plural_subject)
        return ("have " if plural_subject else "has ") + self.participle

    def negated(self, plural_subject: bool) -> str:
        """ "never acted in", "do not supply", "are not part of"."""
        if self.copula:
            return (
                ("are not " + (self.plural_noun or self.base)) if plural_subject else ("is not " + self.base)
            )
        if not self.present:
            return "never " + self.past
        return ("do not " if plural_subject else "does not ") + self.base

    def ask(self, subject: str, plural_subject: bool = False) -> str:
        """Question inversion: "did Tom Hanks act in", "does Exotic Liquids supply", "is Chai part of"."""
        if self.copula:
            be = "are" if plural_subject else "is"
            return f"{be} {subject} {(self.plural_noun or self.base) if plural_subject else self.base}"
        aux = "did" if not self.present else ("do" if plural_subject else "does")
        return f"{aux} {subject} {self.base}"

    def takes(self, plural_subject: bool, obj: str, perfect: bool = False) -> str:
        """The verb phrase with its object: "acted in The Matrix", "have Oslo as their capital" (a ``HAS_X``
        type puts the object before its X; "have capital Oslo" is no English)."""
        if self.owned:
            have = "have" if plural_subject else "has"
            if perfect:
                have += " had"
            return f"{have} {obj} as {'their' if plural_subject else 'its'} {self.owned}"
        return f"{self.perfect(plural_subject) if perfect else self.finite(plural_subject)} {obj}"

    @property
    def passive(self) -> str | None:
        """ "placed by", "supplied by"; None where a passive reads badly (particles, copulas)."""
        if self.copula or self.particle:
            return None
        return f"{self.participle} by"


def _third(base: str) -> str:
    first, _, rest = base.partition(" ")
    if first == "have":
        v = "has"
    elif first in ("be",):
        v = "is"
    elif re.search(r"[^aeiou]y$", first):
        v = first[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh|o)$", first):
        v = first + "es"
    else:
        v = first + "s"
    return f"{v} {rest}".strip()


def _past(base: str) -> str:
    """The regular past ("placed", "supplied", "stopped"); ``inflect`` conjugates no tenses, and no verb
    library is among the project's dependencies."""
    if base in _VERB_FORMS:
        return _VERB_FORMS[base][1]
    if base.endswith("e"):
        return base + "d"
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ied"
    if re.fullmatch(r"[^aeiou]*[aeiou][bdgmnprt]", base):  # one syllable, one vowel, one consonant: "stop"
        return base + base[-1] + "ed"
    return base + "ed"


def _ed_base(word: str) -> str:
    if word in _ED_BASE:
        return _ED_BASE[word]
    if word.endswith("ied"):
        return word[:-3] + "y"
    stem = word[:-2]
    if len(stem) >= 2 and stem[-1] == stem[-2] and stem[-1] not in "aeioulsfz":
        return stem[:-1]
    if re.search(r"(c|v|z|ur|id|ud|ib|rg|dg|[aeiou]g|ang|[^aeiou]at|[aiou]s|[rnpl]s|[bptdgk]l)$", stem):
        return stem + "e"
    return stem


def _s_base(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(sses|shes|ches|xes|zes|oes)$", word):
        return word[:-2]
    return word[:-1]


def _without_end_noun(words: list[str], label: list[str]) -> list[str]:
    """The type's words less a last part that names its end label, compared with the spaces taken out:
    IN_TIMEZONE to :TimeZone → ["in"], as IN_TIME_ZONE is; IN_ZONE to :TimeZone → ["in"] (a last word of the
    label); HAS_CAPITAL to :City keeps its words. Until 2026-12-04 only the label's own words were taken
    off, and "timezone" is not "time zone": "time zones that cities are in timezone" in 2 % of the countries
    pairs."""
    ends = {"".join(label[k:]) for k in range(len(label))}
    for cut in range(1, len(words)):
        if "".join(words[cut:]) in ends:
            return words[:cut]
    return words


@functools.lru_cache(maxsize=1024)
def verb_of(rel_type: str, end_label: str | None = None) -> Verb:
    """English for a relationship type: PLACED → placed, ACTED_IN → acted in, PART_OF → is part of."""
    words = split_words(rel_type)
    if end_label:  # IN_CATEGORY to :Category → "in" (the label's noun comes with the entity)
        words = _without_end_noun(words, split_words(end_label))
    head, rest = words[0], words[1:]
    if head == "has" and rest:
        # HAS_CAPITAL: "have as capital" ("the cities that countries have as capital", "does Peru have as
        # capital"); with an object Verb.takes says "have Lima as their capital". Until 2026-12-03 "have
        # capital", which no one says: "countries that have capital Lima" in 2-3 % of countries pairs
        x = " ".join(rest)
        return Verb(False, f"have as {x}", f"had as {x}", f"had as {x}", f"has as {x}", True, True, owned=x)
    tail = (" " + " ".join(rest)) if rest else ""
    if head in ("is", "are", "was", "were", "be") and rest:
        return Verb(True, " ".join(rest))
    if (
        head in PREPOSITIONS
        or head in COPULA_HEADS
        or (rest and rest[-1] == "by" and head.endswith("ed"))
        or (head in STATE_PARTICIPLES and rest)
    ):
        if head in ADJECTIVE_HEADS and not rest:
            words = [head, "to"]  # SIMILAR → "similar to"
        phrase = " ".join(words)
        if (
            head in ("located", "based", "related", "connected", "linked", "associated", "tagged")
            and not rest
        ):
            phrase = f"{head} {'to' if head in ('related', 'connected', 'linked') else 'in'}"
        plural_noun = ""
        if (
            head in COPULA_HEADS
            and head not in ("part", "type", "kind", "friends")
            and head not in ADJECTIVE_HEADS
            and not head.endswith("ed")
        ):
            plural_noun = " ".join([plural(head), *rest])  # MEMBER_OF: "are members of" / "is a member of"
            phrase = f"{article(head).split()[0]} {phrase}"
        return Verb(True, phrase, plural_noun=plural_noun)
    if head in _VERB_FORMS:
        base, past, part = _VERB_FORMS[head]
        present = head == base
    elif head.endswith("ed") and len(head) > 3:
        base, past, part, present = _ed_base(head), head, head, False
    else:  # SPEAKS, SPEAK: present; the past and participle of an irregular base from the table
        base = _s_base(head) if head.endswith("s") and not head.endswith("ss") and len(head) > 3 else head
        _, past, part = _VERB_FORMS.get(base, (base, _past(base), _past(base)))
        present = True
    return Verb(
        False,
        base + tail,
        past + tail,
        part + tail,
        _third(base) + tail,
        present,
        bool(rest) or base in INTRANSITIVE,
    )


def prop_words(label: str, prop: str) -> str:
    """``Product.productName`` → "name"; ``Product.unitPrice`` → "unit price"; ``Customer.customerID`` →
    "customer ID"."""
    words = split_words(prop)
    lab = split_words(label)
    if len(words) > len(lab) and words[: len(lab)] == lab and words[len(lab) :] != ["ID"]:
        words = words[len(lab) :]
    return " ".join(words)


def cap(text: str) -> str:
    """Tidy a rendered sentence: single spaces, no space before punctuation, a capital first letter."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([?.,!])", r"\1", text)
    return text[:1].upper() + text[1:]


def say_num(x: float | int) -> str:
    """A number as people write it in a question."""
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}".rstrip("0").rstrip(".") if abs(x) >= 1000 else f"{round(x, 4):g}"
    return f"{int(x):,}" if abs(x) >= 10000 else str(int(x))


def say_big(x: float | int) -> str | None:
    """A round number of millions or billions in words, as people write one ("5 million", "2.5 million", "1.2
    billion"); None for any other number (12,345,678 stays digits)."""
    if isinstance(x, bool) or not float(x).is_integer():
        return None
    for size, word in ((10**9, "billion"), (10**6, "million")):
        n = int(x) / size
        if abs(n) >= 1 and round(n, 1) == n:
            return f"{n:g} {word}"
    return None


SMALL_NUMBERS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"
)


def say_half(x: float | int, words: bool = False) -> str | None:
    """A number halfway between two whole ones, as people say it: 7.5 → "7 and a half", or with ``words``
    up to twelve "seven and a half"; None for any other number, for 0.5 and below (negative values, "half"
    alone) and from 100 on (said in digits)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    n = float(x) - 0.5
    if not (1 <= n < 100 and n.is_integer()):
        return None
    whole = int(n)
    return f"{SMALL_NUMBERS[whole] if words and whole < len(SMALL_NUMBERS) else whole} and a half"


MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def say_date(iso: str, style: int) -> str:
    """'1997-03-01' → "March 1, 1997" (0), "1 March 1997" (1) or "1997-03-01" (2)."""
    y, m, d = int(iso[:4]), int(iso[5:7]), int(iso[8:10])
    return [f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1]} {y}", iso[:10]][style % 3]


def say_month(iso: str) -> str:
    return f"{MONTHS[int(iso[5:7]) - 1]} {iso[:4]}"
