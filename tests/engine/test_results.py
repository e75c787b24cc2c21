"""Results end to end: real `conductor worker` processes return values into the ledger,
and `Conductor.result` / `conductor result` read them back, wait for them, and report
failures, cancellations and jobs that have not finished - on both backends."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conductor import (
    Conductor,
    JobCancelledError,
    JobFailedError,
    ResultTimeout,
    UnknownJob,
)
from conductor.client import results as client_results
from conductor.domain.config import Settings
from conductor.domain.registry import Registry
from conductor.ledger import wakeup
from conductor.ledger.open import is_postgres
from tests import result_tasks
from tests.conftest import run_cli
from tests.engine.conftest import Start, WorkerProcesses, wait_until
from tests.gated_tasks import app_env

VALUES: list[Any] = [
    {"rows": 3, "ids": [1, 2, 3], "ok": True, "nested": {"a": None}},
    ["a", 1, 2.5],
    'a string with ,"result": inside',
    "ünïcödé ✓",
    42,
    0,
    False,
    None,
]


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(db, tmp_path, "--app", result_tasks.APP, env=app_env())
    yield pool
    pool.stop_all()


def open_app(db: str) -> Conductor:
    return Conductor(settings=Settings(db=db))


def run_burst(workers: WorkerProcesses, *args: str) -> None:
    process = workers.start("--burst", *args)
    assert process.wait(300) == 0, workers.log(len(workers.processes) - 1)


def test_return_values_are_stored_with_completed_and_read_back_as_they_were_returned(
    db: str, workers: WorkerProcesses
) -> None:
    with open_app(db) as app:
        ids = app.enqueue_many([{"task": "give", "value": value} for value in VALUES])
    run_burst(workers)
    with open_app(db) as app:
        assert [app.result(job_id) for job_id in ids] == VALUES
        completed = app.events(types=["completed"])
    stored = {rec.job_id: rec for rec in completed}
    assert {rec.event.VERSION for rec in completed} == {2}
    assert stored[ids[-1]].event.result is None  # type: ignore[union-attr]
    for job_id, value in zip(ids, VALUES, strict=True):
        shown = run_cli("result", str(job_id), db=db)
        assert (shown.code, shown.stderr) == (0, "")
        assert json.loads(shown.stdout) == value
    as_json = run_cli("result", str(ids[0]), "--json", db=db)
    assert json.loads(as_json.stdout) == {"id": ids[0], "status": "completed", "result": VALUES[0]}
    assert run_cli("replay", "--verify", db=db).code == 0
    assert run_cli("audit", "verify", db=db).code == 0


def test_show_and_history_display_the_result_of_a_completed_job(
    db: str, workers: WorkerProcesses
) -> None:
    with open_app(db) as app:
        short, long = app.enqueue_many(
            [{"task": "give", "value": {"sent": 3}}, {"task": "give_text", "length": 500}]
        )
    run_burst(workers)
    shown = run_cli("show", str(short), db=db)
    assert '  Result:\n    {\n      "sent": 3\n    }' in shown.stdout
    assert json.loads(run_cli("show", str(short), "--json", db=db).stdout)["result"] == {"sent": 3}
    history = run_cli("history", str(long), "--json", db=db)
    facts = [entry["facts"] for entry in json.loads(history.stdout) if entry["type"] == "completed"]
    assert facts == [{"attempt": 1, "result": '"' + "x" * 56 + "..."}]


def test_a_return_value_json_cannot_hold_fails_the_attempt_naming_its_type_without_retries(
    db: str, workers: WorkerProcesses
) -> None:
    with open_app(db) as app:
        job_id = app.enqueue({"task": "give_set"}, max_retries=3)
    run_burst(workers)
    with open_app(db) as app, pytest.raises(JobFailedError) as failed:
        app.result(job_id)
    assert failed.value.error_type == "ResultNotJSON"
    assert "(set) is not JSON" in failed.value.message
    assert "not retried" in failed.value.reason
    with open_app(db) as app:
        assert app.job(job_id)["attempts"] == 1


def test_a_return_value_over_the_cap_fails_the_attempt_naming_the_cap(
    db: str, tmp_path: Path
) -> None:
    with open_app(db) as app:
        small, big = app.enqueue_many(
            [{"task": "give_text", "length": 98}, {"task": "give_text", "length": 99}]
        )
    # 98 characters are 100 bytes of JSON (with the quotes): exactly the cap.
    capped = WorkerProcesses(
        db,
        tmp_path,
        "--app",
        result_tasks.APP,
        env={**app_env(), "CONDUCTOR_MAX_RESULT_BYTES": "100"},
    )
    try:
        run_burst(capped)
    finally:
        capped.stop_all()
    with open_app(db) as app:
        assert app.result(small) == "x" * 98
        with pytest.raises(JobFailedError) as failed:
            app.result(big)
    assert failed.value.error_type == "ResultTooLarge"
    assert "101 bytes of JSON, over the result cap of 100 bytes" in failed.value.message
    assert "CONDUCTOR_MAX_RESULT_BYTES" in failed.value.message


def test_a_failed_job_reports_its_error_through_the_api_and_the_cli(db: str) -> None:
    with open_app(db) as app:
        job_id = app.enqueue({"task": "fail", "message": "boom"}, max_retries=0)
    done = run_cli("worker", "--burst", "-q", db=db)
    assert done.code == 0, done.stderr
    with open_app(db) as app, pytest.raises(JobFailedError) as failed:
        app.result(job_id)
    assert (failed.value.error_type, failed.value.message) == ("TaskFailedError", "boom")
    assert "raise TaskFailedError(message)" in failed.value.traceback
    shown = run_cli("result", str(job_id), db=db)
    assert shown.code == 1
    assert shown.stdout == ""
    assert shown.stderr.splitlines() == [
        f"error: job {job_id} failed: TaskFailedError: boom (retries exhausted: 0 of 0)"
    ]
    with_traceback = run_cli("result", str(job_id), "--traceback", db=db)
    assert with_traceback.code == 1
    assert with_traceback.stderr.startswith("Traceback (most recent call last):")
    as_json = run_cli("result", str(job_id), "--json", db=db)
    assert as_json.code == 1
    assert as_json.stderr == shown.stderr
    error = json.loads(as_json.stdout)["error"]
    assert (error["type"], error["message"]) == ("TaskFailedError", "boom")
    assert "raise TaskFailedError(message)" in error["traceback"]


def test_a_cancelled_job_has_no_result(db: str) -> None:
    with open_app(db) as app:
        job_id = app.enqueue({"task": "noop"})
        app.cancel(job_id, by="alice", reason="not needed")
        with pytest.raises(JobCancelledError, match="cancelled by alice: not needed"):
            app.result(job_id, timeout=30)
    shown = run_cli("result", str(job_id), db=db)
    assert (shown.code, shown.stdout) == (1, "")
    assert shown.stderr == f"error: job {job_id} was cancelled by alice: not needed\n"


def test_an_unfinished_job_times_out_and_the_cli_exits_3(db: str) -> None:
    with open_app(db) as app:
        job_id = app.enqueue({"task": "noop"})  # no worker runs: it cannot finish
        with pytest.raises(ResultTimeout, match=f"job {job_id} is pending") as timed_out:
            app.result(job_id, timeout=0.05)
        assert isinstance(timed_out.value, TimeoutError)
        with pytest.raises(ResultTimeout):
            app.result(job_id)  # no timeout: looks once
    at_once = run_cli("result", str(job_id), db=db)
    assert (at_once.code, at_once.stdout) == (3, "")
    assert at_once.stderr == f"error: job {job_id} is pending; no result yet\n"
    waited = run_cli("result", str(job_id), "--wait", "100ms", "--json", db=db)
    assert waited.code == 3
    assert waited.stderr == f"error: job {job_id} is pending after waiting 100ms; no result yet\n"
    assert json.loads(waited.stdout) == {"id": job_id, "status": "pending", "result": None}


def test_an_unknown_id_is_one_line_and_exit_1(db: str) -> None:
    with open_app(db) as app:
        app.enqueue({"task": "noop"})
        with pytest.raises(UnknownJob):
            app.result(99)
    shown = run_cli("result", "99", db=db)
    assert shown.code == 1
    assert shown.stderr == "error: no job with id 99; expected an id shown by `conductor jobs`\n"


def result_waiters(db: str) -> int:
    """Sessions or sockets waiting for finished jobs of `db`."""
    if is_postgres(db):
        from conductor.ledger.postgres.connection import parse

        target = parse(db)
        with psycopg.connect(target.conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"conductor result {target.schema}",),
            ).fetchone()
        return 0 if row is None else int(row[0])
    folder = wakeup.directory(db, "finished")
    return len(list(folder.glob("*.sock"))) if folder.exists() else 0


def test_a_waiting_result_wakes_when_a_worker_process_finishes_the_job(
    db: str, workers: WorkerProcesses, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No fallback poll within the test's life: only the finished-job wake-up can end the
    # wait before its timeout, which fails the test.
    monkeypatch.setattr(client_results, "POLL_FALLBACK", 3600.0)
    gate = tmp_path / "gate"
    with open_app(db) as app:
        job_id = app.enqueue({"task": "give_after_gate", "gate": str(gate), "value": [7]})
    workers.start("--poll", "120s")
    answers: list[Any] = []

    def wait_for_it() -> None:
        with open_app(db) as app:
            try:
                answers.append(app.result(job_id, timeout=600))
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                answers.append(e)

    waiter = threading.Thread(target=wait_for_it, daemon=True)
    waiter.start()
    wait_until(lambda: result_waiters(db) == 1, what="the waiter to listen")
    gate.touch()
    waiter.join(300)
    assert not waiter.is_alive(), "the waiter was not woken"
    assert answers == [[7]]
    assert result_waiters(db) == 0  # its socket or session is gone


def test_async_handlers_and_handlers_with_a_timeout_return_their_results_too(
    db: str, registry: Registry, start_engine: Start
) -> None:
    @registry.task("async_give")
    async def async_give(value: int) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"async": value}

    @registry.task("timed_give", timeout=60)
    def timed_give(value: int) -> list[int]:
        return [value, value]

    with open_app(db) as app:
        first, second = app.enqueue_many(
            [{"task": "async_give", "value": 1}, {"task": "timed_give", "value": 2}]
        )
    running = start_engine(burst=True)
    running.thread.join(120)
    assert running.result == [0]
    assert running.app.result(first) == {"async": 1}
    assert running.app.result(second) == [2, 2]
