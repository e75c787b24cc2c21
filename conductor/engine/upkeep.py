"""The Writer's maintenance rules: which leases to renew, which lost attempts to rescue,
and keeping the -wal file bounded.

Plain functions over what the Writer holds and what one read of the ledger shows, so the
Writer only routes: it reads, asks these what to do, and commits the decided events.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.errors import (
    CorruptDatabase,
    LedgerError,
    NotAConductorDatabase,
    ReadOnlyDatabase,
    SchemaTooNew,
)
from conductor.domain.events import NewEvent
from conductor.domain.job_row import JobRow
from conductor.engine import identity
from conductor.engine.messages import Began
from conductor.ledger.base import ClaimedJob, Ledger
from conductor.observe import logs
from conductor.observe.metrics import wal_path

LASTING: Final = (ReadOnlyDatabase, CorruptDatabase, NotAConductorDatabase, SchemaTooNew)
"""Write failures no retry clears: the Writer fails with them and the process exits 1
(`Engine.run`), where a busy lock or a full disk is waited out."""
WAL_CAP: Final = 64 * 1024 * 1024
"""Above this many bytes of -wal file, maintenance checkpoints and truncates the log
(docs/operations.md, "WAL size and checkpoints")."""
CHECKPOINT_WAIT: Final = 0.5
"""How long one checkpoint waits for readers on old snapshots (and holds off writers)."""
CHECKPOINT_WARN_AFTER: Final = 10
"""Consecutive blocked checkpoints (one a maintenance round) before the one warning."""


@attrs.define
class Held:
    """An attempt this process claimed and has not settled."""

    job: ClaimedJob
    cancel: threading.Event


@attrs.frozen(kw_only=True)
class Survey:
    """What one maintenance round found to do."""

    heartbeats: dict[int, int]
    """Job id -> attempt: held attempts whose lease is two thirds gone."""
    rescues: dict[int, str]
    """Job id -> why: attempts held elsewhere whose holder is gone or whose lease ran out."""


def survey(
    held: Mapping[int, Held], live: Mapping[int, JobRow], now: dt.datetime, lease: dt.timedelta
) -> Survey:
    """Compare what this process holds with the live (claimed or running) jobs.

    Sets the cancellation flag of every held attempt that no longer holds its job
    (cancelled, rescued or released elsewhere), so its handler hears of it."""
    for job_id, attempt in held.items():
        row = live.get(job_id)
        if row is None or row["attempts"] != attempt.job.attempt:
            attempt.cancel.set()
    renew_before = stamp(now + lease * 2 / 3)
    heartbeats = {
        job_id: attempt.job.attempt
        for job_id, attempt in held.items()
        if job_id in live
        and live[job_id]["attempts"] == attempt.job.attempt
        and (live[job_id]["lease_expires_at"] or "") < renew_before
    }
    rescues: dict[int, str] = {}
    for job_id, row in live.items():
        if job_id in held:
            continue
        if identity.holder_gone(row["worker"]):
            rescues[job_id] = f"worker {row['worker']} is gone"
        elif decide.lease_expired(row, now):
            rescues[job_id] = f"lease of {row['worker']} expired at {row['lease_expires_at']}"
    return Survey(heartbeats=heartbeats, rescues=rescues)


def decide_survey(
    found: Survey,
    live: Mapping[int, JobRow],
    rows: Mapping[int, JobRow],
    now: dt.datetime,
    lease: dt.timedelta,
) -> list[NewEvent]:
    """The heartbeat and rescue events for `found`, decided on `rows` read under the write
    lock (the holder of a job to rescue may have finished since `live` was read)."""
    events: list[NewEvent] = []
    for job_id, attempt in found.heartbeats.items():
        events += decide.extend_lease(rows.get(job_id), attempt, now=now, lease=lease)
    for job_id, reason in found.rescues.items():
        row = rows.get(job_id)
        if row is not None and row["worker"] == live[job_id]["worker"]:
            events += decide.rescue(row, reason=reason, now=now, attempt=live[job_id]["attempts"])
    return events


def settle_batch(
    began: Sequence[Began],
    outcomes: Sequence[decide.Outcome],
    rows: Mapping[int, JobRow],
    now: dt.datetime,
) -> list[NewEvent]:
    """One group commit's events: the handlers' starts, then the attempts' outcomes,
    decided on `rows` read under the write lock."""
    # Starts first: an attempt that began and finished since the last commit is claimed
    # in `rows`, and its `run_started` precedes its outcome.
    starts = [
        event
        for start in began
        for event in decide.run_started(rows.get(start.job_id), start.attempt, at=start.at)
    ]
    running = {**rows}
    for event in starts:
        assert event.job_id is not None
        running[event.job_id] = {**rows[event.job_id], "status": "in_progress"}
    return [
        *starts,
        *(
            event
            for outcome in outcomes
            for event in decide.settle(running.get(outcome.job_id), outcome, now=now)
        ),
    ]


@attrs.define
class WalLimiter:
    """Checkpoints and truncates the -wal file once it is over `WAL_CAP`.

    SQLite's own checkpoints never truncate, and cannot reset the log while a reader
    holds an old snapshot, so a busy database's -wal only grows. A blocked attempt
    changes nothing and is tried again next round; one warning if it keeps failing."""

    blocked: int = 0
    """Consecutive blocked checkpoints."""

    def limit(self, ledger: Ledger) -> None:
        """Checkpoint and truncate once the -wal is over `WAL_CAP`, or over the space left
        on its filesystem (the next as much again would fill the disk, and a checkpoint
        needs a little room of its own to succeed)."""
        path = wal_path(ledger.location)
        try:
            size = os.stat(path).st_size if path is not None else 0
            disk = os.statvfs(path) if path is not None and size else None
        except OSError:
            size, disk = 0, None
        if size <= WAL_CAP and (disk is None or size < disk.f_bavail * disk.f_frsize):
            self.blocked = 0
            return
        try:
            done = ledger.checkpoint_wal(wait=CHECKPOINT_WAIT)
        except LASTING:
            raise
        except LedgerError as e:
            logs.note(f"WAL checkpoint failed: {e}", warning=True)
            return
        if done:
            self.blocked = 0
            return
        self.blocked += 1
        if self.blocked == CHECKPOINT_WARN_AFTER:
            logs.note(
                f"WAL {path} is {size // 2**20} MiB, over the {WAL_CAP // 2**20} MiB cap, and "
                f"{CHECKPOINT_WARN_AFTER} checkpoints in a row were blocked: a reader keeps "
                "an old snapshot open (a long-running read transaction); expected readers "
                "to finish their transactions",
                warning=True,
            )
