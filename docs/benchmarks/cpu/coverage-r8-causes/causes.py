# Usage: python3 causes.py GENERATED.jsonl [...] > causes.json (pairs from `python -m ui.cli data generate`)
"""Counts of the surface forms and constructs behind round 8's tune-half failure causes, in generated pairs."""
import json, re, sys
from collections import Counter
def load(p): return [json.loads(l) for l in open(p)]
C = {
 # HAS_X said by X (capital): OTHER 027/068/083/090, DER 072/074
 "capital: 'the capital of <named>' (one-hop lookup, not relcompare)": lambda r: r['category']!='relcompare' and re.search(r"\bcapital of\b", r['question']) and re.search(r"\{name: '[^']+'\}\)-\[:HAS_CAPITAL\]", r['cypher']),
 "capital: 'capital of' / 'capitals of' any (not relcompare)": lambda r: r['category']!='relcompare' and re.search(r"\bcapitals? of\b", r['question'], re.I),
 "capital: 'capital cities' / 'capitals' (a city that is a capital)": lambda r: re.search(r"\bcapital (cities|city|towns?)\b|\bcapitals\b", r['question'], re.I) and 'HAS_CAPITAL' in r['cypher'],
 "capital: ungrammatical 'has/have capital <x>' or 'no country has capital'": lambda r: re.search(r"\b(has|have|had) capital\b|\bhave capital\?", r['question']),
 "capital: any question through HAS_CAPITAL": lambda r: 'HAS_CAPITAL' in r['cypher'],
 "capital: 'What is the capital of X' / 'X's capital' / 'Which city is the capital of X'": lambda r: re.search(r"(What is|Which \w+ is|Name) the capital of|'s capital\?", r['question']),
 "density: says 'density' or 'densely populated'": lambda r: re.search(r"\bdensity\b|densely populated", r['question']),
 # neighbours (DEG, OTHER 042)
 "neighbours: says 'neighbour'": lambda r: re.search(r"neighbou?r", r['question'], re.I),
 "neighbours: 'How many neighbours'": lambda r: re.search(r"How many neighbours", r['question']),
 # DER
 "derived: relcompare frame": lambda r: r['category']=='relcompare',
 "derived: compare frame": lambda r: r['category']=='compare',
 "derived: a ratio ranked (ORDER BY a / b)": lambda r: re.search(r"ORDER BY [^ ]+ / ", r['cypher']) or re.search(r"\w+\.\w+ / \w+\.\w+ AS \w+ .*ORDER BY", r['cypher']),
 "derived: share condition (part > whole / k)": lambda r: re.search(r"> \w+\.\w+ (/ \d|\* 0)", r['cypher']),
 "derived: a city against its country's capital": lambda r: re.search(r"IN_COUNTRY\]->\(\w+:Country\)-\[:HAS_CAPITAL\]->\(\w+:City\) WHERE \w+\.population", r['cypher']),
 "derived: languages compared with a neighbour": lambda r: 'BORDERS' in r['cypher'] and 'SPEAKS' in r['cypher'] and 'theirs' in r['cypher'],
 # NUM
 "numbers: round millions in words": lambda r: re.search(r"\d (million|billion)\b", r['question']),
 "numbers: a fraction in words ('and a half', 'half an hour')": lambda r: re.search(r"\band a half\b|\bhalf an?\b", r['question']),
 "numbers: utcOffset non-integer compared": lambda r: re.search(r"utcOffset [<>=]+ -?\d+\.\d", r['cypher']),
 # ADJ
 "demonym adjective (African, European, Asian, Indian, American)": lambda r: re.search(r"\b(African|European|Asian|Indian|American|Oceanian)\b", r['question']),
 # MEAN
 "rank: SPEAKS.rank = 1": lambda r: re.search(r"\.rank = 1\b", r['cypher']),
 "rank: 'main' / 'most widely spoken' / 'primary' / 'first' said with a rank": lambda r: re.search(r"\.rank", r['cypher']) and re.search(r"\b(main|primary|most widely|principal)\b", r['question']),
 "rank: any rank condition": lambda r: re.search(r"\.rank\b", r['cypher']),
 # CONV
 "return: a whole node (RETURN x)": lambda r: 'return_node' in r.get('features', []),
 # "coordinates" (021)
 "coordinates: latitude and longitude returned together": lambda r: re.search(r"\.latitude, \w+\.longitude|\.longitude, \w+\.latitude", r['cypher']),
 "coordinates: says 'coordinates' or 'location'": lambda r: re.search(r"\bcoordinates\b|\blocation\b", r['question']),
}
out = {}
for name in sys.argv[1:]:
    rows = load(name)
    res = {}
    for k, f in C.items():
        hit = [r for r in rows if f(r)]
        res[k] = {"pairs": len(hit), "queries": len({r['cypher'] for r in hit})}
    out[name] = {"pairs": len(rows), "distinct_queries": len({r['cypher'] for r in rows}), "counts": res}
print(json.dumps(out, indent=1))
