"""Coverage of the verbose questions of 2026-12-04 (``render.VERBOSE_P``), counted over generated pairs:
pairs, distinct queries, verbose questions (a context sentence before, or an instruction about the answer
after), questions put as a request, instructions by kind, the most used context template, and instructions
that disagree with the query's RETURN (names only with one name-like column, a count with one count,
"together with their …" with the key and properties of one node; a question's own "… along with their X"
after a value that ends in "?" or "." reads as one too), and how the kept queries differ from the first
file's.
Usage (from the repository root): PYTHONPATH=. .venv/bin/python docs/benchmarks/cpu/coverage-verbose/count.py
    NAME=pairs.jsonl ... > counts.json
The pairs: `cypherloop data generate --graph countries --n 20000 --out F --report report-….json` (seed 0) at
main and on the change; movies likewise. The pairs files (9 MB each) are not kept; the reports are."""

import json
import re
import sys
from collections import Counter

from finetune.synth import render

ONE_NAME = re.compile(r" RETURN (DISTINCT )?\w+\.\w*([Nn]ame|[Tt]itle)\w*( ORDER BY [^,]*)?( LIMIT \d+)?$")
ONE_COUNT = re.compile(r" RETURN count\((DISTINCT )?\w+(\.\w+)?\)( AS \w+)?$")
KEY_AND_MORE = re.compile(r" RETURN (DISTINCT )?(\w+)\.\w+(, \2\.\w+)+( LIMIT \d+)?$")
AGREES = {
    "names": lambda r: ONE_NAME.search(r["cypher"]),
    "name": lambda r: ONE_NAME.search(r["cypher"]),
    "count": lambda r: ONE_COUNT.search(r["cypher"]),
    "extra": lambda r: KEY_AND_MORE.search(r["cypher"]),
}
CONTEXTS = [
    (t, re.compile(render._template_re(t) + " "))
    for t in render.CONTEXT_ONE + render.CONTEXT_TWO + render.CONTEXT_PROP + render.CONTEXT_ROLE
    + render.CONTEXT_OWNED
]
REQUEST = re.compile(
    "|".join(
        re.escape(h.strip())
        for h in [t.split("{")[0] for t in render.ASK_REQUEST + render.DO_REQUEST]
        + [h for _, heads in render.WANT_HEADS for h in heads]
    )
    + r"\b",
    re.I,
)


def asked_as_request(question):
    """The question (after its context sentence, if any) opens with a request's words."""
    m = next((rx.match(question) for _, rx in CONTEXTS if rx.match(question)), None)
    return bool(REQUEST.match(question[m.end() :] if m else question))


def pairs_of(arg):
    """NAME=path → (NAME, the pairs of the JSONL file)."""
    name, path = arg.split("=", 1)
    with open(path) as f:
        return name, [json.loads(line) for line in f]


def main():
    out, first = {}, None
    for name, rows in map(pairs_of, sys.argv[1:]):
        queries = {r["cypher"] for r in rows}
        parts = [render.verbose_parts(r["question"]) for r in rows]
        verbose = [r for r, (c, k) in zip(rows, parts, strict=True) if c or k]
        kinds = Counter(k for _, k in parts if k)
        bad = [r["question"] for r, (_, k) in zip(rows, parts, strict=True) if k and not AGREES[k](r)]
        used = Counter(next((t for t, rx in CONTEXTS if rx.match(r["question"])), None) for r in rows)
        used.pop(None, None)
        res = {
            "pairs": len(rows),
            "distinct queries": len(queries),
            "verbose questions": len(verbose),
            "verbose share": round(len(verbose) / len(rows), 4),
            "with a context sentence": sum(c for c, _ in parts),
            "put as a request (verbose ones)": sum(asked_as_request(r["question"]) for r in verbose),
            "instructions by kind": dict(kinds.most_common()),
            "instructions that disagree with the RETURN": len(bad),
            "context templates used": len(used),
            "most used context template": list(used.most_common(1)[0]) if used else None,
        }
        order = list(dict.fromkeys(r["cypher"] for r in rows))
        if first is None:
            first = order
        else:  # a query is kept only where one of its renderings is a new question: a few differ both ways
            both = set(order) & set(first)
            res["distinct queries not in the first file"] = len(set(order) - set(first))
            res["distinct queries of the first file not here"] = len(set(first) - set(order))
            res["the queries of both files in the same order"] = [q for q in order if q in both] == [
                q for q in first if q in both
            ]
        out[name] = res
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
