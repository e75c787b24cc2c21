"""A bulk cancel while a real `conductor worker` process drains the same queue: each job
is decided on its row as it is when its chunk commits, so what the worker finished is
refused, what it holds no longer matches `--status pending`, and the rest is cancelled,
without corrupting the log or the read models, on every backend."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.client.bulk import CHUNK
from conductor.domain.config import Settings
from conductor.domain.errors import InvalidTransition, NotSelected
from conductor.domain.events import JobCancelled
from tests import gated_tasks
from tests.conftest import run_cli
from tests.engine.conftest import WorkerProcesses, enqueue, wait_until


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(db, tmp_path, "--app", gated_tasks.APP, env=gated_tasks.app_env())
    yield pool
    pool.stop_all()


def open_app(db: str) -> Conductor:
    return Conductor(settings=Settings(db=db))


def test_a_bulk_cancel_while_a_worker_drains_refuses_what_it_finished_and_cancels_the_rest(
    db: str, tmp_path: Path, workers: WorkerProcesses
) -> None:
    gate = tmp_path / "gate"
    # Chunk 1: quick jobs. Chunk 2 opens with ten quick jobs the worker will have finished
    # before the action reaches them, then jobs that hold the worker's slots until the
    # gate opens; chunk 3 is more of those, never reached by the worker.
    quick = enqueue(db, [{"task": "noop"}] * CHUNK, queue="bulk")
    finished = enqueue(db, [{"task": "noop"}] * 10, queue="bulk")
    held = enqueue(db, [{"task": "gated", "gate": str(gate)}] * (CHUNK + 200), queue="bulk")
    everything = quick + finished + held
    later = finished + held

    def between_chunks(done: int, total: int) -> None:
        # After the first chunk is committed, and before the second is decided: a worker
        # starts, finishes the ten quick jobs, and holds some gated ones.
        if done != CHUNK:
            return
        workers.start("--queue", "bulk", "--concurrency", "2")
        with open_app(db) as app:

            def worker_caught_up() -> bool:
                rows = {row["id"]: row["status"] for row in app.jobs(queue="bulk")}
                return all(rows[i] == "completed" for i in finished) and any(
                    rows[i] in ("claimed", "in_progress") for i in held
                )

            wait_until(worker_caught_up, timeout=300, what="the worker to finish and hold jobs")

    with open_app(db) as app:
        report = app.cancel_where(
            by="ops", queues=["bulk"], statuses=["pending"], reason="race", progress=between_chunks
        )
        rows = {row["id"]: row for row in app.jobs(queue="bulk")}
        trail = app.batch_events(report.batch)

    # Every job chosen is accounted for once: done or refused.
    assert sorted([*report.done, *report.refused]) == everything
    assert not set(report.done) & set(report.refused)
    assert set(quick) <= set(report.done)
    for job_id in finished:
        error = report.refused[job_id]
        assert isinstance(error, InvalidTransition)
        assert str(error) == (
            f"job {job_id} is completed; only pending, claimed or in_progress jobs can be cancelled"
        )
    moved_on = [job_id for job_id in held if job_id in report.refused]
    assert moved_on, "the worker held none of the gated jobs when the action reached them"
    for job_id in moved_on:
        error = report.refused[job_id]
        assert isinstance(error, NotSelected), error
        assert "the filter chooses pending jobs" in str(error)
        assert rows[job_id]["status"] in ("claimed", "in_progress")
    assert any(job_id in report.done for job_id in later)
    for job_id in report.done:
        assert rows[job_id]["status"] == "cancelled"
    assert sorted(rec.job_id for rec in trail) == sorted(report.done)
    assert all(
        isinstance(rec.event, JobCancelled) and (rec.event.by, rec.event.reason) == ("ops", "race")
        for rec in trail
    )

    # Without --status, the same action from the CLI cancels what the worker runs: its
    # handlers are told, and what they report afterwards is recorded and ignored.
    result = run_cli("cancel", "--queue", "bulk", "--by", "ops", "--json", db=db)
    assert result.code == 0, result
    assert sorted(json.loads(result.stdout)["cancelled"]) == sorted(moved_on)
    gate.touch()
    with open_app(db) as app:
        wait_until(
            lambda: (
                not any(
                    row["status"] in ("pending", "claimed", "in_progress")
                    for row in app.jobs(queue="bulk")
                )
            ),
            timeout=300,
            what="the queue to settle",
        )
    worker = workers.processes[0]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(300) == 0, workers.log(0)
    assert "Traceback" not in workers.log(0)
    verify = run_cli("replay", "--verify", db=db)
    assert verify.code == 0, verify.stdout
    audit = run_cli("audit", "verify", db=db)
    assert audit.code == 0, audit.stdout
