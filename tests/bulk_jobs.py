"""Jobs in every status, at chosen times, for the bulk-action tests: written through the
ledger's own append (so every move is checked against the state table), many per commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.events import (
    JobAttemptFailed,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobFailed,
    JobRunStarted,
    NewEvent,
)
from conductor.domain.payloads import parse_payload
from conductor.ledger.base import Ledger

WORKER = "test-host:4242:1"
SETUP_BATCH = "20200101-000000-000000"
"""The batch of the set-up's own cancels, never one a test's action makes."""


def moves(job_id: int, status: str, when: dt.datetime) -> list[NewEvent]:
    """The events that take a pending job (never claimed) to `status`, all stamped `when`."""
    at = stamp(when)
    lease = stamp(when + dt.timedelta(minutes=5))
    claimed = NewEvent(
        job_id=job_id, at=at, event=JobClaimed(attempt=1, worker=WORKER, lease_expires_at=lease)
    )
    running = [claimed, NewEvent(job_id=job_id, at=at, event=JobRunStarted(attempt=1))]
    if status == "pending":
        return []
    if status == "claimed":
        return [claimed]
    if status == "in_progress":
        return running
    if status == "completed":
        return [*running, NewEvent(job_id=job_id, at=at, event=JobCompleted(attempt=1))]
    if status == "failed":
        failure = JobAttemptFailed(attempt=1, error_type="E", message="m", traceback="tb")
        return [
            *running,
            NewEvent(job_id=job_id, at=at, event=failure),
            NewEvent(job_id=job_id, at=at, event=JobFailed(attempt=1, reason="gave up")),
        ]
    if status == "cancelled":
        cancelled = JobCancelled(by="setup", reason="setup", batch=SETUP_BATCH)
        return [NewEvent(job_id=job_id, at=at, event=cancelled)]
    raise ValueError(status)


def make_jobs(ledger: Ledger, specs: Sequence[tuple[str, str, str, dt.datetime]]) -> list[int]:
    """One job per (task, queue, status, when): enqueued at `when`, then moved to its
    status at `when` (so its `updated_at` is `when`). Returns their ids, in order."""
    enqueued = [
        decide.enqueue(
            parse_payload({"task": task}, 1 << 20),
            queue=queue,
            priority=1,
            max_retries=0,
            run_at=None,
            now=when,
        )
        for task, queue, _, when in specs
    ]
    ids = [rec.job_id for rec in ledger.append(enqueued)]
    events = [
        event
        for job_id, (_, _, status, when) in zip(ids, specs, strict=True)
        for event in moves(job_id, status, when)
    ]
    if events:
        ledger.append(events)
    return ids
