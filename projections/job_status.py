"""The `jobs` read model: one row per job, the fold of that job's events.

Rows are plain dicts (typed as `JobRow`) because the fold runs once per event on the
append path and a million times in a replay; copying a dict is several times cheaper than
evolving an attrs instance, and the row maps one to one onto the `jobs` table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, TypedDict

from conductor.events import (
    JobAttemptFailed,
    JobCancelled,
    JobCompleted,
    JobEnqueued,
    JobFailed,
    JobLeaseExtended,
    JobReleased,
    JobRequeued,
    JobRescued,
    JobResultIgnored,
    JobRetryScheduled,
    JobStarted,
    RecordedEvent,
)
from conductor.states import JobState, next_state


class JobRow(TypedDict):
    """One row of the `jobs` table."""

    id: int
    task: str
    queue: str
    priority: int
    status: str
    attempts: int
    """Attempts started so far; the current/last attempt's number."""
    retries: int
    """Retries used since enqueue or the last operator requeue (the `Retries` column)."""
    max_retries: int
    run_at: str
    payload: str
    last_error: str | None
    worker: str | None
    """Holder of the live lease while in_progress, else None."""
    lease_expires_at: str | None
    created_at: str
    updated_at: str
    trace: str | None
    """The traceparent stored with `enqueued`, carried to every attempt."""
    last_seq: int
    """The seq of the last event folded into this row."""


COLUMNS: Final = tuple(JobRow.__annotations__)

name: Final = "jobs"


def _enqueued(row: JobRow | None, rec: RecordedEvent, status: str) -> JobRow:
    ev = rec.event
    assert isinstance(ev, JobEnqueued)
    return {
        "id": rec.job_id,
        "task": ev.task,
        "queue": ev.queue,
        "priority": ev.priority,
        "status": status,
        "attempts": 0,
        "retries": 0,
        "max_retries": ev.max_retries,
        "run_at": ev.run_at,
        "payload": ev.payload,
        "last_error": None,
        "worker": None,
        "lease_expires_at": None,
        "created_at": rec.at,
        "updated_at": rec.at,
        "trace": rec.trace,
        "last_seq": rec.seq,
    }


def _started(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    ev = rec.event
    assert isinstance(ev, JobStarted)
    return {
        **row,
        "status": status,
        "attempts": ev.attempt,
        "worker": ev.worker,
        "lease_expires_at": ev.lease_expires_at,
        "updated_at": rec.at,
        "last_seq": rec.seq,
    }


def _lease_released(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    # completed, cancelled, failed, rescued: the attempt is over, so is its lease.
    return {
        **row,
        "status": status,
        "worker": None,
        "lease_expires_at": None,
        "updated_at": rec.at,
        "last_seq": rec.seq,
    }


def _failed(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    ev = rec.event
    assert isinstance(ev, JobFailed)
    return {**_lease_released(row, rec, status), "last_error": ev.reason}


def _attempt_failed(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    ev = rec.event
    assert isinstance(ev, JobAttemptFailed)
    return {
        **row,
        "status": status,
        "last_error": f"{ev.error_type}: {ev.message}",
        "updated_at": rec.at,
        "last_seq": rec.seq,
    }


def _retry_scheduled(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    ev = rec.event
    assert isinstance(ev, JobRetryScheduled)
    return {
        **_lease_released(row, rec, status),
        "retries": row["retries"] + 1,
        "run_at": ev.run_at,
    }


def _requeued(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    ev = rec.event
    assert isinstance(ev, JobRequeued)
    return {**_lease_released(row, rec, status), "retries": 0, "run_at": ev.run_at}


def _rescued(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    # Due again at once: the rescue happens when the lease is already lost.
    return {**_lease_released(row, rec, status), "run_at": rec.at}


def _lease_extended(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    ev = rec.event
    assert isinstance(ev, JobLeaseExtended)
    return {
        **row,
        "status": status,
        "lease_expires_at": ev.lease_expires_at,
        "updated_at": rec.at,
        "last_seq": rec.seq,
    }


def _unchanged(row: JobRow, rec: RecordedEvent, status: str) -> JobRow:
    # result_ignored: the event is history, not state; only the fold position moves.
    return {**row, "last_seq": rec.seq}


_Fold = Callable[[JobRow, RecordedEvent, str], JobRow]
_FOLDS: Final[dict[type, _Fold]] = {
    JobStarted: _started,
    JobCompleted: _lease_released,
    JobAttemptFailed: _attempt_failed,
    JobRetryScheduled: _retry_scheduled,
    JobFailed: _failed,
    JobCancelled: _lease_released,
    JobRequeued: _requeued,
    JobRescued: _rescued,
    JobReleased: _rescued,
    JobLeaseExtended: _lease_extended,
    JobResultIgnored: _unchanged,
}


def apply(row: JobRow | None, rec: RecordedEvent) -> JobRow:
    """Fold one event into the job's row; raises `InvalidTransition` for an illegal move."""
    state = None if row is None else JobState(row["status"])
    status = next_state(rec.job_id, state, rec.event.TYPE).value
    if row is None:
        return _enqueued(row, rec, status)
    return _FOLDS[type(rec.event)](row, rec, status)


def fold(events: Iterable[RecordedEvent]) -> JobRow | None:
    """The row for one job from its events in seq order (None for no events)."""
    row: JobRow | None = None
    for rec in events:
        row = apply(row, rec)
    return row
