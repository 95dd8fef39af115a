"""Dev benchmark: the agent's execution accuracy and latency on ../shared/bench (never a test).

    .venv/bin/python scripts/bench_agent.py                       # every graph, every configuration
    .venv/bin/python scripts/bench_agent.py --graphs movies --limit 3   # a smoke run

For each graph in ../shared/bench/dev/*.jsonl (loaded from ../shared/bench/graphs/ when missing) the
questions are split deterministically by id: one question in five goes to the few-shot pool, the
rest are evaluated, so few-shot examples never include the question being asked. Configurations:

- ``zero_shot``         the model alone, one attempt
- ``few_shot``          + the 3 most similar pool examples (packaged MiniLM embeddings), one attempt
- ``few_shot_retries``  + the correction loop (max_attempts 3)
- ``zero_shot_retries`` (optional) the correction loop without examples

Time: the untuned base model rarely stops before max_new_tokens (prose), so on a 2-core CPU each
attempt costs ~max_new_tokens / 13 s; ``--limit 50 --max-new-tokens 96`` on both graphs takes about
50 min, the full dev sets (~900 questions) many hours.

Prints a markdown table and writes ``bench-output/agent.json`` (accuracy, executable share, first-try
accuracy, p50/p95 latency per graph and configuration, plus command, machine and date). Quote the
medians in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
OUT_DIR = ROOT / "bench-output"

CONFIGS: dict[str, dict[str, int]] = {
    "zero_shot": {"few_shot_k": 0, "max_attempts": 1},
    "few_shot": {"few_shot_k": 3, "max_attempts": 1},
    "few_shot_retries": {"few_shot_k": 3, "max_attempts": 3},
    "zero_shot_retries": {"few_shot_k": 0, "max_attempts": 3},
}
DEFAULT_CONFIGS = ("zero_shot", "few_shot", "few_shot_retries")
LABELS = {
    "zero_shot": "base zero-shot",
    "few_shot": "+ few-shot retrieval",
    "few_shot_retries": "+ few-shot + retries (3)",
    "zero_shot_retries": "zero-shot + retries (3)",
}


def is_pool(item_id: str, share: int = 5) -> bool:
    """Deterministic split: about 1/share of the questions become few-shot examples."""
    return int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % share == 0


class InMemoryExamples:
    """A FeedbackStore-shaped retriever over a fixed pool (``similar_examples`` only)."""

    def __init__(self, pool: list, graph: str) -> None:
        from agent.core.prompt import Example

        self.graph = graph
        self.examples = [Example(x.question, x.cypher) for x in pool]
        self._vectors = None
        try:
            from feedback_store.embeddings import embed

            self._embed = embed
            self._vectors = embed([e.question for e in self.examples]) if self.examples else []
        except Exception as e:  # noqa: BLE001 - fall back to word overlap
            print(f"bench: embeddings unavailable ({e}); few-shot by word overlap", file=sys.stderr)
            self._embed = None

    def similar_examples(self, question: str, graph: str, k: int = 3, approved_only: bool = False,
                         min_similarity: float = -1.0) -> list:
        if not self.examples or k <= 0:
            return []
        if self._vectors is not None and self._embed is not None:
            q = self._embed([question])[0]
            scores = [sum(a * b for a, b in zip(q, v, strict=False)) for v in self._vectors]
        else:
            words = set(re.findall(r"\w+", question.lower()))
            scores = [len(words & set(re.findall(r"\w+", e.question.lower()))) for e in self.examples]
        order = sorted(range(len(self.examples)), key=lambda i: -scores[i])
        return [self.examples[i] for i in order[:k]]


def ensure_graph(settings, name: str, script: Path | None = None):
    """Open graph ``name``, loading ``script`` (default ../shared/bench/graphs/<name>.cypher) when it is
    missing."""
    from agent.graphdb import open_graph
    from agent.graphdb.loader import load_script

    store = open_graph(settings, name)
    if name not in store.list_graphs():
        script = script or BENCH / "graphs" / f"{name}.cypher"
        print(f"bench: loading {script} …", file=sys.stderr)
        load_script(store, script, replace=True, progress=False)
    store.schema(refresh=True)
    return store


def machine() -> dict[str, object]:
    info: dict[str, object] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # noqa: BLE001
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None
            )
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--home",
        type=Path,
        default=OUT_DIR / "home",
        help="cypherloop home for the bench graphs and the converted model",
    )
    p.add_argument("--graphs", nargs="+", default=None, help="graph names (default: every dev/*.jsonl)")
    p.add_argument(
        "--configs", default=",".join(DEFAULT_CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}"
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="evaluate only the first N questions of each graph's eval split",
    )
    p.add_argument("--backend", default=None, help="model backend (default: settings)")
    p.add_argument("--model", default=None, help="base model / OpenAI model name")
    p.add_argument("--adapter", default="none", help="adapter (default none: the base model)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--out", type=Path, default=OUT_DIR / "agent.json")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--keep-server", action="store_true", help="leave the bench home's FalkorDB running afterwards"
    )
    args = p.parse_args(argv)

    from agent.core.env import library_defaults

    library_defaults()
    if not BENCH.is_dir():
        print(f"bench: {BENCH} not found (dev graphs and question sets)", file=sys.stderr)
        return 2
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        print(f"bench: unknown configuration(s) {unknown}; choose from {list(CONFIGS)}", file=sys.stderr)
        return 2

    from agent.core.settings import Settings
    from agent.models.factory import make_generator

    overrides: dict[str, object] = {"home": args.home, "graph_backend": "embedded", "adapter": args.adapter}
    if args.backend:
        overrides["model_backend"] = args.backend
    if args.max_new_tokens:
        overrides["max_new_tokens"] = args.max_new_tokens
    base = Settings(_env_file=None, **overrides)
    if args.model:
        base = base.model_copy(
            update={"openai_model" if base.model_backend == "openai" else "base_model": args.model}
        )
    generator = make_generator(base)  # one model for every configuration
    graphs = args.graphs or sorted(x.stem for x in (BENCH / "dev").glob("*.jsonl"))

    try:
        return _run(args, argv, configs, base, generator, graphs)
    finally:
        if not args.keep_server:
            from agent.graphdb.embedded import stop

            stop(base)


def _run(args, argv, configs, base, generator, graphs) -> int:
    from agent.evaluation import compare_reports, load_dataset, run_eval
    from agent.factory import make_agent

    results: list[dict[str, object]] = []
    tables: list[str] = []
    started = time.time()
    for name in graphs:
        items = load_dataset(BENCH / "dev" / f"{name}.jsonl")
        pool = [x for x in items if is_pool(x.id)]
        evaluated = [x for x in items if not is_pool(x.id)]
        if args.limit:
            evaluated = evaluated[: args.limit]
        settings = base.model_copy(update={"graph": name})
        store = ensure_graph(settings, name)
        retriever = InMemoryExamples(pool, name)
        reports = {}
        try:
            for config in configs:
                s = settings.model_copy(update=CONFIGS[config])
                agent = make_agent(
                    s,
                    graph_store=store,
                    generator=generator,
                    feedback_store=retriever if s.few_shot_k else None,
                )
                pred_path = OUT_DIR / f"agent-{name}-{config}.jsonl"
                report = run_eval(
                    agent,
                    evaluated,
                    progress=not args.no_progress,
                    predictions_path=pred_path,
                    label=f"{name}/{config}",
                    dataset=f"dev/{name}.jsonl",
                )
                reports[LABELS[config]] = report
                results.append({"graph": name, "config": config, "pool_size": len(pool), **report.summary()})
                print(
                    f"{name}/{config}: accuracy {report.accuracy:.1%} ({report.correct}/{report.n}), "
                    f"executable {report.executable_share:.1%}, "
                    f"p50 {report.latency_p50_ms / 1000:.2f} s, p95 {report.latency_p95_ms / 1000:.2f} s",
                    file=sys.stderr,
                )
        finally:
            store.close()
        tables.append(
            f"### {name} ({len(evaluated)} questions, few-shot pool {len(pool)})\n\n"
            + compare_reports(reports)
        )

    command = "scripts/bench_agent.py " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = {
        "benchmark": "agent execution accuracy",
        "command": command.strip(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "model_version": generator.version,
        "settings": {
            k: v
            for k, v in base.redacted().items()
            if k
            in (
                "model_backend",
                "base_model",
                "adapter",
                "temperature",
                "top_p",
                "repetition_penalty",
                "max_new_tokens",
                "query_timeout_s",
                "max_rows",
            )
        },
        "wall_s": round(time.time() - started, 1),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"## Agent benchmark — {doc['date']} — {generator.version}\n")
    print(
        f"`{doc['command']}` on {doc['machine'].get('cpu') or doc['machine']['platform']} "
        f"({doc['machine']['cpus']} CPUs)\n"
    )
    print("\n\n".join(tables))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
