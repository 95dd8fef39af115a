"""``cypherloop graph …`` and ``cypherloop demo …``.

    cypherloop graph load FILE.cypher [--graph NAME] [--replace]
    cypherloop graph schema [--graph NAME] [--json] [--diff]
    cypherloop graph query "MATCH (n) RETURN count(n)" [--graph NAME] [--json] [--timeout S] [--max-rows N]
    cypherloop graph stats [--graph NAME] [--json]
    cypherloop graph stop
    cypherloop demo init [--seed N] [--force]

Every command takes ``--home DIR`` (default ``CYPHERLOOP_HOME`` or ``./.cypherloop``). User errors
are raised as ``CypherloopError`` subclasses; the dispatcher prints one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from agent.core.drift import SnapshotStore
from agent.core.errors import ConfigError, DataError
from agent.core.settings import Settings, load_settings
from agent.demo import build_demo, node_count
from agent.graphdb import GraphStore, open_graph
from agent.graphdb.embedded import stop
from agent.graphdb.loader import load_script
from finetune.drift import schema_diff
from ui.text_table import format_table


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--home",
        type=Path,
        default=argparse.SUPPRESS,
        help="cypherloop home directory (default: CYPHERLOOP_HOME or ./.cypherloop)",
    )
    return p


def _graph_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graph", default=None, help="graph name (default: CYPHERLOOP_GRAPH, 'demo')")


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    return load_settings(home=getattr(args, "home", None), graph=getattr(args, "graph", None), **overrides)


# --- output -----------------------------------------------------------------------------------


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# --- graph --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="cypherloop graph",
        description="Graph database: load Cypher scripts, inspect the schema, run read-only queries.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "load",
        parents=[common],
        help="run a multi-statement Cypher script (statements end with ';' at line end)",
    )
    p.add_argument("file", type=Path, help="the .cypher script")
    _graph_opt(p)
    p.add_argument("--replace", action="store_true", help="delete the graph first")

    p = sub.add_parser("schema", parents=[common], help="labels, relationship types, properties and patterns")
    _graph_opt(p)
    p.add_argument("--json", action="store_true", help="structured JSON instead of the prompt text")
    p.add_argument("--diff", action="store_true",
                   help="what changed since the last recorded snapshot (stored examples, bootstrap, adapters "
                        "and `feedback recheck` record one)")

    p = sub.add_parser("query", parents=[common], help="run one read-only Cypher query (writes are refused)")
    p.add_argument("cypher", help='the query, e.g. "MATCH (n) RETURN count(n)"')
    _graph_opt(p)
    p.add_argument(
        "--json", action="store_true", help="print columns, rows, truncated and elapsed_ms as JSON"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="time limit in seconds (default: CYPHERLOOP_QUERY_TIMEOUT_S)",
    )
    p.add_argument(
        "--max-rows", type=int, default=None, metavar="N", help="row cap (default: CYPHERLOOP_MAX_ROWS)"
    )

    p = sub.add_parser("stats", parents=[common], help="node and relationship counts")
    _graph_opt(p)
    p.add_argument("--json", action="store_true")

    sub.add_parser("stop", parents=[common], help="save and stop the embedded FalkorDB of this home")
    return parser


def graph_main(argv: list[str] | None = None) -> int:
    """``cypherloop graph``; returns the exit code."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return {"load": _load, "schema": _schema, "query": _query, "stats": _stats, "stop": _stop}[args.cmd](args)


def _open(settings: Settings, name: str | None = None) -> GraphStore:
    return open_graph(settings, name)


def _load(args: argparse.Namespace) -> int:
    path: Path = args.file
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a Cypher script")
    if not path.is_file():
        raise DataError(f"no such Cypher script: {path}")
    settings = _settings(args)
    store = _open(settings)
    try:
        report = load_script(store, path, replace=args.replace, progress=True)
        counts = store.stats()
    finally:
        store.close()
    nodes, rels = sum(counts["nodes"].values()), sum(counts["relationships"].values())
    print(
        f"loaded {path} into graph {store.name!r}: {report.statements} statements in {report.seconds:.1f} s; "
        f"the graph has {nodes} nodes and {rels} relationships"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _open(settings)
    try:
        if args.diff:
            return _schema_diff(settings, store, args.json)
        schema = store.schema(refresh=True)
    finally:
        store.close()
    if args.json:
        _print_json(schema.to_dict())
    else:
        print(schema.to_text(None, max_chars=10**9))
    return 0


def _schema_diff(settings: Settings, store: GraphStore, as_json: bool) -> int:
    snapshots = SnapshotStore(settings.home_dir)
    last, diff = schema_diff(snapshots, store)
    live = store.schema().fingerprint()
    if last is None:
        snapshots.record(store.name, store.schema().shape(), "schema --diff")
    if as_json:
        _print_json({"graph": store.name, "live": live, "snapshot": last.fingerprint if last else None,
                     "recorded_at": last.recorded_at if last else None, "changed": not diff.empty,
                     "changes": diff.lines(), **diff.to_dict()})
        return 0
    if last is None:
        print(f"no snapshot of graph {store.name!r} was recorded yet; recorded the live schema ({live}) as "
              "the baseline for the next --diff")
        return 0
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last.recorded_at))
    if diff.empty:
        print(f"graph {store.name!r}: no change since the snapshot of {when} ({live})")
        return 0
    print(f"graph {store.name!r}: schema {live} differs from the snapshot {last.fingerprint} of {when} "
          f"({last.source}):")
    print("\n".join(diff.lines()))
    print(f"re-check the stored examples on it: cypherloop feedback recheck --graph {store.name}")
    return 0


def _query(args: argparse.Namespace) -> int:
    if not args.cypher.strip():
        raise DataError("empty query; pass the Cypher text as one argument")
    if args.max_rows is not None and args.max_rows <= 0:
        raise ConfigError("--max-rows must be a positive number")
    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError("--timeout must be a positive number of seconds")
    settings = _settings(args)
    store = _open(settings)
    try:
        result = store.query(args.cypher, timeout_s=args.timeout, max_rows=args.max_rows)
    finally:
        store.close()
    if args.json:
        _print_json(
            {
                "columns": result.columns,
                "rows": result.rows,
                "truncated": result.truncated,
                "elapsed_ms": result.elapsed_ms,
            }
        )
        return 0
    if result.columns:
        print(format_table(result.columns, result.rows))
    n = len(result.rows)
    note = f", truncated at {n} rows" if result.truncated else ""
    print(f"({n} row{'s' if n != 1 else ''}, {result.elapsed_ms:.1f} ms{note})")
    return 0


def _stats(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _open(settings)
    try:
        counts = store.stats()
    finally:
        store.close()
    if args.json:
        _print_json(counts)
        return 0
    rows = [["node", k, v] for k, v in counts["nodes"].items()] + [
        ["relationship", k, v] for k, v in counts["relationships"].items()
    ]
    rows.append(["total", "nodes", sum(counts["nodes"].values())])
    rows.append(["total", "relationships", sum(counts["relationships"].values())])
    print(format_table(["kind", "name", "count"], rows))
    return 0


def _stop(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.graph_backend != "embedded":
        raise ConfigError(
            f"`graph stop` stops the embedded FalkorDB; graph_backend is {settings.graph_backend!r}"
        )
    if stop(settings):
        print(f"stopped the embedded FalkorDB of {settings.home_dir} (data saved)")
    else:
        print(f"the embedded FalkorDB of {settings.home_dir} is not running")
    return 0


# --- demo ---------------------------------------------------------------------------------------

DEMO_GRAPH = "demo"


def demo_main(argv: list[str] | None = None) -> int:
    """``cypherloop demo``; returns the exit code."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="cypherloop demo", description="The demo e-commerce graph.", parents=[common]
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "init",
        parents=[common],
        help=f"build the demo graph {DEMO_GRAPH!r} in the graph database (idempotent)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the documented demo's seed)")
    p.add_argument("--force", action="store_true", help="rebuild even when the demo graph exists")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    settings = _settings(args)
    store = _open(settings, DEMO_GRAPH)
    try:
        existing = node_count(store)
        if existing and not args.force:
            print(f"demo graph {DEMO_GRAPH!r} already exists ({existing} nodes); use --force to rebuild it")
            return 0
        counts = build_demo(store, **({} if args.seed is None else {"seed": args.seed}), replace=True)
    finally:
        store.close()
    nodes, rels = counts["nodes"], counts["relationships"]
    seed = "" if args.seed is None else f" (seed {args.seed})"
    print(f"built demo graph {DEMO_GRAPH!r}{seed}: {nodes} nodes, {rels} relationships")
    return 0
