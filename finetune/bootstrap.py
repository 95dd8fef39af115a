"""``cypherloop bootstrap``: make a new graph answerable in one command.

    cypherloop bootstrap --graph movies [--budget-minutes 10] [--device auto|cpu|cuda]

Stages, each resumable (``<home>/bootstrap/<graph>/state.json`` records what finished; a killed run
continues where it stopped, training from its last checkpoint):

    profile   what the graph holds (labels, properties and their kinds, patterns)
    generate  compositional question → Cypher pairs, every query run read-only (finetune.synth)
    index     a held-out split of the generated queries; the rest becomes the graph's example pool,
              embedded for few-shot retrieval (feedback_store.pool)
    build     the training set: pool pairs (half of them with retrieved pool examples in the prompt,
              as the agent serves them) + general multi-schema rows + approved corrections
    train     a full fine-tune of the base (finetune.full) within what is left of the budget
    evaluate  first-attempt execution accuracy on the held-out questions: the new model vs the live one
    promote   the new model becomes a registry version; it goes live only if it beats the live one (a tie
              keeps the live one; the version stays for `cypherloop adapters promote`)

The plan scales with the device: on a GPU tens of thousands of pairs and minutes of training; on a
CPU a few thousand pairs, a smaller training set and a budget that still ends within ~30 minutes.
``cypherloop retrain`` rounds reuse the pool this writes (pool pairs + corrections).

The pool follows the return style asked for now (``Bootstrap.style_change``: the ``--return-style`` this
bootstrap was given, else the ``return_style`` setting; ``auto`` resolved from today's approved corrections).
When that differs from the style the pairs were generated with, a later run (``cypherloop bootstrap`` without
``--fresh``) or a retrain round (``refresh_pool``) generates them again: the stages from ``generate`` on run
again under a new run id, each still resumable. Until ``index`` and ``build`` finish, the old pool and its
training pairs stay where they are (both are replaced atomically), and the live model is never touched.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import random
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agent.core.adapters import live_adapter
from agent.core.cypher_text import node_labels, return_items, unquote_ident
from agent.core.errors import ConfigError, DataError
from agent.core.files import atomic_write_text, jsonl_text, read_jsonl
from agent.core.settings import Settings
from agent.evaluation import beats, load_dataset, run_eval
from agent.factory import make_agent
from agent.graphdb import GraphStore, open_graph
from agent.models.local import TransformersGenerator, check_base_model
from feedback_store.chroma import ChromaFeedbackStore
from feedback_store.pool import ExamplePool, build_pool, pool_dir
from finetune.dataset import BuildSpec, auto_offline, build_dataset, offline_stamp
from finetune.decision import Outcome, Verdict, read_outcome
from finetune.drift import stamp
from finetune.full import FullConfig, train_full
from finetune.lock import retrain_lock
from finetune.registry import AdapterRegistry, kept_note
from finetune.synth import generate_pairs, profile_graph, read_pairs, write_pairs
from finetune.synth.grammar import RETURN_STYLES
from finetune.train import resolve_base_model

log = logging.getLogger("cypherloop.bootstrap")

STAGES = ("profile", "generate", "index", "build", "train", "evaluate", "promote")
GENERAL_DATA = Path(__file__).resolve().parent / "data" / "general.jsonl.gz"
GENERAL_SCHEMAS = Path(__file__).resolve().parent / "data" / "general_schemas.json.gz"
HELDOUT_FRAC = 0.04
"""Share of the generated queries held out for the gate (every paraphrase of a query goes with it)."""
AUTO = "auto"
STYLES = (AUTO, *RETURN_STYLES)
"""``--return-style`` and the setting: a style of ``RETURN_STYLES``, or ``auto``: the approved corrections'
(``auto_return_style``), resolved when the pairs are generated."""
AUTO_MIN_EXAMPLES = 3
"""Approved corrections returning whole nodes or their names that ``auto`` needs before it follows them."""


@dataclass
class Plan:
    """How big each stage is, from the device and the time budget (fixed when a run starts; the recipe and the
    training overrides may change until the train stage starts: ``Bootstrap._take_training_changes``)."""

    device: str
    budget_s: float
    pairs: int
    general_rows: int
    eval_n: int
    few_shot_frac: float
    few_shot_k: int
    recipe: str
    eval_reserve_s: float
    train_overrides: list[str] = field(default_factory=list)
    return_style: str = "mixed"  # finetune.synth.grammar.RETURN_STYLES, or "auto" until generated
    return_style_reason: str = ""  # how "auto" chose it
    return_style_flag: str = ""
    """The --return-style this bootstrap was given (a person's choice for the graph: later runs and retrain
    rounds keep asking for it); "" when the ``return_style`` setting decides."""

    @classmethod
    def make(
        cls,
        device: str,
        budget_minutes: float | None,
        pairs: int | None = None,
        general_rows: int | None = None,
        eval_n: int | None = None,
        few_shot_frac: float = 0.5,
        recipe: str | None = None,
        train_overrides: list[str] | None = None,
        return_style: str = "mixed",
    ) -> Plan:
        gpu = device.startswith("cuda")
        budget = 60.0 * (budget_minutes if budget_minutes else (10 if gpu else 30))
        if budget < 60:
            raise ConfigError("--budget-minutes must be at least 1")
        if return_style not in STYLES:
            raise ConfigError(f"--return-style must be one of {', '.join(STYLES)}")
        scale = min(1.0, budget / (600 if gpu else 1800))
        return cls(
            device=device,
            budget_s=budget,
            pairs=pairs or max(200, int((40000 if gpu else 3000) * scale)),
            general_rows=general_rows
            if general_rows is not None
            else max(50, int((4000 if gpu else 300) * scale)),
            eval_n=eval_n or (200 if gpu else max(20, int(60 * scale))),
            few_shot_frac=few_shot_frac,
            few_shot_k=3,
            recipe=recipe or ("full-gpu" if gpu else "full-cpu"),
            eval_reserve_s=(60.0 if gpu else 0.25 * budget),
            train_overrides=list(train_overrides or []),
            return_style=return_style,
        )


@dataclass(frozen=True)
class StyleChange:
    """The pool's pairs return entities as ``had``; the style asked for now resolves to ``wanted`` (``why``:
    the flag, the setting, or ``auto``'s count of the approved corrections)."""

    had: str
    wanted: str
    why: str

    def text(self) -> str:
        return (f"pool generated again with entities returned as {self.wanted} instead of {self.had} "
                f"({self.why})")


@dataclass
class BootstrapReport:
    """What a run did (``<home>/bootstrap/<graph>/report.json``)."""

    graph: str
    plan: dict[str, Any]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = Outcome.RUNNING  # running | promoted | rejected | trained | paused
    version: str | None = None
    message: str = ""
    restyled: dict[str, Any] | None = None
    """When this run generated the pool again in another style: ``StyleChange``'s fields, the run id and the
    version the previous pool's run made (``Bootstrap.state["restyled"]``)."""

    def table(self) -> str:
        lines = ["| stage | seconds | result |", "|---|---:|---|"]
        for name in STAGES:
            st = self.stages.get(name)
            if st:
                lines.append(f"| {name} | {st.get('seconds', 0):.1f} | {st.get('summary', '')} |")
        lines.append(f"\n{self.status}: {self.message}")
        return "\n".join(lines)


class Bootstrap:
    """One graph's bootstrap in ``<home>/bootstrap/<graph>/``; ``run()`` does (or resumes) every stage."""

    def __init__(
        self,
        settings: Settings,
        graph: str,
        *,
        budget_minutes: float | None = None,
        device: str = "auto",
        pairs: int | None = None,
        general_rows: int | None = None,
        eval_n: int | None = None,
        fresh: bool = False,
        promote: bool = True,
        seed: int = 0,
        graph_store: GraphStore | None = None,
        progress: bool = True,
        workers: int | None = None,
        stop_after: str | None = None,
        recipe: str | None = None,
        train_overrides: list[str] | None = None,
        on_stage: Callable[[str, float, str], None] | None = None,
        return_style: str | None = None,
    ) -> None:
        if stop_after is not None and stop_after not in STAGES:
            raise ConfigError(f"--stop-after must be one of {', '.join(STAGES)}")
        self.stop_after = stop_after
        self.settings = settings
        self.graph = graph
        self.dir = settings.path("bootstrap", graph)
        self.promote_ok = promote
        self.seed = seed
        self.progress = progress
        self.workers = workers
        self.on_stage = on_stage
        self._store = graph_store
        self._own_store = graph_store is None
        if fresh and self.dir.exists():
            shutil.rmtree(self.dir)
        self.state = self._load_state()
        self.state.setdefault("run_id", uuid.uuid4().hex)  # a state written before runs were named
        if "plan" not in self.state:
            dev = _resolve_device(device)
            self.state["plan"] = asdict(
                Plan.make(
                    dev,
                    budget_minutes,
                    pairs,
                    general_rows,
                    eval_n,
                    recipe=recipe,
                    train_overrides=train_overrides,
                    return_style=return_style or settings.return_style,
                )
            )
            self.state["plan"]["return_style_flag"] = return_style or ""
            self.state["seed"] = seed
        else:
            self.state["plan"].setdefault("return_style_flag", _flag_of_old_plan(self.state["plan"]))
            self._take_training_changes(recipe, train_overrides)
            self._take_return_style(return_style)
        self.plan = Plan(**self.state["plan"])

    def _take_return_style(self, style: str | None) -> None:
        """A --return-style given to a resumed bootstrap is the style asked for from now on; before its pairs
        are generated it is the plan's, after, ``run`` generates them again when it resolves to another style
        than theirs (``style_change``)."""
        if style is None:
            return
        if style not in STYLES:
            raise ConfigError(f"--return-style must be one of {', '.join(STYLES)}")
        plan = self.state["plan"]
        plan["return_style_flag"] = style
        if not self._done("generate") and style != plan.get("return_style"):
            plan.update(return_style=style, return_style_reason="")

    def _take_training_changes(self, recipe: str | None, train_overrides: list[str] | None) -> None:
        """A --recipe or --set given to a resumed bootstrap (an earlier call wrote its plan) counts until its
        training starts, never silently not (GPU round 5 lost its compile=true this way); after, a one-line
        refusal."""
        plan = self.state["plan"]
        changes: dict[str, Any] = {}
        if recipe and recipe != plan["recipe"]:
            changes["recipe"] = recipe
        if train_overrides and list(train_overrides) != plan["train_overrides"]:
            changes["train_overrides"] = list(train_overrides)
        if not changes:
            return
        if "train" in self.state["stages"] or (self.dir / "run").exists():
            had = _flags(plan["recipe"], plan["train_overrides"])
            wanted = _flags(changes.get("recipe"), changes.get("train_overrides", []))
            raise ConfigError(
                f"the bootstrap of {self.graph} already trained with {had}; add --fresh to start again "
                f"with {wanted}"
            )
        plan.update(changes)

    # --- state ---------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return _new_state()

    def _save_state(self) -> None:
        atomic_write_text(self.dir / "state.json", json.dumps(self.state, indent=2, default=str))

    def _done(self, stage: str) -> bool:
        return bool(self.state["stages"].get(stage, {}).get("done"))

    def elapsed(self) -> float:
        return sum(float(s.get("seconds", 0)) for s in self.state["stages"].values())

    def _emit(self, stage: str, fraction: float, message: str = "") -> None:
        info = {
            "graph": self.graph,
            "stage": stage,
            "stage_no": STAGES.index(stage) + 1,
            "stages": len(STAGES),
            "fraction": round(fraction, 3),
            "message": message,
            "at": time.time(),
        }
        atomic_write_text(self.dir / "progress.json", json.dumps(info))
        if self.on_stage is not None:
            self.on_stage(stage, fraction, message)

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = open_graph(self.settings, self.graph)
        return self._store

    # --- the return style ----------------------------------------------------------------------
    def asked_return_style(self) -> tuple[str, str]:
        """(style, why): the style the pairs should have now: the --return-style this bootstrap was given,
        else the ``return_style`` setting; ``auto`` resolved from today's approved corrections."""
        return asked_return_style(self.settings, self.graph, self.plan.return_style_flag, self._naming_keys)

    def style_change(self) -> StyleChange | None:
        """How the generated pairs' style differs from the one asked for now; None before they are generated
        or when it does not."""
        if not self._done("generate"):
            return None
        had = self.state["stages"]["generate"].get("return_style") or self.state["plan"]["return_style"]
        if had == AUTO:  # pairs from elsewhere, their style never resolved: nothing to compare
            return None
        wanted, why = self.asked_return_style()
        return None if wanted == had else StyleChange(had, wanted, why)

    def restyle_pending(self) -> bool:
        """A run that generates the pool again was stopped (killed, failed) before its training pairs were
        built: the old ones are still those a retrain round reads."""
        restyled = self.state.get("restyled") or {}
        return restyled.get("run_id") == self.state["run_id"] and not self._done("build")

    def _follow_return_style(self) -> None:
        """Start the stages from ``generate`` on again, as a new run, when the style asked for now is another
        than the pairs'. The old pool, its files and the live model stay until the new stages replace them."""
        change = self.style_change()
        if change is None:
            return
        log.warning("%s: %s", self.graph, change.text())
        previous = self.state["stages"].get("promote", {}).get("version")
        run_id = uuid.uuid4().hex
        self.state.update(
            stages={k: v for k, v in self.state["stages"].items() if k == "profile"},
            run_id=run_id,  # a new registry key: the old run's version is not this one
            restyled={**asdict(change), "run_id": run_id, "at": time.time(), "previous_version": previous},
        )
        self.state["plan"].update(return_style=change.wanted,
                                  return_style_reason=change.why if change.why.startswith(AUTO) else "")
        self.plan = Plan(**self.state["plan"])
        self._save_state()

    # --- the run -------------------------------------------------------------------------------
    def run(self, *, lock: bool = True) -> BootstrapReport:
        """Do (or resume) every stage; ``lock=False`` when the caller holds the retrain lock already (a
        retrain round generating the pool again)."""
        check_base_model(self.settings)  # a missing base package fails now, not after generation
        self.dir.mkdir(parents=True, exist_ok=True)
        fingerprint = stamp(self.settings, self.store, "bootstrap")["schema_fingerprint"]
        if self.state.get("schema_fingerprint") not in (None, fingerprint):
            log.warning("the graph's schema changed since this bootstrap started: starting over")
            shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            plan = self.state["plan"]  # the style asked for now (auto: chosen again from the corrections)
            plan.update(return_style=plan.get("return_style_flag") or self.settings.return_style,
                        return_style_reason="")
            self.state = {**_new_state(), "plan": plan, "seed": self.seed}
        self.state["schema_fingerprint"] = fingerprint
        self._save_state()
        report = BootstrapReport(self.graph, dict(self.state["plan"]))
        try:
            with retrain_lock(self.settings.home_dir, wait=False) if lock else contextlib.nullcontext():
                self._follow_return_style()
                for stage in STAGES:
                    if not self._done(stage):
                        self._emit(stage, 0.0, "starting")
                        t0 = time.perf_counter()
                        info = getattr(self, f"_{stage}")()
                        previous = float(self.state["stages"].get(stage, {}).get("seconds", 0))
                        self.state["stages"][stage] = {
                            "done": True,
                            "seconds": round(previous + time.perf_counter() - t0, 2),
                            **info,
                        }
                        self._save_state()
                        self._emit(stage, 1.0, info.get("summary", ""))
                    report.stages[stage] = self.state["stages"][stage]
                    if stage == self.stop_after:
                        break
            promo = self.state["stages"].get("promote") or {
                "status": Outcome.PAUSED,
                "summary": f"stopped after {self.stop_after}; run again to go on",
            }
            report.status, report.version, report.message = (
                read_outcome(promo["status"]) or promo["status"],
                promo.get("version"),
                promo["summary"],
            )
            restyled = self.state.get("restyled")
            if restyled and restyled.get("run_id") == self.state["run_id"]:
                report.restyled = restyled
                change = StyleChange(restyled["had"], restyled["wanted"], restyled["why"])
                report.message = f"{change.text()}; {report.message}"
        finally:
            if self._own_store and self._store is not None:
                self._store.close()
        report.plan = dict(self.state["plan"])  # with the style ``auto`` chose
        atomic_write_text(self.dir / "report.json", json.dumps(asdict(report), indent=2, default=str))
        return report

    # --- stages ----------------------------------------------------------------------------------
    def _profile(self) -> dict[str, Any]:
        p = profile_graph(self.store, seed=self.seed)
        if not any(lab.nodes for lab in p.labels.values()):
            raise DataError(
                f"graph {self.graph!r} has no nodes: load data first (cypherloop graph load FILE --graph "
                f"{self.graph})"
            )
        summary = {
            lab.label: {
                "nodes": lab.count,
                "key": lab.key.name if lab.key else None,
                "properties": {n: x.kind for n, x in lab.props.items()},
            }
            for lab in p.labels.values()
        }
        rels = [
            {
                "pattern": f"(:{r.start.label})-[:{r.type}]->(:{r.end.label})",
                "edges_sampled": len(r.edges),
                "properties": {n: x.kind for n, x in r.props.items()},
            }
            for r in p.rels
        ]
        atomic_write_text(
            self.dir / "profile.json", json.dumps({"labels": summary, "patterns": rels}, indent=2)
        )
        return {"summary": f"{len(p.labels)} labels, {len(p.rels)} patterns"}

    def _generate(self) -> dict[str, Any]:
        # the training of pairs generated before (a pool generated again) must not be resumed on these
        shutil.rmtree(self.dir / "run", ignore_errors=True)
        bar = _bar(self.progress, self.plan.pairs, f"generate ({self.graph})", "pair")
        last = [0]

        def tick(n: int) -> None:
            if bar is not None:
                bar.update(n - last[0])
            last[0] = n
            self._emit("generate", n / self.plan.pairs, f"{n} pairs")

        style = self._chosen_return_style()
        try:
            pairs, rep = generate_pairs(
                self.store, self.plan.pairs, seed=self.seed, workers=self.workers or 4, progress=tick,
                return_style=style,
            )
        finally:
            if bar is not None:
                bar.close()
        if not pairs:
            raise DataError(f"no usable question/query pair could be generated on graph {self.graph!r}")
        write_pairs(pairs, self.dir / "pairs.jsonl")
        atomic_write_text(self.dir / "generation.json", json.dumps(rep.to_dict(), indent=2))
        return {
            "pairs": len(pairs),
            "queries": rep.queries_kept,
            "return_style": style,
            "summary": f"{len(pairs)} pairs from {rep.queries_kept} queries ({rep.db_queries} database "
                       f"queries), entities returned as {style}"
                       + (f" ({self.plan.return_style_reason})" if self.plan.return_style_reason else ""),
        }

    def _chosen_return_style(self) -> str:
        """The plan's return style; ``auto`` becomes the approved corrections' (``auto_return_style``, their
        names keyed by the profile's naming keys), written into the plan with the reason."""
        if self.plan.return_style != AUTO:
            return self.plan.return_style
        style, why = auto_return_style(approved_cyphers(self.settings, self.graph), self._naming_keys())
        self.state["plan"].update(return_style=style, return_style_reason=why)
        self.plan = Plan(**self.state["plan"])
        self._save_state()
        return style

    def _naming_keys(self) -> dict[str, str | None]:
        """label -> its naming key, from the profile (empty before the profile stage)."""
        profile = self.dir / "profile.json"
        if not profile.exists():
            return {}
        return {label: info.get("key") for label, info in json.loads(profile.read_text())["labels"].items()}

    def _index(self) -> dict[str, Any]:
        pairs = read_pairs(self.dir / "pairs.jsonl")
        ids = sorted({p["query_id"] for p in pairs})
        cut = max(1, min(self.plan.eval_n, max(int(len(ids) * HELDOUT_FRAC), len(ids) // 10)))
        held = set(sorted(ids, key=lambda q: hashlib.sha256(f"heldout:{q}".encode()).hexdigest())[:cut])
        heldout, pool, seen = [], [], set()
        for i, p in enumerate(pairs):
            if p["query_id"] in held:
                if p["query_id"] not in seen:  # one question per held-out query
                    seen.add(p["query_id"])
                    heldout.append(
                        {
                            "id": f"{self.graph}-h{i}",
                            "question": p["question"],
                            "cypher": p["cypher"],
                            "category": p.get("category", ""),
                        }
                    )
            else:
                pool.append(p)
        atomic_write_text(self.dir / "heldout.jsonl", jsonl_text(heldout))
        atomic_write_text(self.dir / "pool_pairs.jsonl", jsonl_text(pool))
        self._emit("index", 0.1, f"embedding {len(pool)} questions")
        n = build_pool(pool_dir(self.settings.home_dir, self.graph), pool, graph=self.graph,
                       schema_fingerprint=self.state.get("schema_fingerprint", ""))
        return {
            "pool": n,
            "heldout": len(heldout),
            "summary": f"pool of {n} pairs indexed, {len(heldout)} held-out questions",
        }

    def _build(self) -> dict[str, Any]:
        rng = random.Random(self.seed)
        pool = ExamplePool(pool_dir(self.settings.home_dir, self.graph), self.graph)
        rows = read_jsonl(self.dir / "pool_pairs.jsonl")
        chosen = [i for i in range(len(rows)) if rng.random() < self.plan.few_shot_frac]
        shots = pool.neighbours(chosen, self.plan.few_shot_k)
        for i, found in zip(chosen, shots, strict=True):
            rows[i]["examples"] = [{"question": r["question"], "cypher": r["cypher"]} for r in found]
        with_shots = self.dir / "train_pairs.jsonl"
        atomic_write_text(with_shots, jsonl_text(rows))
        extra = []
        if self.plan.general_rows > 0:
            extra = [self._general_sample(self.plan.general_rows, rng)]
        feedback = _has_feedback(self.settings)
        spec = BuildSpec(graph=self.graph, out_dir=self.dir / "dataset", offline=[with_shots], extra=extra,
                         feedback=feedback, heldout_frac=0.0, regression_frac=0.0, seed=self.seed)
        summary = build_dataset(self.settings, spec, graph_store=self.store)
        return {
            "train": summary.counts.get("train", 0),
            "dataset_hash": summary.dataset_hash,
            "summary": f"{summary.counts.get('train', 0)} training records "
            f"({', '.join(f'{k} {v}' for k, v in summary.by_source.get('train', {}).items())})",
        }

    def _general_sample(self, n: int, rng: random.Random) -> Path:
        """``n`` general multi-schema rows (the packaged text2cypher data), each with its schema text."""
        with gzip.open(GENERAL_SCHEMAS, "rt", encoding="utf-8") as f:
            schemas = json.load(f)
        with gzip.open(GENERAL_DATA, "rt", encoding="utf-8") as f:
            rows = [json.loads(x) for x in f if x.strip()]
        rng.shuffle(rows)
        out = self.dir / "general_sample.jsonl"
        lines = [json.dumps({"question": r["question"], "cypher": r["cypher"], "database": r["database"],
                             "category": r["category"], "schema": schemas[r["database"]]}, ensure_ascii=False)
                 for r in rows[:n]]
        atomic_write_text(out, "\n".join(lines) + "\n")
        return out

    def _train(self) -> dict[str, Any]:
        info = self.state["stages"].setdefault("train", {})
        if "budget_s" not in info:  # fixed once, so a resumed run trains under the same settings
            info["budget_s"] = round(
                max(30.0, self.plan.budget_s - self.elapsed() - self.plan.eval_reserve_s), 1
            )
            self._save_state()
        cfg = FullConfig.load(self.plan.recipe, [f"budget_s={info['budget_s']}", f"seed={self.seed}",
                                                 *self.plan.train_overrides])
        base = resolve_base_model(self.settings, None)
        bar = _bar(self.progress, 1, f"train ({self.graph}, ≤{info['budget_s']:.0f} s)", "step")

        def tick(step: int, total: int, loss: float) -> None:
            if bar is not None:
                bar.total = total
                bar.n = step
                bar.set_postfix(loss=f"{loss:.3f}")
                bar.refresh()
            self._emit("train", step / max(1, total), f"step {step}/{total}, loss {loss:.3f}")

        try:
            result = train_full(
                self.dir / "dataset", base, self.dir / "run", cfg, device=self.plan.device, progress=tick
            )
        finally:
            if bar is not None:
                bar.close()
        m = result.metrics
        return {"model_dir": result.model_dir, "metrics": m, "budget_s": info["budget_s"],
                "summary": f"{m['steps']} steps ({m['epochs']} epochs) in {m['train_seconds']:.0f} s, "
                           f"{m['tokens_per_second']:.0f} tokens/s, loss {m['final_loss']}"}

    def _evaluate(self) -> dict[str, Any]:
        items = load_dataset(self.dir / "heldout.jsonl")
        settings = self.settings.model_copy(
            update={
                "temperature": 0.0,
                "few_shot_k": 0,
                "pool_k": 0,
                "candidates": 1,
                "max_attempts": 1,
                "device": self.plan.device,
            }
        )
        model_dir = self.state["stages"]["train"]["model_dir"]
        live = live_adapter(self.settings.home_dir, self.settings.base_model)
        scores = {}
        for side, adapter in (("new", model_dir), ("live", str(live.path) if live else "none")):
            gen = TransformersGenerator(settings.model_copy(update={"adapter": adapter}))
            agent = make_agent(settings, graph_store=self.store, generator=gen)
            rep = run_eval(
                agent,
                items,
                gold_store=self.store,
                progress=self.progress,
                label=f"{side} ({self.graph})",
                batch_size=64 if self.plan.device.startswith("cuda") else 8,
            )
            scores[side] = {"accuracy": round(rep.accuracy, 4), "correct": rep.correct, "n": rep.n,
                            "executable": round(rep.executable_share, 4), "model_version": rep.model_version,
                            "per_category": rep.per_category}
            del gen, agent
        new, old = scores["new"]["accuracy"], scores["live"]["accuracy"]
        return {
            "scores": scores,
            "live_version": live.version if live else None,
            "summary": f"held-out accuracy: new {new:.1%} vs live {old:.1%} ({scores['new']['n']} questions)",
        }

    def _promote(self) -> dict[str, Any]:
        """Register the new model (once per run: a run killed after the add and resumed finds its version)
        and act on the decision; every step is idempotent, so a resume after a kill anywhere here ends the
        same."""
        ev = self.state["stages"]["evaluate"]
        new, old = ev["scores"]["new"]["accuracy"], ev["scores"]["live"]["accuracy"]
        train = self.state["stages"]["train"]
        reg = AdapterRegistry(self.settings.home_dir, self.settings)
        version = reg.add(
            Path(train["model_dir"]),
            {
                "graph": self.graph,
                "source": "bootstrap",
                "base_model": self.settings.base_model,
                "dataset_hash": self.state["stages"]["build"]["dataset_hash"],
                "train": train["metrics"],
                "metrics": {
                    "heldout_accuracy": new,
                    "live_heldout_accuracy": old,
                    "heldout_n": ev["scores"]["new"]["n"],
                },
                "schema_fingerprint": self.state.get("schema_fingerprint"),
            },
            extra_files={"loss.jsonl": Path(train["model_dir"]).parent / "loss.jsonl"},
            run_key=f"bootstrap:{self.graph}:{self.state['run_id']}",
        )
        counts = (f"held-out {ev['scores']['new']['correct']}/{ev['scores']['new']['n']} vs live "
                  f"{ev['scores']['live']['correct']}/{ev['scores']['live']['n']}")
        # a tie keeps the live model (0/12 vs 0/12 on a tiny CPU bootstrap)
        verdict = Verdict.PROMOTE if beats(new, old) else Verdict.REJECT
        reg.update_meta(version, gate={"decision": verdict, "new": new, "live": old})
        status = reg.settle(version, verdict, promote=self.promote_ok,
                            reason=f"bootstrap of {self.graph}: {counts}")
        text = {
            Outcome.PROMOTED: f"{version} is live ({counts})",
            Outcome.REJECTED: f"{version} not promoted: {counts}, needs to beat the live model",
            Outcome.TRAINED: f"{version} trained, not promoted on request ({counts})",
        }[status]
        if status != Outcome.PROMOTED:
            text += f"; {kept_note(version)}"
        return {"status": status, "decision": verdict, "version": version, "summary": text}


def _new_state() -> dict[str, Any]:
    """The state of a run that has done nothing yet; ``run_id`` names the run (the registry's key for its
    version)."""
    return {"stages": {}, "started_at": time.time(), "run_id": uuid.uuid4().hex}


def _flag_of_old_plan(plan: dict[str, Any]) -> str:
    """``return_style_flag`` for a plan written before it existed: names or nodes without auto's reason were
    asked for by a person (kept); mixed (the default then) and auto's choices follow the setting."""
    style = plan.get("return_style", "mixed")
    return style if style in ("names", "nodes") and not plan.get("return_style_reason") else ""


def refresh_pool(settings: Settings, graph: str, store: GraphStore) -> dict[str, Any] | None:
    """For a retrain round, which holds the retrain lock: generate the graph's bootstrap pool again, up to its
    training pairs (``build``), when the style asked for now differs from its pairs' (or such a run stopped
    before it built them). None when the pool stays as it is; else what happened, for the round's report.

    A failure is reported, not raised: the old pool and its training pairs are still whole (``index`` and
    ``build`` replace them atomically), so the round goes on with them and the next one tries again. The pool
    keeps the bootstrap's pair count: generating it is seconds and embedding it well under a minute on a
    2-core CPU for the CPU plan's 3000 pairs, next to the round's own quarter of an hour.
    """
    folder = settings.path("bootstrap", graph)
    if not (folder / "state.json").is_file() or not (folder / "train_pairs.jsonl").is_file():
        return None  # no pool: the round generates its own offline pairs
    run = Bootstrap(settings, graph, graph_store=store, progress=False, stop_after="build")
    change = run.style_change()
    if change is None and not run.restyle_pending():
        return None
    if change is None:  # resuming a run stopped while generating the pool again
        r = run.state["restyled"]
        change = StyleChange(r["had"], r["wanted"], r["why"])
    info: dict[str, Any] = asdict(change)
    try:
        report = run.run(lock=False)
    except Exception as e:  # noqa: BLE001 - the round goes on with the old pool; recorded in its report
        log.warning("%s: the pool could not be generated again as %s (%s); this round trains on the pool it "
                    "has, generated as %s", graph, change.wanted, e, change.had)
        return {**info, "status": Outcome.FAILED, "error": f"{type(e).__name__}: {e}",
                "message": f"pool not generated again as {change.wanted} ({e}); trained on the {change.had} "
                           "pool"}
    log.warning("%s: %s", graph, report.message)
    return {**info, "status": "regenerated", "pairs": report.stages["generate"]["pairs"],
            "message": f"{change.text()}: {report.stages['generate']['pairs']} pairs; `cypherloop bootstrap "
                       f"--graph {graph}` trains a full model on them too"}


def coming_restyle(settings: Settings, graph: str) -> str:
    """What the next retrain round generates again before it trains because the return style asked for now
    differs from its data's, in words (for the Training tab, before a round); "" when nothing. Reads files and
    the feedback store only, never the graph: offline pairs (no pool) asked for as ``auto`` need the graph's
    naming keys, so the round's report alone says that case."""
    folder = settings.path("bootstrap", graph)
    if (folder / "state.json").is_file() and (folder / "train_pairs.jsonl").is_file():
        run = Bootstrap(settings, graph, progress=False)
        change = run.style_change()
        if change is None and run.restyle_pending():
            r = run.state["restyled"]
            change = StyleChange(r["had"], r["wanted"], r["why"])
        if change is None:
            return ""
        return (f"the next retrain round generates the pool of `{graph}` again before training: entities "
                f"returned as {change.wanted} instead of {change.had} ({change.why})")
    had = offline_stamp(settings, graph).get("return_style")
    flag = _bootstrap_flag(settings, graph)
    if not had or (flag or settings.return_style) == AUTO:
        return ""
    wanted, why = asked_return_style(settings, graph, flag, dict)
    if wanted == had:
        return ""
    return (f"the next retrain round generates the offline pairs of `{graph}` (no bootstrap pool) again "
            f"before training: entities returned as {wanted} instead of {had} ({why})")


def refresh_offline(settings: Settings, store: GraphStore, n: int, seed: int = 0
                    ) -> tuple[Path, dict[str, Any] | None]:
    """For a retrain round on a graph without a bootstrap pool: its own offline pairs
    (``finetune.dataset.auto_offline``), in the return style asked for now, resolved as a bootstrap resolves
    it (``asked_return_style``: a --return-style a stopped bootstrap of the graph was given, else the setting;
    ``auto`` from today's approved corrections and the graph's naming keys). Returns their path and, when
    they were generated (first, or again because the style or the schema changed), what happened for the
    round's report (the shape of ``refresh_pool``'s; None when the generated pairs served as they were).

    A failure to generate them again leaves the pairs of before serving, and the round trains on them and says
    so, as with the pool; with none before, it is the round's error."""
    graph = store.name
    profile: list[Any] = []

    def keys() -> dict[str, str | None]:
        profile.append(profile_graph(store, seed=seed))
        return {lab.label: (lab.key.name if lab.key else None) for lab in profile[0].labels.values()}

    wanted, why = asked_return_style(settings, graph, _bootstrap_flag(settings, graph), keys)
    try:
        got = auto_offline(settings, store, n, seed, wanted, why=why, profile=profile[0] if profile else None)
    except Exception as e:
        had = offline_stamp(settings, graph).get("return_style")
        path = settings.path("data", "offline", f"{graph}.jsonl")
        if not had or not path.is_file():
            raise
        log.warning("%s: the offline pairs could not be generated again as %s (%s); this round trains on "
                    "those it has, generated as %s", graph, wanted, e, had)
        return path, {"source": "offline", "had": had, "wanted": wanted, "why": why, "status": Outcome.FAILED,
                      "error": f"{type(e).__name__}: {e}",
                      "message": f"offline pairs not generated again as {wanted} ({e}); trained on the {had} "
                                 "ones"}
    if not got.generated:
        log.info("%s: offline pairs (no bootstrap pool) return entities as %s (%s)", graph, wanted, why)
        return got.path, None
    if got.replaced and got.replaced != wanted:
        what = f"generated again with entities returned as {wanted} instead of {got.replaced}"
    elif got.replaced:
        what = f"generated again for the changed schema, entities returned as {wanted}"
    else:
        what = f"generated with entities returned as {wanted}"
    info = {"source": "offline", "had": got.replaced or None, "wanted": wanted, "why": why,
            "status": "regenerated" if got.replaced else "generated", "pairs": got.pairs,
            "message": f"offline pairs {what} ({why}): {got.pairs} pairs (no bootstrap pool: "
                       f"`cypherloop bootstrap --graph {graph}` makes one)"}
    log.warning("%s: %s", graph, info["message"])
    return got.path, info


def asked_return_style(settings: Settings, graph: str, flag: str,
                       naming_keys: Callable[[], dict[str, str | None]]) -> tuple[str, str]:
    """(style, why): the return style asked for now: ``flag`` (a bootstrap's --return-style), else the
    ``return_style`` setting; ``auto`` resolved from the graph's approved corrections (``auto_return_style``,
    names told by ``naming_keys()``, label -> naming key, asked for only then)."""
    asked = flag or settings.return_style
    if asked == AUTO:
        return auto_return_style(approved_cyphers(settings, graph), naming_keys())
    return asked, f"--return-style {asked}" if flag else f"the return_style setting is {asked}"


def approved_cyphers(settings: Settings, graph: str) -> list[str]:
    """The graph's approved corrections' queries (none failing on the live schema), from the home's feedback
    store when it has one."""
    if not _has_feedback(settings):
        return []
    store = ChromaFeedbackStore(settings)
    try:
        return [ex.cypher for ex in store.list_examples(graph=graph, status="approved")
                if ex.status == "approved" and ex.drift != "failing"]
    finally:
        store.close()


def _bootstrap_flag(settings: Settings, graph: str) -> str:
    """The --return-style a bootstrap of ``graph`` was given (from its plan; a plan written before the flag
    read as ``_flag_of_old_plan``); "" when none was, or no bootstrap ran."""
    try:
        plan = json.loads(settings.path("bootstrap", graph, "state.json").read_text()).get("plan") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return ""
    return str(plan.get("return_style_flag", _flag_of_old_plan(plan)) or "")


def _flags(recipe: str | None, overrides: list[str]) -> str:
    """The flags that give a recipe and training overrides: "--recipe full-cpu --set epochs=1"."""
    return " ".join([*([f"--recipe {recipe}"] if recipe else []), *(f"--set {x}" for x in overrides)])


def _has_feedback(settings: Settings) -> bool:
    return (settings.path("feedback", "chroma")).exists()


def returned_entities(cypher: str, keys: dict[str, str | None]) -> str | None:
    """How a query returns the entities it lists: ``nodes`` (``RETURN c``), ``names`` (``RETURN c.name``, the
    label's naming key from ``keys``, label -> key), or None (counts, other properties, both, or neither)."""
    bound = node_labels(cypher)
    kinds = set()
    for item in return_items(cypher):
        var, _, prop = item.partition(".")
        if var not in bound:
            continue
        if not prop:
            kinds.add("nodes")
        elif (label := bound[var]) is not None and keys.get(label) == unquote_ident(prop):
            kinds.add("names")
    return kinds.pop() if len(kinds) == 1 else None


def auto_return_style(cyphers: list[str], keys: dict[str, str | None]) -> tuple[str, str]:
    """(style, why): ``names`` or ``nodes`` when at least ``AUTO_MIN_EXAMPLES`` of the approved corrections
    return entities and twice as many of them one way as the other (the users' convention: the model
    answers in its training data's, and round 13 measured the wrong one costing 8–19 points,
    docs/BENCHMARKS.md A); ``mixed`` otherwise."""
    ways = [w for c in cyphers if (w := returned_entities(c, keys))]
    names, nodes = ways.count("names"), ways.count("nodes")
    seen = f"{names} of the {len(cyphers)} approved corrections return names, {nodes} whole nodes"
    if names + nodes >= AUTO_MIN_EXAMPLES and names >= 2 * nodes:
        return "names", f"auto: {seen}"
    if names + nodes >= AUTO_MIN_EXAMPLES and nodes >= 2 * names:
        return "nodes", f"auto: {seen}"
    return "mixed", f"auto: {seen}; mixed until {AUTO_MIN_EXAMPLES} agree two to one"


def _resolve_device(device: str) -> str:
    if device and device != "auto":
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("--device cuda was asked for, but torch sees no CUDA device")
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _bar(enabled: bool, total: int, desc: str, unit: str) -> Any:
    if not enabled:
        return None
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
