"""``cypherloop feedback``: look at and curate the feedback store.

    cypherloop feedback stats
    cypherloop feedback list [--status pending] [--kind examples|feedback|all] [--limit N]
    cypherloop feedback export FILE [--graph NAME] [--status approved[,pending]]
    cypherloop feedback import FILE.jsonl [--graph NAME] [--pending]
    cypherloop feedback review ID approve|reject
    cypherloop feedback review ID approve --cypher "MATCH …" [--question "…"]   approve it as edited
    cypherloop feedback recheck [--graph NAME]

IDs may be given as a unique prefix (as ``list`` prints them). Safe to run while the UI is open:
the store serialises writers from several processes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.core.drift import SnapshotStore
from agent.core.errors import DataError
from agent.core.feedback import REVIEW_STATUSES, FeedbackStore, VerifiedExample
from agent.core.settings import load_settings
from agent.evaluation import load_dataset
from agent.factory import open_graph_checked
from feedback_store.chroma import ChromaFeedbackStore
from finetune.drift import approve, approve_edited, example_of, recheck_examples


def _approve_edited(args: argparse.Namespace, store: FeedbackStore, item: str,
                    ex: VerifiedExample | None) -> int:
    if args.decision != "approve":
        raise DataError("--cypher and --question edit an example as it is approved; reject takes neither")
    if ex is None:
        raise DataError(f"{item[:12]} has no verified example to edit (a 👎 without a correction)")
    settings = load_settings(home=args.home, graph=ex.graph)
    graph = open_graph_checked(settings)
    try:
        new = approve_edited(store, item, args.question or ex.question, args.cypher or ex.cypher, graph,
                             settings.query_timeout_s)
    finally:
        graph.close()
    if new.revised_from:
        print(f"{new.id}: approved, edited from {new.revised_from} (kept in the store, rejected)")
    else:
        print(f"{new.id}: approved (unchanged)")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cypherloop feedback",
        description="Feedback store: stats | list | export | import | review | recheck."
    )
    p.add_argument("--home", type=Path, default=None, help="cypherloop home directory (default: settings)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    stats = sub.add_parser("stats", help="counts of interactions, 👍/👎, corrections and examples")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")

    ls = sub.add_parser("list", help="list verified examples and feedback")
    ls.add_argument(
        "--status", choices=REVIEW_STATUSES, default=None, help="only items with this review status"
    )
    ls.add_argument(
        "--kind", choices=("all", "examples", "feedback"), default="all", help="what to list (default: all)"
    )
    ls.add_argument("--graph", default=None, help="only examples of this graph")
    ls.add_argument("--limit", type=int, default=50, help="at most this many of each kind (0: all)")

    ex = sub.add_parser("export", help="write verified examples as JSONL for training")
    ex.add_argument("file", type=Path, help="output .jsonl file")
    ex.add_argument("--graph", default=None, help="only this graph (default: all)")
    ex.add_argument(
        "--status", default="approved", help="comma-separated statuses to export (default: approved)"
    )

    im = sub.add_parser(
        "import",
        help="verified examples from your own question/Cypher pairs (JSONL), each run read-only first",
    )
    im.add_argument("file", type=Path, help="JSONL, one object a line with 'question' and 'cypher'")
    im.add_argument("--graph", default=None, help="graph the queries are for (default: settings)")
    im.add_argument("--pending", action="store_true", help="store them for review instead of approved")

    rv = sub.add_parser("review", help="approve or reject a correction / example")
    rv.add_argument("id", help="id (or unique prefix) of a feedback record or example")
    rv.add_argument("decision", choices=("approve", "reject"))
    rv.add_argument("--cypher", default=None,
                    help="approve the example with this query instead (checked and run read-only on its "
                    "graph first; the original stays in the store, rejected)")
    rv.add_argument("--question", default=None, help="approve the example with this question instead")

    rc = sub.add_parser(
        "recheck",
        help="re-run every stored example of a graph on its live schema; mark each valid / failing / empty",
    )
    rc.add_argument("--graph", default=None, help="graph to re-check (default: settings)")
    return p


def _recheck(args: argparse.Namespace, store: FeedbackStore) -> int:
    """0 when no stored example fails on the live schema; 1 when some do (listed, out of retrieval)."""
    settings = load_settings(home=args.home, **({"graph": args.graph} if args.graph else {}))
    graph = open_graph_checked(settings)
    try:
        report = recheck_examples(store, graph, SnapshotStore(settings.home_dir), settings.query_timeout_s)
    finally:
        graph.close()
    print(report.summary())
    for ex_id, question, why in report.failing[:20]:
        print(f"  {ex_id[:12]}  {_short(question, 50):<50}  {_short(why, 100)}")
    if len(report.failing) > 20:
        print(f"  … and {len(report.failing) - 20} more")
    if report.failing:
        print("failing examples are no longer retrieved or trained on; review them (Review tab, filter "
              "'failing', or `cypherloop feedback review ID approve|reject`: approving re-checks it first)")
    return 1 if report.failing else 0


def _import(args: argparse.Namespace, store: FeedbackStore) -> int:
    """0 when every pair was stored (or was there already); 1 when some were refused (listed)."""
    pairs = [(it.question, it.cypher) for it in load_dataset(args.file, require_id=False)]
    settings = load_settings(home=args.home, **({"graph": args.graph} if args.graph else {}))
    graph = open_graph_checked(settings)
    try:
        report = store.import_examples(pairs, graph, status="pending" if args.pending else "approved")
    finally:
        graph.close()
    status = "pending review" if args.pending else "approved"
    print(
        f"graph {settings.graph}: {report.added} examples imported ({status}), {report.present} already "
        "present, "
        f"{len(report.refused)} refused"
    )
    for n, why in report.refused[:10]:
        print(f"  line {n}: {_short(why, 160)}")
    if len(report.refused) > 10:
        print(f"  … and {len(report.refused) - 10} more")
    return 1 if report.refused else 0


def _short(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    store = ChromaFeedbackStore(load_settings(home=args.home))

    if args.action == "stats":
        counts = store.counts()
        if args.json:
            print(json.dumps(counts, indent=2))
        else:
            width = max(len(k) for k in counts)
            print(f"feedback store: {store.location}")
            for k, v in counts.items():
                print(f"  {k:<{width}}  {v}")
        return 0

    if args.action == "list":
        if args.kind in ("all", "examples"):
            items = store.list_examples(graph=args.graph, status=args.status)
            items = items[-args.limit :] if args.limit else items
            print(f"examples ({len(items)}):")
            for e in items:
                flag = "FAILING " if e.drift == "failing" else ""
                print(
                    f"  {e.id[:12]}  {e.status:<8}  {e.source:<10}  {e.graph:<10}  "
                    f"{flag}{_short(e.question, 50):<50}  {_short(e.cypher, 70)}"
                )
        if args.kind in ("all", "feedback"):
            rows = store.feedback_rows(status=args.status, limit=args.limit)
            print(f"feedback ({len(rows)}):")
            for r in rows:
                verdict = "up" if r["verdict"] == "up" else "down"
                what = _short(r["corrected_cypher"], 70) if r["corrected_cypher"] else "(no correction)"
                print(
                    f"  {r['id'][:12]}  {r['status']:<8}  {verdict:<4}  {r['graph']:<10}  "
                    f"{_short(r['question'], 50):<50}  {what}"
                )
        return 0

    if args.action == "export":
        wanted = tuple(s.strip() for s in args.status.split(",") if s.strip())
        bad = [s for s in wanted if s not in REVIEW_STATUSES]
        if bad or not wanted:
            raise DataError(
                f"--status takes {', '.join(REVIEW_STATUSES)} (comma-separated), got {args.status!r}"
            )
        n = store.export_examples(args.file, graph=args.graph, status=wanted)
        print(f"wrote {n} examples to {args.file}")
        return 0

    if args.action == "import":
        return _import(args, store)

    if args.action == "recheck":
        return _recheck(args, store)

    if args.action == "review":
        item = store.resolve_id(args.id)
        status = "approved" if args.decision == "approve" else "rejected"
        ex = example_of(store, item)
        if args.cypher is not None or args.question is not None:
            return _approve_edited(args, store, item, ex)
        if status == "approved" and ex is not None and ex.drift == "failing":  # only if it passes now
            settings = load_settings(home=args.home, graph=ex.graph)
            graph = open_graph_checked(settings)
            try:
                approve(store, item, graph, settings.query_timeout_s)
            finally:
                graph.close()
        else:
            store.review(item, status)
        print(f"{item}: {status}")
        return 0
    return 2  # unreachable: argparse requires an action
