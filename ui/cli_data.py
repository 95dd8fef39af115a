"""``cypherloop data …``: training data.

    cypherloop data teacher  --graph NAME [--themes 5] [--questions-per-theme 20] [--paraphrases 10] [--out
    DIR]
    cypherloop data generate --graph NAME --n 5000 --out pairs.jsonl [--seed 0] [--paraphrases 3]
    cypherloop data review   --graph NAME list [--status pending] [--result error]
    cypherloop data review   --graph NAME approve ID [ID ...] | reject ID [ID ...] | approve-all-pass
    cypherloop data build    --graph NAME [--offline FILE] [--teacher DIR|FILE] [--pairs FILE] [--extra FILE
    ...]
                             [--feedback] [--feedback-weight 3] [--heldout-frac 0.15] [--seed 0] --out DIR

Every command takes ``--home DIR`` (default ``CYPHERLOOP_HOME`` or ``./.cypherloop``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agent.core.errors import DataError
from agent.core.settings import Settings, load_settings
from agent.graphdb import open_graph
from finetune.dataset import BuildSpec, build_dataset
from finetune.review import ReviewFile, review_path
from finetune.synth import FRAMES, generate_pairs, write_pairs
from finetune.teacher import TeacherConfig, run_teacher


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--home", type=Path, default=argparse.SUPPRESS,
                   help="cypherloop home directory (default: CYPHERLOOP_HOME or ./.cypherloop)")
    p.add_argument("--graph", default=None, help="graph name (default: CYPHERLOOP_GRAPH, 'demo')")
    return p


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(home=getattr(args, "home", None), graph=getattr(args, "graph", None))


def _parser() -> argparse.ArgumentParser:
    common = _common()
    p = argparse.ArgumentParser(
        prog="cypherloop data",
        description="Training data: the teacher pipeline, the offline "
        "generator, reviewing teacher output, building the dataset.",
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{teacher,generate,review,build}")

    for add in (_teacher_parser, _generate_parser, _review_parser, _build_parser):
        add(sub, common)
    return p


def _teacher_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``data teacher``: the seeds' pipeline over an OpenAI-compatible endpoint."""
    t = sub.add_parser(
        "teacher",
        parents=[common],
        help="the seeds' teacher pipeline (OpenAI-compatible endpoint)",
        description="Themes → questions → Cypher → run and sort (Pass / No data / Error) → paraphrases. "
        "Cached: a re-run resumes and pays nothing twice. Needs OPENAI_API_KEY "
        "(and OPENAI_BASE_URL for vLLM, Ollama …).",
    )
    t.add_argument("--themes", type=int, default=5, help="themes to ask for (default 5)")
    t.add_argument("--questions-per-theme", type=int, default=20, help="questions per theme (seeds: 20)")
    t.add_argument("--paraphrases", type=int, default=10, help="paraphrases per passing question (seeds: 10)")
    t.add_argument(
        "--out", type=Path, default=None, help="output folder (default <home>/data/teacher/<graph>)"
    )
    t.add_argument("--model", default=None, help="teacher model (default CYPHERLOOP_TEACHER_MODEL)")
    t.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    t.add_argument("--rpm", type=float, default=None, help="at most this many requests per minute")
    t.add_argument("--max-retries", type=int, default=6, help="retries on 429/5xx with exponential backoff")
    t.add_argument("--no-json-mode", action="store_true", help="do not ask for response_format=json_object")
    t.add_argument("--quiet", action="store_true", help="no progress bars")


def _generate_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``data generate``: compositional pairs from the graph, no LLM."""
    g = sub.add_parser(
        "generate",
        parents=[common],
        help="offline compositional pairs (no LLM, no network)",
        description="Question → Cypher pairs composed from the graph's schema and real paths (1–3 hops, "
        "filters, aggregates, grouping, ordering …); every query executed read-only and kept "
        "only with a stable, informative result; each rendered as several questions.",
    )
    # the default; kept for old scripts
    g.add_argument("--offline", action="store_true", help=argparse.SUPPRESS)
    g.add_argument("--n", type=int, default=5000, help="pairs to generate (default 5000)")
    g.add_argument("--out", type=Path, required=True, help="output JSONL file")
    g.add_argument("--seed", type=int, default=0, help="random seed (same graph + seed → same pairs)")
    g.add_argument("--paraphrases", type=int, default=3, help="questions rendered per kept query (default 3)")
    g.add_argument("--frames", "--shapes", dest="frames", default=None,
                   help="comma-separated subset of question frames (default: all)")
    g.add_argument("--timeout", type=float, default=2.0, help="per-query time limit in seconds (default 2)")
    g.add_argument("--report", type=Path, default=None, help="also write the per-shape report as JSON here")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _review_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``data review``: list, approve or reject the teacher's items."""
    r = sub.add_parser("review", parents=[common], help="review the teacher's output",
                       description="List, approve or reject teacher items (ids: a unique prefix is enough).")
    r.add_argument(
        "--file",
        type=Path,
        default=None,
        help="review file (default <home>/data/teacher/<graph>/review.jsonl)",
    )
    rsub = r.add_subparsers(
        dest="action", required=True, metavar="{list,approve,reject,approve-all-pass,stats}"
    )
    ls = rsub.add_parser("list", help="list items")
    ls.add_argument("--status", choices=("pending", "approved", "rejected"), default=None)
    ls.add_argument("--result", choices=("pass", "no_data", "error"), default=None)
    ls.add_argument("--limit", type=int, default=50, help="at most this many (0: all)")
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    for name, text in (("approve", "approve items"), ("reject", "reject items")):
        a = rsub.add_parser(name, help=text)
        a.add_argument("ids", nargs="+", help="item ids or unique prefixes")
    rsub.add_parser("approve-all-pass", help="approve every pending item whose query returned rows")
    rsub.add_parser("stats", help="counts per result and status")


def _build_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``data build``: mix, de-duplicate and split the dataset."""
    b = sub.add_parser(
        "build",
        parents=[common],
        help="mix, de-duplicate and split the training dataset",
        description="Writes train.jsonl, heldout.jsonl, feedback_regression.jsonl and summary.json.",
    )
    b.add_argument(
        "--offline", type=Path, action="append", default=[], help="offline pairs (JSONL); repeatable"
    )
    b.add_argument(
        "--teacher", type=Path, action="append", default=[], help="teacher folder or review.jsonl; repeatable"
    )
    b.add_argument("--teacher-approved-only", action="store_true",
                   help="only approved teacher items (default: approved + pending Pass, as in the seeds)")
    b.add_argument(
        "--pairs", type=Path, action="append", default=[], help="your own pairs (CSV or JSONL); repeatable"
    )
    b.add_argument(
        "--question-col", default="instruction", help="question column of --pairs (default: instruction)"
    )
    b.add_argument("--cypher-col", default="cypher", help="Cypher column of --pairs (default: cypher)")
    b.add_argument(
        "--extra",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        help="multi-schema files (CSV/JSONL with a 'schema' column, or a 'database' column + schemas file)",
    )
    b.add_argument("--extra-schemas", type=Path, default=None,
                   help="schemas CSV for --extra (default: text2cypher_schemas.csv next to the file)")
    b.add_argument("--max-extra", type=int, default=None, help="at most this many rows per extra file")
    b.add_argument("--feedback", action="store_true", help="include approved corrections and 👍 pairs")
    b.add_argument(
        "--feedback-weight",
        type=int,
        default=3,
        help="repeat each feedback example this many times (default 3)",
    )
    b.add_argument(
        "--heldout-frac", type=float, default=0.15, help="share held out, never trained on (default 0.15)"
    )
    b.add_argument("--regression-frac", type=float, default=None,
                   help="share of verified feedback kept as the regression set (default: --heldout-frac)")
    b.add_argument(
        "--seed", type=int, default=0, help="shuffle seed of train.jsonl (the split does not depend on it)"
    )
    b.add_argument("--out", type=Path, default=None, help="output folder (default <home>/datasets/<graph>)")




def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return {"teacher": _teacher, "generate": _generate, "review": _review, "build": _build}[args.cmd](args)


# --- teacher -------------------------------------------------------------------------------------


def _teacher(args: argparse.Namespace) -> int:
    for name in ("themes", "questions_per_theme", "concurrency"):
        if getattr(args, name) < 1:
            raise DataError(f"--{name.replace('_', '-')} must be at least 1")
    settings = _settings(args)
    cfg = TeacherConfig(
        themes=args.themes,
        questions_per_theme=args.questions_per_theme,
        paraphrases=args.paraphrases,
        concurrency=args.concurrency,
        rpm=args.rpm,
        max_retries=args.max_retries,
        json_mode=not args.no_json_mode,
        model=args.model,
    )
    graph = open_graph(settings, args.graph)
    try:
        result = run_teacher(settings, graph, cfg, args.out, progress=not args.quiet)
    finally:
        graph.close()
    print(result.summary())
    print("next: `cypherloop data review list --result error` then `cypherloop data review approve-all-pass`")
    return 0


# --- generate ------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    frames = None
    if args.frames:
        frames = [s.strip() for s in args.frames.split(",") if s.strip()]
        bad = [s for s in frames if s not in FRAMES]
        if bad:
            raise DataError(f"unknown frame {bad[0]!r}; choose from {', '.join(FRAMES)}")
    if args.n < 1 or args.paraphrases < 1:
        raise DataError("--n and --paraphrases must be at least 1")
    settings = _settings(args)
    graph = open_graph(settings, args.graph)
    bar = None
    if not args.quiet:
        bar = tqdm(total=args.n, desc=f"pairs ({graph.name})", unit="pair", dynamic_ncols=True)
    try:
        pairs, report = generate_pairs(
            graph,
            args.n,
            seed=args.seed,
            frames=frames,
            timeout_s=args.timeout,
            paraphrases=args.paraphrases,
            progress=(lambda k: bar.update(k - bar.n)) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
        graph.close()
    n = write_pairs(pairs, args.out)
    print(report.table())
    print(
        f"\n{n} pairs from {report.queries_kept} queries on graph {report.graph!r} in {report.seconds:.1f} s "
        f"({report.pairs_per_second:.0f}/s, {report.db_queries} database queries) → {args.out}"
    )
    if n < args.n:
        print(
            f"note: asked for {args.n}; this graph's schema and values gave {n} distinct valid pairs",
            file=sys.stderr,
        )
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report.to_dict(), indent=2))
    return 0


# --- review --------------------------------------------------------------------------------------


def _review(args: argparse.Namespace) -> int:
    settings = _settings(args)
    path = args.file or review_path(settings, args.graph or settings.graph)
    review = ReviewFile(path)
    if not review.path.exists():
        raise DataError(f"no review file at {review.path}; run `cypherloop data teacher --graph …` first")
    if args.action == "list":
        items = review.items(status=args.status, result=args.result)
        shown = items if not args.limit else items[: args.limit]
        if args.json:
            for x in shown:
                print(json.dumps(x, ensure_ascii=False))
        else:
            for x in shown:
                err = f"  [{x.get('error')}]" if x.get("error") else ""
                print(f"{x['id'][:10]}  {x.get('result', '?'):<7} {x.get('status', '?'):<8} {x['question']}")
                print(f"{'':10}  {x.get('cypher') or '(no query)'}{err}")
            print(f"{len(shown)} of {len(items)} items")
        return 0
    if args.action in ("approve", "reject"):
        n = review.set_status(args.ids, "approved" if args.action == "approve" else "rejected")
        print(f"{args.action}d {n} item(s)")
        return 0
    if args.action == "approve-all-pass":
        print(f"approved {review.approve_all_pass()} passing item(s)")
        return 0
    counts = review.counts()
    print("result: " + ", ".join(f"{k} {v}" for k, v in counts["result"].items()))
    print("status: " + ", ".join(f"{k} {v}" for k, v in counts["status"].items()))
    return 0


# --- build ---------------------------------------------------------------------------------------


def _build(args: argparse.Namespace) -> int:
    settings = _settings(args)
    graph = args.graph or settings.graph
    spec = BuildSpec(
        graph=graph,
        out_dir=args.out or settings.path("datasets", graph),
        offline=args.offline,
        teacher=args.teacher,
        pairs=args.pairs,
        question_col=args.question_col,
        cypher_col=args.cypher_col,
        extra=args.extra,
        extra_schemas=args.extra_schemas,
        max_extra=args.max_extra,
        feedback=args.feedback,
        feedback_weight=args.feedback_weight,
        heldout_frac=args.heldout_frac,
        regression_frac=args.heldout_frac if args.regression_frac is None else args.regression_frac,
        teacher_pending_pass=not args.teacher_approved_only,
        seed=args.seed,
    )
    if not any((spec.offline, spec.teacher, spec.pairs, spec.extra, spec.feedback)):
        raise DataError("nothing to build from: give --offline, --teacher, --pairs, --extra or --feedback")
    summary = build_dataset(settings, spec)
    print(summary.table())
    if summary.dropped:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in summary.dropped.items()))
    print(f"dataset {summary.dataset_hash} → {summary.out_dir}")
    return 0
