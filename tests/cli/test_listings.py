"""Read commands: `jobs`, `show`, `history`, `events`, `stats`, on one database that has a
job in every status (see `support.every_state_db` for its exact contents)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import WORKER, every_state_db, seed, table_rows
from tests.conftest import db_snapshot, run_cli


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return every_state_db(tmp_path_factory.mktemp("listings") / "conductor.db")


@pytest.fixture(autouse=True)
def _reads_change_nothing(db: Path) -> Any:
    before = db_snapshot(db)
    yield
    assert db_snapshot(db) == before, "a read command changed the database"


def argv_id(value: object) -> str | None:
    """Name a parametrized case by its command-line arguments."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return None


def cli_json(db: Path, *args: str) -> Any:
    result = run_cli(*args, "--json", db=db)
    assert result.code == 0, result
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


# -- jobs ------------------------------------------------------------------------------
def test_jobs_lists_every_job_oldest_first_with_its_status(db: Path) -> None:
    result = run_cli("jobs", db=db)
    assert (result.code, result.stderr) == (0, "")
    headings, rows = table_rows(result.stdout)
    assert headings[:4] == ["ID", "Task", "Status", "Retries"]
    assert [(r["ID"], r["Task"], r["Status"]) for r in rows] == [
        ("1", "send_email", "failed"),
        ("2", "send_email", "completed"),
        ("3", "data_import", "in_progress"),
        ("4", "data_import", "pending"),
        ("5", "send_email", "cancelled"),
        ("6", "resize", "pending"),
    ]


@pytest.mark.parametrize(
    ("filters", "ids"),
    [
        (["--status", "pending"], [4, 6]),
        (["--status", "in_progress"], [3]),
        (["--task", "send_email"], [1, 2, 5]),
        (["--queue", "reports"], [4, 5]),
        (["--status", "pending", "--queue", "default"], [6]),
        (["--task", "no_such_task"], []),
        (["--limit", "2"], [5, 6]),
        (["--limit", "0"], [1, 2, 3, 4, 5, 6]),
    ],
    ids=argv_id,
)
def test_jobs_filters_by_status_task_queue_and_limit(
    db: Path, filters: list[str], ids: list[int]
) -> None:
    assert [job["id"] for job in cli_json(db, "jobs", *filters)] == ids


def test_jobs_table_honours_the_same_filters(db: Path) -> None:
    result = run_cli("jobs", "--task", "data_import", db=db)
    assert result.code == 0, result
    _, rows = table_rows(result.stdout)
    assert [(r["ID"], r["Queue"]) for r in rows] == [("3", "default"), ("4", "reports")]


def test_jobs_limit_says_on_stderr_that_the_list_was_cut(db: Path) -> None:
    result = run_cli("jobs", "--limit", "2", db=db)
    assert result.code == 0, result
    assert [r["ID"] for r in table_rows(result.stdout)[1]] == ["5", "6"]
    assert "--limit 0" in result.stderr


def test_jobs_json_gives_whole_rows_with_decoded_payloads(db: Path) -> None:
    first = cli_json(db, "jobs", "--task", "send_email", "--limit", "1")
    assert len(first) == 1
    job = first[0]
    assert job["id"] == 5
    assert job["payload"] == {"task": "send_email", "email": "bob@example.com"}
    assert (job["status"], job["queue"], job["priority"]) == ("cancelled", "reports", "medium")
    assert {"attempts", "retries", "max_retries", "run_at", "created_at", "updated_at"} <= set(job)


# -- show ------------------------------------------------------------------------------
def test_show_prints_payload_status_attempts_and_each_failure(db: Path) -> None:
    result = run_cli("show", "1", db=db)
    assert (result.code, result.stderr) == (0, "")
    text = result.stdout
    assert text.startswith("Job 1\n")
    assert "Status:      failed" in text
    assert "Attempts:    1" in text
    assert "Task:        send_email" in text
    assert '"email": "ada@example.com"' in text
    assert "Attempt 1 failed" in text
    assert "ConnectionError: mailbox unavailable" in text
    assert 'File "handlers.py", line 12, in send_email' in text


def test_show_names_the_worker_of_an_in_progress_job(db: Path) -> None:
    result = run_cli("show", "3", db=db)
    assert result.code == 0, result
    assert "Status:      in_progress" in result.stdout
    assert WORKER in result.stdout


def test_show_json_has_the_row_and_the_failures(db: Path) -> None:
    job = cli_json(db, "show", "1")
    assert (job["id"], job["status"], job["attempts"]) == (1, "failed", 1)
    assert job["payload"] == {"task": "send_email", "email": "ada@example.com"}
    assert [(f["seq"], f["attempt"], f["error_type"]) for f in job["failures"]] == [
        (10, 1, "ConnectionError")
    ]
    assert "Traceback (most recent call last)" in job["failures"][0]["traceback"]


# -- history ---------------------------------------------------------------------------
def test_history_lists_every_event_of_the_job_in_order(db: Path) -> None:
    result = run_cli("history", "1", db=db)
    assert (result.code, result.stderr) == (0, "")
    headings, rows = table_rows(result.stdout)
    assert {"Seq", "Time", "Event"} <= set(headings)
    assert [(r["Seq"], r["Event"]) for r in rows] == [
        ("1", "enqueued"),
        ("7", "started"),
        ("10", "attempt_failed"),
        ("11", "failed"),
    ]
    details = {r["Event"]: r["Details"] for r in rows}
    assert WORKER in details["started"]
    assert "ConnectionError: mailbox unavailable" in details["attempt_failed"]
    since = [r["Since prev"] for r in rows]
    assert since[0] == ""
    assert since[1] == "+6.0h"


def test_history_json_gives_types_and_time_since_the_previous_event(db: Path) -> None:
    entries = cli_json(db, "history", "2")
    assert [(e["seq"], e["type"]) for e in entries] == [
        (2, "enqueued"),
        (8, "started"),
        (12, "completed"),
    ]
    assert [e["since_previous"] for e in entries] == [None, 5 * 3600, 3600]


# -- events ----------------------------------------------------------------------------
def seqs(db: Path, *args: str) -> list[int]:
    return [event["seq"] for event in cli_json(db, "events", "--limit", "0", *args)]


def test_events_json_uses_the_stored_names(db: Path) -> None:
    events = cli_json(db, "events", "--job", "2")
    assert {"seq", "job_id", "type", "at", "data"} <= set(events[0])
    first = events[0]
    assert (first["seq"], first["job_id"], first["type"]) == (2, 2, "enqueued")
    assert first["at"] == "2020-01-01T01:00:00.000000Z"
    assert first["data"]["task"] == "send_email"
    assert first["data"]["payload"] == {"task": "send_email", "email": "grace@example.com"}
    assert [e["type"] for e in events] == ["enqueued", "started", "completed"]
    assert events[2]["data"] == {"attempt": 1, "result": None}


def test_events_lists_the_whole_log_in_seq_order(db: Path) -> None:
    result = run_cli("events", db=db)
    assert (result.code, result.stderr) == (0, "")
    headings, rows = table_rows(result.stdout)
    assert headings[:2] == ["Seq", "Time"]
    assert [r["Seq"] for r in rows] == [str(n) for n in range(1, 14)]
    assert [r["Event"] for r in rows][-4:] == ["attempt_failed", "failed", "completed", "cancelled"]


def test_events_details_leave_out_fields_with_no_value(db: Path) -> None:
    # The completed job returned nothing and the jobs have no unique keys: a reader is
    # told nothing by `result=None` or `unique_key=None`, so those fields are not shown.
    result = run_cli("events", db=db)
    _, rows = table_rows(result.stdout)
    completed = next(r for r in rows if r["Event"] == "completed")
    assert completed["Details"] == "attempt=1"
    assert not any("None" in r["Details"] or "null" in r["Details"] for r in rows)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--job", "1"], [1, 7, 10, 11]),
        (["--type", "started"], [7, 8, 9]),
        (["--type", "completed", "--type", "cancelled"], [12, 13]),
        (["--task", "data_import"], [3, 4, 9]),
        (["--task", "data_import", "--type", "enqueued"], [3, 4]),
        (["--job", "5", "--type", "started"], []),
    ],
    ids=argv_id,
)
def test_events_filters_by_job_type_and_task(
    db: Path, filters: list[str], expected: list[int]
) -> None:
    assert seqs(db, *filters) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--since", "2020-01-01T02:00:00Z", "--until", "2020-01-01T04:00:00Z"], [3, 4]),
        (["--since", "2020-01-01T07:00:00"], [10, 11, 12, 13]),
        (["--until", "2020-01-01T01:00:00+00:00"], [1]),
        (["--since", "2020-01-01T03:00:00+01:00", "--until", "2020-01-01T03:00:00Z"], [3]),
    ],
    ids=["since-and-until", "naive-means-utc", "until-is-exclusive", "offsets"],
)
def test_events_since_and_until_take_iso_times(
    db: Path, filters: list[str], expected: list[int]
) -> None:
    assert seqs(db, *filters) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--since", "1h"], [13]),
        (["--since", "30m"], [13]),
        (["--until", "1h"], list(range(1, 13))),
    ],
    ids=["since-1h", "since-30m", "until-1h"],
)
def test_events_since_and_until_take_relative_ages(
    db: Path, filters: list[str], expected: list[int]
) -> None:
    assert seqs(db, *filters) == expected


def test_events_limit_keeps_the_newest_matches_oldest_first(db: Path) -> None:
    events = cli_json(db, "events", "--limit", "2")
    assert [e["seq"] for e in events] == [12, 13]
    assert len(cli_json(db, "events", "--limit", "0")) == 13


# -- stats -----------------------------------------------------------------------------
def test_stats_json_counts_every_status_overall_and_per_queue(db: Path) -> None:
    stats = cli_json(db, "stats")
    overall = {key: stats[key] for key in ("total", "pending", "in_progress", "completed")}
    assert overall == {"total": 6, "pending": 2, "in_progress": 1, "completed": 1}
    assert (stats["failed"], stats["cancelled"]) == (1, 1)
    assert stats["queues"] == {
        "default": {
            "total": 4,
            "pending": 1,
            "claimed": 0,
            "in_progress": 1,
            "completed": 1,
            "failed": 1,
            "cancelled": 0,
        },
        "reports": {
            "total": 2,
            "pending": 1,
            "claimed": 0,
            "in_progress": 0,
            "completed": 0,
            "failed": 0,
            "cancelled": 1,
        },
    }


def test_stats_table_has_an_overall_row_and_one_per_queue(db: Path) -> None:
    result = run_cli("stats", db=db)
    assert (result.code, result.stderr) == (0, "")
    counts = result.stdout.split("\n\n")[0]  # the activity table follows (test_live_views)
    headings, rows = table_rows(counts)
    assert headings == [
        "Queue",
        "Total",
        "Pending",
        "Claimed",
        "In progress",
        "Completed",
        "Failed",
        "Cancelled",
    ]
    assert [list(r.values()) for r in rows] == [
        ["all", "6", "2", "0", "1", "1", "1", "1"],
        ["default", "4", "1", "0", "1", "1", "1", "0"],
        ["reports", "2", "1", "0", "0", "0", "0", "1"],
    ]


def test_stats_on_a_database_with_no_jobs_is_all_zeros(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    seed(empty)  # creates the schema, enqueues nothing
    stats = cli_json(empty, "stats")
    assert {k: v for k, v in stats.items() if k not in ("queues", "tasks", "activity")} == {
        "total": 0,
        "pending": 0,
        "claimed": 0,
        "in_progress": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert stats["queues"] == {}
