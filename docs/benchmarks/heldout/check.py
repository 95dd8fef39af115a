"""Dev check of the held-out set: every gold query runs, returns rows, and does not depend on storage order.

    .venv/bin/python docs/benchmarks/heldout/check.py [--keep HOME] [-v]

Loads ``countries.cypher`` twice into a scratch home (its embedded FalkorDB is stopped and the home
removed afterwards): once as written, once with every UNWIND batch and every run of node or
relationship statements in reverse order, so that nodes and relationships get other internal ids
and another storage order. Then, for each question in ``questions.jsonl``:
- the gold runs read-only on both loads, returns at least one row and fewer than the eval's row cap;
- both results are the same by the project's own scoring rule (``agent.core.cypher_text.same_result``);
- a gold ending in ``ORDER BY … LIMIT n`` has no tie at the cut: the sort keys of rows n and n+1 differ
  (checked by running the query again with the keys added as extra columns and ``LIMIT n+1``).
It also checks the file itself (ids, categories, source) and the graph's declared counts. Prints one
summary line; exits 1 on any failure. Not a test: tests/ never reads docs/benchmarks.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SCRIPT = HERE / "countries.cypher"
QUESTIONS = HERE / "questions.jsonl"
CATEGORIES = {
    "Simple Retrieval Queries",
    "Simple Aggregation Queries",
    "Complex Retrieval Queries",
    "Complex Aggregation Queries",
    "Pathfinding Queries",
    "Verbose query",
}
MAX_ROWS = 1000
"""The eval's row cap for gold queries (``run_eval``): a gold must stay under it."""
HEADER = re.compile(r"//\s*graph\s+'([^']+)':\s*(\d+)\s+nodes,\s*(\d+)\s+relationships")
TAIL = re.compile(
    r"^(?P<head>.*\bRETURN\s+(?:DISTINCT\s+)?)(?P<items>.*?)\s+ORDER\s+BY\s+(?P<keys>.*?)\s+LIMIT\s+(?P<n>\d+)\s*$",
    re.S | re.I,
)
AGGREGATES = re.compile(r"\b(count|sum|avg|min|max|collect)\s*\(", re.I)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets and quotes."""
    parts, depth, quote, buf = [], 0, None, []
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            buf.append(c)
            if c == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"`":
            quote = c
            buf.append(c)
        elif c in "([{":
            depth += 1
            buf.append(c)
        elif c in ")]}":
            depth -= 1
            buf.append(c)
        elif c == sep and depth == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    parts.append("".join(buf))
    return [p.strip() for p in parts]


def reversed_script(script: str) -> str:
    """The same graph with every UNWIND list and every run of node/relationship statements reversed."""
    lines = script.rstrip("\n").split("\n")
    head = [x for x in lines if not x.startswith("UNWIND [") and not x.startswith("MATCH (n) WHERE n._ldid")]
    tail = [x for x in lines if x.startswith("MATCH (n) WHERE n._ldid")]
    node_stmts, rel_stmts = [], []
    for line in lines:
        if not line.startswith("UNWIND ["):
            continue
        end = line.index("] AS r ")
        rows = split_top(line[len("UNWIND [") : end])
        flipped = f"UNWIND [{', '.join(reversed(rows))}{line[end:]}"
        (rel_stmts if "CREATE (a)-[" in line else node_stmts).append(flipped)
    return "\n".join(head + node_stmts[::-1] + rel_stmts[::-1] + tail) + "\n"


def tie_probe(cypher: str) -> tuple[str, list[str | int], int] | None:
    """``(probe query, where each sort key sits in its rows, n)`` for a gold ending in ORDER BY … LIMIT n.

    A key that is a returned column (by alias or by its text) is read from that column; any other key
    is added as an extra column. None when the query has no such tail or a key cannot be added safely
    (a plain expression next to aggregates would change the grouping).
    """
    m = TAIL.match(cypher)
    if not m:
        return None
    items = split_top(m["items"])
    names = []
    for item in items:
        alias = re.search(r"\s+AS\s+(\w+)\s*$", item, re.I)
        names.append(alias.group(1) if alias else item)
    keys = [
        re.sub(r"\s+(ASC|DESC|ASCENDING|DESCENDING)\s*$", "", k, flags=re.I) for k in split_top(m["keys"])
    ]
    extra, where = [], []
    aggregating = any(AGGREGATES.search(i) for i in items)
    for k in keys:
        if k in names:
            where.append(names.index(k))
            continue
        if aggregating and not AGGREGATES.search(k):
            return None
        where.append(f"__k{len(extra)}")
        extra.append(f"{k} AS __k{len(extra)}")
    n = int(m["n"])
    probe = f"{m['head']}{', '.join(items + extra)}\nORDER BY {m['keys']}\nLIMIT {n + 1}"
    return probe, where, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="use this home and leave its server running")
    parser.add_argument(
        "--questions", type=Path, default=QUESTIONS, help="question set (default: the held-out one)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per question")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from agent.core.cypher_text import same_result as results_match
    from agent.evaluation import load_dataset
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script
    from agent.core.settings import Settings

    problems: list[str] = []
    raw = [json.loads(x) for x in args.questions.read_text(encoding="utf-8").splitlines() if x.strip()]
    items = load_dataset(args.questions)
    for obj in raw:
        if obj.get("category") not in CATEGORIES:
            problems.append(f"{obj['id']}: category {obj.get('category')!r}")
        if obj.get("source") != "handwritten":
            problems.append(f"{obj['id']}: source {obj.get('source')!r}")
    if len({i.question.strip().lower() for i in items}) != len(items):
        problems.append("a question appears twice")

    script = SCRIPT.read_text(encoding="utf-8")
    name, want_nodes, want_rels = (lambda m: (m[1], int(m[2]), int(m[3])))(
        HEADER.search(script.split("\n")[0])
    )
    home = args.keep or Path(tempfile.mkdtemp(prefix="cl_heldout_"))
    settings = Settings(_env_file=None, home=home, graph_backend="embedded")
    stores = []
    ties_checked = ties_ok = 0
    try:
        for suffix, text in (("a", script), ("b", reversed_script(script))):
            path = home / f"{name}_{suffix}.cypher"
            path.write_text(text, encoding="utf-8")
            store = open_graph(settings, f"{name}_{suffix}")
            store.delete_graph()
            report = load_script(store, path)
            if (report.nodes, report.relationships) != (want_nodes, want_rels):
                problems.append(
                    f"load {suffix}: {report.nodes} nodes, {report.relationships} relationships; "
                    f"the script declares {want_nodes}, {want_rels}"
                )
            stores.append(store)
        for item in items:
            results = []
            for store in stores:
                try:
                    res = store.query(item.cypher, timeout_s=30.0, max_rows=MAX_ROWS)
                except Exception as e:  # noqa: BLE001 - any failure of a gold is reported, not raised
                    problems.append(f"{item.id}: {type(e).__name__}: {str(e)[:200]}")
                    break
                results.append(res)
            else:
                a, b = results
                if not a.rows:
                    problems.append(f"{item.id}: no rows")
                if a.truncated:
                    problems.append(f"{item.id}: {MAX_ROWS} rows or more")
                if not results_match(a.rows, b.rows):
                    problems.append(f"{item.id}: the two loads give different rows")
                probe = tie_probe(item.cypher)
                if probe is None and re.search(r"\bLIMIT\s+\d+\s*$", item.cypher, re.I):
                    problems.append(f"{item.id}: LIMIT whose sort keys this check cannot read")
                elif probe is not None:
                    query, where, n = probe
                    rows = stores[0].query(query, timeout_s=30.0, max_rows=n + 1)
                    cols = rows.columns
                    idx = [w if isinstance(w, int) else cols.index(w) for w in where]
                    ties_checked += 1
                    if len(rows.rows) > n and [rows.rows[n - 1][i] for i in idx] == [
                        rows.rows[n][i] for i in idx
                    ]:
                        problems.append(f"{item.id}: tie at the LIMIT {n} cut")
                    else:
                        ties_ok += 1
                if args.verbose:
                    print(f"{item.id} {len(a.rows):>4} rows")
    finally:
        for store in stores:
            store.close()
        if not args.keep:
            stop(settings)
            shutil.rmtree(home, ignore_errors=True)
    for p in problems:
        print("FAIL", p)
    cats = Counter(i.category for i in items)
    print(
        f"{'OK' if not problems else 'FAILED'}: {len(items)} questions on graph {name!r} "
        f"({want_nodes} nodes, {want_rels} relationships, loaded twice in different orders); "
        f"{len(items) - len({p.split(':')[0] for p in problems})} golds run, return rows and match across loads; "
        f"{ties_ok} of {ties_checked} ORDER BY…LIMIT cuts tie-free; {len(problems)} problem(s); "
        + ", ".join(f"{k} {v}" for k, v in sorted(cats.items()))
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
