"""Zombie fencing, the claim race, tampering and corrupt files, with real processes."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.ledger.open import is_postgres
from conductor.ledger.postgres.connection import parse
from tests import gated_tasks
from tests.conftest import run_cli
from tests.engine.conftest import WorkerProcesses, attempt_starts, wait_until
from tests.engine.freeze import freeze_when

LOCKED = re.compile(r"\blocked\b")
"""The lock-wait warning's word; not the "blocked" of a checkpoint warning."""


def open_app(db: Path | str) -> Conductor:
    return Conductor(settings=Settings(db=str(db)))


def write_lock_free(db: str) -> bool:
    """True if no process holds the database's write lock right now (on PostgreSQL: no
    connection to the test's database is inside a transaction or a statement, so none
    holds a row lock or the chain lock)."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(parse(db).conninfo, autocommit=True) as conn:
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN "
                "('active', 'idle in transaction', 'idle in transaction (aborted)')"
            ).fetchone()
        return busy == (0,)
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_a_zombie_worker_past_its_lease_is_fenced_off(db: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with open_app(db) as app:
        job_id = app.enqueue({"task": "gated", "gate": str(gate), "first_attempt_only": True})
    pool = WorkerProcesses(db, tmp_path, "--app", gated_tasks.APP, env=gated_tasks.app_env())
    zombie = pool.start("--lease", "1s")
    try:
        with open_app(db) as app:

            def silenced_mid_attempt() -> bool:
                # Alive, but silent (no heartbeats), holding attempt 1 and no write lock:
                # frozen inside a write it would block the rescuer until the test timed out.
                return app.job(job_id)["status"] == "in_progress" and write_lock_free(db)

            freeze_when(zombie, silenced_mid_attempt, what="the zombie frozen mid-attempt")
            rescuer = pool.start("--burst")
            assert rescuer.wait(300) == 0, pool.log(1)
            assert app.job(job_id)["status"] == "completed"
            gate.touch()  # attempt 1 may now end: its result comes too late
            zombie.send_signal(signal.SIGCONT)
            wait_until(
                lambda: "result_ignored" in [r.type for r in app.ledger.history(job_id)],
                what="the zombie's late result",
            )
            types = [r.type for r in app.ledger.history(job_id)]
            assert types.count("completed") == 1
            assert types.index("rescued") < types.index("completed")
            ignored = [r for r in app.ledger.history(job_id) if r.type == "result_ignored"]
            assert ignored[0].event.attempt == 1  # type: ignore[union-attr]
            assert app.job(job_id)["status"] == "completed"
    finally:
        zombie.send_signal(signal.SIGCONT)
        zombie.terminate()
        zombie.wait(300)
        pool.stop_all()
    assert run_cli("audit", "verify", db=db).code == 0
    assert run_cli("replay", "--verify", db=db).code == 0


def test_four_processes_of_eight_workers_start_each_attempt_once(
    db: str, workers: WorkerProcesses
) -> None:
    with open_app(db) as app:
        app.enqueue_many([{"task": "noop"}] * 10_000)
    drains = [workers.start("--burst", "--concurrency", "8") for _ in range(4)]
    for worker in drains:
        assert worker.wait(300) == 0
    with open_app(db) as app:
        starts = attempt_starts(app)
        assert len(starts) == 10_000
        assert set(starts.values()) == {1}
        assert app.stats().overall.completed == 10_000
    for index in range(4):
        text = workers.log(index)
        assert not LOCKED.search(text), text  # (a checkpoint "blocked" is no lock wait)
        assert "Traceback" not in text, text


@pytest.mark.sqlite_only("tampers with the file through the sqlite3 shell")
@pytest.mark.breaks_ledger("reorders events to be caught")
def test_reordered_events_are_named_by_audit_verify(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue_many([{"task": "noop", "n": n} for n in range(6)])
    subprocess.run(
        [
            "sqlite3",
            str(db_path),
            "DROP TRIGGER events_refuse_update;"
            "UPDATE events SET seq = -1 WHERE seq = 3;"
            "UPDATE events SET seq = 3 WHERE seq = 5;"
            "UPDATE events SET seq = 5 WHERE seq = -1;",
        ],
        check=True,
        capture_output=True,
    )
    result = run_cli("audit", "verify", db=db_path)
    assert result.code == 1
    assert "seq 3" in result.stdout


@pytest.mark.sqlite_only("corrupts the pages of a SQLite file")
@pytest.mark.breaks_ledger("corrupts the file to be caught")
def test_a_corrupt_database_gives_one_line_naming_the_file_and_the_recovery(
    db_path: Path,
) -> None:
    with open_app(db_path) as app:
        app.enqueue_many([{"task": "noop", "pad": "x" * 2000} for _ in range(50)])
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db_path.read_bytes())
    page = 4096
    for offset in range(page * 2, min(len(data), page * 8)):  # wreck b-tree pages, keep header
        data[offset] = 0xA5
    db_path.write_bytes(bytes(data))
    result = run_cli("jobs", db=db_path)
    assert result.code == 1
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert str(db_path) in result.stderr
    assert "malformed" in result.stderr or "corrupt" in result.stderr
    assert "recover" in result.stderr or "backup" in result.stderr


@pytest.mark.sqlite_only("SQLite's write lock and busy timeout")
def test_waiting_for_the_write_lock_is_quiet_until_it_persists(
    db_path: Path, tmp_path: Path
) -> None:
    """Lock contention is retried silently; a lock held through six busy timeouts in a
    row is reported once, and the work resumes when the lock is free."""
    with open_app(db_path) as app:
        app.enqueue_many([{"task": "noop"}] * 4)
    pool = WorkerProcesses(
        str(db_path), tmp_path, env={**os.environ, "CONDUCTOR_BUSY_TIMEOUT": "0.05"}
    )
    log = tmp_path / "worker-0.log"
    blocker = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: no claim can commit
    started = time.time()
    worker = pool.start("--burst")
    try:
        line = wait_until(
            lambda: next((x for x in log.read_text().splitlines() if LOCKED.search(x)), None),
            what="the persistent-lock warning",
        )
        # Quiet until the sixth refusal: at least 6 busy timeouts of 0.05 s and 5 retry
        # pauses of 0.5 s after the worker started, however slow the machine (its log
        # stamps the line; milliseconds, hence the 0.01 s).
        logged = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        assert logged - started >= 6 * 0.05 + 5 * 0.5 - 0.01, line
        time.sleep(1.5)  # a span of more refused writes in the same streak, not a sync
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    try:
        assert worker.wait(300) == 0, log.read_text()
    finally:
        pool.stop_all()
    assert len(LOCKED.findall(log.read_text())) == 1, log.read_text()
    with open_app(db_path) as app:
        assert app.stats().overall.completed == 4
