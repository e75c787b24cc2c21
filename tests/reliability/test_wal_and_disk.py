"""The -wal file under a reader that keeps taking snapshots, and a filesystem that fills up."""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.engine.writer import WAL_CAP
from tests.conftest import db_snapshot, run_cli
from tests.engine.conftest import WorkerProcesses, wait_until
from tests.reliability.invariants import ledger_problems

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


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(path: Path) -> None:
    """Write `path` until the filesystem has not one more block."""
    with path.open("wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1 << 9):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
    assert os.statvfs(path.parent).f_bavail == 0
    with (
        pytest.raises(OSError, match="No space") as full,
        (path.parent / "probe").open("wb", buffering=0) as f,
    ):
        f.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC


def test_a_full_disk_fails_enqueue_cleanly_and_stalls_workers_until_space_returns(
    tmp_path: Path,
) -> None:
    with _tmpfs(tmp_path / "small", "4m") as mnt:
        db = mnt / "conductor.db"
        filler = mnt / "filler"
        with Conductor(settings=Settings(db=str(db))) as app:
            app.enqueue_many([{"task": "sleep", "seconds": 0.3}] * 20)

        _fill(filler)
        before = db_snapshot(db)
        refused = run_cli("enqueue", "--payload", '{"task": "noop"}', db=db)
        assert refused.code == 1, refused
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert "disk full" in refused.stderr
        assert db_snapshot(db) == before
        filler.unlink()
        (mnt / "probe").unlink(missing_ok=True)

        pool = WorkerProcesses(db, tmp_path)
        log = tmp_path / "worker-0.log"
        worker = pool.start("--burst", "-c", "4", "--poll", "0.2s")
        try:
            with Conductor(settings=Settings(db=str(db))) as app:
                wait_until(lambda: app.stats().overall.in_progress >= 2, what="jobs in flight")
                _fill(filler)
                wait_until(lambda: "write failed" in log.read_text(), what="a failed write")
                time.sleep(1.5)  # several retries against the full disk
                assert worker.poll() is None, log.read_text()
                filler.unlink()
                (mnt / "probe").unlink(missing_ok=True)
                assert worker.wait(120) == 0, log.read_text()
                stats = app.stats().overall
                assert (stats.completed, stats.in_progress, stats.pending) == (20, 0, 0)
                started = collections.Counter(r.job_id for r in app.events(types=["started"]))
                assert set(started.values()) == {1}, "no attempt may be lost and run again"
                assert not app.events(types=["rescued", "released"])
            assert "disk full" in log.read_text()
            _assert_clean(db)
            assert ledger_problems(db) == []  # checked here: the tmpfs is gone afterwards
        finally:
            pool.stop_all()
