"""The engine in one process: running, ordering, limits, retries, timeouts, bad jobs."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from conductor import Conductor
from conductor.domain.clock import unstamp
from conductor.domain.config import Settings
from conductor.domain.context import current_job
from conductor.domain.registry import Registry
from conductor.engine.messages import TickResult
from conductor.engine.scheduler import Scheduler
from tests.engine.conftest import Start, enqueue, wait_until


def test_immediate_jobs_run_and_complete(db: str, registry: Registry, start_engine: Start) -> None:
    seen: list[int] = []

    @registry.task("record")
    def record(n: int) -> None:
        seen.append(n)

    ids = enqueue(db, [{"task": "record", "n": n} for n in range(20)])
    running = start_engine()
    wait_until(lambda: set(running.statuses().values()) == {"completed"}, what="all completed")
    assert sorted(seen) == list(range(20))
    assert running.types(ids[0]) == ["enqueued", "claimed", "run_started", "completed"]
    assert running.stop() == 0


def test_priority_orders_due_jobs_and_fifo_holds_within_one(
    db: str, registry: Registry, start_engine: Start
) -> None:
    order: list[str] = []

    @registry.task("record")
    def record(name: str) -> None:
        order.append(name)

    enqueue(db, [{"task": "record", "name": "low1"}], priority="low")
    enqueue(db, [{"task": "record", "name": "med1"}], priority="medium")
    enqueue(db, [{"task": "record", "name": "high1"}], priority="high")
    enqueue(db, [{"task": "record", "name": "med2"}], priority="medium")
    enqueue(db, [{"task": "record", "name": "high2"}], priority="high")
    running = start_engine(concurrency=1, prefetch=0)
    wait_until(lambda: len(order) == 5, what="five jobs")
    assert order == ["high1", "high2", "med1", "med2", "low1"]
    running.stop()


def test_never_more_than_n_handlers_run_and_claims_stay_within_slots_plus_prefetch(
    db: str, registry: Registry, start_engine: Start
) -> None:
    lock = threading.Lock()
    active = [0]
    peak = [0]
    peak_in_progress = [0]

    def busy() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        with Conductor(settings=Settings(db=db), create=False) as app:
            in_progress = app.stats().overall.in_progress
        with lock:
            peak_in_progress[0] = max(peak_in_progress[0], in_progress)
            active[0] -= 1

    registry.task("busy")(busy)
    enqueue(db, [{"task": "busy"}] * 60)
    running = start_engine(concurrency=3, prefetch=2)
    wait_until(lambda: running.app.stats().overall.completed == 60, what="60 completed")
    assert peak[0] <= 3
    assert peak_in_progress[0] <= 3 + 2
    running.stop()


def test_a_failing_job_retries_with_backoff_then_succeeds(
    db: str, registry: Registry, start_engine: Start
) -> None:
    calls: list[int] = []

    @registry.task("twice_then_ok", backoff=0.05)
    def twice_then_ok() -> str:
        calls.append(current_job().attempt)
        if len(calls) <= 2:
            raise ValueError(f"failure {len(calls)}")
        return "ok"

    (job_id,) = enqueue(db, [{"task": "twice_then_ok"}], max_retries=3)
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    history = running.app.ledger.history(job_id)
    assert [rec.type for rec in history] == [
        "enqueued",
        "claimed",
        "run_started",
        "attempt_failed",
        "retry_scheduled",
        "claimed",
        "run_started",
        "attempt_failed",
        "retry_scheduled",
        "claimed",
        "run_started",
        "completed",
    ]
    assert calls == [1, 2, 3]
    for failed, scheduled, restarted in (
        (history[3], history[4], history[5]),
        (history[7], history[8], history[9]),
    ):
        run_at = unstamp(scheduled.event.run_at)  # type: ignore[union-attr]
        assert run_at - unstamp(failed.at) >= dt.timedelta(seconds=0.025)  # half the base
        assert unstamp(restarted.at) >= run_at  # never before its run_at
    assert history[3].event.message == "failure 1"  # type: ignore[union-attr]
    assert "ValueError: failure 1" in history[3].event.traceback  # type: ignore[union-attr]
    assert running.app.job(job_id)["retries"] == 2
    running.stop()


def test_after_max_retries_the_job_fails_with_its_last_reason(
    db: str, registry: Registry, start_engine: Start
) -> None:
    @registry.task("always", backoff=0.01)
    def always() -> None:
        raise RuntimeError(f"attempt {current_job().attempt} broke")

    (job_id,) = enqueue(db, [{"task": "always"}], max_retries=2)
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "failed", what="failure")
    row = running.app.job(job_id)
    assert (row["attempts"], row["retries"]) == (3, 2)
    assert row["last_error"].startswith("RuntimeError: attempt 3 broke")
    assert running.types(job_id).count("retry_scheduled") == 2
    running.stop()


def test_a_timeout_fails_the_attempt_and_frees_the_slot(
    db: str, registry: Registry, start_engine: Start
) -> None:
    release = threading.Event()

    @registry.task("stuck", timeout=0.2)
    def stuck() -> None:
        release.wait(30)  # ignores cancellation: only the timeout can free the slot

    registry.task("quick")(lambda: None)
    (stuck_id,) = enqueue(db, [{"task": "stuck"}], max_retries=0)
    (quick_id,) = enqueue(db, [{"task": "quick"}])
    running = start_engine(concurrency=1, prefetch=0)
    wait_until(lambda: running.statuses().get(quick_id) == "completed", what="quick job")
    assert running.statuses()[stuck_id] == "failed"
    (failure,) = running.app.failures(stuck_id)
    assert (failure[1].error_type, failure[1].message) == ("TimeoutError", "timeout after 0.2s")
    release.set()  # the handler's late result must reach a live engine, not a stopped one
    wait_until(lambda: "result_ignored" in running.types(stuck_id), what="the late result")
    running.stop()


def test_unknown_tasks_and_rejected_payloads_fail_without_retries_and_work_goes_on(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("needs_email")(lambda email: email)
    unknown, misfit, fine = enqueue(
        db,
        [
            {"task": "os.system", "command": "true"},
            {"task": "needs_email", "wrong": 1},
            {"task": "needs_email", "email": "a@b.c"},
        ],
        max_retries=5,
    )
    running = start_engine()
    wait_until(lambda: running.statuses().get(fine) == "completed", what="the good job")
    wait_until(lambda: running.statuses().get(misfit) == "failed", what="misfit")
    wait_until(lambda: running.statuses().get(unknown) == "failed", what="unknown")
    assert "unknown task 'os.system'" in running.app.job(unknown)["last_error"]
    assert "payload does not fit needs_email()" in running.app.job(misfit)["last_error"]
    assert running.types(unknown).count("claimed") == 1
    assert running.types(misfit).count("retry_scheduled") == 0
    running.stop()


def test_burst_mode_stops_by_itself_once_the_work_runs_out(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("quick")(lambda: None)
    enqueue(db, [{"task": "quick"}] * 10)
    running = start_engine(burst=True)
    running.thread.join(30)
    assert not running.thread.is_alive()
    assert running.result == [0]
    assert running.app.stats().overall.completed == 10


def test_burst_mode_stops_when_the_last_attempt_is_settled_not_at_the_next_poll(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("quick")(lambda: None)
    enqueue(db, [{"task": "quick"}] * 3)
    # An hour between polls and between maintenance rounds: only the settled last
    # attempt can end the run within the join below.
    running = start_engine(burst=True, poll_interval=3600, maintenance_interval=3600)
    running.thread.join(60)
    assert not running.thread.is_alive(), "burst mode waited for the poll"
    assert running.result == [0]
    assert running.app.stats().overall.completed == 3


def test_a_burst_worker_that_waited_for_another_ones_job_stops_when_that_job_settles(
    db: str, registry: Registry, start_engine: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two burst workers on one database: the idle one's exit test fails while the other
    holds a job, and must run again when that job is settled, not at its next poll."""
    exit_tests: list[bool] = []
    run_once = Scheduler.run_once

    def watched(self: Scheduler, now: dt.datetime, **how: Any) -> TickResult:
        result = run_once(self, now, **how)
        exit_tests.append(result.drained)
        return result

    monkeypatch.setattr(Scheduler, "run_once", watched)
    release = threading.Event()
    registry.task("hold")(lambda: release.wait(60))
    (job_id,) = enqueue(db, [{"task": "hold"}])
    slow_polls = {"burst": True, "poll_interval": 3600, "maintenance_interval": 3600}
    holder = start_engine(concurrency=1, **slow_polls)
    wait_until(lambda: holder.statuses().get(job_id) == "in_progress", what="the claim")
    wait_until(lambda: len(exit_tests) >= 1, what="the holder's first look")
    seen_before = len(exit_tests)  # the holder now sleeps: nothing wakes it until it settles
    idle = start_engine(concurrency=1, **slow_polls)
    wait_until(lambda: len(exit_tests) > seen_before, what="the idle worker's first look")
    assert exit_tests[seen_before] is False  # it saw the held job, and went to sleep
    release.set()
    holder.thread.join(60)
    idle.thread.join(60)
    assert not holder.thread.is_alive()
    assert not idle.thread.is_alive(), "the idle burst worker waited for its poll"
    assert (holder.result, idle.result) == ([0], [0])
    assert holder.statuses()[job_id] == "completed"


def test_a_delayed_job_never_starts_before_its_run_at(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("quick")(lambda: None)
    (job_id,) = enqueue(db, [{"task": "quick"}], delay=dt.timedelta(seconds=0.5))
    running = start_engine(poll_interval=30)  # the scheduler must wake for run_at itself
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    enqueued, started, _, _ = running.app.ledger.history(job_id)
    assert unstamp(started.at) >= unstamp(enqueued.event.run_at)  # type: ignore[union-attr]
    running.stop()


def test_task_defaults_apply_unless_the_enqueue_overrides_them(db: str, backend: str) -> None:
    from conductor.domain.registry import REGISTRY

    name = f"defaults_demo_{backend}"  # the process-wide registry: one name per run
    REGISTRY.task(name, queue="mail", priority="high", max_retries=7)(lambda: None)
    with Conductor(settings=Settings(db=db)) as app:
        by_default = app.job(app.enqueue({"task": name}))
        overridden = app.job(app.enqueue({"task": name}, queue="q", max_retries=1))
        unknown = app.job(app.enqueue({"task": "not_registered_here"}))
    assert (by_default["queue"], by_default["priority"], by_default["max_retries"]) == (
        "mail",
        0,
        7,
    )
    assert (overridden["queue"], overridden["priority"], overridden["max_retries"]) == ("q", 0, 1)
    assert (unknown["queue"], unknown["priority"], unknown["max_retries"]) == ("default", 1, 3)


def test_a_timed_out_handlers_late_result_is_recorded_as_ignored(
    db: str, registry: Registry, start_engine: Start
) -> None:
    release = threading.Event()

    @registry.task("late", timeout=0.1)
    def late() -> None:
        release.wait(30)

    (job_id,) = enqueue(db, [{"task": "late"}], max_retries=0)
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "failed", what="the timeout")
    release.set()
    wait_until(lambda: "result_ignored" in running.types(job_id), what="the late result")
    assert running.statuses()[job_id] == "failed"
    running.stop()


def test_system_exit_in_a_handler_fails_the_attempt_not_the_worker(
    db: str, registry: Registry, start_engine: Start
) -> None:
    import sys

    registry.task("exits")(lambda: sys.exit(3))
    registry.task("quick")(lambda: None)
    bad, good = enqueue(db, [{"task": "exits"}, {"task": "quick"}], max_retries=0)
    running = start_engine()
    wait_until(lambda: running.statuses().get(good) == "completed", what="the good job")
    wait_until(lambda: running.statuses().get(bad) == "failed", what="the bad job")
    assert running.app.job(bad)["last_error"].startswith("SystemExit: 3")
    running.stop()


def test_async_tasks_run_to_completion(db: str, registry: Registry, start_engine: Start) -> None:
    import asyncio

    done: list[str] = []

    @registry.task("coro")
    async def coro(word: str) -> None:
        await asyncio.sleep(0.01)
        done.append(word)

    (job_id,) = enqueue(db, [{"task": "coro", "word": "hi"}])
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    assert done == ["hi"]
    running.stop()


def test_a_wake_up_starts_the_claim_without_waiting_for_the_schedulers_look(
    db: str, registry: Registry, start_engine: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An enqueue's wake-up goes to the Queue at once: a job runs while the Scheduler's
    look for that wake-up is held, with the polls an hour apart."""
    looks: list[bool] = []
    held = threading.Event()
    release = threading.Event()
    run_once = Scheduler.run_once

    def holding(self: Scheduler, now: dt.datetime, **how: Any) -> TickResult:
        looks.append(how.get("woken", False))
        if how.get("woken"):
            held.set()
            release.wait(60)
        return run_once(self, now, **how)

    monkeypatch.setattr(Scheduler, "run_once", holding)
    ran = threading.Event()
    registry.task("mark")(ran.set)
    running = start_engine(poll_interval=3600, maintenance_interval=3600)
    try:
        wait_until(lambda: looks, what="the first look")
        (job_id,) = enqueue(db, [{"task": "mark"}])
        assert ran.wait(60), "the job waited for the Scheduler's look"
        assert held.wait(60), "the wake-up never reached the Scheduler"  # held until now
    finally:
        release.set()
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    assert running.stop() == 0
