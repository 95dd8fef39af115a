"""Run retraining rounds without a person: on a cron expression, or after N new approved corrections.

    cypherloop scheduler --cron "0 3 * * *" --graph demo
    cypherloop scheduler --every-n-corrections 20 --graph demo [--poll-seconds 60]
    cypherloop scheduler --watch-schema --graph demo [--poll-seconds 60]   (also with either of the above)

With ``--watch-schema`` every poll compares the graph's live schema fingerprint with the one last acted
on (``state.json``; at first the latest recorded snapshot, ``agent.core.drift``). When it changed, the
stored examples are re-checked on the new schema (``finetune.drift.recheck_examples``) and a fresh
``cypherloop bootstrap`` runs for the graph (a new pool, a model trained on the new schema).

APScheduler 3.x ``BlockingScheduler``. Jobs live in a persistent SQLAlchemy (SQLite) job store at
``<home>/scheduler/jobs.sqlite`` when SQLAlchemy is installed, else in memory. Either way
``<home>/scheduler/state.json`` records, per graph, the last run and the approved-correction count
already acted on, so a restart neither forgets the count nor misses a cron slot: a slot that fell
while the scheduler was down runs once at start (coalesced). Rounds never overlap: one job instance
at a time here, and ``retrain``'s file lock against every other process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.core.drift import SnapshotStore
from agent.core.errors import ConfigError, LockBusy
from agent.core.feedback import FeedbackStore
from agent.core.files import atomic_write_text
from agent.core.settings import Settings
from agent.graphdb import GraphStore, open_graph
from feedback_store.chroma import ChromaFeedbackStore
from finetune.bootstrap import Bootstrap
from finetune.drift import recheck_examples
from finetune.retrain import retrain

log = logging.getLogger("cypherloop.scheduler")

STATE_FILE = "state.json"
_state_lock = threading.Lock()


# ---------------------------------------------------------------------- state
def state_path(home: Path) -> Path:
    return Path(home) / "scheduler" / STATE_FILE


def read_state(home: Path) -> dict[str, Any]:
    try:
        return json.loads(state_path(home).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def update_state(home: Path, graph: str, **fields: Any) -> dict[str, Any]:
    """Merge fields into the graph's entry of state.json (atomic replace)."""
    with _state_lock:
        state = read_state(home)
        entry = state.setdefault(graph, {})
        entry.update(fields)
        atomic_write_text(state_path(home), json.dumps(state, indent=2, default=str))
        return entry


# ---------------------------------------------------------------------- counting corrections
def approved_corrections(store: FeedbackStore, graph: str) -> int:
    """Approved verified examples of ``graph`` that came from corrections (the FeedbackStore protocol)."""
    return sum(
        1
        for e in store.list_examples(graph=graph, status="approved")
        if getattr(e, "source", "") == "correction"
    )


def store_counter(settings: Settings) -> Callable[[], int]:
    """A counter over the configured feedback store (opened once, reused by every poll)."""
    store = ChromaFeedbackStore(settings)
    return lambda: approved_corrections(store, settings.graph)


def bootstrap_graph(settings: Settings) -> Any:
    """A fresh ``cypherloop bootstrap`` of ``settings.graph`` (what a schema change starts)."""
    return Bootstrap(settings, settings.graph, fresh=True, progress=False).run()


# ---------------------------------------------------------------------- triggers
def parse_cron(expr: str) -> Any:
    """An APScheduler CronTrigger from a 5-field crontab line (ConfigError when malformed)."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expr)
    except ValueError as e:
        raise ConfigError(
            f"bad cron expression {expr!r}: {e} (five fields: minute hour day month weekday)"
        ) from e


def missed_cron_slot(expr: str, last_run: float | None, now: float | None = None) -> bool:
    """True when a cron slot fell between the last run and now (the scheduler was down then)."""
    if not last_run:
        return False
    from datetime import timedelta

    trigger = parse_cron(expr)
    after_last = datetime.fromtimestamp(last_run, trigger.timezone) + timedelta(seconds=1)
    nxt = trigger.get_next_fire_time(None, after_last)  # the first slot after the last run
    return nxt is not None and nxt.timestamp() <= (now if now is not None else time.time())


# ---------------------------------------------------------------------- the jobs
class Runner:
    """What a scheduled job does: one retrain round, state bookkeeping, optional stop after ``max_runs``."""

    def __init__(
        self,
        settings: Settings,
        recipe: str,
        overrides: list[str],
        retrain_fn: Callable[..., Any] | None = None,
        counter: Callable[[], int] | None = None,
        max_runs: int | None = None,
        bootstrap_fn: Callable[[Settings], Any] | None = None,
        graph_store: GraphStore | None = None,
        feedback: FeedbackStore | None = None,
    ) -> None:
        self.settings, self.recipe, self.overrides = settings, recipe, list(overrides)
        self.retrain_fn = retrain_fn
        self.counter = counter
        self.bootstrap_fn = bootstrap_fn or bootstrap_graph
        self.graph_store = graph_store
        self.feedback = feedback
        self.max_runs = max_runs
        self.runs = 0
        self.scheduler: Any = None
        self.done = threading.Event()

    @property
    def home(self) -> Path:
        return Path(self.settings.home_dir)

    @property
    def graph(self) -> str:
        return self.settings.graph

    def run_round(self, trigger: str, corrections: int | None = None) -> Any:
        fn = self.retrain_fn or retrain
        log.info("scheduler: retrain %s with %s (%s)", self.graph, self.recipe, trigger)
        started = time.time()
        status, version = "failed", None
        try:
            report = fn(self.settings, self.graph, self.recipe, overrides=self.overrides, wait=False)
            status, version = getattr(report, "status", "done"), getattr(report, "version", None)
            if pool := getattr(report, "pool", None):  # the pool generated again in another return style
                log.info("scheduler: %s", pool["message"])
                update_state(self.home, self.graph, last_pool=pool["message"])
            return report
        except LockBusy as e:
            status = "busy"
            log.warning("scheduler: %s; will try at the next trigger", e)
        except Exception as e:  # noqa: BLE001 - a failed round must not stop the scheduler
            log.error("scheduler: retrain failed: %s", e)
        finally:
            fields: dict[str, Any] = {
                "last_run": started,
                "last_trigger": trigger,
                "last_status": status,
                "last_version": version,
            }
            if corrections is not None and status != "busy":
                fields["corrections_seen"] = corrections
            fields["runs"] = int(read_state(self.home).get(self.graph, {}).get("runs", 0)) + 1
            update_state(self.home, self.graph, **fields)
            self.runs += 1
            if self.max_runs is not None and self.runs >= self.max_runs:
                self.stop()
        return None

    def check_corrections(self, every_n: int) -> bool:
        """Poll: run a round when ``every_n`` approved corrections arrived since the last one acted on."""
        count = self.counter() if self.counter else 0
        seen = int(read_state(self.home).get(self.graph, {}).get("corrections_seen", 0))
        if count < seen:  # corrections were rejected or deleted: re-baseline
            update_state(self.home, self.graph, corrections_seen=count)
            return False
        if count - seen >= every_n:
            self.run_round(f"{count - seen} new approved corrections", corrections=count)
            return True
        return False

    def check_drift(self) -> bool:
        """Poll: when the live schema differs from the one last acted on, re-check the stored examples and
        start a bootstrap for the graph. True when it did."""
        graph_store = self.graph_store or open_graph(self.settings)
        try:
            live = graph_store.schema(refresh=True).fingerprint()
            seen = read_state(self.home).get(self.graph, {}).get("schema_fingerprint")
            if seen is None:
                last = SnapshotStore(self.home).latest(self.graph)
                seen = last.fingerprint if last is not None else live
                update_state(self.home, self.graph, schema_fingerprint=seen)
            if seen == live:
                return False
            log.info("scheduler: the schema of %s changed (%s → %s)", self.graph, seen, live)
            if self.feedback is None:
                self.feedback = ChromaFeedbackStore(self.settings)
            checked = recheck_examples(self.feedback, graph_store, SnapshotStore(self.home),
                                       self.settings.query_timeout_s)
        finally:
            if self.graph_store is None:
                graph_store.close()
        status = "failed"
        try:
            status = getattr(self.bootstrap_fn(self.settings), "status", "done")
        except LockBusy as e:
            log.warning("scheduler: %s; the bootstrap starts at the next poll", e)
            return False  # the fingerprint stays unacted on, so the next poll tries again
        except Exception as e:  # noqa: BLE001 - a failed bootstrap must not stop the scheduler
            log.error("scheduler: bootstrap after the schema change failed: %s", e)
        update_state(self.home, self.graph, schema_fingerprint=live, drift_at=time.time(),
                     drift_from=seen, drift_failing=len(checked.failing), drift_bootstrap=status)
        return True

    def stop(self) -> None:
        self.done.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)


_RUNNERS: dict[str, Runner] = {}


def _job(runner_id: str, kind: str, every_n: int = 0) -> None:
    """The job function APScheduler stores (by reference) in the job store."""
    runner = _RUNNERS.get(runner_id)
    if runner is None:  # a stale persisted job of another process
        return
    if kind == "cron":
        runner.run_round("cron")
    elif kind == "drift":
        runner.check_drift()
    else:
        runner.check_corrections(every_n)


def build_scheduler(settings: Settings, *, persistent: bool | None = None, blocking: bool = True) -> Any:
    """A BlockingScheduler (or Background for tests) with the SQLite job store when SQLAlchemy is
    installed."""
    import importlib.util

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    use_sql = importlib.util.find_spec("sqlalchemy") is not None if persistent is None else persistent
    jobstores: dict[str, Any] = {}
    if use_sql:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        db = settings.path("scheduler", "jobs.sqlite")
        db.parent.mkdir(parents=True, exist_ok=True)
        jobstores["default"] = SQLAlchemyJobStore(url=f"sqlite:///{db}")
    cls = BlockingScheduler if blocking else BackgroundScheduler
    return cls(jobstores=jobstores, executors={"default": ThreadPoolExecutor(1)},
               job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})


def run_scheduler(
    settings: Settings,
    *,
    recipe: str,
    cron: str | None = None,
    every_n: int | None = None,
    poll_s: float = 60.0,
    overrides: list[str] | None = None,
    max_runs: int | None = None,
    retrain_fn: Callable[..., Any] | None = None,
    counter: Callable[[], int] | None = None,
    blocking: bool = True,
    persistent: bool | None = None,
    watch_schema: bool = False,
    bootstrap_fn: Callable[[Settings], Any] | None = None,
    graph_store: GraphStore | None = None,
    feedback: FeedbackStore | None = None,
) -> Runner:
    """Start the scheduler (blocks until stopped when ``blocking``; else returns the running Runner)."""
    from apscheduler.triggers.interval import IntervalTrigger

    if cron and every_n or not (cron or every_n or watch_schema):
        raise ConfigError("give one of --cron EXPR or --every-n-corrections N, and/or --watch-schema")
    if every_n is not None and every_n < 1:
        raise ConfigError("--every-n-corrections must be at least 1")
    if every_n and counter is None:
        counter = store_counter(settings)
    runner = Runner(settings, recipe, overrides or [], retrain_fn, counter, max_runs, bootstrap_fn,
                    graph_store, feedback)
    runner_id = f"{settings.graph}"
    _RUNNERS[runner_id] = runner
    sched = build_scheduler(settings, persistent=persistent, blocking=blocking)
    runner.scheduler = sched
    job_id = f"retrain-{settings.graph}"
    if cron:
        trigger = parse_cron(cron)
        entry = read_state(settings.home_dir).get(settings.graph, {})
        if missed_cron_slot(cron, entry.get("last_run")):
            log.info("scheduler: a cron slot passed while the scheduler was down; running once now")
            sched.add_job(
                _job, "date", args=[runner_id, "cron"], id=f"{job_id}-catchup", replace_existing=True
            )
        sched.add_job(_job, trigger, args=[runner_id, "cron"], id=job_id, replace_existing=True)
        what = f"cron {cron!r}"
    elif every_n:
        sched.add_job(
            _job,
            IntervalTrigger(seconds=poll_s),
            args=[runner_id, "corrections", every_n],
            id=job_id,
            replace_existing=True,
            next_run_time=datetime.now().astimezone(),
        )
        what = f"every {every_n} approved corrections (polled every {poll_s:g} s)"
    else:
        what = ""
    if watch_schema:
        sched.add_job(_job, IntervalTrigger(seconds=poll_s), args=[runner_id, "drift"],
                      id=f"drift-{settings.graph}", replace_existing=True,
                      next_run_time=datetime.now().astimezone())
        what = f"{what}{', ' if what else ''}a bootstrap when the schema changes (polled every {poll_s:g} s)"
    update_state(settings.home_dir, settings.graph, mode=what, recipe=recipe, started=time.time())
    log.info("scheduler for graph %s: %s, recipe %s", settings.graph, what, recipe)
    if blocking:
        try:
            sched.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            runner.done.set()
            _RUNNERS.pop(runner_id, None)
    else:
        sched.start()
    return runner
