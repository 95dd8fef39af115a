"""Execution accuracy: run gold and predicted queries, compare results as multisets of rows.

Scoring rule (``../shared/bench/README.md``): a prediction is correct when its rows equal the gold
rows as a multiset, ignoring column order within a row, comparing floats at 4 significant digits,
and nodes/relationships by their properties (rows already hold them as property dicts).

``run_eval`` is shared by ``cypherloop eval``, ``scripts/bench_agent.py`` and finetune's promotion
gate: it takes any object with ``ask(question) -> dict`` (a ``CypherAgent``) and a graph store for
the gold queries, and returns an ``EvalReport``.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import DataError, GraphError

REQUIRED_KEYS = ("id", "question", "cypher")


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
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"dataset {p} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read dataset {p}: {e}") from e
    items: list[EvalItem] = []
    seen: set[str] = set()
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}:{no}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{p}:{no}: expected a JSON object with {', '.join(required)}")
        missing = [k for k in required if not str(obj.get(k) or "").strip()]
        if missing:
            raise DataError(f"{p}:{no}: missing {', '.join(missing)} (each line needs {', '.join(required)})")
        item_id = str(obj.get("id") or f"line-{no}")
        if item_id in seen:
            raise DataError(f"{p}:{no}: duplicate id {item_id!r}")
        seen.add(item_id)
        items.append(EvalItem(item_id, str(obj["question"]), str(obj["cypher"]), str(obj.get("category") or "")))
    if not items:
        raise DataError(f"dataset {p} has no questions")
    return items


# --- result comparison ---------------------------------------------------------------------------------
def normalize_value(value: Any) -> Any:
    """A hashable, comparison-friendly form of one result value."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return ("b", value) if isinstance(value, bool) else value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return ("nan",)
        if math.isinf(value):
            return value
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
        return float(f"{value:.4g}")
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), normalize_value(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(normalize_value(v) for v in value))
    return str(value)


def normalize_row(row: Sequence[Any] | Mapping[str, Any]) -> tuple[Any, ...]:
    """A row as an order-free tuple of normalised values (column order inside a row is ignored)."""
    values = row.values() if isinstance(row, Mapping) else row
    return tuple(sorted((normalize_value(v) for v in values), key=repr))


def result_key(rows: Iterable[Any]) -> tuple[Any, ...]:
    """A hashable form of a result: equal for two results exactly when ``results_match`` says they match."""
    return tuple(sorted(Counter(normalize_row(r) for r in rows).items(), key=repr))


def results_match(gold_rows: Iterable[Any], pred_rows: Iterable[Any]) -> bool:
    """True when both results hold the same rows as multisets (see the module doc for the rule)."""
    return Counter(normalize_row(r) for r in gold_rows) == Counter(normalize_row(r) for r in pred_rows)


# --- the report --------------------------------------------------------------------------------------
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
    wall_s: float = 0.0
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

    def beats(self, other: EvalReport, margin: float = 0.0) -> bool:
        """Strictly more accurate than ``other`` by more than ``margin`` (for promotion gates)."""
        return self.accuracy > other.accuracy + margin

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
            f"execution accuracy  {self.correct}/{self.n} = {self.accuracy:.1%}" + (f"  ({self.model_version})" if self.model_version else ""),
            f"first try           {self.first_try_correct}/{self.n} = {self.first_try_accuracy:.1%}; after retry +{self.after_retry_correct}",
            f"executable queries  {self.executable}/{self.n} = {self.executable_share:.1%}",
            f"latency             p50 {self.latency_p50_ms:.0f} ms, p95 {self.latency_p95_ms:.0f} ms",
        ]
        if self.gold_errors:
            lines.append(f"gold queries failed {self.gold_errors} (not scored)")
        if len(self.per_category) > 1 or any(self.per_category):
            lines.append("per category:")
            width = max(len(c) for c in self.per_category)
            for cat, m in sorted(self.per_category.items()):
                lines.append(f"  {cat or '(none)':<{width}}  {int(m['correct'])}/{int(m['n'])} = {m['accuracy']:.1%}")
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
            f"| {name} | {r.n} | {r.accuracy:.1%} ({r.correct}) | {r.first_try_accuracy:.1%} | {r.executable_share:.1%} "
            f"| {r.latency_p50_ms / 1000:.2f} s | {r.latency_p95_ms / 1000:.2f} s |"
        )
    return "\n".join(lines)


# --- running ---------------------------------------------------------------------------------------
def run_eval(
    agent: Any,
    items: Sequence[EvalItem],
    *,
    gold_store: Any | None = None,
    limit: int | None = None,
    progress: bool = True,
    predictions_path: str | Path | None = None,
    label: str = "",
    dataset: str = "",
    on_prediction: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int = 1,
) -> EvalReport:
    """Ask ``agent`` every question and score it against the gold query run on ``gold_store``.

    ``agent`` needs ``ask(question) -> dict`` (CypherAgent output) and, without ``gold_store``, a
    ``graph_store``. Predictions are written line by line to ``predictions_path`` (if given) so an
    interrupted run keeps what it did. With ``batch_size`` > 1 and an agent that can ``prefetch``, the
    first replies of each chunk of questions come from one batched model call (the rest of the agent —
    checks, execution, repair rounds — runs per question as usual); latencies then exclude generation.
    """
    from tqdm import tqdm

    store = gold_store if gold_store is not None else agent.graph_store
    ctx = getattr(agent, "context", None)
    timeout_s = getattr(ctx, "query_timeout_s", 30.0)
    max_rows = getattr(ctx, "max_rows", 1000)
    chosen = list(items[:limit] if limit else items)
    report = EvalReport(label=label, dataset=dataset, graph=getattr(store, "name", ""))
    cats: dict[str, list[int]] = {}
    out_file = None
    if predictions_path:
        Path(predictions_path).parent.mkdir(parents=True, exist_ok=True)
        out_file = open(predictions_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
    start = time.perf_counter()
    try:
        bar = tqdm(chosen, desc=label or "eval", unit="q", disable=not progress, dynamic_ncols=True)
        drafts: dict[int, Any] = {}
        batched = batch_size > 1 and hasattr(agent, "prefetch")
        for pos, item in enumerate(bar):
            if batched and pos not in drafts:
                chunk = chosen[pos: pos + batch_size]
                drafts = dict(zip(range(pos, pos + len(chunk)), agent.prefetch([c.question for c in chunk]), strict=True))
            try:
                gold = store.query(item.cypher, timeout_s=max(timeout_s, 30.0), max_rows=max_rows)
                gold_rows, gold_error = gold.rows, None
            except GraphError as e:
                gold_rows, gold_error = [], str(getattr(e, "db_message", None) or e)
            out = agent.ask(item.question, draft=drafts.pop(pos)) if batched else agent.ask(item.question)
            executed = out.get("status") in ("ok", "no_data")
            n_attempts = len(out.get("attempts") or [])
            correct = gold_error is None and executed and results_match(gold_rows, out.get("rows") or [])
            pred = {
                "id": item.id,
                "question": item.question,
                "predicted_cypher": out.get("cypher") or "",
                "correct": bool(correct),
                "attempts": n_attempts,
                "latency_ms": round(float(out.get("latency_ms") or 0.0), 1),
                "timings": out.get("timings") or {},
                "agreement": out.get("agreement"),
                "category": item.category,
                "status": out.get("status", ""),
                "error": out.get("error"),
                "gold_error": gold_error,
            }
            report.predictions.append(pred)
            if out_file:
                out_file.write(json.dumps(pred, ensure_ascii=False, default=str) + "\n")
                out_file.flush()
            if on_prediction:
                on_prediction(pred)
            report.model_version = report.model_version or out.get("model_version", "")
            if gold_error is not None:
                report.gold_errors += 1
                continue
            report.n += 1
            report.correct += int(correct)
            report.executable += int(executed)
            report.first_try_correct += int(correct and n_attempts <= 1)
            report.after_retry_correct += int(correct and n_attempts > 1)
            report.latencies_ms.append(pred["latency_ms"])
            c = cats.setdefault(item.category, [0, 0])
            c[0] += 1
            c[1] += int(correct)
            bar.set_postfix(acc=f"{report.accuracy:.0%}")
    finally:
        if out_file:
            out_file.close()
    report.wall_s = time.perf_counter() - start
    report.per_category = {k: {"n": v[0], "correct": v[1], "accuracy": round(v[1] / v[0], 4)} for k, v in sorted(cats.items())}
    return report


__all__ = [
    "EvalItem",
    "EvalReport",
    "compare_reports",
    "load_dataset",
    "normalize_row",
    "normalize_value",
    "percentile",
    "results_match",
    "run_eval",
]
