"""The `jobs` read model: one row per job, the fold of that job's events.

Rows are plain dicts (typed as `JobRow`) because the fold runs once per event on the
append path and a million times in a replay; copying a dict is several times cheaper than
evolving an attrs instance, and the row maps one to one onto the `jobs` table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, TypedDict

from conductor.errors import InvalidTransition
from conductor.events import (
    Event,
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
from conductor.states import TRANSITIONS, JobState, next_state


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


def _new_row(job_id: int, seq: int, at: str, trace: str | None, status: str, ev: Event) -> JobRow:
    # enqueued: the job's first row.
    assert isinstance(ev, JobEnqueued)
    return {
        "id": job_id,
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
        "created_at": at,
        "updated_at": at,
        "trace": trace,
        "last_seq": seq,
    }


# The steps for every later event. A step writes the columns its event changes into `row`,
# which its caller owns (`apply` passes a fresh copy), and reads only columns it has not
# written yet.


def _started(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    assert isinstance(ev, JobStarted)
    row["status"] = status
    row["attempts"] = ev.attempt
    row["worker"] = ev.worker
    row["lease_expires_at"] = ev.lease_expires_at
    row["updated_at"] = at
    row["last_seq"] = seq


def _lease_released(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    # completed, cancelled, failed, rescued: the attempt is over, so is its lease.
    row["status"] = status
    row["worker"] = None
    row["lease_expires_at"] = None
    row["updated_at"] = at
    row["last_seq"] = seq


def _failed(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    assert isinstance(ev, JobFailed)
    _lease_released(row, ev, seq, at, status)
    row["last_error"] = ev.reason


def _attempt_failed(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    assert isinstance(ev, JobAttemptFailed)
    row["status"] = status
    row["last_error"] = f"{ev.error_type}: {ev.message}"
    row["updated_at"] = at
    row["last_seq"] = seq


def _retry_scheduled(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    assert isinstance(ev, JobRetryScheduled)
    _lease_released(row, ev, seq, at, status)
    row["retries"] += 1
    row["run_at"] = ev.run_at


def _requeued(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    assert isinstance(ev, JobRequeued)
    _lease_released(row, ev, seq, at, status)
    row["retries"] = 0
    row["run_at"] = ev.run_at


def _rescued(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    # Due again at once: the rescue happens when the lease is already lost.
    _lease_released(row, ev, seq, at, status)
    row["run_at"] = at


def _lease_extended(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    assert isinstance(ev, JobLeaseExtended)
    row["status"] = status
    row["lease_expires_at"] = ev.lease_expires_at
    row["updated_at"] = at
    row["last_seq"] = seq


def _unchanged(row: JobRow, ev: Event, seq: int, at: str, status: str) -> None:
    # result_ignored: the event is history, not state; only the fold position moves.
    row["last_seq"] = seq


_Step = Callable[[JobRow, Event, int, str, str], None]
_STEPS: Final[dict[str, _Step]] = {
    JobStarted.TYPE: _started,
    JobCompleted.TYPE: _lease_released,
    JobAttemptFailed.TYPE: _attempt_failed,
    JobRetryScheduled.TYPE: _retry_scheduled,
    JobFailed.TYPE: _failed,
    JobCancelled.TYPE: _lease_released,
    JobRequeued.TYPE: _requeued,
    JobRescued.TYPE: _rescued,
    JobReleased.TYPE: _rescued,
    JobLeaseExtended.TYPE: _lease_extended,
    JobResultIgnored.TYPE: _unchanged,
}

_NEXT_STATUS: Final[dict[tuple[str | None, str], str]] = {
    (None if before is None else before.value, event_type): after.value
    for (before, event_type), after in TRANSITIONS.items()
}
"""`conductor.states.TRANSITIONS` with the plain status strings rows store, so a step needs
no `JobState` conversions (they cost as much as the rest of a step)."""


def _next_status(job_id: int, status: str | None, event_type: str) -> str:
    try:
        return _NEXT_STATUS[(status, event_type)]
    except KeyError:
        # Not an edge of the table: the table's own check raises its error.
        state = None if status is None else JobState(status)
        return next_state(job_id, state, event_type).value


def advance(
    row: JobRow | None, job_id: int, seq: int, at: str, trace: str | None, event: Event
) -> JobRow:
    """Fold one event into `row` IN PLACE and return it (a new row for `enqueued`).

    For a caller that owns `row` outright, such as a replay folding one job's events into
    one dict; everyone else uses `apply`, which is this on a copy. Raises
    `InvalidTransition` for an illegal move, before changing anything.
    """
    status = _next_status(job_id, None if row is None else row["status"], event.TYPE)
    if row is None:
        return _new_row(job_id, seq, at, trace, status, event)
    _STEPS[event.TYPE](row, event, seq, at, status)
    return row


def apply(row: JobRow | None, rec: RecordedEvent) -> JobRow:
    """Fold one event into the job's row; raises `InvalidTransition` for an illegal move.

    Pure: `row` is copied, never changed.
    """
    return advance(
        None if row is None else row.copy(), rec.job_id, rec.seq, rec.at, rec.trace, rec.event
    )


def fold(events: Iterable[RecordedEvent]) -> JobRow | None:
    """The row for one job from its events in seq order (None for no events)."""
    row: JobRow | None = None
    for rec in events:
        row = apply(row, rec)
    return row
