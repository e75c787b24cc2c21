"""A real worker stopped while a handler runs records what happened to that attempt: it
was given back (`released`) and its handler interrupted, never `completed`; the log line
about the interrupted handler names its task."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.events import JobResultIgnored
from tests.engine.conftest import WorkerProcesses, wait_until


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(db, tmp_path)
    yield pool
    pool.stop_all()


def running(app: Conductor, job_id: int) -> bool:
    return app.job(job_id)["status"] == "in_progress"


@pytest.mark.parametrize(
    ("grace", "forced"),
    [("30s", True), ("1s", False)],
    ids=["a second signal forces the stop", "the grace period runs out"],
)
def test_a_sleep_cut_off_by_a_stop_is_recorded_as_released_and_interrupted_never_completed(
    db: str, workers: WorkerProcesses, grace: str, forced: bool
) -> None:
    with Conductor(settings=Settings(db=db)) as app:
        job_id = app.enqueue({"task": "sleep", "seconds": 20})
        worker = workers.start("--grace", grace)
        wait_until(lambda: running(app, job_id), 60, "the handler to start")
        worker.send_signal(signal.SIGTERM)
        if forced:
            wait_until(lambda: "SIGTERM: stopping" in workers.log(0), 60, "the first signal")
            worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, workers.log(0)
        history = app.ledger.history(job_id)
    types = [rec.type for rec in history]
    assert "completed" not in types
    assert types[-2:] == ["released", "result_ignored"], types
    ignored = history[-1].event
    assert isinstance(ignored, JobResultIgnored)
    assert ignored.outcome == "interrupted"
    log = workers.log(0)
    assert f"job {job_id} sleep result_ignored" in log, log
    assert f"job {job_id} ? " not in log
