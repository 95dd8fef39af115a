"""Execution accuracy: run gold and predicted queries, compare their results.

A prediction is correct when its rows are **the same result** as the gold rows
(``agent.core.cypher_text.same_result``: the benchmark's rule, defined once for the whole project).

``run_eval`` is shared by ``cypherloop eval``, ``scripts/bench_agent.py`` and finetune's promotion gate:
it asks a ``CypherAgent`` every question, runs the gold query on a graph store, and returns an
``EvalReport``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agent.core.cypher_text import same_result
from agent.core.errors import DataError, GraphError
from agent.core.files import iter_jsonl
from agent.graph import CypherAgent
from agent.graphdb.base import GraphStore
from agent.models.base import Generation

REQUIRED_KEYS = ("id", "question", "cypher")
ACCURACY_EPS = 1e-9
"""Accuracies closer than this are equal (both are counts over the same questions; floats only blur them)."""


# --- dataset --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalItem:
    """One question with its gold query."""

    id: str
    question: str
    cypher: str
    category: str = ""


def load_dataset(path: str | Path, require_id: bool = True) -> list[EvalItem]:
    """Read a JSONL question set (``id``, ``question``, ``cypher``, optional ``category``).

    Raises ``DataError`` with one line naming the file and line for anything malformed. Without
    ``require_id`` a line may leave ``id`` out: it is then ``line-N``.
    """
    required = REQUIRED_KEYS if require_id else tuple(k for k in REQUIRED_KEYS if k != "id")
    p = Path(path)
    items: list[EvalItem] = []
    seen: set[str] = set()
    for no, obj in iter_jsonl(p):
        if not isinstance(obj, dict):
            raise DataError(f"{p}:{no}: expected a JSON object with {', '.join(required)}")
        missing = [k for k in required if not str(obj.get(k) or "").strip()]
        if missing:
            raise DataError(f"{p}:{no}: missing {', '.join(missing)} (each line needs {', '.join(required)})")
        item_id = str(obj.get("id") or f"line-{no}")
        if item_id in seen:
            raise DataError(f"{p}:{no}: duplicate id {item_id!r}")
        seen.add(item_id)
        items.append(
            EvalItem(item_id, str(obj["question"]), str(obj["cypher"]), str(obj.get("category") or ""))
        )
    if not items:
        raise DataError(f"dataset {p} has no questions")
    return items


# --- the report --------------------------------------------------------------------------------------
def beats(candidate: float, live: float, margin: float = 0.0) -> bool:
    """The promotion rule on one accuracy: strictly above ``live``, and above it by at least ``margin``.

    A tie never promotes: a new model has to win on the questions, not merely match (0/12 vs 0/12 stays out).
    """
    return candidate > live + ACCURACY_EPS and candidate + ACCURACY_EPS >= live + margin


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return float(ordered[k])


@dataclass
class EvalReport:
    """Execution accuracy and friends for one configuration on one question set."""

    n: int = 0
    """Questions scored (gold queries that failed are excluded and counted in gold_errors)."""
    correct: int = 0
    executable: int = 0
    """Questions whose final query ran without error (rows or no rows)."""
    first_try_correct: int = 0
    after_retry_correct: int = 0
    """Correct only thanks to a correction round."""
    gold_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    model_version: str = ""
    dataset: str = ""
    graph: str = ""
    label: str = ""
    wall_s: float = 0.0  # answering the questions (``cypherloop eval`` loads the model before)
    predictions: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def accuracy(self) -> float:
        """Execution accuracy after retries."""
        return self.correct / self.n if self.n else 0.0

    @property
    def first_try_accuracy(self) -> float:
        return self.first_try_correct / self.n if self.n else 0.0

    @property
    def executable_share(self) -> float:
        return self.executable / self.n if self.n else 0.0

    @property
    def latency_p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def latency_p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)

    def add(self, pred: dict[str, Any]) -> None:
        """Count one prediction record (``predict``); a failed gold query is counted apart, not scored."""
        self.predictions.append(pred)
        self.model_version = self.model_version or pred.get("model_version", "")
        if pred["gold_error"] is not None:
            self.gold_errors += 1
            return
        correct = pred["correct"]
        self.n += 1
        self.correct += int(correct)
        self.executable += int(pred["status"] in ("ok", "no_data"))
        self.first_try_correct += int(correct and pred["attempts"] <= 1)
        self.after_retry_correct += int(correct and pred["attempts"] > 1)
        self.latencies_ms.append(pred["latency_ms"])
        cat = self.per_category.setdefault(pred["category"], {"n": 0, "correct": 0, "accuracy": 0.0})
        cat["n"] += 1
        cat["correct"] += int(correct)
        cat["accuracy"] = round(cat["correct"] / cat["n"], 4)
        self.per_category = dict(sorted(self.per_category.items()))

    def beats(self, other: EvalReport, margin: float = 0.0) -> bool:
        """``beats`` on the two accuracies: strictly more accurate, by at least ``margin``."""
        return beats(self.accuracy, other.accuracy, margin)

    def summary(self) -> dict[str, Any]:
        """The headline numbers (JSON-able, no predictions)."""
        return {
            "label": self.label,
            "dataset": self.dataset,
            "graph": self.graph,
            "model_version": self.model_version,
            "n": self.n,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "first_try_accuracy": round(self.first_try_accuracy, 4),
            "after_retry_correct": self.after_retry_correct,
            "executable_share": round(self.executable_share, 4),
            "latency_p50_ms": round(self.latency_p50_ms, 1),
            "latency_p95_ms": round(self.latency_p95_ms, 1),
            "gold_errors": self.gold_errors,
            "per_category": self.per_category,
            "wall_s": round(self.wall_s, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "predictions": self.predictions}

    def text(self) -> str:
        """A short human-readable report."""
        lines = [
            f"execution accuracy  {self.correct}/{self.n} = {self.accuracy:.1%}"
            + (f"  ({self.model_version})" if self.model_version else ""),
            f"first try           {self.first_try_correct}/{self.n} = {self.first_try_accuracy:.1%}; after "
            f"retry +{self.after_retry_correct}",
            f"executable queries  {self.executable}/{self.n} = {self.executable_share:.1%}",
            f"latency             p50 {self.latency_p50_ms:.0f} ms, p95 {self.latency_p95_ms:.0f} ms",
        ]
        if self.gold_errors:
            lines.append(f"gold queries failed {self.gold_errors} (not scored)")
        if len(self.per_category) > 1 or any(self.per_category):
            lines.append("per category:")
            width = max(len(c) for c in self.per_category)
            for cat, m in sorted(self.per_category.items()):
                lines.append(
                    f"  {cat or '(none)':<{width}}  {int(m['correct'])}/{int(m['n'])} = {m['accuracy']:.1%}"
                )
        return "\n".join(lines)


def compare_reports(reports: Mapping[str, EvalReport] | Sequence[EvalReport]) -> str:
    """A markdown table with one row per configuration."""
    items = list(reports.items()) if isinstance(reports, Mapping) else [(r.label, r) for r in reports]
    lines = [
        "| configuration | n | accuracy | first try | executable | p50 latency | p95 latency |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in items:
        lines.append(
            f"| {name} | {r.n} | {r.accuracy:.1%} ({r.correct}) | {r.first_try_accuracy:.1%} | "
            f"{r.executable_share:.1%} "
            f"| {r.latency_p50_ms / 1000:.2f} s | {r.latency_p95_ms / 1000:.2f} s |"
        )
    return "\n".join(lines)


# --- running ---------------------------------------------------------------------------------------
GoldRun = tuple[list[Any], str | None]
"""A gold query's rows, and the database's message when it failed (then no rows)."""


def run_gold(agent: CypherAgent, gold_store: GraphStore, item: EvalItem) -> GoldRun:
    """Run ``item``'s gold query read-only (at least 30 s, the agent's row cap)."""
    ctx = agent.context
    try:
        gold = gold_store.query(item.cypher, timeout_s=max(ctx.query_timeout_s, 30.0), max_rows=ctx.max_rows)
        return gold.rows, None
    except GraphError as e:
        return [], str(getattr(e, "db_message", None) or e)


def predict(agent: CypherAgent, gold_store: GraphStore, item: EvalItem,
            draft: list[Generation] | None = None, gold: GoldRun | None = None) -> dict[str, Any]:
    """Ask one question, run its gold query, and compare: the prediction record (one JSONL line).

    ``draft``: the question's first replies, computed ahead by ``CypherAgent.prefetch``; ``gold``: its gold
    query's run, made ahead by ``run_gold``."""
    gold_rows, gold_error = gold if gold is not None else run_gold(agent, gold_store, item)
    answer = agent.ask(item.question, draft=draft)
    return {
        "id": item.id,
        "question": item.question,
        "predicted_cypher": answer.cypher,
        "correct": bool(gold_error is None and answer.ran and same_result(gold_rows, answer.rows)),
        "attempts": len(answer.attempts),
        "latency_ms": round(float(answer.latency_ms), 1),
        "timings": answer.timings,
        "agreement": answer.agreement,
        "confidence": answer.confidence,
        "escalated": answer.escalated,
        "answered_by": answer.answered_by,
        "category": item.category,
        "status": answer.status,
        "error": answer.error,
        "gold_error": gold_error,
        "model_version": answer.model_version,
    }


def run_eval(
    agent: CypherAgent,
    items: Sequence[EvalItem],
    *,
    gold_store: GraphStore | None = None,
    limit: int | None = None,
    progress: bool = True,
    predictions_path: str | Path | None = None,
    label: str = "",
    dataset: str = "",
    on_prediction: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int = 1,
    workers: int = 1,
) -> EvalReport:
    """Ask ``agent`` every question and score it against the gold query run on ``gold_store`` (default: the
    agent's graph store). Predictions are written line by line to ``predictions_path`` (if given) so an
    interrupted run keeps what it did. With ``batch_size`` > 1 the first replies of each chunk of questions
    come from one batched model call (``CypherAgent.prefetch``; the checks, execution and repair rounds run
    per question as usual); latencies then exclude generation, and the chunk's gold queries run in a thread
    while the model writes (they do not depend on it). ``workers`` > 1 asks that many questions at
    once from threads (the agent answers concurrent questions, as serve does; the model calls take its lock):
    the checks, the database and the scoring of a batch overlap instead of running one question after
    another; with both, a question is asked as soon as the batched call has written its replies, while it
    writes the others (``_streamed``). The records keep the questions' order."""
    store = gold_store if gold_store is not None else agent.graph_store
    chosen = list(items[:limit] if limit else items)
    report = EvalReport(label=label, dataset=dataset, graph=store.name)
    out_file = None
    if predictions_path:
        Path(predictions_path).parent.mkdir(parents=True, exist_ok=True)
        out_file = open(predictions_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
    start = time.perf_counter()
    bar = tqdm(total=len(chosen), desc=label or "eval", unit="q", disable=not progress, dynamic_ncols=True)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="cypherloop-eval") if workers > 1 else None
    ahead = ThreadPoolExecutor(1, thread_name_prefix="cypherloop-eval-gold") if batch_size > 1 else None
    try:
        for chunk in eval_chunks(chosen, batch_size, workers):
            golds: list[GoldRun | None] = [None] * len(chunk)
            drafts: list[list[Generation] | None] = [None] * len(chunk)
            preds: Iterable[dict[str, Any]]
            if ahead is not None and pool is not None:  # each question asked as soon as its replies are in
                preds = _streamed(agent, store, chunk, ahead, pool, workers)
            else:
                if ahead is not None:  # the gold queries while the model writes the chunk's first replies
                    running = [ahead.submit(run_gold, agent, store, item) for item in chunk]
                    drafts = list(agent.prefetch([c.question for c in chunk]))
                    golds = [r.result() for r in running]
                asked = zip(chunk, drafts, golds, strict=True)
                preds = ((predict(agent, store, *a) for a in asked) if pool is None
                         else pool.map(lambda a: predict(agent, store, *a), asked))
            for pred in preds:
                report.add(pred)
                if out_file:
                    out_file.write(json.dumps(pred, ensure_ascii=False, default=str) + "\n")
                    out_file.flush()
                if on_prediction:
                    on_prediction(pred)
                bar.set_postfix(acc=f"{report.accuracy:.0%}", refresh=False)  # drawn by update, 10 a second
                bar.update(1)
    finally:
        bar.close()
        for executor in (pool, ahead):
            if executor is not None:
                executor.shutdown(cancel_futures=True)
        if out_file:
            out_file.close()
    report.wall_s = time.perf_counter() - start
    return report


def eval_chunks(items: Sequence[EvalItem], batch_size: int = 1, workers: int = 1) -> list[list[EvalItem]]:
    """The chunks ``run_eval`` asks ``items`` in (``max(batch_size, workers)`` questions each, in order): a
    batched chunk's first replies come from one ``prefetch``, whose shapes ``CypherAgent.warm_up(chunks=…)``
    can make before the clock starts."""
    step = max(batch_size, workers, 1)
    return [list(items[pos: pos + step]) for pos in range(0, len(items), step)]


def _streamed(agent: CypherAgent, store: GraphStore, chunk: Sequence[EvalItem], ahead: ThreadPoolExecutor,
              pool: ThreadPoolExecutor, workers: int) -> Iterator[dict[str, Any]]:
    """A chunk's predictions, in its order: its gold queries run on ``ahead`` while the model writes, and
    each question is asked on ``pool`` as soon as the batched call has its replies (``prefetch``'s
    ``on_ready``), so that the checks, runs and scoring of the first questions overlap the writing of the
    rest (round 13's H200 eval: the first of 100 questions was scored at 1.7 s of 2.6). While the call
    writes, at most ``eval_asks_while_writing`` of the ``workers`` ask at once (0: all): the decoding loop
    needs the one interpreter between its steps, and round 14's 8 workers (with the vote's threads) made one
    step in ten wait 46-81 ms for it."""
    golds = [ahead.submit(run_gold, agent, store, item) for item in chunk]
    asked: dict[int, Future[dict[str, Any]]] = {}
    limit = agent.settings.eval_asks_while_writing
    turns = threading.Semaphore(limit) if 0 < limit < workers else None

    def ask(i: int, draft: list[Generation]) -> dict[str, Any]:
        with turns or nullcontext():
            return predict(agent, store, chunk[i], draft, golds[i].result())

    def ready(i: int, draft: list[Generation]) -> None:
        asked[i] = pool.submit(ask, i, draft)

    try:
        drafts = agent.prefetch([c.question for c in chunk], on_ready=ready)
        if turns is not None:  # written: every worker asks
            turns.release(workers)
            turns = None
        for i, draft in enumerate(drafts):  # any a generator did not tell (the protocol asks it to)
            if i not in asked:
                ready(i, draft)
        for i in range(len(chunk)):
            yield asked[i].result()
    finally:
        for future in [*asked.values(), *golds]:
            future.cancel()
        if turns is not None:  # the call failed: the workers waiting for a turn go on to their end
            turns.release(workers)


__all__ = [
    "EvalItem",
    "EvalReport",
    "GoldRun",
    "compare_reports",
    "eval_chunks",
    "load_dataset",
    "percentile",
    "predict",
    "run_eval",
    "run_gold",
]
