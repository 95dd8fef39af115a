"""The scheduler: N approved corrections trigger a round, state survives restarts, cron catch-up."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from agent.core.errors import ConfigError, LockBusy
from finetune.schedule import approved_corrections, missed_cron_slot, parse_cron, read_state, run_scheduler


class FakeRetrain:
    """Stands in for finetune.retrain.retrain: records calls, returns a report-like object."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail_with = fail_with

    def __call__(self, settings, graph, recipe, **kw):
        self.calls.append((graph, recipe, kw))
        if self.fail_with:
            raise self.fail_with
        return SimpleNamespace(status="promoted", version=f"v{len(self.calls):04d}")


def _runs(settings) -> int:
    """Rounds the scheduler finished (written after the retrain call returns, so wait for this one)."""
    return int(read_state(settings.home_dir).get("shop", {}).get("runs", 0))


class PolledCount:
    """The scheduler's correction counter: a test sets the count, then waits for the scheduler to poll it
    (an event), never for a time."""

    def __init__(self, n: int = 0) -> None:
        self.n, self.polls = n, 0
        self._cv = threading.Condition()

    def __call__(self) -> int:
        with self._cv:
            self.polls += 1
            self._cv.notify_all()
            return self.n

    def set(self, n: int) -> None:
        with self._cv:
            self.n = n

    def wait_for_a_full_poll(self) -> None:
        """Return once a poll that read the current count has finished (polls run one at a time, so the
        second call from now starts only after the first one's check is done)."""
        with self._cv:
            target = self.polls + 2
            self._cv.wait_for(lambda: self.polls >= target)


@pytest.fixture
def home_settings(settings, tmp_path):
    s = settings.model_copy(update={"home": tmp_path, "graph": "shop"})
    s.__dict__.pop("home_dir", None)
    return s


@pytest.mark.parametrize("persistent", [True, False])
def test_n_new_corrections_trigger_one_round_and_survive_a_restart(home_settings, persistent):
    count = PolledCount()
    fake = FakeRetrain()
    runner = run_scheduler(home_settings, recipe="tiny-cpu", every_n=3, poll_s=0.1, retrain_fn=fake,
                           counter=count, blocking=False, persistent=persistent)
    try:
        count.set(2)
        count.wait_for_a_full_poll()
        assert fake.calls == []
        count.set(3)
        count.wait_for_a_full_poll()
        assert _runs(home_settings) == 1
        count.wait_for_a_full_poll()
        assert len(fake.calls) == 1  # not again until 3 more
        graph, recipe, kw = fake.calls[0]
        assert (graph, recipe, kw["wait"]) == ("shop", "tiny-cpu", False)
    finally:
        runner.stop()
    state = read_state(home_settings.home_dir)["shop"]
    assert (
        state["corrections_seen"] == 3
        and state["last_status"] == "promoted"
        and state["last_version"] == "v0001"
    )

    # a restart keeps the baseline: 5 approved (2 new) does not trigger, 6 does
    fake2 = FakeRetrain()
    count.set(5)
    runner = run_scheduler(home_settings, recipe="tiny-cpu", every_n=3, poll_s=0.1, retrain_fn=fake2,
                           counter=count, blocking=False, persistent=persistent)
    try:
        count.wait_for_a_full_poll()
        assert fake2.calls == []
        count.set(6)
        count.wait_for_a_full_poll()
        assert _runs(home_settings) == 2
    finally:
        runner.stop()
    assert len(fake2.calls) == 1


def test_a_busy_lock_does_not_consume_the_corrections(home_settings):
    fake = FakeRetrain(fail_with=LockBusy("another retrain is running"))
    runner = run_scheduler(home_settings, recipe="tiny-cpu", every_n=1, poll_s=0.1, retrain_fn=fake,
                           counter=lambda: 4, blocking=False, persistent=False, max_runs=1)
    assert runner.done.wait()
    state = read_state(home_settings.home_dir)["shop"]
    assert state["last_status"] == "busy" and state.get("corrections_seen", 0) == 0


def test_a_round_that_generated_the_pool_again_says_so_in_the_state(home_settings):
    """The round's ``pool`` account (finetune.bootstrap.refresh_pool) is the state's ``last_pool``."""
    from finetune.schedule import Runner

    said = "pool generated again with entities returned as names instead of mixed (auto: …): 120 pairs"
    report = SimpleNamespace(status="rejected", version="v0002", pool={"message": said})
    runner = Runner(home_settings, "tiny-cpu", [], retrain_fn=lambda *a, **kw: report)
    assert runner.run_round("cron") is report
    state = read_state(home_settings.home_dir)["shop"]
    assert state["last_pool"] == said and state["last_status"] == "rejected"


def test_blocking_scheduler_stops_after_max_runs(home_settings):
    fake = FakeRetrain()
    done = {}
    t = threading.Thread(
        target=lambda: done.setdefault(
            "r",
            run_scheduler(
                home_settings,
                recipe="tiny-cpu",
                every_n=1,
                poll_s=0.1,
                retrain_fn=fake,
                counter=lambda: 1,
                max_runs=1,
            ),
        )
    )
    t.start()
    t.join()  # the scheduler returning is the event
    assert len(fake.calls) == 1


def test_counting_uses_the_real_feedback_store(settings, shop, tmp_path):
    from agent.core.feedback import Interaction
    from feedback_store.chroma import ChromaFeedbackStore

    store = ChromaFeedbackStore(tmp_path / "chroma")
    try:
        assert approved_corrections(store, "shop") == 0
        ids = []
        for i, city in enumerate(["Berlin", "Paris"]):
            it = Interaction(
                question=f"customers in {city}? {i}",
                graph="shop",
                final_cypher="MATCH (c:Customer) RETURN c.name",
                answer="...",
                row_count=1,
            )
            iid = store.log_interaction(it)
            fb = store.add_correction(iid, f"MATCH (c:Customer {{city: '{city}'}}) RETURN c.name", shop)
            ids.append(fb.id)
        assert approved_corrections(store, "shop") == 0  # pending review
        for fid in ids:
            store.review(fid, "approved")
        assert approved_corrections(store, "shop") == 2 and approved_corrections(store, "other") == 0
    finally:
        store.close()


def test_cron_parsing_and_catch_up_after_downtime():
    assert parse_cron("0 3 * * *") is not None
    with pytest.raises(ConfigError, match="cron"):
        parse_cron("every night")
    now = time.time()
    assert missed_cron_slot("0 3 * * *", now - 2 * 86400, now)
    assert not missed_cron_slot("0 3 * * *", None, now)
    assert missed_cron_slot("* * * * *", now - 180, now) and not missed_cron_slot("* * * * *", now, now)


def test_cron_mode_runs_a_missed_slot_at_start(home_settings):
    from finetune.schedule import update_state

    update_state(home_settings.home_dir, "shop", last_run=time.time() - 3 * 86400)
    fake = FakeRetrain()
    runner = run_scheduler(
        home_settings,
        recipe="tiny-cpu",
        cron="0 3 * * *",
        retrain_fn=fake,
        blocking=False,
        persistent=True,
        max_runs=1,
    )
    assert runner.done.wait() and len(fake.calls) == 1
    assert read_state(home_settings.home_dir)["shop"]["last_trigger"] == "cron"


def test_exactly_one_trigger(home_settings):
    with pytest.raises(ConfigError):
        run_scheduler(
            home_settings, recipe="tiny-cpu", retrain_fn=FakeRetrain(), counter=lambda: 0, blocking=False
        )
    with pytest.raises(ConfigError):
        run_scheduler(
            home_settings,
            recipe="tiny-cpu",
            cron="0 3 * * *",
            every_n=2,
            retrain_fn=FakeRetrain(),
            blocking=False,
        )
