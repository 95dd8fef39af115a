"""Dev check: the loader loads both benchmark graphs with the node/relationship counts they declare.

    .venv/bin/python scripts/check_bench_graphs.py [--graphs-dir ../shared/bench/graphs] [--keep HOME]

Each script's first line declares its size (``// graph 'movies': 171 nodes, 253 relationships``).
The graphs load into an embedded FalkorDB in a temporary home (stopped afterwards), twice each: once
fresh and once with ``replace=True`` over the loaded graph, which must give the same counts. Exits 1
on any mismatch. Not a test: it reads ``../shared``, which a clean clone does not have.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "bench" / "graphs"
HEADER = re.compile(r"//\s*graph\s+'([^']+)':\s*([\d,]+)\s+nodes,\s*([\d,]+)\s+relationships")


def expected_counts(path: Path) -> tuple[str, int, int]:
    """The graph name and the counts declared on the script's first line."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = HEADER.search(first)
    if not m:
        raise SystemExit(f"{path}: first line does not declare the counts: {first[:80]!r}")
    return m.group(1), int(m.group(2).replace(",", "")), int(m.group(3).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--keep", type=Path, help="use this home and leave its server running")
    args = parser.parse_args(argv)

    from agent.core.settings import Settings
    from agent.graphdb import open_graph
    from agent.graphdb.embedded import stop
    from agent.graphdb.loader import load_script

    scripts = sorted(args.graphs_dir.glob("*.cypher"))
    if not scripts:
        print(f"no *.cypher scripts in {args.graphs_dir}", file=sys.stderr)
        return 1
    home = args.keep or Path(tempfile.mkdtemp(prefix="cl_bench_"))
    settings = Settings(_env_file=None, home=home, graph_backend="embedded")
    failures = 0
    try:
        for path in scripts:
            name, want_nodes, want_rels = expected_counts(path)
            store = open_graph(settings, name)
            try:
                for replace in (False, True):
                    if not replace:
                        store.delete_graph()
                    report = load_script(store, path, replace=replace)
                    ok = (report.nodes, report.relationships) == (want_nodes, want_rels)
                    failures += not ok
                    print(
                        f"{'OK  ' if ok else 'FAIL'} {path.name:<18} replace={replace!s:<5} "
                        f"{report.statements:>3} statements in {report.seconds:6.2f} s: "
                        f"{report.nodes:>5} nodes (want {want_nodes}), "
                        f"{report.relationships:>5} relationships (want {want_rels})"
                    )
                stats = store.stats()
                print("     labels:", ", ".join(f"{k} {v}" for k, v in stats["nodes"].items()))
                print("     types: ", ", ".join(f"{k} {v}" for k, v in stats["relationships"].items()))
            finally:
                store.close()
    finally:
        if not args.keep:
            stop(settings)
            shutil.rmtree(home, ignore_errors=True)
    print(
        "all benchmark graphs load with the declared counts" if not failures else f"{failures} mismatch(es)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
