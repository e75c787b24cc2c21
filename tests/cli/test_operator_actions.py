"""`conductor cancel` and `conductor retry`: operator actions recorded as events, and
refused with one clear line where they make no sense."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import every_state_db, fail, refused, seed, start
from tests.conftest import run_cli


def job(db: Path, job_id: int) -> Any:
    result = run_cli("show", str(job_id), "--json", db=db)
    assert result.code == 0, result
    return json.loads(result.stdout)


def last_event(db: Path, job_id: int) -> Any:
    result = run_cli("events", "--job", str(job_id), "--limit", "1", "--json", db=db)
    assert result.code == 0, result
    return json.loads(result.stdout)[0]


def test_cancel_moves_a_pending_job_to_cancelled_and_records_who(db_path: Path) -> None:
    seed(db_path, "send_email")
    result = run_cli("cancel", "1", "--by", "alice", db=db_path)
    assert (result.code, result.stderr) == (0, ""), result
    first, summary = result.stdout.splitlines()
    assert first == "job 1 cancelled"
    batch = re.fullmatch(r"batch (\S+): 1 cancelled, 0 refused, by alice: cancelled", summary)
    assert batch is not None, summary
    assert job(db_path, 1)["status"] == "cancelled"
    event = last_event(db_path, 1)
    assert (event["seq"], event["type"], event["version"]) == (2, "cancelled", 2)
    assert event["data"] == {"by": "alice", "reason": "cancelled", "batch": batch[1]}


def test_cancel_also_stops_an_in_progress_job(db_path: Path) -> None:
    seed(db_path, "send_email")
    start(db_path, limit=1)
    assert run_cli("cancel", "1", db=db_path).code == 0
    assert job(db_path, 1)["status"] == "cancelled"


def test_retry_sends_a_cancelled_job_back_to_pending(db_path: Path) -> None:
    seed(db_path, "send_email")
    assert run_cli("cancel", "1", db=db_path).code == 0
    result = run_cli("retry", "1", db=db_path)
    assert (result.code, result.stderr) == (0, ""), result
    assert result.stdout.splitlines()[0] == "job 1 requeued"
    assert result.stdout.splitlines()[1].startswith("batch ")
    row = job(db_path, 1)
    assert row["status"] == "pending"
    assert row["run_at"] == row["updated_at"]
    assert last_event(db_path, 1)["type"] == "requeued"


def test_retry_sends_a_failed_job_back_to_pending_with_a_fresh_retry_budget(
    db_path: Path,
) -> None:
    seed(db_path, "send_email", max_retries=0)
    start(db_path, limit=1)
    fail(db_path, 1)
    assert job(db_path, 1)["status"] == "failed"
    assert run_cli("retry", "1", db=db_path).code == 0
    row = job(db_path, 1)
    assert (row["status"], row["retries"], row["attempts"]) == ("pending", 0, 1)
    history = run_cli("history", "1", "--json", db=db_path)
    assert [e["type"] for e in json.loads(history.stdout)] == [
        "enqueued",
        "started",
        "attempt_failed",
        "failed",
        "requeued",
    ]


@pytest.fixture(scope="module")
def every_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return every_state_db(tmp_path_factory.mktemp("operator") / "conductor.db")


@pytest.mark.parametrize(
    ("command", "job_id", "state"),
    [
        ("cancel", 2, "completed"),
        ("cancel", 1, "failed"),
        ("cancel", 5, "cancelled"),
        ("retry", 6, "pending"),
        ("retry", 3, "in_progress"),
        ("retry", 2, "completed"),
    ],
    ids=str,
)
def test_an_action_that_makes_no_sense_for_the_jobs_state_is_refused_in_one_line(
    every_state: Path, command: str, job_id: int, state: str
) -> None:
    line = refused(every_state, command, str(job_id), mentions=[f"job {job_id}", state])
    allowed = "pending, claimed or in_progress" if command == "cancel" else "failed or cancelled"
    assert allowed in line


@pytest.mark.parametrize("command", ["cancel", "retry"])
def test_an_action_on_an_unknown_job_is_refused_in_one_line(
    every_state: Path, command: str
) -> None:
    refused(every_state, command, "99", mentions=["no job with id 99"])
