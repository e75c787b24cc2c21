"""`conductor worker --burst --horizon`: run everything due soon, then stop.

A plain burst worker stops once nothing is due now, leaving a retry that waits out its
backoff for the next worker; with a horizon it also waits for jobs due within it, and a
job due beyond it does not keep it alive. The in-process tests freeze the engine's clock
(`ManualClock`), so "not due yet" holds however slow the machine; the last test runs real
`conductor worker` processes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conductor import Conductor, ManualClock
from conductor.domain.config import Settings
from conductor.domain.registry import Registry
from conductor.engine.messages import TickResult
from conductor.engine.scheduler import Scheduler
from tests import result_tasks
from tests.engine.conftest import Start, WorkerProcesses, wait_until
from tests.gated_tasks import app_env

HORIZON = dt.timedelta(minutes=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime.now(dt.UTC))


@pytest.fixture
def exit_tests(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every answer of the Scheduler's exit test, in order."""
    answers: list[bool] = []
    run_once = Scheduler.run_once

    def watched(self: Scheduler, now: dt.datetime, **how: Any) -> TickResult:
        result = run_once(self, now, **how)
        answers.append(result.drained)
        return result

    monkeypatch.setattr(Scheduler, "run_once", watched)
    return answers


def fail_once(registry: Registry) -> None:
    @registry.task("fail_once", backoff=0.2)
    def handler() -> str:
        from conductor import current_job

        if current_job().attempt == 1:
            raise RuntimeError("the first attempt fails")
        return "second time lucky"


def enqueue(db: str, clock: ManualClock, payload: dict[str, object], **options: object) -> int:
    with Conductor(settings=Settings(db=db), clock=clock) as app:
        return app.enqueue(payload, **options)  # type: ignore[arg-type]


def test_a_plain_burst_worker_leaves_a_retry_due_in_a_moment_pending(
    db: str, registry: Registry, start_engine: Start, clock: ManualClock
) -> None:
    fail_once(registry)
    job_id = enqueue(db, clock, {"task": "fail_once"})
    running = start_engine(burst=True, clock=clock)
    running.thread.join(120)
    assert not running.thread.is_alive()
    assert running.result == [0]
    row = running.app.job(job_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert running.types(job_id)[-1] == "retry_scheduled"


def test_a_horizon_burst_worker_waits_for_the_retry_and_completes_the_job(
    db: str, registry: Registry, start_engine: Start, clock: ManualClock, exit_tests: list[bool]
) -> None:
    fail_once(registry)
    job_id = enqueue(db, clock, {"task": "fail_once"})
    running = start_engine(burst=True, horizon=HORIZON, clock=clock)
    wait_until(lambda: running.types(job_id)[-1] == "retry_scheduled", what="the first failure")
    seen = len(exit_tests)
    wait_until(lambda: len(exit_tests) >= seen + 3, what="three more exit tests")
    assert not any(exit_tests[seen:]), "stopped with a retry due within the horizon"
    assert running.thread.is_alive()
    clock.advance(1)  # past the retry's 0.1-0.2 s backoff
    running.thread.join(120)
    assert not running.thread.is_alive()
    assert running.result == [0]
    assert running.app.job(job_id)["status"] == "completed"
    assert running.app.result(job_id) == "second time lucky"


def test_a_job_due_beyond_the_horizon_does_not_keep_the_worker_alive(
    db: str, registry: Registry, start_engine: Start, clock: ManualClock
) -> None:
    registry.task("quick")(lambda: None)
    later = enqueue(db, clock, {"task": "quick"}, delay=HORIZON + dt.timedelta(seconds=1))
    soon = enqueue(db, clock, {"task": "quick"})
    running = start_engine(burst=True, horizon=HORIZON, clock=clock)
    running.thread.join(120)
    assert not running.thread.is_alive()
    assert running.result == [0]
    assert running.statuses() == {soon: "completed", later: "pending"}


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(db, tmp_path, "--app", result_tasks.APP, env=app_env())
    yield pool
    pool.stop_all()


def test_worker_processes_with_a_horizon_run_retries_and_leave_later_jobs(
    db: str, workers: WorkerProcesses
) -> None:
    with Conductor(settings=Settings(db=db)) as app:
        flaky = app.enqueue_many([{"task": "fail_once"}] * 4)
        later = app.enqueue({"task": "give", "value": 1}, delay=dt.timedelta(hours=1))
    processes = [workers.start("--burst", "--horizon", "1m", "-c", "2") for _ in range(2)]
    for index, process in enumerate(processes):
        assert process.wait(300) == 0, workers.log(index)
    with Conductor(settings=Settings(db=db)) as app:
        assert [app.result(job_id) for job_id in flaky] == [{"attempt": 2}] * 4
        assert app.job(later)["status"] == "pending"
