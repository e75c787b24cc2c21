"""`conductor enqueue`: the README's verbatim example, every option, and `--file`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conductor.domain.clock import unstamp
from tests.cli.support import refused, seed, table_rows
from tests.conftest import db_snapshot, run_cli

README_PAYLOAD = '{ "task": "send_email", "email": "test@example.com" }'


def jobs_json(db: Path) -> Any:
    result = run_cli("jobs", "--json", "--limit", "0", db=db)
    assert result.code == 0, result
    return json.loads(result.stdout)


def only_job(db: Path) -> Any:
    result = run_cli("show", "1", "--json", db=db)
    assert result.code == 0, result
    return json.loads(result.stdout)


def test_the_readme_example_works_verbatim_on_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONDUCTOR_DB", raising=False)
    printed = [run_cli("enqueue", "--payload", README_PAYLOAD, cwd=tmp_path) for _ in range(3)]
    assert [(r.code, r.stdout, r.stderr) for r in printed] == [
        (0, "1\n", ""),
        (0, "2\n", ""),
        (0, "3\n", ""),
    ]
    assert (tmp_path / "conductor.db").is_file()

    listing = run_cli("jobs", cwd=tmp_path)
    assert listing.code == 0, listing
    assert listing.stdout.splitlines()[0].split()[:4] == ["ID", "Task", "Status", "Retries"]
    _, rows = table_rows(listing.stdout)
    assert [(r["ID"], r["Task"], r["Status"], r["Retries"]) for r in rows] == [
        ("1", "send_email", "pending", "0/3"),
        ("2", "send_email", "pending", "0/3"),
        ("3", "send_email", "pending", "0/3"),
    ]


def test_enqueue_prints_the_new_job_id_and_stores_the_payload(db_path: Path) -> None:
    result = run_cli("enqueue", "--payload", README_PAYLOAD, db=db_path)
    assert (result.code, result.stdout, result.stderr) == (0, "1\n", "")
    job = only_job(db_path)
    assert job["payload"] == {"task": "send_email", "email": "test@example.com"}
    assert job["task"] == "send_email"
    assert (job["status"], job["queue"], job["priority"]) == ("pending", "default", "medium")
    assert (job["attempts"], job["retries"], job["max_retries"]) == (0, 0, 3)
    assert job["run_at"] == job["created_at"]


def test_enqueue_numbers_jobs_after_the_ones_already_there(db_path: Path) -> None:
    seed(db_path, "a", "b")
    result = run_cli("enqueue", "--payload", '{"task": "c"}', db=db_path)
    assert (result.code, result.stdout) == (0, "3\n")


@pytest.mark.parametrize(
    ("delay", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1.5s", 1.5)]
)
def test_enqueue_delay_schedules_the_job_that_far_in_the_future(
    db_path: Path, delay: str, seconds: float
) -> None:
    # Bounded by instants taken around the command, not by "now" after it: process exit and
    # the read-back can take longer than the shortest delay on a loaded machine.
    before = dt.datetime.now(dt.UTC)
    assert run_cli("enqueue", "--payload", '{"task": "a"}', "--delay", delay, db=db_path).code == 0
    after = dt.datetime.now(dt.UTC)
    job = only_job(db_path)
    run_at, created = unstamp(str(job["run_at"])), unstamp(str(job["created_at"]))
    assert before <= created <= after
    assert run_at - created == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2031-02-03T04:05:06Z", "2031-02-03T04:05:06.000000Z"),
        ("2031-02-03T04:05:06+02:00", "2031-02-03T02:05:06.000000Z"),
        ("2031-02-03T04:05:06", "2031-02-03T04:05:06.000000Z"),
    ],
    ids=["utc", "offset", "naive-means-utc"],
)
def test_enqueue_at_schedules_the_job_for_that_time_in_utc(
    db_path: Path, given: str, stored: str
) -> None:
    assert run_cli("enqueue", "--payload", '{"task": "a"}', "--at", given, db=db_path).code == 0
    assert only_job(db_path)["run_at"] == stored


def test_enqueue_at_a_past_time_makes_the_job_due_now(db_path: Path) -> None:
    args = ("enqueue", "--payload", '{"task": "a"}', "--at", "2001-01-01T00:00:00Z")
    assert run_cli(*args, db=db_path).code == 0
    job = only_job(db_path)
    assert job["run_at"] == job["created_at"]


def test_enqueue_takes_priority_max_retries_and_queue(db_path: Path) -> None:
    for priority in ("high", "medium", "LOW"):
        result = run_cli(
            "enqueue",
            "--payload",
            '{"task": "a"}',
            "--priority",
            priority,
            "--max-retries",
            "7",
            "--queue",
            "emails",
            db=db_path,
        )
        assert result.code == 0, result
    jobs = jobs_json(db_path)
    assert [j["priority"] for j in jobs] == ["high", "medium", "low"]
    assert {(j["max_retries"], j["queue"]) for j in jobs} == {(7, "emails")}
    _, rows = table_rows(run_cli("jobs", db=db_path).stdout)
    assert {r["Retries"] for r in rows} == {"0/7"}


def test_enqueue_json_prints_the_ids_as_json(db_path: Path) -> None:
    result = run_cli("enqueue", "--payload", '{"task": "a"}', "--json", db=db_path)
    assert result.code == 0, result
    assert json.loads(result.stdout) == {"ids": [1]}


def test_enqueue_accepts_any_task_name(db_path: Path) -> None:
    payload = '{"task": "nobody.registered.this", "n": [1, 2, {"deep": null}]}'
    assert run_cli("enqueue", "--payload", payload, db=db_path).code == 0
    assert only_job(db_path)["payload"] == {
        "task": "nobody.registered.this",
        "n": [1, 2, {"deep": None}],
    }


def test_enqueue_file_adds_one_job_per_line_and_skips_blank_lines(
    db_path: Path, tmp_path: Path
) -> None:
    batch = tmp_path / "jobs.jsonl"
    batch.write_text('{"task": "a"}\n\n{"task": "b", "n": 2}\n   \n{"task": "c"}\n')
    result = run_cli("enqueue", "--file", str(batch), "--queue", "bulk", db=db_path)
    assert (result.code, result.stdout) == (0, "enqueued 3 jobs: 1-3\n")
    jobs = jobs_json(db_path)
    assert [(j["id"], j["task"], j["queue"]) for j in jobs] == [
        (1, "a", "bulk"),
        (2, "b", "bulk"),
        (3, "c", "bulk"),
    ]
    assert jobs[1]["payload"] == {"task": "b", "n": 2}


def test_enqueue_file_dash_reads_payloads_from_stdin(db_path: Path) -> None:
    result = run_cli(
        "enqueue", "--file", "-", "--json", db=db_path, stdin='{"task": "a"}\n{"task": "b"}\n'
    )
    assert result.code == 0, result
    assert json.loads(result.stdout) == {"ids": [1, 2]}
    assert [j["task"] for j in jobs_json(db_path)] == ["a", "b"]


def test_enqueue_file_with_a_bad_line_names_it_and_writes_nothing(
    db_path: Path, tmp_path: Path
) -> None:
    seed(db_path, "already_there")
    batch = tmp_path / "jobs.jsonl"
    batch.write_text('{"task": "a"}\n{"task": "b"}\n\n{"task": 5}\n{"task": "e"}\n')
    refused(db_path, "enqueue", "--file", str(batch), mentions=["line 4", "task"])
    assert [j["task"] for j in jobs_json(db_path)] == ["already_there"]


def test_enqueue_file_with_invalid_json_on_stdin_names_the_line_and_creates_nothing(
    db_path: Path,
) -> None:
    refused(
        db_path,
        "enqueue",
        "--file",
        "-",
        stdin='{"task": "a"}\n{"task": "b",\n',
        mentions=["line 2", "JSON"],
    )
    assert db_snapshot(db_path) == "absent"


@pytest.mark.parametrize(
    ("content", "mentions"),
    [("\n\n", ["no payloads"]), (None, ["cannot read", "No such file"])],
    ids=["only-blank-lines", "missing-file"],
)
def test_enqueue_file_that_holds_no_payloads_is_refused(
    db_path: Path, tmp_path: Path, content: str | None, mentions: list[str]
) -> None:
    batch = tmp_path / "jobs.jsonl"
    if content is not None:
        batch.write_text(content)
    seed(db_path, "a")
    refused(db_path, "enqueue", "--file", str(batch), mentions=mentions)


@pytest.mark.parametrize(
    ("name", "mentions"),
    [("x" * 5_000, ["cannot read --file", "File name too long", "..."]), (".", ["is a directory"])],
    ids=["name-too-long", "directory"],
)
def test_enqueue_file_with_a_path_that_cannot_be_a_file_is_refused_in_one_line(
    db_path: Path, name: str, mentions: list[str]
) -> None:
    """Found by the hostile-argv property test: `Path.is_dir()` itself raises for a name
    longer than the OS allows, which escaped as a traceback."""
    seed(db_path, "a")
    line = refused(db_path, "enqueue", "--file", name, mentions=mentions)
    assert len(line) < 300  # the name is shortened in the message
