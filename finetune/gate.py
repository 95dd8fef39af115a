"""Promotion gate: a candidate adapter goes live only if it beats the live one.

Rule: the candidate's execution accuracy on the held-out split must be strictly above the active
adapter's, and above it by at least ``margin`` (``agent.evaluation.beats``; margin 0: any win, a tie
never promotes), AND on the verified-feedback regression set it must be ≥ the active adapter's +
``margin`` (it may not lose a corrected question the live one answers). The base model stands in when
none is active, so the first candidate on a graph has to beat the base.
Both are measured the same way: ``agent.evaluation.run_eval`` through a ``CypherAgent`` over the
graph, greedy decoding, no few-shot retrieval (the model is judged, not the example store).

The gate takes generator *factories* (``() -> CypherGenerator``), so the same function gates real
PEFT adapters (``adapter_generator``) and scripted generators in tests. Scores of the active side
are cached per (generator version, question set, evaluation settings): a nightly run with unchanged
data evaluates only the candidate.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.core.errors import DataError
from agent.core.files import atomic_write_text
from agent.core.settings import Settings
from agent.evaluation import ACCURACY_EPS, EvalItem, beats, load_dataset, run_eval
from agent.factory import make_agent
from agent.graphdb import GraphStore
from agent.models.base import CypherGenerator
from agent.models.local import TransformersGenerator
from feedback_store.pool import ExamplePool
from finetune.decision import Verdict

log = logging.getLogger("cypherloop.gate")

GeneratorFactory = Callable[[], CypherGenerator]
GeneratorFactoryMaker = Callable[[Settings, "Path | None"], GeneratorFactory]
"""``(settings, adapter folder or None) -> GeneratorFactory``: ``adapter_generator``, or a scripted one in
tests."""


@dataclass
class SetScore:
    """Execution accuracy of one side on one question set."""

    n: int
    correct: int
    accuracy: float
    executable_share: float = 0.0
    latency_p50_ms: float = 0.0
    model_version: str = ""
    cached: bool = False


@dataclass
class GateDecision:
    """The gate's verdict with every number it was based on (stored in meta.json and the report)."""

    promote: bool
    reason: str
    margin: float
    candidate: dict[str, SetScore | None] = field(default_factory=dict)
    active: dict[str, SetScore | None] = field(default_factory=dict)
    active_version: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def decision(self) -> Verdict:
        return Verdict.PROMOTE if self.promote else Verdict.REJECT

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["decision"] = self.decision
        return d


def gate_settings(
    settings: Settings, max_attempts: int | None = None, max_new_tokens: int | None = None
) -> Settings:
    """Evaluation settings: greedy, no few-shot, optional caps (the gate's numbers must be reproducible)."""
    update: dict[str, Any] = {"temperature": 0.0, "few_shot_k": 0}
    if max_attempts:
        update["max_attempts"] = max_attempts
    if max_new_tokens:
        update["max_new_tokens"] = max_new_tokens
    return settings.model_copy(update=update)


def adapter_generator(settings: Settings, adapter: str | Path | None) -> GeneratorFactory:
    """A factory for the local transformers generator pinned to one adapter folder (None: the base model)."""

    def make() -> CypherGenerator:
        return TransformersGenerator(
            settings.model_copy(update={"adapter": str(adapter) if adapter else "none"})
        )

    return make


def load_questions(path: Path | None, limit: int | None = None) -> list[EvalItem]:
    """EvalItems of a JSONL question set; a missing or empty file is an empty set."""
    if path is None or not Path(path).is_file() or not Path(path).read_text().strip():
        return []
    items = load_dataset(path)
    return items[:limit] if limit else items


def score(generator: CypherGenerator, graph_store: GraphStore, items: Sequence[EvalItem], settings: Settings,
          label: str = "") -> SetScore:
    """Execution accuracy of ``generator`` on ``items`` through the agent over ``graph_store`` (no few-shot
    store)."""
    agent = make_agent(settings, graph_store=graph_store, generator=generator,
                       example_pool=ExamplePool.for_settings(settings))
    report = run_eval(agent, items, gold_store=graph_store, progress=False, label=label)
    return SetScore(
        n=report.n,
        correct=report.correct,
        accuracy=round(report.accuracy, 4),
        executable_share=round(report.executable_share, 4),
        latency_p50_ms=round(report.latency_p50_ms, 1),
        model_version=report.model_version or generator.version,
    )


def _items_key(items: Sequence[EvalItem]) -> str:
    text = json.dumps([[i.id, i.question, i.cypher] for i in items])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _eval_key(settings: Settings) -> str:
    keys = (
        "max_attempts",
        "max_new_tokens",
        "temperature",
        "repetition_penalty",
        "schema_max_chars",
        "max_rows",
        "pool_k",
    )
    # candidates resolved: the same settings score differently on a GPU (4 by default) than on a CPU (1)
    values = {k: getattr(settings, k, None) for k in keys} | {"candidates": settings.resolved_candidates()}
    return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:12]


def _score_sets(
    factory: GeneratorFactory,
    graph_store: GraphStore,
    sets: dict[str, Sequence[EvalItem]],
    settings: Settings,
    side: str,
    cache: Path | None = None,
    cache_id: str | None = None,
) -> dict[str, SetScore | None]:
    """Scores of one side on every non-empty set; the generator is built once and freed afterwards."""
    cached: dict[str, Any] = {}
    if cache is not None and cache_id and cache.is_file():
        try:
            cached = json.loads(cache.read_text())
        except json.JSONDecodeError:
            cached = {}
    out: dict[str, SetScore | None] = {}
    generator = None
    try:
        for name, items in sets.items():
            if not items:
                out[name] = None
                continue
            key = (
                f"{cache_id}|{graph_store.name}|{_items_key(items)}|{_eval_key(settings)}"
                if cache_id
                else None
            )
            if key and key in cached:
                out[name] = SetScore(**{**cached[key], "cached": True})
                log.info("gate: %s on %s: %.1f %% (cached)", side, name, 100 * out[name].accuracy)
                continue
            if generator is None:
                generator = factory()
            out[name] = score(generator, graph_store, items, settings, label=f"{side}/{name}")
            log.info(
                "gate: %s on %s: %d/%d = %.1f %%",
                side,
                name,
                out[name].correct,
                out[name].n,
                100 * out[name].accuracy,
            )
            if key and cache is not None:
                cached[key] = asdict(out[name])
                atomic_write_text(cache, json.dumps(cached, indent=1))
    finally:
        del generator
        gc.collect()
    return out


def run_gate(
    candidate: GeneratorFactory,
    active: GeneratorFactory,
    graph_store: GraphStore,
    heldout: Sequence[EvalItem],
    regression: Sequence[EvalItem] = (),
    *,
    settings: Settings,
    margin: float = 0.0,
    active_version: str | None = None,
    score_cache: Path | None = None,
    active_cache_id: str | None = None,
) -> GateDecision:
    """Score both sides on both sets and decide. Refuses (never promotes) without held-out questions.

    ``active_version`` is recorded in the decision. With ``score_cache`` and ``active_cache_id`` (an
    identity of the active side such as ``<base model>+v0003``) the active side's scores are cached.
    """
    if not heldout:
        raise DataError("the gate needs held-out questions (heldout.jsonl is empty); nothing was promoted")
    sets = {"heldout": list(heldout), "regression": list(regression)}
    cand = _score_sets(candidate, graph_store, sets, settings, "candidate")
    act = _score_sets(
        active, graph_store, sets, settings, "active", cache=score_cache, cache_id=active_cache_id
    )
    failures, passes = [], []
    for name in sets:
        c, a = cand[name], act[name]
        if c is None or a is None:
            continue
        counts = f"{name} {c.correct}/{c.n} vs live {a.correct}/{a.n}"
        if name == "heldout":  # the new model has to win here: a tie keeps the live one
            ok = beats(c.accuracy, a.accuracy, margin)
            need = "needs to beat the live model" + (f" by {margin:.1%}" if margin else "")
        else:  # verified corrections: it may not lose any ground the live model holds
            ok = c.accuracy + ACCURACY_EPS >= a.accuracy + margin
            need = "needs at least the live model's score" + (f" + {margin:.1%}" if margin else "")
        if ok:
            passes.append(counts)
        else:
            failures.append(f"{counts}, {need}")
    if failures:
        reason = "not promoted: " + "; ".join(failures)
    else:
        if cand["regression"] is None:
            passes.append("no verified-feedback regression questions yet")
        reason = f"beats the live model{f' by at least {margin:.1%}' if margin else ''}: " + "; ".join(passes)
    eval_settings = {
        k: getattr(settings, k, None) for k in ("max_attempts", "max_new_tokens", "temperature", "few_shot_k")
    }
    return GateDecision(
        promote=not failures,
        reason=reason,
        margin=margin,
        candidate=cand,
        active=act,
        active_version=active_version,
        settings=eval_settings,
    )
