"""Job states and the one transition table.

Every event that changes a job's status is checked here; nothing else decides legality.
Each state documents who moves jobs into it and out of it, so the table reads as the
lifecycle (in the manner of river's `rivertype`).
"""

from __future__ import annotations

import enum
from typing import Final

from conductor.domain.errors import InvalidTransition


class JobState(enum.StrEnum):
    """The status of a job as the `jobs` projection records it."""

    PENDING = "pending"
    """In: `enqueued`, `retry_scheduled`, `requeued`, `rescued`, `released`.
    Out: `claimed` (a worker claims it once run_at is due), `cancelled`; `started` in
    ledgers written before `claimed` existed."""

    CLAIMED = "claimed"
    """In: `claimed` (a worker's claim, carrying worker, attempt and lease expiry): the
    attempt has begun and holds a lease, but its handler waits for a free slot (prefetch).
    Out: `run_started` (a slot began the handler), `released` (never started: the worker
    shut down), `rescued` or `failed` (lease lost), `cancelled`. `lease_extended`
    (heartbeat) keeps it here."""

    IN_PROGRESS = "in_progress"
    """In: `run_started` (its handler is running now); `started` in ledgers written before
    `claimed` existed (the claim, which counted as running).
    Out: `completed`, `retry_scheduled`, `failed`, `cancelled`, `rescued` (lease lost),
    `released` (worker shut down). `lease_extended` (heartbeat) keeps it here.
    `attempt_failed` records a failure without leaving this state; the same append
    always carries the `retry_scheduled` or `failed` that decides where the job goes."""

    COMPLETED = "completed"
    """In: `completed`. Terminal: nothing moves a completed job."""

    FAILED = "failed"
    """In: `failed` (retries exhausted or the job cannot run). Out: `requeued`."""

    CANCELLED = "cancelled"
    """In: `cancelled` (operator). Out: `requeued`."""


TERMINAL_STATES: Final = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
HELD_STATES: Final = frozenset({JobState.CLAIMED, JobState.IN_PROGRESS})
"""The states in which an attempt holds the job under a lease (claimed or running)."""

# (state before, event type) -> state after. `None` stands for "no job yet".
TRANSITIONS: Final[dict[tuple[JobState | None, str], JobState]] = {
    (None, "enqueued"): JobState.PENDING,
    (JobState.PENDING, "claimed"): JobState.CLAIMED,
    (JobState.PENDING, "started"): JobState.IN_PROGRESS,  # ledgers from before `claimed`
    (JobState.PENDING, "cancelled"): JobState.CANCELLED,
    (JobState.CLAIMED, "run_started"): JobState.IN_PROGRESS,
    (JobState.CLAIMED, "lease_extended"): JobState.CLAIMED,
    (JobState.CLAIMED, "released"): JobState.PENDING,
    (JobState.CLAIMED, "rescued"): JobState.PENDING,
    (JobState.CLAIMED, "failed"): JobState.FAILED,
    (JobState.CLAIMED, "cancelled"): JobState.CANCELLED,
    (JobState.IN_PROGRESS, "completed"): JobState.COMPLETED,
    (JobState.IN_PROGRESS, "attempt_failed"): JobState.IN_PROGRESS,
    (JobState.IN_PROGRESS, "retry_scheduled"): JobState.PENDING,
    (JobState.IN_PROGRESS, "failed"): JobState.FAILED,
    (JobState.IN_PROGRESS, "cancelled"): JobState.CANCELLED,
    (JobState.IN_PROGRESS, "rescued"): JobState.PENDING,
    (JobState.IN_PROGRESS, "released"): JobState.PENDING,
    (JobState.IN_PROGRESS, "lease_extended"): JobState.IN_PROGRESS,
    (JobState.FAILED, "requeued"): JobState.PENDING,
    (JobState.CANCELLED, "requeued"): JobState.PENDING,
    # A stale attempt's outcome is recorded in any state of an existing job and moves nothing.
    **{(state, "result_ignored"): state for state in JobState},
}


def next_state(job_id: int, state: JobState | None, event_type: str) -> JobState:
    """Return the state `event_type` moves the job to, or raise `InvalidTransition`."""
    try:
        return TRANSITIONS[(state, event_type)]
    except KeyError:
        allowed = tuple(str(frm) for frm, typ in TRANSITIONS if typ == event_type and frm)
        raise InvalidTransition(job_id, state, event_type, allowed) from None


def can_apply(state: JobState | None, event_type: str) -> bool:
    """Whether the table has an edge for `event_type` out of `state`."""
    return (state, event_type) in TRANSITIONS
