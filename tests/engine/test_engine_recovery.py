"""Fencing, cancellation, supervision, heartbeats and rescue, in one process."""

from __future__ import annotations

import datetime as dt
import threading

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.context import current_job
from conductor.domain.registry import Registry
from conductor.engine.identity import holder_gone, process_id
from conductor.engine.messages import InjectFault
from tests.engine.conftest import Start, dead_process_worker, enqueue, hold, wait_until


def test_a_running_handler_sees_its_cancellation_and_the_job_ends_cancelled(
    db: str, registry: Registry, start_engine: Start
) -> None:
    started = threading.Event()
    observed: list[bool] = []

    @registry.task("long")
    def long() -> None:
        started.set()
        observed.append(current_job().sleep(30))

    (job_id,) = enqueue(db, [{"task": "long"}])
    running = start_engine(maintenance_interval=60)  # only the wake-up can deliver it fast
    assert started.wait(30)
    wait_until(lambda: running.statuses()[job_id] == "in_progress", what="its run_started")
    running.app.cancel(job_id)
    wait_until(lambda: observed, what="the handler to observe cancellation")
    assert observed == [True]
    wait_until(lambda: "result_ignored" in running.types(job_id), what="the stale result")
    assert running.statuses()[job_id] == "cancelled"
    assert running.types(job_id) == [
        "enqueued",
        "claimed",
        "run_started",
        "cancelled",
        "result_ignored",
    ]
    ignored = running.app.ledger.history(job_id)[-1].event
    assert (ignored.outcome, ignored.reason) == ("interrupted", "the job is cancelled")  # type: ignore[union-attr]
    running.stop()


def test_a_crashed_worker_actor_is_replaced_and_its_job_runs_again(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("quick")(lambda: None)
    running = start_engine(concurrency=1, prefetch=0)
    actors = running.engine.actors()
    actors.workers["w1"].tell(InjectFault())
    (job_id,) = enqueue(db, [{"task": "quick"}])
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    history = running.app.ledger.history(job_id)
    assert [rec.type for rec in history] == [
        "enqueued",
        "claimed",
        "rescued",
        "claimed",
        "run_started",
        "completed",
    ]
    rescued = history[2].event
    assert "crashed" in rescued.reason  # type: ignore[union-attr]
    assert "restarted" in rescued.reason  # type: ignore[union-attr]
    assert running.engine.actors().workers["w1"] is not actors.workers["w1"]
    running.stop()


def test_heartbeats_keep_a_long_job_leased_and_it_runs_once(
    db: str, registry: Registry, start_engine: Start
) -> None:
    runs: list[int] = []

    @registry.task("slow")
    def slow() -> None:
        runs.append(current_job().attempt)
        job_id = current_job().job_id
        with Conductor(settings=Settings(db=db), create=False) as app:
            wait_until(
                lambda: sum(r.type == "lease_extended" for r in app.ledger.history(job_id)) >= 2,
                what="two heartbeats",
            )

    (job_id,) = enqueue(db, [{"task": "slow"}])
    running = start_engine(lease=dt.timedelta(seconds=1), maintenance_interval=0.1)
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    types = running.types(job_id)
    assert "rescued" not in types
    assert types.count("claimed") == 1
    assert runs == [1]
    running.stop()


def test_a_job_held_by_a_dead_process_on_this_host_is_rescued_at_once(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("quick")(lambda: None)
    (job_id,) = enqueue(db, [{"task": "quick"}])
    dead = dead_process_worker()
    assert holder_gone(dead)
    assert not holder_gone(process_id())
    hold(db, job_id, dead, dt.timedelta(hours=1))
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    history = running.app.ledger.history(job_id)
    assert [rec.type for rec in history] == [
        "enqueued",
        "claimed",
        "rescued",
        "claimed",
        "run_started",
        "completed",
    ]
    assert "is gone" in history[2].event.reason  # type: ignore[union-attr]
    running.stop()


def test_a_job_held_on_another_host_waits_for_its_lease_to_expire(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("quick")(lambda: None)
    live, expired = enqueue(db, [{"task": "quick"}] * 2)
    hold(db, live, "elsewhere:1:1", dt.timedelta(hours=1))
    hold(db, expired, "elsewhere:2:2", dt.timedelta(seconds=-1))
    running = start_engine()
    wait_until(lambda: running.statuses().get(expired) == "completed", what="the expired one")
    assert "lease of elsewhere:2:2 expired" in running.app.ledger.history(expired)[2].event.reason  # type: ignore[union-attr]
    assert running.statuses()[live] == "claimed"
    assert running.types(live) == ["enqueued", "claimed"]
    running.stop()


def test_shutdown_releases_attempts_that_outlive_the_grace_period(
    db: str, registry: Registry, start_engine: Start
) -> None:
    started = threading.Event()
    unblock = threading.Event()

    @registry.task("stubborn")
    def stubborn() -> None:
        started.set()
        unblock.wait(30)

    (job_id,) = enqueue(db, [{"task": "stubborn"}])
    running = start_engine(grace=dt.timedelta(seconds=0.2))
    assert started.wait(30)
    assert running.stop() == 0
    assert running.statuses()[job_id] == "pending"
    assert running.types(job_id) == ["enqueued", "claimed", "run_started", "released"]
    unblock.set()


def test_a_failed_core_actor_stops_the_worker_with_exit_code_1(
    db: str, registry: Registry, start_engine: Start
) -> None:
    running = start_engine()
    running.engine.actors().writer.tell(InjectFault())
    running.thread.join(30)
    assert not running.thread.is_alive()
    assert running.result == [1]
    assert "Writer" in (running.engine.fatal or "")


def test_a_rescue_uses_a_retry_and_a_poison_pill_ends_failed(
    db: str, registry: Registry, start_engine: Start
) -> None:
    registry.task("quick")(lambda: None)
    (job_id,) = enqueue(db, [{"task": "quick"}], max_retries=0)
    hold(db, job_id, dead_process_worker(), dt.timedelta(hours=1))
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "failed", what="the failure")
    assert running.types(job_id) == ["enqueued", "claimed", "failed"]
    assert "retries exhausted" in running.app.job(job_id)["last_error"]
    running.stop()
