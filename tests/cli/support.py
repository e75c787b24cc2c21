"""Helpers shared by the CLI tests: driving jobs through states in-process, reading the
CLI's tables, and checking that a refused command failed cleanly and changed nothing.

The CLI itself always runs as the installed `conductor` executable (`run_cli`); only the
set-up (claims, failures, completions, which the CLI cannot do) uses the Python API on the
same database file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conductor import Conductor, ManualClock, SystemClock
from conductor.domain.clock import Clock, stamp
from conductor.domain.config import Settings
from conductor.domain.events import (
    JobAttemptFailed,
    JobCompleted,
    JobFailed,
    JobStarted,
    NewEvent,
)
from conductor.ledger.base import JobFilter
from tests.conftest import CliResult, db_snapshot, run_cli

WORKER = "test-host:4242:worker-1"
LEASE = dt.timedelta(minutes=5)
T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
"""A fixed past instant for events whose times a test filters on."""


def _open(db: Path, clock: Clock | None = None) -> Conductor:
    return Conductor(settings=Settings(db=str(db)), clock=clock or SystemClock())


def seed(
    db: Path, *tasks: str | dict[str, Any], clock: Clock | None = None, **options: Any
) -> list[int]:
    """Enqueue jobs in-process (fast set-up); a bare string is a payload naming only a task."""
    payloads = [{"task": t} if isinstance(t, str) else t for t in tasks]
    with _open(db, clock) as app:
        return app.enqueue_many(payloads, **options)


def start(
    db: Path, *, limit: int, queue: str = "default", now: dt.datetime | None = None
) -> list[int]:
    """Start up to `limit` due jobs of `queue` for a worker: they become in_progress.

    Recorded as conductor did before `claimed` and `run_started` existed (one `started`
    per job), which ledgers still hold and every command must still show as it is."""
    when = now or dt.datetime.now(dt.UTC)
    with _open(db) as app:
        due = sorted(
            (
                row
                for row in app.ledger.jobs(JobFilter(status="pending", queue=queue))
                if row["run_at"] <= stamp(when)
            ),
            key=lambda row: (row["priority"], row["run_at"], row["id"]),
        )[:limit]
        lease = stamp(when + LEASE)
        app.ledger.append(
            [
                NewEvent(
                    job_id=row["id"],
                    at=stamp(when),
                    event=JobStarted(
                        attempt=row["attempts"] + 1, worker=WORKER, lease_expires_at=lease
                    ),
                )
                for row in due
            ]
        )
    return [row["id"] for row in due]


def append(db: Path, events: Iterable[NewEvent]) -> None:
    with _open(db) as app:
        app.ledger.append(list(events))


def fail(
    db: Path,
    job_id: int,
    *,
    attempt: int = 1,
    now: dt.datetime | None = None,
    message: str = "mailbox unavailable",
) -> None:
    """Record a failed attempt of an in_progress job and give up on it: it becomes failed."""
    at = stamp(now or dt.datetime.now(dt.UTC))
    append(
        db,
        [
            NewEvent(
                job_id=job_id,
                at=at,
                event=JobAttemptFailed(
                    attempt=attempt,
                    error_type="ConnectionError",
                    message=message,
                    traceback=(
                        "Traceback (most recent call last):\n"
                        '  File "handlers.py", line 12, in send_email\n'
                        f"ConnectionError: {message}\n"
                    ),
                ),
            ),
            NewEvent(job_id=job_id, at=at, event=JobFailed(attempt=attempt, reason="gave up")),
        ],
    )


def complete(db: Path, job_id: int, *, attempt: int = 1, now: dt.datetime | None = None) -> None:
    """Record that an in_progress job's attempt succeeded: it becomes completed."""
    at = stamp(now or dt.datetime.now(dt.UTC))
    append(db, [NewEvent(job_id=job_id, at=at, event=JobCompleted(attempt=attempt))])


def cancel(db: Path, job_id: int) -> None:
    with _open(db) as app:
        app.cancel(job_id)


def every_state_db(db: Path) -> Path:
    """A database with a job in every status, at known times (T0 + n hours):

    ===  ===========  =======  ===========  ==========================================
    id   task         queue    status       events (seq)
    ===  ===========  =======  ===========  ==========================================
    1    send_email   default  failed       enqueued 1, started 7, attempt_failed 10,
                                            failed 11
    2    send_email   default  completed    enqueued 2, started 8, completed 12
    3    data_import  default  in_progress  enqueued 3, started 9
    4    data_import  reports  pending      enqueued 4
    5    send_email   reports  cancelled    enqueued 5, cancelled 13 (now, not T0-based)
    6    resize       default  pending      enqueued 6 (low priority, so never claimed)
    ===  ===========  =======  ===========  ==========================================

    Enqueues are at T0, T0+1h, ... T0+5h; the claims at T0+6h; the outcomes at T0+7h.
    """
    clock = ManualClock(T0)
    seed(db, {"task": "send_email", "email": "ada@example.com"}, clock=clock)
    clock.advance(3600)
    seed(db, {"task": "send_email", "email": "grace@example.com"}, clock=clock)
    clock.advance(3600)
    seed(db, {"task": "data_import", "source": "customers.csv"}, clock=clock)
    clock.advance(3600)
    seed(db, {"task": "data_import", "source": "orders.csv"}, clock=clock, queue="reports")
    clock.advance(3600)
    seed(db, {"task": "send_email", "email": "bob@example.com"}, clock=clock, queue="reports")
    clock.advance(3600)
    seed(db, "resize", clock=clock, priority="low")
    assert start(db, limit=3, now=T0 + dt.timedelta(hours=6)) == [1, 2, 3]
    fail(db, 1, now=T0 + dt.timedelta(hours=7))
    complete(db, 2, now=T0 + dt.timedelta(hours=7))
    cancel(db, 5)
    return db


# -- reading CLI output ----------------------------------------------------------------
_HEADING = re.compile(r"\S+(?: \S+)*")


def table_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Parse an aligned CLI table into its headings and one dict per row.

    Columns are cut at the positions where the headings start, so empty cells survive.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    found = list(_HEADING.finditer(header))
    names = [m.group() for m in found]
    starts = [m.start() for m in found]
    ends = [*starts[1:], None]
    rows = [
        {name: line[s:e].strip() for name, s, e in zip(names, starts, ends, strict=True)}
        for line in lines[1:]
    ]
    return names, rows


# -- refusals --------------------------------------------------------------------------
_SQLITE_MAGIC = b"SQLite format 3\x00"


def fingerprint(path: Path) -> object:
    """What a refused command must leave unchanged at `path`: the rows of a database
    (`db_snapshot`), the bytes of any other file, the listing of a directory, or "absent"."""
    if path.is_dir():
        return ("directory", sorted(str(p.relative_to(path)) for p in path.rglob("*")))
    if path.is_file():
        with path.open("rb") as handle:
            is_sqlite = handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
        if not is_sqlite:
            return ("bytes", hashlib.sha256(path.read_bytes()).hexdigest())
    return db_snapshot(path)


def assert_one_line_error(result: CliResult, *, code: int = 1, mentions: Iterable[str] = ()) -> str:
    """The command failed with `code`, printed nothing on stdout, exactly one `error:` line
    on stderr naming each of `mentions`, and no traceback anywhere. Returns that line."""
    assert "Traceback" not in result.stdout + result.stderr, result
    assert result.code == code, result
    assert result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stderr.endswith("\n")
    line = lines[0]
    assert line.startswith("error: "), line
    for word in mentions:
        assert word in line, f"{word!r} not in {line!r}"
    return line


def refused(
    target: Path,
    *args: str,
    code: int = 1,
    mentions: Iterable[str] = (),
    db: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command that must be refused (one clean error line) and must leave `target`
    exactly as it was; a database that did not exist must still not exist, with no
    `-wal`/`-shm`/`-journal` files beside it. `--db` is `target` unless `db` is given.
    Returns the error line."""
    before = fingerprint(target)
    siblings = sorted(p.name for p in target.parent.iterdir()) if target.parent.exists() else []
    result = run_cli(*args, db=target if db is None else db, stdin=stdin, env=env)
    line = assert_one_line_error(result, code=code, mentions=mentions)
    assert fingerprint(target) == before
    if before == "absent":
        after = sorted(p.name for p in target.parent.iterdir()) if target.parent.exists() else []
        assert after == siblings, f"the command created {set(after) - set(siblings)}"
    return line
