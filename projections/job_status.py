"""The `jobs` read model: one row per job, the fold of that job's events.

Rows are plain dicts (typed as `JobRow`) because the fold runs once per event on the
append path and a million times in a replay; copying a dict is several times cheaper than
evolving an attrs instance, and the row maps one to one onto the `jobs` table.

`apply` is the fold. It is written as one *step* per event type that takes the event's
fields as keyword arguments (its keyword-only parameters are exactly the event class's
fields) and writes the columns the event changes into a row its caller owns. `apply`
hands a step a copy of the row and the fields of an event object; a replay
(`projections.runner.rebuild_rows_stored`) calls the same `advance` with the fields
decoded straight from the stored `data`, into one dict per job, and so needs neither event
objects nor copies. A rule added to the fold therefore belongs in `advance` or a step,
which both paths run, not in `apply`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from conductor.domain.errors import InvalidTransition
from conductor.domain.events import (
    JobAttemptFailed,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobFailed,
    JobLeaseExtended,
    JobReleased,
    JobRequeued,
    JobRescued,
    JobResultIgnored,
    JobRetryScheduled,
    JobRunStarted,
    JobStarted,
    RecordedEvent,
)
from conductor.domain.job_row import JobRow
from conductor.domain.states import TRANSITIONS, JobState, next_state

COLUMNS: Final = tuple(JobRow.__annotations__)

MUTABLE_COLUMNS: Final = (
    "status",
    "attempts",
    "retries",
    "run_at",
    "last_error",
    "worker",
    "lease_expires_at",
    "updated_at",
    "last_seq",
)
"""The columns a step after `enqueued` may write; the rest are fixed when the job is
enqueued. The store updates only these (an update that names an indexed column it does
not change still rewrites that index entry)."""

name: Final = "jobs"


def _new_row(
    job_id: int,
    seq: int,
    at: str,
    trace: str | None,
    status: str,
    /,
    *,
    task: str,
    queue: str,
    priority: int,
    max_retries: int,
    run_at: str,
    payload: str,
    unique_key: str | None,
    unique_for: int | None,
) -> JobRow:
    # enqueued: the job's first row.
    return {
        "id": job_id,
        "task": task,
        "queue": queue,
        "priority": priority,
        "status": status,
        "attempts": 0,
        "retries": 0,
        "max_retries": max_retries,
        "run_at": run_at,
        "payload": payload,
        "last_error": None,
        "worker": None,
        "lease_expires_at": None,
        "created_at": at,
        "updated_at": at,
        "trace": trace,
        "last_seq": seq,
        "unique_key": unique_key,
        "unique_for": unique_for,
    }


# The steps for every later event: (row, seq, at, new status, **the event's fields). A step
# writes the columns its event changes into `row`, which its caller owns, and reads only
# columns it has not written.


def _release_lease(row: JobRow, seq: int, at: str, status: str) -> None:
    # completed, cancelled, failed, rescued, released: the attempt is over, so is its lease.
    row["status"] = status
    row["worker"] = None
    row["lease_expires_at"] = None
    row["updated_at"] = at
    row["last_seq"] = seq


def _started(
    row: JobRow,
    seq: int,
    at: str,
    status: str,
    /,
    *,
    attempt: int,
    worker: str,
    lease_expires_at: str,
) -> None:
    row["status"] = status
    row["attempts"] = attempt
    row["worker"] = worker
    row["lease_expires_at"] = lease_expires_at
    row["updated_at"] = at
    row["last_seq"] = seq


def _run_started(row: JobRow, seq: int, at: str, status: str, /, *, attempt: int) -> None:
    # The claimed attempt's handler began: only the status moves (the lease stays).
    row["status"] = status
    row["updated_at"] = at
    row["last_seq"] = seq


def _completed(
    row: JobRow, seq: int, at: str, status: str, /, *, attempt: int, result: str | None = None
) -> None:
    # The result stays in the event: `conductor result` reads it from the log.
    _release_lease(row, seq, at, status)


def _attempt_failed(
    row: JobRow,
    seq: int,
    at: str,
    status: str,
    /,
    *,
    attempt: int,
    error_type: str,
    message: str,
    traceback: str,
) -> None:
    row["status"] = status
    row["last_error"] = f"{error_type}: {message}"
    row["updated_at"] = at
    row["last_seq"] = seq


def _retry_scheduled(
    row: JobRow, seq: int, at: str, status: str, /, *, attempt: int, run_at: str
) -> None:
    retries = row["retries"]
    _release_lease(row, seq, at, status)
    row["retries"] = retries + 1
    row["run_at"] = run_at


def _failed(row: JobRow, seq: int, at: str, status: str, /, *, attempt: int, reason: str) -> None:
    _release_lease(row, seq, at, status)
    row["last_error"] = reason


def _cancelled(
    row: JobRow, seq: int, at: str, status: str, /, *, by: str, reason: str, batch: str | None
) -> None:
    _release_lease(row, seq, at, status)


def _requeued(
    row: JobRow,
    seq: int,
    at: str,
    status: str,
    /,
    *,
    by: str,
    run_at: str,
    reason: str,
    batch: str | None,
) -> None:
    _release_lease(row, seq, at, status)
    row["retries"] = 0
    row["run_at"] = run_at


def _released(row: JobRow, seq: int, at: str, status: str, /, *, attempt: int, reason: str) -> None:
    # Due again at once: the worker gave the attempt back (shutdown), through no fault of
    # the job, so no retry is used.
    _release_lease(row, seq, at, status)
    row["run_at"] = at


def _rescued(row: JobRow, seq: int, at: str, status: str, /, *, attempt: int, reason: str) -> None:
    # Due again at once, and a retry is used (as in Oban): a job that keeps killing its
    # worker must run out of retries rather than be rescued forever.
    _released(row, seq, at, status, attempt=attempt, reason=reason)
    row["retries"] += 1


def _lease_extended(
    row: JobRow, seq: int, at: str, status: str, /, *, attempt: int, lease_expires_at: str
) -> None:
    row["status"] = status
    row["lease_expires_at"] = lease_expires_at
    row["updated_at"] = at
    row["last_seq"] = seq


def _result_ignored(
    row: JobRow, seq: int, at: str, status: str, /, *, attempt: int, outcome: str, reason: str
) -> None:
    # The event is history, not state; only the fold position moves.
    row["last_seq"] = seq


_STEPS: Final[dict[str, Callable[..., None]]] = {
    JobStarted.TYPE: _started,
    JobClaimed.TYPE: _started,  # the same columns: attempt, worker, lease
    JobRunStarted.TYPE: _run_started,
    JobCompleted.TYPE: _completed,
    JobAttemptFailed.TYPE: _attempt_failed,
    JobRetryScheduled.TYPE: _retry_scheduled,
    JobFailed.TYPE: _failed,
    JobCancelled.TYPE: _cancelled,
    JobRequeued.TYPE: _requeued,
    JobRescued.TYPE: _rescued,
    JobReleased.TYPE: _released,
    JobLeaseExtended.TYPE: _lease_extended,
    JobResultIgnored.TYPE: _result_ignored,
}

_NEXT_STATUS: Final[dict[tuple[str | None, str], str]] = {
    (None if before is None else before.value, event_type): after.value
    for (before, event_type), after in TRANSITIONS.items()
}
"""`conductor.domain.states.TRANSITIONS` with the plain status strings rows store, so a step needs
no `JobState` conversions (they cost as much as the rest of a step)."""


def _refused(job_id: int, status: str | None, event_type: str) -> str:
    # Not an edge of the table: the table's own check raises its error.
    state = None if status is None else JobState(status)
    return next_state(job_id, state, event_type).value


def advance(
    row: JobRow | None,
    job_id: int,
    seq: int,
    at: str,
    trace: str | None,
    event_type: str,
    fields: Mapping[str, Any],
) -> JobRow:
    """Fold one event, given by its type and fields, into `row` IN PLACE and return it (a
    new row for `enqueued`).

    For a caller that owns `row` outright, such as a replay folding one job's events into
    one dict; everyone else uses `apply`, which is this on a copy. Raises
    `InvalidTransition` for an illegal move before changing anything, and `TypeError` if
    `fields` are not exactly the fields of an `event_type` event.
    """
    before = None if row is None else row["status"]
    status = _NEXT_STATUS.get((before, event_type)) or _refused(job_id, before, event_type)
    if row is None:
        return _new_row(job_id, seq, at, trace, status, **fields)
    attempt = fields.get("attempt")
    if attempt is not None and event_type != _RESULT_IGNORED:
        _check_fence(row, job_id, event_type, attempt)
    _STEPS[event_type](row, seq, at, status, **fields)
    return row


_RESULT_IGNORED: Final = JobResultIgnored.TYPE
_OPENING: Final = frozenset({JobClaimed.TYPE, JobStarted.TYPE})
"""The events that open a new attempt (and so name the next attempt number)."""


def _check_fence(row: JobRow, job_id: int, event_type: str, attempt: int) -> None:
    """Fencing, enforced by the fold itself (so by every append and every replay): an event
    about an attempt must name the attempt that holds the job (`claimed` or `started` the
    next one), so
    a late or duplicate outcome of an old attempt can never change a job. Only
    `result_ignored` may name a stale attempt; it records the outcome and changes nothing."""
    expected = row["attempts"] + 1 if event_type in _OPENING else row["attempts"]
    if attempt != expected:
        raise InvalidTransition(
            job_id,
            f"{row['status']} on attempt {row['attempts']}",
            f"{event_type} for attempt {attempt}",
            expected=f"an event for attempt {expected}; attempt {attempt} is stale",
        )


def apply(row: JobRow | None, rec: RecordedEvent) -> JobRow:
    """Fold one event into the job's row; raises `InvalidTransition` for an illegal move.

    Pure: `row` is copied, never changed.
    """
    event = rec.event
    return advance(
        None if row is None else row.copy(),
        rec.job_id,
        rec.seq,
        rec.at,
        rec.trace,
        event.TYPE,
        event.fields(),
    )


def fold(events: Iterable[RecordedEvent]) -> JobRow | None:
    """The row for one job from its events in seq order (None for no events)."""
    row: JobRow | None = None
    for rec in events:
        row = apply(row, rec)
    return row
