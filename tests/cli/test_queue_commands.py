"""`conductor queues` and `conductor queue pause|resume|limit`, on both backends; and their
bad input: one line on stderr naming what was wrong, exit 2, nothing appended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conductor import Conductor, Settings
from conductor.domain.errors import InvalidInput
from tests.cli.support import assert_one_line_error, refused, seed
from tests.conftest import run_cli


def last_seq(db: str) -> int:
    with Conductor(settings=Settings(db=db)) as app:
        return app.ledger.last_seq()


def ok(db: str, *args: str) -> str:
    result = run_cli(*args, db=db)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_an_operator_pauses_limits_and_resumes_a_queue_and_the_log_says_who_and_why(
    db: str,
) -> None:
    ok(db, "enqueue", "--payload", '{"task": "noop"}', "--queue", "mail")
    assert ok(db, "queue", "pause", "mail", "--by", "alice", "--reason", "relay down") == (
        "queue mail paused\n"
    )
    assert ok(db, "queue", "pause", "mail") == "queue mail was already paused; nothing changed\n"
    assert ok(db, "queue", "limit", "mail", "--concurrency", "2", "--rate", "100/m") == (
        "queue mail: concurrency 2, rate 100/minute\n"
    )
    assert ok(db, "queue", "limit", "mail", "--rate", "none", "--by", "bob") == (
        "queue mail: concurrency 2, rate none\n"
    )
    assert ok(db, "queue", "limit", "mail", "--concurrency", "2") == (
        "queue mail: concurrency 2, rate none (unchanged)\n"
    )
    (row,) = json.loads(ok(db, "queues", "--json"))
    assert (row["name"], row["paused"], row["concurrency"], row["rate"]) == ("mail", True, 2, None)
    assert row["counts"] == {"pending": 1}
    assert row["oldest_due_age"] >= 0
    assert (row["by"], row["reason"]) == ("bob", "")
    lines = ok(db, "queues").splitlines()
    assert lines[0].split() == [
        "Queue", "Pending", "Running", "Completed", "Failed", "Cancelled",
        "Oldest", "due", "Paused", "Concurrency", "Rate",
    ]  # fmt: skip
    assert lines[1].split()[:3] == ["mail", "1", "0"]
    assert lines[1].split()[-3:] == ["yes", "2", "-"]
    assert ok(db, "queue", "resume", "mail") == "queue mail resumed\n"
    events = json.loads(ok(db, "events", "--json"))
    ops = [(e["type"], e["subject"], e["data"].get("by")) for e in events if e["job_id"] == 0]
    assert ops == [
        ("queue_paused", "queue:mail", "alice"),
        ("queue_limit_set", "queue:mail", ops[1][2]),
        ("queue_limit_set", "queue:mail", ops[1][2]),
        ("queue_limit_cleared", "queue:mail", "bob"),
        ("queue_resumed", "queue:mail", ops[4][2]),
    ]
    assert events[1]["data"]["reason"] == "relay down"


def test_a_queue_without_jobs_can_be_paused_and_is_listed(db: str) -> None:
    ok(db, "enqueue", "--payload", '{"task": "noop"}')
    ok(db, "queue", "pause", "later")
    names = [row["name"] for row in json.loads(ok(db, "queues", "--json"))]
    assert names == ["default", "later"]


BAD = [
    (["queue", "limit", "q"], ["--concurrency", "--rate"]),
    (["queue", "limit", "q", "--concurrency", "0"], ["--concurrency", "1 to 1000000"]),
    (["queue", "limit", "q", "--concurrency", "-2"], ["--concurrency", "whole number"]),
    (["queue", "limit", "q", "--concurrency", "1.5"], ["--concurrency", "none to clear"]),
    (["queue", "limit", "q", "--concurrency", "1000001"], ["--concurrency", "1000000"]),
    (["queue", "limit", "q", "--rate", "10/d"], ["--rate", "N/s, N/m or N/h"]),
    (["queue", "limit", "q", "--rate", "0/m"], ["--rate", "from 1 to 1000000"]),
    (["queue", "limit", "q", "--rate", "100"], ["--rate", "e.g. 100/m"]),
    (["queue", "limit", "q", "--rate", "-5/s"], ["--rate", "N/s"]),
    (["queue", "limit", "q", "--rate", "/m"], ["--rate"]),
    (["queue", "limit", "q", "--rate", ""], ["--rate"]),
    (["queue", "pause", "bad name"], ["invalid queue", "letters, digits"]),
    (["queue", "pause", ""], ["invalid queue"]),
    (["queue", "resume", "x" * 101], ["invalid queue"]),
    (["queue", "pause", "q", "--by", ""], ["--by", "expected a name"]),
    (["queue", "pause"], ["NAME"]),
    (["queue", "frobnicate", "q"], ["frobnicate"]),
]


@pytest.mark.parametrize(("args", "mentions"), BAD, ids=lambda v: " ".join(v)[:40])
def test_bad_input_is_one_line_exit_2_and_appends_nothing(
    db: str, args: list[str], mentions: list[str]
) -> None:
    ok(db, "enqueue", "--payload", '{"task": "noop"}')
    before = last_seq(db)
    result = run_cli(*args, db=db)
    assert_one_line_error(result, code=2, mentions=mentions)
    assert last_seq(db) == before


@pytest.mark.sqlite_only("byte-for-byte file fingerprint and a missing file are SQLite's")
def test_a_refused_queue_command_leaves_the_file_exactly_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "already_there")
    refused(db, "queue", "limit", "q", "--rate", "5/fortnight", code=2, mentions=["--rate"])
    missing = tmp_path / "absent.db"
    refused(missing, "queue", "pause", "q", code=1, mentions=["no conductor database"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda app: app.limit_queue("q"), "nothing to change"),
        (lambda app: app.limit_queue("q", concurrency=0), "invalid concurrency 0"),
        (lambda app: app.limit_queue("q", concurrency=True), "invalid concurrency"),
        (lambda app: app.limit_queue("q", rate="5/fortnight"), "invalid rate"),
        (lambda app: app.limit_queue("q", rate=(5, "day")), "invalid rate period"),
        (lambda app: app.limit_queue("q", rate=(0, "second")), "invalid rate 0"),
        (lambda app: app.pause_queue("no spaces"), "invalid queue"),
        (lambda app: app.pause_queue("q", by=" "), "invalid --by"),
    ],
    ids=range(8),
)
def test_the_python_api_refuses_bad_input_before_appending_anything(
    db: str, call: Any, message: str
) -> None:
    with Conductor(settings=Settings(db=db)) as app:
        app.enqueue({"task": "noop"})
        before = app.ledger.last_seq()
        with pytest.raises(InvalidInput, match=message):
            call(app)
        assert app.ledger.last_seq() == before
        assert app.ledger.controls("queue") == {}


def test_the_python_api_reports_what_changed(db: str) -> None:
    with Conductor(settings=Settings(db=db)) as app:
        assert app.pause_queue("q", by="alice") is True
        assert app.pause_queue("q") is False
        assert app.limit_queue("q", concurrency=3, rate="10/s") == ["concurrency", "rate"]
        assert app.limit_queue("q", concurrency=3, rate=None) == ["rate"]
        assert app.limit_queue("q", concurrency=3) == []
        assert app.resume_queue("q") is True
        (summary,) = app.queues()
        assert (summary.paused, summary.concurrency, summary.rate) == (False, 3, None)
