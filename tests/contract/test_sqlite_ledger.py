"""What only the SQLite backend can show: its file, its pragmas, its triggers, its locks."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.errors import (
    DatabaseBusy,
    DatabaseNotFound,
    LedgerError,
    NotAConductorDatabase,
    SchemaTooNew,
)
from conductor.ledger.sqlite import SqliteLedger
from conductor.ledger.sqlite import connection as ledger_sqlite

LEASE = dt.timedelta(seconds=30)


def open_app(path: Path, **settings: object) -> Conductor:
    return Conductor(settings=Settings(db=str(path), **settings))  # type: ignore[arg-type]


def test_a_new_database_is_private_in_wal_mode_with_full_sync(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue({"task": "t"})
        conn = app.ledger._conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_normal_durability_is_available(db_path: Path) -> None:
    with open_app(db_path, synchronous="NORMAL") as app:
        assert app.ledger._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # type: ignore[attr-defined]


def test_the_database_refuses_to_update_or_delete_events(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue({"task": "t"})
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET data = '{}' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events")
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    conn.close()


def test_tampering_behind_the_triggers_is_named_by_seq(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue_many([{"task": "t", "n": n} for n in range(5)])
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER events_refuse_update")
    conn.execute("""UPDATE events SET data = replace(data, '"n":3', '"n":30') WHERE seq = 4""")
    conn.commit()
    conn.close()
    with open_app(db_path) as app:
        report = app.audit()
    assert (report.ok, report.first_bad_seq) == (False, 4)


def test_a_hand_edited_row_shows_in_verify_and_replay_repairs_it(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue_many([{"task": "t"}] * 3)
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE jobs SET status = 'completed' WHERE id = 2")
    conn.execute("UPDATE counters SET n = 7")
    conn.commit()
    conn.close()
    with open_app(db_path) as app:
        differences = app.verify_projections()
        assert {(d.table, d.key) for d in differences} == {
            ("jobs", "2"),
            ("counters", "default/t/pending"),
        }
        (job_diff,) = [d for d in differences if d.table == "jobs"]
        assert job_diff.live is not None
        assert job_diff.rebuilt is not None
        assert (job_diff.live["status"], job_diff.rebuilt["status"]) == ("completed", "pending")
        assert app.job(2)["status"] == "completed"  # verify changed nothing
        app.replay()
        assert app.verify_projections() == []
        assert app.job(2)["status"] == "pending"


def test_read_opens_never_create_a_database(db_path: Path) -> None:
    with pytest.raises(DatabaseNotFound):
        Conductor(settings=Settings(db=str(db_path)), create=False)
    assert not db_path.exists()


def test_a_directory_a_text_file_and_a_foreign_database_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="directory"):
        open_app(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 100)
    with pytest.raises(NotAConductorDatabase, match="not a SQLite database"):
        open_app(text)
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE things (x)")
    conn.close()
    with pytest.raises(NotAConductorDatabase, match="not a conductor one"):
        open_app(foreign)
    assert text.read_text().startswith("hello")


def test_a_database_from_a_newer_schema_is_refused(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue({"task": "t"})
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        open_app(db_path)


def test_a_writer_held_past_the_busy_timeout_gets_a_clear_error(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue({"task": "t"})
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with open_app(db_path, busy_timeout=0.1) as app:
            with pytest.raises(DatabaseBusy, match="locked by another writer"):
                app.enqueue({"task": "t"})
            assert app.ledger.last_seq() == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_writer_waiting_for_the_lock_retries_in_short_steps_and_gets_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not SQLite's busy handler, which sleeps up to 100 ms between tries: a job enqueued
    just after another process's commit must not wait that long."""
    pauses: list[float] = []
    refused_once = threading.Event()

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        refused_once.set()
        time.sleep(seconds)

    monkeypatch.setattr(ledger_sqlite, "_pause", pause)
    with open_app(db_path, busy_timeout=30) as app:
        app.enqueue({"task": "t"})
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        results: list[int] = []
        writer = threading.Thread(target=lambda: results.append(app.enqueue({"task": "t"})))
        writer.start()
        try:
            assert refused_once.wait(30), "the enqueue never met the lock"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        writer.join(30)
        assert results == [2]
        assert pauses[0] == ledger_sqlite.LOCK_RETRY_FIRST
        assert max(pauses) <= ledger_sqlite.LOCK_RETRY_MAX
        # the connection's own busy timeout is back for everything else
        timeout_ms = app.ledger._conn.execute("PRAGMA busy_timeout").fetchone()[0]  # type: ignore[attr-defined]
        assert timeout_ms == 30_000


def test_an_outdated_projection_version_is_rebuilt_on_open(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue_many([{"task": "t"}] * 2)
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'projections_version'")
    conn.execute("DELETE FROM jobs")
    conn.commit()
    conn.close()
    with open_app(db_path) as app:
        assert [row["id"] for row in app.jobs()] == [1, 2]


def _claim_until_empty(path: str, worker: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = SqliteLedger(Settings(db=path, busy_timeout=30), create=False)
    claimed: list[int] = []
    now = dt.datetime.now(dt.UTC)
    while batch := ledger.claim(worker=worker, queues=["default"], limit=7, now=now, lease=LEASE):
        claimed.extend(job.id for job in batch)
    ledger.close()
    out.put(claimed)


def test_concurrent_processes_claim_each_job_exactly_once(db_path: Path) -> None:
    with open_app(db_path) as app:
        app.enqueue_many([{"task": "t"}] * 600)
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [
        context.Process(target=_claim_until_empty, args=(str(db_path), f"w{n}", results))
        for n in range(4)
    ]
    for process in workers:
        process.start()
    claimed = [results.get(timeout=300) for _ in workers]
    for process in workers:
        process.join(timeout=300)
        assert process.exitcode == 0
    everything = [job_id for part in claimed for job_id in part]
    assert sorted(everything) == list(range(1, 601))
    with open_app(db_path) as app:
        assert len(app.events(types=["claimed"])) == 600
        assert app.stats().overall.claimed == 600
        assert app.audit().ok
        assert app.verify_projections() == []
    assert os.path.exists(db_path)


def _create_and_enqueue(path: str, barrier: Any) -> None:
    barrier.wait(300)  # a hang guard: spawned children import the test module first
    with Conductor(settings=Settings(db=path, busy_timeout=30)) as app:
        app.enqueue({"task": "t"})


def test_processes_creating_the_same_new_database_at_once_all_succeed(db_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    processes = [
        context.Process(target=_create_and_enqueue, args=(str(db_path), barrier)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(300)
        assert process.exitcode == 0
    with open_app(db_path) as app:
        assert [row["id"] for row in app.jobs()] == [1, 2, 3, 4]
