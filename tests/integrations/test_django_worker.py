"""Django tasks enqueued through the framework run in a real worker process
(`manage.py conductor_worker --burst`) and report back through `get_result`, over a
SQLite ledger and a PostgreSQL one."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.ledger.base import EventFilter
from tests.conftest import run_cli
from tests.integrations.conftest import PROJECT, Manage, conductor_tasks


@pytest.fixture
def ledger(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "ledger.db")


def test_framework_tasks_run_in_a_worker_and_their_results_come_back(
    ledger: str, use_tasks: Any, manage: Manage, tmp_path: Path
) -> None:
    from django.utils import timezone
    from djshop import tasks

    env = use_tasks(conductor_tasks(ledger))
    added = tasks.add.enqueue(2, 3)
    shouted = asyncio.run(tasks.shout.aenqueue("hello"))
    context = tasks.whoami.enqueue(label="ctx")
    exploded = tasks.explode.enqueue("no luck")
    later = tasks.add.using(run_after=timezone.now() + dt.timedelta(hours=1)).enqueue(1, 1)
    due = tasks.add.using(run_after=timezone.now() - dt.timedelta(seconds=1)).enqueue(4, 4)
    # Enqueued before the worker starts, one slot: they run in priority order.
    ranked = {p: tasks.mark.using(priority=p).enqueue(str(p)) for p in (-100, 7, 100, -3, 0, 55)}
    assert added.status == "READY"
    assert added.id.isdigit()

    done = manage("conductor_worker", "--burst", "--concurrency", "1", "--prefetch", "0", env=env)
    assert done.returncode == 0, done.stderr

    result = tasks.add.get_result(added.id)
    assert (result.status, result.return_value, result.attempts) == ("SUCCESSFUL", 5, 1)
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.args == [2, 3]
    assert len(result.worker_ids) == 1
    assert asyncio.run(tasks.shout.aget_result(shouted.id)).return_value == "HELLO"
    shown = tasks.whoami.get_result(context.id).return_value
    assert shown == {"label": "ctx", "attempt": 1, "id": context.id, "status": "RUNNING"}

    failed = tasks.explode.get_result(exploded.id)
    assert failed.status == "FAILED"
    (error,) = failed.errors
    assert error.exception_class is ValueError
    assert "no luck" in error.traceback
    assert "raise ValueError(message)" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = failed.return_value

    assert tasks.add.get_result(later.id).status == "READY"
    assert tasks.add.get_result(due.id).return_value == 8

    handle = Conductor(settings=Settings(db=ledger))
    starts = handle.ledger.read(EventFilter(types=("run_started",)))
    order = [job for job in (rec.job_id for rec in starts) if str(job) in ranked_ids(ranked)]
    assert [int(ranked_ids(ranked)[str(job)]) for job in order] == [100, 55, 7, 0, -3, -100]

    history = run_cli(
        "history", added.id, "--db", "django:djproject.settings", env=env, cwd=PROJECT
    )
    assert history.code == 0, history.stderr
    assert "djshop.tasks.add" in history.stdout
    assert "completed" in history.stdout
    audit = run_cli("audit", "verify", "--db", "django:", env=env, cwd=PROJECT)
    assert audit.code == 0, audit.stderr


def ranked_ids(ranked: dict[int, Any]) -> dict[str, int]:
    return {result.id: priority for priority, result in ranked.items()}


@pytest.mark.sqlite_only("what a worker imports does not depend on the ledger")
def test_a_payload_naming_an_undiscovered_function_fails_as_unknown_and_imports_nothing(
    ledger: str, use_tasks: Any, manage: Manage, tmp_path: Path
) -> None:
    marker = tmp_path / "imported.marker"
    env = {**use_tasks(conductor_tasks(ledger)), "TEST_MARKER": str(marker)}
    with Conductor(settings=Settings(db=ledger)) as handle:
        ids = [
            handle.enqueue({"task": name, "args": [], "kwargs": {}})
            for name in ("djshop.untracked.boom", "os.system")
        ]
    done = manage("conductor_worker", "--burst", env=env)
    assert done.returncode == 0, done.stderr
    with Conductor(settings=Settings(db=ledger)) as handle:
        for job_id in ids:
            row = handle.job(job_id)
            assert row["status"] == "failed"
            assert "unknown task" in row["last_error"]
            assert "djshop.tasks.add" in row["last_error"]  # the registered ones are named
    assert not marker.exists()


@pytest.mark.sqlite_only("retries are the engine's, the same on every ledger")
def test_with_max_retries_a_failed_attempt_is_retried_and_each_error_is_kept(
    ledger: str, use_tasks: Any, manage: Manage
) -> None:
    from djshop import tasks

    env = use_tasks(conductor_tasks(ledger, MAX_RETRIES=1))
    flaky = tasks.flaky.enqueue()
    # manage.py's own --settings is manage.py's, not passed on to conductor worker
    done = manage(
        "conductor_worker",
        "--settings",
        "djproject.settings",
        "--burst",
        "--horizon",
        "1m",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result = tasks.flaky.get_result(flaky.id)
    assert (result.status, result.return_value, result.attempts) == ("SUCCESSFUL", 2, 2)
    (error,) = result.errors
    assert error.exception_class is RuntimeError
    assert "attempt 1 fails" in error.traceback
    assert result.started_at < result.last_attempted_at < result.finished_at
