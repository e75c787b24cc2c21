"""A worker on a database it can never write stops at once with one line, exit 1.

Read-only, corrupt or foreign files are not transient the way a busy lock or a full disk
are: retrying them forever (twice a second, as workers once did) hides the problem.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.ledger.postgres.connection import parse
from tests.conftest import CONDUCTOR, db_snapshot, run_cli
from tests.reliability.filesystems import remount_read_only, tmpfs

READ_ONLY = "is read-only; expected a writable database"


@pytest.mark.parametrize(
    "options",
    [("--burst",), (), ("--processes", "2")],
    ids=["burst", "long-running", "two-processes"],
)
@pytest.mark.sqlite_only("a SQLite file on a tmpfs remounted read-only")
def test_a_worker_on_a_read_only_database_exits_1_with_one_line_and_changes_nothing(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    with tmpfs(tmp_path / "ro", "4m") as mnt:
        db = mnt / "conductor.db"
        with Conductor(settings=Settings(db=str(db))) as app:
            app.enqueue_many([{"task": "noop"}] * 3)
        remount_read_only(mnt)
        before = db_snapshot(db)
        done = run_cli("worker", *options, db=db)  # its 60 s timeout: never retry forever
        assert done.code == 1, done
        assert done.stderr.splitlines() == [f"error: {db} {READ_ONLY} for this command"]
        assert db_snapshot(db) == before


@pytest.mark.parametrize(
    "options",
    [("--burst",), (), ("--processes", "2")],
    ids=["burst", "long-running", "two-processes"],
)
def test_a_worker_on_a_read_only_postgresql_server_exits_1_with_one_line_and_changes_nothing(
    pg_url: str, options: tuple[str, ...]
) -> None:
    """A hot standby, or a database set to `default_transaction_read_only` (here through
    libpq's `options` in the URL): the worker's first write is refused, never retried."""
    with Conductor(settings=Settings(db=pg_url)) as app:
        app.enqueue_many([{"task": "noop"}] * 3)
        before = (app.ledger.last_seq(), app.ledger.counts())
        read_only = f"{pg_url}&options=-c%20default_transaction_read_only%3Don"
        done = run_cli("worker", *options, db=read_only)  # its 60 s timeout: never retry forever
        assert done.code == 1, done
        assert done.stderr.splitlines() == [
            f"error: {parse(pg_url).shown} is read-only (cannot execute UPDATE in a read-only "
            "transaction); expected a writable primary for this command"
        ]
        assert (app.ledger.last_seq(), app.ledger.counts()) == before


@pytest.mark.sqlite_only("overwrites the pages of a SQLite file")
@pytest.mark.breaks_ledger("overwrites the database's pages while a worker runs")
def test_a_worker_whose_database_is_corrupted_under_it_exits_1_with_one_line(
    tmp_path: Path,
) -> None:
    db = tmp_path / "conductor.db"
    with Conductor(settings=Settings(db=str(db))) as app:
        first = app.enqueue({"task": "noop"})
        app.enqueue({"task": "noop"}, delay=dt.timedelta(hours=1))
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [CONDUCTOR, "worker", "-q", "--poll", "0.1s", "--db", str(db)], stderr=out
        )
    try:
        # Once it runs (it has completed the first job), every page but the first (header
        # and schema) is overwritten, after a checkpoint has moved the -wal into the file
        # (pages read from the -wal would hide the damage).
        deadline = time.monotonic() + 60
        with Conductor(settings=Settings(db=str(db)), create=False) as app:
            while app.job(first)["status"] != "completed":
                assert time.monotonic() < deadline, "the worker never ran the first job"
                assert worker.poll() is None, log.read_text()
                time.sleep(0.01)
        conn = sqlite3.connect(db, isolation_level=None)
        while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0:
            assert time.monotonic() < deadline, "the -wal never checkpointed"
        pages, size = (
            conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size")
        )
        conn.close()
        with db.open("r+b") as f:
            f.seek(size)
            f.write(b"\xff" * (pages - 1) * size)
        assert worker.wait(60) == 1, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {db} is corrupt"), lines
