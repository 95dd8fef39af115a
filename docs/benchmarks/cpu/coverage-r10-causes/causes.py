"""Coverage of the constructs round 10's generator-side causes need, counted by regexes over question and query:
pairs / distinct queries.  Usage: python3 causes.py NAME=pairs.jsonl ... > causes.json"""
import json
import re
import sys

CAP_END = re.compile(r"\((\w*):Country\)-\[:HAS_CAPITAL\]->\((\w+):City\)|\((\w+):City\)<-\[:HAS_CAPITAL\]-\((\w*):Country\)")


def capital_focus(q, c):
    """The query lists or counts capitals themselves, with a condition on the capital (the owner unnamed and
    unconditioned): `MATCH (:Country)-[:HAS_CAPITAL]->(c:City) WHERE c.p < v RETURN c.name`."""
    m = CAP_END.search(c)
    if not m:
        return False
    owner, city = (m.group(1), m.group(2)) if m.group(2) else (m.group(4), m.group(3))
    if owner and re.search(r"\b" + re.escape(owner) + r"[.)]", c.replace(m.group(0), "")):
        return False  # the owner is used elsewhere (returned, filtered, walked on)
    if "{" in m.group(0):
        return False
    return bool(re.search(r"\b" + city + r"\.\w+ (<|>|=|<=|>=|STARTS|CONTAINS|ENDS)", c)) and bool(
        re.search(r"RETURN (DISTINCT )?(count\()?" + city + r"\b", c))


TESTS = {
    "a range of round numbers with the scale word once ('between 2 and 4 million')":
        lambda q, c: re.search(r"\b(between|from) [\d.]+ (and|to) [\d.]+ (million|billion)", q),
    "a range of round numbers with the scale word twice":
        lambda q, c: re.search(r"\b(between|from) [\d.]+ (million|billion) (and|to) [\d.]+ (million|billion)", q),
    "every 'between' of round millions in the query (>= k000000 AND <= m000000)":
        lambda q, c: re.search(r">= \d+00000 AND \w+\.\w+ <= \d+00000\b", c),
    "a half in words ('7 and a half', 'seven and a half')": lambda q, c: "and a half" in q,
    "... in letters ('seven and a half')": lambda q, c: re.search(r"\b[a-z]+ and a half", q) and not re.search(r"\d and a half", q),
    "a value x.5 in the query": lambda q, c: re.search(r"[=<>] -?\d+\.5\b", c),
    "capitals themselves with a condition on them (the owner bare)": capital_focus,
    "... saying 'capital'": lambda q, c: capital_focus(q, c) and re.search(r"\bcapital", q, re.I),
    "the old wording 'countries have capital', 'has capital X'":
        lambda q, c: re.search(r"\b(has|have|had) (had )?capital\b", q),
    "every pair whose query goes through HAS_CAPITAL": lambda q, c: "HAS_CAPITAL" in c,
    "says 'capital'": lambda q, c: re.search(r"\bcapital", q, re.I),
}


def main():
    out = {}
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        rows = [json.loads(x) for x in open(path)]
        res = {"pairs": len(rows), "distinct queries": len({r["cypher"] for r in rows})}
        for k, f in TESTS.items():
            m = [r for r in rows if f(r["question"], r["cypher"])]
            res[k] = [len(m), len({r["cypher"] for r in m})]
        out[name] = res
    json.dump(out, sys.stdout, indent=1)


main()
