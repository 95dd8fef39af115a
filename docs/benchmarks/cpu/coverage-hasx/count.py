"""Coverage of the two wording fixes of 2026-12-03 (HAS_X said as a verb; share fractions), counted over
generated pairs: pairs / distinct queries per test, pairs per share fraction, and the distinct queries each
file has that the first one has not (and the reverse).
Usage: python3 count.py NAME=pairs.jsonl ... > counts.json
The pairs: `cypherloop data generate --graph countries --n 20000 --out F --report report-….json` (seed 0) at
main 2f97739, at 4e18a37 (HAS_X wording) and 58f33cd (share fractions); movies likewise. The pairs files
(9 MB each) are not kept; the reports are."""
import json
import re
import sys
from collections import Counter

BARE = re.compile(r"\b(have|has|had|having) capitals?\b")
FRACTION = re.compile(r"> \S+ (/ (\d+)\.0|\* (0\.\d+))")
WORDS = {"2": "half", "3": "a third", "4": "a quarter", "5": "a fifth", "10": "a tenth"}

TESTS = {
    "bare 'have capital' / 'has capital' (no article, no 'as')": lambda q, c: BARE.search(q),
    "every pair whose query goes through HAS_CAPITAL": lambda q, c: "HAS_CAPITAL" in c,
    "'have X as their/its capital'":
        lambda q, c: re.search(r"\b(have|has|had) .{1,80}? as (their|its) capital\b", q),
    "'have as capital' (the object asked for: 'the cities that countries have as capital')":
        lambda q, c: re.search(r"\b(have|has|had) as capital\b", q),
    "'have a capital' / 'with a capital'": lambda q, c: re.search(r"\b(have|has|with) a capital\b", q),
    "'whose capital is'": lambda q, c: re.search(r"\bwhose capital is\b", q),
}


def fraction(c):
    m = FRACTION.search(c)
    if not m:
        return None
    return WORDS.get(m.group(2), f"1/{m.group(2)}") if m.group(2) else f"{round(float(m.group(3)) * 100):g} %"


def main():
    out, first = {}, None
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        with open(path) as f:
            rows = [json.loads(line) for line in f]
        queries = {r["cypher"] for r in rows}
        res = {"pairs": len(rows), "distinct queries": len(queries)}
        for label, test in TESTS.items():
            hit = [r for r in rows if test(r["question"], r["cypher"])]
            res[label] = [len(hit), len({r["cypher"] for r in hit})]
        shares = [r for r in rows if "share_condition" in r.get("features", [])]
        per = Counter(fraction(r["cypher"]) for r in shares)
        per_q = Counter(fraction(c) for c in {r["cypher"] for r in shares})
        res["share condition: pairs / distinct queries per fraction"] = {
            k: [per[k], per_q[k]] for k in sorted(per, key=lambda k: (k is None, str(k)))
        }
        if first is None:
            first = (name, queries)
        else:
            res[f"distinct queries not in {first[0]}"] = len(queries - first[1])
            res[f"distinct queries of {first[0]} not here"] = len(first[1] - queries)
        out[name] = res
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
