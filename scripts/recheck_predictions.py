"""Re-check stored predictions offline: what a change to the query check, or to the shape of a reply, would
have done to answers already scored (dev benchmark; reads ../shared/bench or docs/benchmarks; never a test).

    .venv/bin/python scripts/recheck_predictions.py --graph movies --home bench-output/home \\
        --dataset ../shared/bench/dev/movies.jsonl \\
        --mode repair --predictions \\
        docs/benchmarks/gpu/bootstrap-r3/pred-movies-bootstrap_plus_candidates_rp_1.0.jsonl.gz
    .venv/bin/python scripts/recheck_predictions.py --graph countries --home bench-output/home \\
        --dataset docs/benchmarks/heldout/questions.jsonl \\
        --predictions docs/benchmarks/gpu/bootstrap-r4/pred-countries-bootstrap.jsonl.gz --mode node-key

``--mode repair``: each final query through the product's reply cleanup and schema check
(``agent.cleanup.clean_cypher``, ``agent.schema_check.check_cypher``, ``agent.graph.grounded_literals``: the
agent's validate step), run
read-only when they changed it, and scored against the gold query with the bench rule
(``agent.core.cypher_text.same_result``). A prediction's final query is what the agent ran after its own
repair rounds, so this shows what the current check adds to them, not a re-run of the model.
``--mode node-key``: a reply that returns a bare node (``RETURN m``) returns the node's key property
instead (``RETURN m.title``), to see how much of a score is the return convention of the gold queries.
``--mode repair-node-key``: both, the repair first: what the repairs are worth where the convention hides
them.
``--mode no-distinct`` (``RETURN DISTINCT`` → ``RETURN``) and ``--mode having-shows``
(``WITH …, agg AS n WHERE n … RETURN k`` → ``RETURN k, n``): the same for two conventions the generator
was moved toward people's on 2026-12-03 (grammar.DISTINCT_REPEATS_P, HAVING_SHOWS_P); what a model
trained on them might gain at most, not a measurement of one.
``--changes FILE`` appends each changed query with its score before and after (JSONL).
``--half tune|report`` scores one half of the questions only, split by id hash as
``scripts/bench_retrieval.py`` splits them (``in_choose_part``: tune = its choose part): find and measure a
change on the tune half, then report it once on the other.
The graph must be loaded in ``--home`` (``cypherloop graph load FILE --graph NAME``). Prints one line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

KEYS = ("name", "title", "companyName", "productName", "categoryName", "code")
HAVING = re.compile(r"\bAS\s+(\w+)\s+WHERE\s+\1\b")
BARE_NODE = re.compile(r"RETURN\s+(DISTINCT\s+)?(?P<var>\w+)(\s+ORDER BY|\s+LIMIT|\s*$)")


def _rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def _having_shows(cypher: str) -> str:
    """``WITH p, count(m) AS n WHERE n > 3 RETURN p.name`` → ``… RETURN p.name, n``."""
    m = HAVING.search(cypher)
    ret = cypher.rfind("RETURN")
    if not m or ret < m.end():
        return cypher
    cut = re.search(r"\s+(ORDER BY|LIMIT)\b", cypher[ret:])
    end = ret + (cut.start() if cut else len(cypher) - ret)
    if re.search(rf"\b{m.group(1)}\b", cypher[ret:end]):
        return cypher
    return cypher[:end] + f", {m.group(1)}" + cypher[end:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", required=True)
    ap.add_argument("--home", type=Path, default=ROOT / "bench-output" / "home")
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--predictions", type=Path, required=True)
    ap.add_argument("--mode", default="repair",
                    choices=("repair", "node-key", "repair-node-key", "no-distinct", "having-shows"))
    ap.add_argument("--half", choices=("all", "tune", "report"), default="all")
    ap.add_argument("--changes", type=Path,
                    help="append each changed query (id, before, after, scores) to this JSONL")
    args = ap.parse_args(argv)
    for p in (args.dataset, args.predictions):
        if not p.is_file():
            print(f"error: {p}: no such file", file=sys.stderr)
            return 2
    os.environ["CYPHERLOOP_HOME"] = str(args.home)
    from agent.cleanup import clean_cypher
    from agent.core.cypher_text import same_result
    from agent.core.errors import CypherloopError
    from agent.core.settings import Settings
    from agent.factory import open_graph_checked
    from agent.graph import grounded_literals
    from agent.schema_check import check_cypher

    try:
        store = open_graph_checked(Settings(), args.graph)
    except CypherloopError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    schema = store.schema()
    gold = {r["id"]: r["cypher"] for r in _rows(args.dataset)}
    preds = _rows(args.predictions)
    if args.half != "all":
        from bench_retrieval import in_choose_part

        preds = [r for r in preds if in_choose_part(r["id"]) == (args.half == "tune")]

    def rewrite(cypher: str) -> str:
        if args.mode in ("repair", "repair-node-key"):
            checked = check_cypher(clean_cypher(cypher), schema)
            cypher = grounded_literals(checked.cypher, store, 10.0)[0] if checked.ok else checked.cypher
            if args.mode == "repair":
                return cypher
        if args.mode == "no-distinct":
            return re.sub(r"\bRETURN\s+DISTINCT\b", "RETURN", cypher, flags=re.IGNORECASE)
        if args.mode == "having-shows":
            return _having_shows(cypher)
        m = BARE_NODE.search(cypher)
        label = m and re.search(rf"\({m.group('var')}:(\w+)", cypher)
        entry = label and schema.label(label.group(1))
        key = entry and next((k for k in KEYS if k in {p.name for p in entry.properties}), None)
        if not key:
            return cypher
        return cypher[: m.start("var")] + f"{m.group('var')}.{key}" + cypher[m.end("var"):]

    changed = gained = lost = 0
    for r in preds:
        before = r.get("predicted_cypher") or ""
        after = rewrite(before)
        if after == before or r["id"] not in gold:
            continue
        changed += 1
        try:
            ok = same_result(store.query(gold[r["id"]]).rows, store.query(after).rows)
        except Exception:  # noqa: BLE001 - a query the database refuses is simply not right
            ok = False
        gained += ok and not r["correct"]
        lost += r["correct"] and not ok
        if args.changes:
            with args.changes.open("a") as f:
                f.write(json.dumps({"predictions": args.predictions.name, "mode": args.mode, "id": r["id"],
                                    "before": before, "after": after, "correct_before": bool(r["correct"]),
                                    "correct_after": ok}) + "\n")
    base = sum(bool(r["correct"]) for r in preds)
    print(json.dumps({"graph": args.graph, "mode": args.mode, "predictions": str(args.predictions),
                      "half": args.half, "n": len(preds), "correct": base, "changed": changed,
                      "gained": gained, "lost": lost, "correct_after": base + gained - lost}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
