# ruff: noqa: E501 - a corpus of queries, one family per block
"""The attack corpus of issue 14: queries an attacker or a careless model could send as a "read".

Used by ``tests/test_attacks.py`` (against a real embedded FalkorDB) and ``scripts/bench_soak.py`` (eight
concurrent askers). Every entry is ``(family, cypher)``; none may write, crash the server, outlive its
time limit by much or take the server's memory past its cap. ``NORMAL`` are the ordinary questions a
second client keeps asking meanwhile, with their answers on the shop graph (``tests/data/shop.cypher``).
"""

from __future__ import annotations

from tests.test_readonly import WRITES

NORMAL = [
    ("MATCH (c:Customer) RETURN count(c)", [[12]]),
    ("MATCH (p:Product) RETURN count(p)", [[12]]),
    ("MATCH (o:Order) RETURN count(o)", [[20]]),
    ("MATCH (s:Supplier) RETURN count(s)", [[3]]),
]

_PROCS = ["db.labels()", "db.relationshipTypes()", "db.propertyKeys()", "db.indexes()",
          "db.idx.fulltext.queryNodes('Nope', 'x')", "db.idx.vector.queryNodes('Nope', 'v', 3, vecf32([1.0]))",
          "algo.pageRank('Customer', 'REFERRED')", "algo.BFS(null, 0, 'REFERRED')"]
_GAPS = ["/**/", "/* x */", "\n//x\n", " ", "/*\n*/", "\t/**/\t", "/* ; */", "/* CREATE */"]


def _procedure_tricks() -> list[str]:
    out = []
    for proc in _PROCS:
        head, _, rest = proc.partition(".")
        for gap in _GAPS[:4]:
            out.append(f"CALL {head}.{gap}{rest}")
    out += [f"CALL db.labels(){gap}YIELD label RETURN label" for gap in _GAPS]
    out += [
        "CALL dbms.procedures()", "CALL dbms.listConfig()", "CALL db.idx.fulltext.createNodeIndex('X', 'y')",
        "CALL db.idx./**/fulltext.drop('Product')", "CALL `db`.`idx`.`fulltext`.`drop`('Product')",
        "CALL db.idx.vector.createNodeIndex('X', 'v', 3, 'euclidean')", "CALL db.meta.stats()",
        "CALL algo.nonexistent()", "CALL apoc.meta.graph()", "CALL db.labels", "CALL db.labels() YIELD x",
        "CALL db.labels(1, 2, 3)", "CALL db.idx.fulltext.queryNodes(null, null)",
        "CALL db.idx.fulltext.queryNodes('Product', '*')", "CALL db.idx.fulltext.queryNodes('Product', '')",
        "CALL algo.SPpaths({})", "CALL algo.SSpaths({sourceNode: null})", "CALL algo.WCC(null)",
        "CALL algo.betweenness({})", "CALL algo.labelPropagation({maxIterations: 100000000})",
        "MATCH (n) CALL db.labels() YIELD label RETURN count(*)",
        "CALL { CALL db./**/labels() YIELD label RETURN label } RETURN label",
    ]
    return out


def _comment_unicode_tricks() -> list[str]:
    return [
        "MATCH (n) RETURN n /* unterminated", "MATCH (n) RETURN n // trailing", "/**/MATCH/**/(n)/**/RETURN/**/n",
        "MATCH (n) RETURN n.name /* */ /* */ /* */ LIMIT 1", "RETURN '/* not a comment */'",
        "RETURN \"// not a comment\"", "RETURN '\\u0043REATE'", "MATCH (n) RETURN n.`/* x */`",
        "RETURN 1 /* ; CREATE (:X) */", "RETURN 1 // ;\nCREATE (:X)", "RETURN 1\u2028CREATE (:X)",
        "RETURN 1\u0085CREATE (:X)", "MATCH (n\u200b) RETURN count(*)", "MATCH (n) RETURN n.\u0430ge",
        "RETURN '\u0000'", "RETURN 'a\u0000b'", "MATCH (n)\u0000RETURN n", "RETURN '\ud83d\ude00' AS emoji",
        "RETURN '\\ud800' AS lone", "RETURN 'x' + '\\'' + 'y'", "RETURN '\\\\' AS backslash",
        "RETURN \"unterminated", "RETURN 'unterminated", "RETURN `unterminated", "MATCH (n:`A``B`) RETURN n",
        "ＭＡＴＣＨ (n) ＲＥＴＵＲＮ n", "MATCH (n) RETURN n ;;; ", ";", "/* only a comment */", "// only",
        "MATCH (n) RETURN n.name\u200d", "\ufeffMATCH (n) RETURN count(n)",
        "RETURN 1 AS `a\nb`", "RETURN $p", "RETURN $`weird param`",
    ]


_NEST = {
    "paren": lambda d: "RETURN " + "(" * d + "1" + ")" * d,
    "list": lambda d: "RETURN " + "[" * d + "1" + "]" * d,
    "map": lambda d: "RETURN " + "{a:" * d + "1" + "}" * d,
    "case": lambda d: "RETURN " + "CASE WHEN true THEN " * d + "1" + " END" * d,
    "not": lambda d: "RETURN " + "NOT " * d + "true",
    "minus": lambda d: "RETURN " + "-" * d + "1",
    "comprehension": lambda d: "RETURN " + "[x IN " * d + "[1]" + " | x]" * d,
    "function": lambda d: "RETURN " + "abs(" * d + "1" + ")" * d,
    "exists": lambda d: "MATCH (n) WHERE " + "EXISTS { MATCH (n) WHERE " * d + "true" + " }" * d + " RETURN 1",
}


def _deep_nesting() -> list[str]:
    out = [build(d) for build in _NEST.values() for d in (9, 10, 11, 16, 26)]
    out += [
        "RETURN " + "(" * 100_000 + "1" + ")" * 100_000,
        "RETURN " + "[" * 3000 + "]" * 3000,
        "RETURN " + ", ".join("(" * 9 + "1" + ")" * 9 + f" AS c{i}" for i in range(40)),
        "RETURN " + ", ".join("[x IN " * 8 + "[1]" + " | x]" * 8 + f" AS c{i}" for i in range(10)),
        "MATCH (a)" + "-[]->()" * 300 + " RETURN count(*)",
        "MATCH (a)" + "-->()" * 60 + " RETURN count(*)",
        "MATCH p = (a)-[*]->(b) RETURN count(p)",
        "MATCH p = (a)-[*1..30]-(b) RETURN count(p)",
        "MATCH (a)-[*0..]-(b)-[*0..]-(c) RETURN count(*)",
        "RETURN " + " + ".join(["1"] * 1500),
        "RETURN " + " AND ".join(["true"] * 800),
        "MATCH (n) WHERE " + " OR ".join(f"n.x = {i}" for i in range(300)) + " RETURN count(n)",
    ]
    return out


def _huge_unwinds() -> list[str]:
    return [
        "UNWIND range(1, 100000000) AS x RETURN x", "UNWIND range(1, 100000000) AS x RETURN count(x)",
        "UNWIND range(1, 1000000) AS x RETURN x", "UNWIND range(1, 1000000) AS x RETURN sum(x)",
        "UNWIND range(1, 1000000) AS x RETURN collect(x)", "UNWIND range(1, 1000000) AS x RETURN x ORDER BY x DESC",
        "UNWIND range(1, 1000000) AS x WITH collect(x) AS l RETURN size(l)",
        "UNWIND range(1, 1000000) AS x UNWIND range(1, 1000000) AS y RETURN count(*)",
        "UNWIND range(1, 1000000) AS x UNWIND range(1, 1000000) AS y RETURN x, y",
        "UNWIND range(1, 1000000) AS x RETURN DISTINCT x % 7",
        "UNWIND range(1, 1000000) AS x WITH x ORDER BY x DESC RETURN collect(x)[0]",
        "WITH 100000000 AS n UNWIND range(1, n) AS x RETURN count(x)",
        "UNWIND range(1, toInteger(1e8)) AS x RETURN count(x)", "RETURN size(range(0, 1000000000, 2))",
        "RETURN range(9223372036854775806, 9223372036854775807)", "RETURN range(1, 10, 0)",
        "RETURN range(-1000000000, 1000000000)", "UNWIND [x IN range(1, 1000000) | [x, x, x]] AS y RETURN count(y)",
        "RETURN [x IN range(1, 1000000) | range(1, 1000)]",
        "UNWIND range(1, 1000) AS a UNWIND range(1, 1000) AS b UNWIND range(1, 1000) AS c RETURN count(*)",
        "UNWIND range(1, 1000000) AS x RETURN toString(x) + toString(x) + toString(x) AS s",
        "UNWIND range(1, 1000000) AS x RETURN {a: x, b: [x, x], c: {d: x}} AS m",
    ]


def _cartesian_products() -> list[str]:
    return [
        "MATCH (a), (b) RETURN a, b", "MATCH (a), (b), (c) RETURN count(*)",
        "MATCH (a), (b), (c), (d) RETURN count(*)", "MATCH (a), (b), (c), (d), (e) RETURN count(*)",
        "MATCH (a), (b), (c), (d), (e), (f) RETURN count(*)", "MATCH (a), (b), (c) RETURN a, b, c",
        "MATCH (a), (b), (c), (d) RETURN a.name, b.name, c.name, d.name ORDER BY a.name",
        "MATCH (a), (b), (c), (d), (e) RETURN collect(a)", "MATCH (a)-[r]-(b), (c)-[s]-(d) RETURN count(*)",
        "MATCH (a), (b) WITH a, b MATCH (c), (d) RETURN count(*)",
        "MATCH (a), (b), (c), (d) RETURN DISTINCT a, b", "MATCH (a), (b), (c), (d), (e) WITH * RETURN count(*)",
        "MATCH (a), (b), (c), (d), (e) RETURN count(*) ORDER BY count(*)",
        "MATCH p = (a)-[*1..6]-(b) RETURN count(p)", "MATCH (a), (b) RETURN shortestPath((a)-[*]-(b))",
        "MATCH (a), (b), (c) RETURN [a, b, c] ORDER BY rand()",
    ]


def _long_strings() -> list[str]:
    return [
        "RETURN '" + "x" * 3900 + "'", "RETURN '" + "x" * 100_000 + "'", "RETURN '" + "x" * 10_000_000 + "'",
        "RETURN reduce(s = '', x IN range(1, 100000) | s + 'xxxxxxxxxx') AS s",
        "RETURN reduce(s = '', x IN range(1, 1000000) | s + 'xxxxxxxxxx') AS s",
        "RETURN size(reduce(s = 'x', x IN range(1, 40) | s + s)) AS n",
        "RETURN reduce(l = [], x IN range(1, 1000000) | l + [x]) AS l",
        "RETURN reduce(l = [1], x IN range(1, 40) | l + l) AS l",
        # 51^3 collected values, no range(): 0 + 'a' is '0a', 0 + [a] is [0, a], each step copies the last
        "MATCH (a), (b), (c) WITH collect(coalesce(a.name, 'x')) AS xs RETURN size(reduce(t = 0, x IN xs | t + x))",
        "MATCH (a), (b), (c) WITH collect([a]) AS xs RETURN size(reduce(t = 0, x IN xs | t + x))",
        "MATCH (a), (b), (c) WITH collect(a) AS xs RETURN size(reduce(t = 0, x IN xs | t + toString(id(x))))",
        "MATCH (a), (b), (c) WITH collect(a) AS xs RETURN reduce(s = '', x IN xs | s + x.name)",
        "MATCH (a), (b), (c) WITH collect(a) AS xs RETURN reduce(t = 0, x IN xs | t + size(keys(x)))",
        # a collected list searched once per item of another: every pair inside one expression
        "MATCH (a), (b), (c) WITH collect(a) AS xs RETURN size([x IN xs | size([y IN xs WHERE y = x])])",
        "MATCH (a), (b), (c) WITH collect(a) AS xs RETURN size([x IN xs WHERE NOT x IN xs])",
        "MATCH (a), (b), (c) WITH collect(a) AS xs RETURN any(x IN xs WHERE none(y IN xs WHERE y = x))",
        "MATCH (a), (b), (c) WITH collect(a) AS xs UNWIND xs AS x UNWIND xs AS y WITH x, y WHERE x = y RETURN count(*)",
        "UNWIND range(1, 100000) AS x RETURN x, '" + "y" * 1000 + "' AS pad",
        "RETURN replace('" + "a" * 3000 + "', 'a', 'aaaaaaaaaa')",
        "RETURN split('" + "a," * 1900 + "', ',')", "RETURN toUpper('" + "ß" * 3800 + "')",
        "RETURN substring('abc', 0, 9223372036854775807)", "RETURN left('abc', -1)",
        "RETURN lpad('x', 1000000000, 'y')", "RETURN string.join([x IN range(1, 1000000) | 'xx'], '')",
        "MATCH (n) RETURN n.name + '" + "z" * 3800 + "'", "RETURN '" + "\\n" * 1900 + "'",
        "RETURN '" + "é" * 3900 + "'", "RETURN '" + "💥" * 1900 + "'",
    ]


def _misc() -> list[str]:
    return [
        "", "   ", "RETURN", "MATCH", "MATCH (n RETURN n", "RETURN 1 +", "RETURN 1/0", "RETURN toInteger('x')",
        "RETURN 9223372036854775807 + 1", "RETURN -9223372036854775808 - 1", "RETURN 10 ^ 400",
        "RETURN sqrt(-1)", "RETURN [1,2,3][9223372036854775807]", "RETURN {}.x", "RETURN null.x",
        "MATCH (n) RETURN n SKIP -1", "MATCH (n) RETURN n LIMIT -1", "MATCH (n) RETURN n LIMIT 9223372036854775807",
        "EXPLAIN MATCH (n) RETURN n", "PROFILE MATCH (n) RETURN n", "CYPHER x=1 MATCH (n) RETURN n",
        "MATCH (n) WHERE n.name =~ '(a+)+$' RETURN count(n)", "RETURN 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' =~ '(a+)+$'",
        "MATCH (n) RETURN n UNION MATCH (n) RETURN n", "MATCH (n) RETURN count(n) UNION ALL RETURN 1",
        "MATCH (n) WITH n LIMIT 1 MATCH (m) RETURN count(m)", "RETURN timestamp()", "RETURN rand()",
        "RETURN localdatetime('9999-99-99')", "RETURN date({year: 100000000})", "RETURN duration('P99999999999Y')",
        "RETURN point({latitude: 1000, longitude: 1000})", "RETURN vecf32([x IN range(1, 100000) | 1.0])",
    ]


def attack_corpus() -> list[tuple[str, str]]:
    """Every attack as ``(family, cypher)``, in a fixed order."""
    families = {
        "write/admin": list(WRITES),
        "procedure": _procedure_tricks(),
        "comment/unicode": _comment_unicode_tricks(),
        "nesting": _deep_nesting(),
        "huge unwind": _huge_unwinds(),
        "cartesian": _cartesian_products(),
        "long string": _long_strings(),
        "misc": _misc(),
    }
    return [(family, q) for family, queries in families.items() for q in queries]
