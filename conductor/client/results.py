"""Results: what a finished job returned, or why it has nothing to return.

A completed job's return value is stored with its `completed` event (JSON text, capped:
`conductor.domain.results`), so it is read from the log, never from a table of its own:
it cannot disagree with the history, and jobs that return None store nothing extra. A
failed job's result is its error; a cancelled job has none.

Waiting sleeps on the ledger's wake-ups for finished jobs (`wakeup.finished_listener`:
LISTEN on PostgreSQL, a datagram socket on SQLite) and looks again at least every
`POLL_FALLBACK` seconds, so a lost wake-up costs latency, never the answer.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from conductor.domain import results
from conductor.domain.errors import JobCancelledError, JobFailedError, ResultTimeout
from conductor.domain.events import JobAttemptFailed, JobCancelled, JobCompleted, JobFailed
from conductor.domain.states import TERMINAL_STATES, JobState
from conductor.ledger.base import EventFilter, Ledger

if TYPE_CHECKING:
    from conductor.domain.config import Settings
    from conductor.domain.job_row import JobRow
    from conductor.ledger.wakeup import Waiter

POLL_FALLBACK: Final = 1.0
"""Seconds between looks while waiting, whatever the wake-ups do (a PostgreSQL listening
session being re-established, a socket that could not be bound)."""


@attrs.frozen(kw_only=True)
class JobOutcome:
    """Where a job stands as far as its result goes: `status` is its current status."""

    job_id: int
    status: str
    result: str | None = None
    """A completed job's return value as JSON text; None when it returned None."""
    error: JobFailedError | JobCancelledError | None = None
    """Why a failed or cancelled job has no result."""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def value(self) -> Any:
        """The decoded return value of a completed job."""
        return results.decode(self.result)


class _Sleep:
    """The waiter when no wake-up socket can be had: the fallback poll alone."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def wake(self) -> None:
        self._event.set()

    def close(self) -> None:
        """Nothing to release."""


class Results:
    """The result capability of `Conductor` (which provides what is declared here)."""

    ledger: Ledger
    settings: Settings
    job: Callable[[int], JobRow]
    """`Conductor.job`: the row, after taking in committed transactional enqueues."""

    def result(self, job_id: int, *, timeout: float | dt.timedelta | None = 0) -> Any:
        """The decoded return value of job `job_id` (None if its handler returned None).

        `timeout`: how long to wait for the job to finish, in seconds or as a timedelta;
        0 (the default) looks once, None waits as long as it takes. Raises
        `JobFailedError` (carrying the last error's type, message and traceback),
        `JobCancelledError`, `ResultTimeout` (also a `TimeoutError`) when the job has not
        finished in time, `UnknownJob` for an id no job has.
        """
        return unwrap(self.outcome(job_id, timeout=timeout), timeout)

    def outcome(self, job_id: int, *, timeout: float | dt.timedelta | None = 0) -> JobOutcome:
        """Where job `job_id` stands once it has finished, or once `timeout` (as for
        `result`) has passed: never raises for a failed, cancelled or unfinished job."""
        seconds = wait_seconds(timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        waiter: Waiter | None = None
        try:
            while True:
                row = self.job(job_id)
                if row["status"] in TERMINAL_STATES:
                    return self._finished(row)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return JobOutcome(job_id=job_id, status=row["status"])
                if waiter is None:
                    # Listen first, then look again: a job that finishes in between is
                    # seen by that look, and one that finishes later wakes the waiter.
                    waiter = listen_finished(self.settings.db)
                    continue
                waiter.wait(POLL_FALLBACK if remaining is None else min(remaining, POLL_FALLBACK))
        finally:
            if waiter is not None:
                waiter.close()

    def _finished(self, row: JobRow) -> JobOutcome:
        job_id, status = row["id"], row["status"]
        if status == JobState.COMPLETED:
            done = self._last(job_id, JobCompleted)
            return JobOutcome(job_id=job_id, status=status, result=done and done.result)
        if status == JobState.CANCELLED:
            cancelled = self._last(job_id, JobCancelled)
            error: JobFailedError | JobCancelledError = JobCancelledError(
                job_id, *((cancelled.by, cancelled.reason) if cancelled else ())
            )
            return JobOutcome(job_id=job_id, status=status, error=error)
        return JobOutcome(job_id=job_id, status=status, error=self._failure(row))

    def _failure(self, row: JobRow) -> JobFailedError:
        """The error of a failed job: its `failed` reason, with the exception of the
        attempt that ended it when that attempt raised (not when its lease was lost)."""
        job_id = row["id"]
        events = self.ledger.read(
            EventFilter(job_id=job_id, types=(JobAttemptFailed.TYPE, JobFailed.TYPE))
        )
        failed = next(
            (rec.event for rec in reversed(events) if isinstance(rec.event, JobFailed)), None
        )
        if failed is None:  # pragma: no cover - a failed job always has its event
            return JobFailedError(job_id, row["last_error"] or "no reason recorded")
        raised = next(
            (
                rec.event
                for rec in reversed(events)
                if isinstance(rec.event, JobAttemptFailed) and rec.event.attempt == failed.attempt
            ),
            None,
        )
        if raised is None:
            return JobFailedError(job_id, failed.reason)
        return JobFailedError(
            job_id,
            failed.reason,
            error_type=raised.error_type,
            message=raised.message,
            traceback=raised.traceback,
        )

    def _last(self, job_id: int, kind: type[Any]) -> Any:
        events = self.ledger.read(EventFilter(job_id=job_id, types=(kind.TYPE,)))
        return events[-1].event if events else None


def unwrap(outcome: JobOutcome, timeout: float | dt.timedelta | None) -> Any:
    """What `result` gives for an outcome looked up with `timeout`: the decoded value, or
    the job's error, or `ResultTimeout` when it had not finished (the async facade's
    `result` follows the same rule)."""
    if outcome.error is not None:
        raise outcome.error
    if not outcome.finished:
        waited = wait_seconds(timeout)
        raise ResultTimeout(outcome.job_id, outcome.status, 0.0 if waited is None else waited)
    return outcome.value


def wait_seconds(timeout: float | dt.timedelta | None) -> float | None:
    """A `timeout` as seconds (never negative); None waits as long as it takes."""
    if isinstance(timeout, dt.timedelta):
        return max(timeout.total_seconds(), 0.0)
    return None if timeout is None else max(float(timeout), 0.0)


def listen_finished(db: str) -> Waiter:
    """The finished-job wake-ups of `db`, or the fallback poll alone where none can be
    had (a socket that cannot be bound)."""
    # Imported here: `conductor jobs` and `stats` import the client, not the wake-ups.
    from conductor.ledger import wakeup

    try:
        return wakeup.finished_listener(db)
    except OSError:
        return _Sleep()
