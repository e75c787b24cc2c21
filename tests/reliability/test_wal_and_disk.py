"""The -wal file under a reader that keeps taking snapshots, and a filesystem that fills up."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.engine.upkeep import WAL_CAP
from tests.conftest import db_snapshot, run_cli
from tests.engine.conftest import WorkerProcesses, wait_until
from tests.reliability.filesystems import fill, free, tmpfs
from tests.reliability.invariants import ledger_problems

pytestmark = pytest.mark.sqlite_only("the -wal file and a full tmpfs under a SQLite file")

JOBS = 100_000
"""~4 s to enqueue and ~25 s to drain with two burst workers on 2 cores."""

INTERVAL_WRITES = 32 * 2**20
"""One maintenance interval's (1 s) worth of -wal growth, with room: this run appends
~15-20 MiB a second on 2 cores. The bound is at least WAL_CAP + INTERVAL_WRITES = 96 MiB,
more when the measured write rate and the longest snapshot the reader held call for it."""


def _wal_size(db: Path) -> int:
    try:
        return os.stat(f"{db}-wal").st_size
    except FileNotFoundError:
        return 0


def _assert_clean(db: Path) -> None:
    verify = run_cli("replay", "--verify", db=db)
    assert verify.code == 0, verify.stdout + verify.stderr
    audit = run_cli("audit", "verify", db=db)
    assert audit.code == 0, audit.stdout + audit.stderr


def test_the_wal_stays_under_the_cap_while_a_reader_keeps_taking_snapshots(
    db_path: Path, workers: WorkerProcesses
) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        app.enqueue_many([{"task": "noop"}] * JOBS)
    drains = [workers.start("--burst", "-c", "16", "--prefetch", "32") for _ in range(2)]
    reader = sqlite3.connect(db_path, isolation_level=None)
    after_release: list[int] = []
    try:
        deadline = time.monotonic() + 900  # a hang guard: ~25 s idle

        def running() -> bool:
            assert time.monotonic() < deadline, "the workers did not drain in time"
            return any(w.poll() is None for w in drains)

        # 1. A reader pins one snapshot: no checkpoint can reset the log, so the -wal
        # certainly grows past the cap (SQLite's own checkpoints cannot win this race).
        reader.execute("BEGIN")
        reader.execute("SELECT max(seq) FROM events").fetchone()
        pinned_at, pinned_size = time.monotonic(), _wal_size(db_path)
        while _wal_size(db_path) <= WAL_CAP + (4 << 20):
            assert running(), "the jobs drained before the -wal passed the cap"
            time.sleep(0.05)
        pinned_peak = _wal_size(db_path)
        reader.execute("COMMIT")
        # Nothing could reset the log meanwhile: its growth is the workers' write rate.
        write_rate = (pinned_peak - pinned_size) / (time.monotonic() - pinned_at)

        # 2. The reader goes on with snapshots of 0.2 s and 5 ms gaps: SQLite's passive
        # checkpoints seldom complete, and never shrink the file; the engine's TRUNCATE
        # waits for a gap, brings the file back under the cap, and keeps it near there.
        # Each snapshot is timed: a descheduled test process holds it longer than 0.2 s.
        longest_pin = 0.0
        while running():
            reader.execute("BEGIN")
            reader.execute("SELECT max(seq) FROM events").fetchone()
            began = time.monotonic()
            for _ in range(2):
                time.sleep(0.1)
                after_release.append(_wal_size(db_path))
            reader.execute("COMMIT")
            longest_pin = max(longest_pin, time.monotonic() - began)
            time.sleep(0.005)
    finally:
        reader.close()
        workers.stop_all()
    assert [w.returncode for w in drains] == [0, 0]
    shrunk_at = next((n for n, size in enumerate(after_release) if size < WAL_CAP), None)
    assert shrunk_at is not None, (
        f"the -wal ({pinned_peak >> 20} MiB when the reader let go) never came back under "
        f"the cap: {[size >> 20 for size in after_release[:50]]} MiB"
    )
    # Within a few maintenance rounds (~1 s each, 0.1 s a sample) of the release.
    assert shrunk_at < 50, f"the -wal took {shrunk_at / 10:.1f} s to come back under the cap"
    # After it, the log grows at most for the longest snapshot plus one maintenance round
    # (1 s) before a TRUNCATE can run: the measured rate over that span, with room.
    peak = max(after_release[shrunk_at:])
    bound = WAL_CAP + max(INTERVAL_WRITES, int(1.5 * write_rate * (longest_pin + 1.0)))
    assert peak < bound, (
        f"-wal peaked at {peak >> 20} MiB after the first truncation; expected under "
        f"{bound >> 20} ({write_rate / 2**20:.1f} MiB/s, longest snapshot {longest_pin:.2f} s)"
    )
    with Conductor(settings=Settings(db=str(db_path))) as app:
        assert app.stats().overall.completed == JOBS
    _assert_clean(db_path)


def test_a_full_disk_fails_enqueue_cleanly_and_stalls_workers_until_space_returns(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "small", "4m") as mnt:
        db = mnt / "conductor.db"
        filler = mnt / "filler"
        with Conductor(settings=Settings(db=str(db))) as app:
            app.enqueue_many([{"task": "sleep", "seconds": 0.3}] * 20)

        fill(filler)
        before = db_snapshot(db)
        refused = run_cli("enqueue", "--payload", '{"task": "noop"}', db=db)
        assert refused.code == 1, refused
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert "disk full" in refused.stderr
        assert db_snapshot(db) == before
        free(filler)

        pool = WorkerProcesses(db, tmp_path)
        log = tmp_path / "worker-0.log"
        worker = pool.start("--burst", "-c", "4", "--poll", "0.2s")
        try:
            with Conductor(settings=Settings(db=str(db))) as app:
                wait_until(lambda: app.stats().overall.in_progress >= 2, what="jobs in flight")
                fill(filler)
                wait_until(lambda: "write failed" in log.read_text(), what="a failed write")
                time.sleep(1.5)  # several retries against the full disk
                assert worker.poll() is None, log.read_text()
                free(filler)
                assert worker.wait(120) == 0, log.read_text()
                stats = app.stats().overall
                assert (stats.completed, stats.in_progress, stats.pending) == (20, 0, 0)
                started = collections.Counter(r.job_id for r in app.events(types=["claimed"]))
                assert set(started.values()) == {1}, "no attempt may be lost and run again"
                assert not app.events(types=["rescued", "released"])
            assert "disk full" in log.read_text()
            _assert_clean(db)
            assert ledger_problems(db) == []  # checked here: the tmpfs is gone afterwards
        finally:
            pool.stop_all()


QUICK = 300
"""Jobs of 10 ms: their lifecycles write ~10 MiB of -wal frames, five times the disk."""


def test_a_full_disk_freed_gets_its_space_back_from_the_wal_and_the_jobs_complete(
    tmp_path: Path,
) -> None:
    """Once filled, a 2 MiB disk stays full if the -wal grows into the space freed (SQLite
    checkpoints at 4 MiB, and its checkpoints never truncate): the worker truncates the
    -wal before it retries, and keeps it small from then on."""
    with tmpfs(tmp_path / "small", "2m") as mnt:
        db = mnt / "conductor.db"
        filler = mnt / "filler"
        with Conductor(settings=Settings(db=str(db))) as app:
            app.enqueue_many([{"task": "sleep", "seconds": 0.01}] * QUICK)
            long_ids = app.enqueue_many([{"task": "sleep", "seconds": 60}] * 4, priority="low")
        pool = WorkerProcesses(db, tmp_path)
        log = tmp_path / "worker-0.log"
        worker = pool.start("-c", "4", "--poll", "0.2s", "--grace", "0.2s")
        try:
            with Conductor(settings=Settings(db=str(db)), create=False) as app:
                wait_until(lambda: app.stats().overall.completed >= 20, what="work under way")
                fill(filler)
                wait_until(lambda: "disk full" in log.read_text(), what="a failed write")
                free(filler)
                space = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
                peak = 0

                def quick_ones_done() -> bool:
                    nonlocal peak
                    peak = max(peak, _wal_size(db))
                    stats = app.stats().overall
                    return stats.completed == QUICK and stats.in_progress == 4

                wait_until(quick_ones_done, timeout=120, what="every quick job to complete")
                assert peak < 2**20, (
                    f"the -wal reached {peak} bytes ({space} freed on a 2 MiB disk); "
                    "expected it truncated and kept under half the disk"
                )
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(60) == 0, log.read_text()
                stats = app.stats().overall
                assert (stats.completed, stats.in_progress, stats.pending) == (QUICK, 0, 4)
                released = {r.job_id for r in app.events(types=["released"])}
                assert released == set(long_ids)
                started = collections.Counter(r.job_id for r in app.events(types=["claimed"]))
                assert set(started.values()) == {1}, "no attempt may be lost and run again"
            _assert_clean(db)
            assert ledger_problems(db) == []  # checked here: the tmpfs is gone afterwards
        finally:
            pool.stop_all()


def test_a_worker_stopped_on_a_full_disk_says_so_and_its_jobs_are_rescued_later(
    tmp_path: Path,
) -> None:
    """With the -wal empty there is nothing to give back: the releases cannot be written,
    so one line says so, the exit code is 1, and the jobs stay `in_progress` under
    leases that the next worker finds dead and rescues."""
    with tmpfs(tmp_path / "small", "2m") as mnt:
        db = mnt / "conductor.db"
        filler = mnt / "filler"
        with Conductor(settings=Settings(db=str(db))) as app:
            ids = app.enqueue_many([{"task": "sleep", "seconds": 2}] * 4)
        pool = WorkerProcesses(db, tmp_path)
        log = tmp_path / "worker-0.log"
        # A long lease: no heartbeat writes to the -wal between the checkpoint and the fill.
        worker = pool.start("-c", "4", "--lease", "60s", "--grace", "0.2s")
        try:
            with Conductor(settings=Settings(db=str(db)), create=False) as app:
                wait_until(lambda: app.stats().overall.in_progress == 4, what="jobs in flight")
            conn = sqlite3.connect(db, isolation_level=None)
            wait_until(
                lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0,
                what="an empty -wal",
            )
            conn.close()
            assert _wal_size(db) == 0
            fill(filler)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 1, log.read_text()
            free(filler)
            lines = [line for line in log.read_text().splitlines() if "could not" in line]
            assert len(lines) == 1, log.read_text()
            assert "release of 4 attempts (disk full writing" in lines[0]
            assert "leases expire and another worker rescues them" in lines[0]
            with Conductor(settings=Settings(db=str(db)), create=False) as app:
                assert app.stats().overall.in_progress == 4
                assert not app.events(types=["released"])
                later = pool.start("-c", "4")
                wait_until(
                    lambda: app.stats().overall.completed == 4, timeout=60, what="the rescues"
                )
                later.send_signal(signal.SIGTERM)
                assert later.wait(60) == 0, pool.log(1)
                stats = app.stats().overall
                assert (stats.completed, stats.in_progress, stats.pending) == (4, 0, 0)
                assert {r.job_id for r in app.events(types=["rescued"])} == set(ids)
            _assert_clean(db)
            assert ledger_problems(db) == []
        finally:
            pool.stop_all()
