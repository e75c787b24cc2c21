"""Pure decide-functions: (job state, command, now) -> events.

No I/O and no clock: callers pass `now`. The ledger re-checks every event against the
transition table inside its transaction, so a decision made on a stale read fails cleanly
with `InvalidTransition` instead of corrupting a job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from conductor.domain.backoff import Backoff
from conductor.domain.clock import stamp
from conductor.domain.config import check_max_retries, check_queue
from conductor.domain.errors import (
    ConductorError,
    InvalidInput,
    InvalidTransition,
    NotSelected,
    UnknownJob,
)
from conductor.domain.events import (
    JobAttemptFailed,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobEnqueued,
    JobFailed,
    JobLeaseExtended,
    JobReleased,
    JobRequeued,
    JobRescued,
    JobResultIgnored,
    JobRetryScheduled,
    JobRunStarted,
    NewEvent,
)
from conductor.domain.job_row import JobRow
from conductor.domain.payloads import Payload
from conductor.domain.states import HELD_STATES, TRANSITIONS, JobState, can_apply, next_state
from conductor.domain.unique import check_key


def enqueue(
    payload: Payload,
    *,
    queue: str,
    priority: int,
    max_retries: int,
    run_at: dt.datetime | None,
    now: dt.datetime,
    trace: str | None = None,
    unique_key: str | None = None,
    unique_for: int | None = None,
) -> NewEvent:
    """The `enqueued` event for a new job; `run_at` None (or past) means due now. With
    `unique_key`, the ledger appends it only if no job holds the key (`Ledger.enqueue`);
    `unique_for` (seconds) is that key's scope, None for "while pending or running"."""
    if unique_for is not None and unique_key is None:
        raise InvalidInput("invalid unique_for: given without a unique key; expected a key too")
    at = stamp(now)
    return NewEvent(
        job_id=None,
        at=at,
        trace=trace,
        event=JobEnqueued(
            task=payload.task,
            queue=check_queue(queue),
            priority=priority,
            max_retries=check_max_retries(max_retries),
            run_at=at if run_at is None or run_at <= now else stamp(run_at),
            payload=payload.text,
            unique_key=None if unique_key is None else check_key(unique_key),
            unique_for=unique_for,
        ),
    )


def start(row: JobRow, *, worker: str, now: dt.datetime, lease: dt.timedelta) -> NewEvent:
    """Claim one attempt of a due pending job for `worker` until `now + lease`."""
    next_state(row["id"], JobState(row["status"]), JobClaimed.TYPE)
    return NewEvent(
        job_id=row["id"],
        at=stamp(now),
        event=JobClaimed(
            attempt=row["attempts"] + 1,
            worker=worker,
            lease_expires_at=stamp(now + lease),
        ),
    )


OPERATOR_ACTIONS: Final = {JobCancelled.TYPE: "cancelled", JobRequeued.TYPE: "retried"}
"""What an operator's action is called where it is refused: `conductor retry` appends
`requeued`, but the user asked for a retry."""


def refuse_action(job_id: int, state: str | None, event_type: str) -> InvalidTransition:
    """An operator's cancel or retry refused, saying which states it needs, e.g.
    `job 1 is pending; only failed or cancelled jobs can be retried`."""
    allowed = [str(frm) for frm, typ in TRANSITIONS if typ == event_type and frm is not None]
    return InvalidTransition(
        job_id,
        state,
        event_type,
        tuple(allowed),
        refusal=f"only {_either(allowed)} jobs can be {OPERATOR_ACTIONS[event_type]}",
    )


def _either(names: list[str]) -> str:
    """`a`, `a or b`, `a, b or c`."""
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)


def _operator_move(row: JobRow, event_type: str) -> None:
    if not can_apply(JobState(row["status"]), event_type):
        raise refuse_action(row["id"], row["status"], event_type)


def run_started(row: JobRow | None, attempt: int, *, at: dt.datetime) -> list[NewEvent]:
    """A slot began the handler of claimed `attempt` at `at`; nothing if the attempt no
    longer holds the job (cancelled, rescued or released while it waited)."""
    if row is None or row["status"] != JobState.CLAIMED or row["attempts"] != attempt:
        return []
    return [NewEvent(job_id=row["id"], at=stamp(at), event=JobRunStarted(attempt=attempt))]


def on_each(
    rows: Mapping[int, JobRow], job_ids: Sequence[int], action: Callable[[JobRow], NewEvent]
) -> tuple[list[NewEvent], dict[int, JobRow], dict[int, ConductorError]]:
    """An operator's action on several jobs, each decided on its current row: the events
    of those that can move, their rows, and why each other one is refused (`UnknownJob`,
    `InvalidTransition` in the operator's words, or `NotSelected` when the job no longer
    matches the filters that chose it)."""
    events: list[NewEvent] = []
    moved: dict[int, JobRow] = {}
    refused: dict[int, ConductorError] = {}
    for job_id in job_ids:
        row = rows.get(job_id)
        if row is None:
            refused[job_id] = UnknownJob(job_id)
            continue
        try:
            events.append(action(row))
        except (InvalidTransition, NotSelected) as e:
            refused[job_id] = e
            continue
        moved[job_id] = row
    return events, moved, refused


def cancel(row: JobRow, *, by: str, reason: str, batch: str, now: dt.datetime) -> NewEvent:
    """Cancel a pending or in-progress job, as part of operator action `batch`."""
    _operator_move(row, JobCancelled.TYPE)
    return NewEvent(
        job_id=row["id"], at=stamp(now), event=JobCancelled(by=by, reason=reason, batch=batch)
    )


def requeue(row: JobRow, *, by: str, reason: str, batch: str, now: dt.datetime) -> NewEvent:
    """Send a failed or cancelled job back to pending, due now, with a fresh retry budget,
    as part of operator action `batch`."""
    _operator_move(row, JobRequeued.TYPE)
    at = stamp(now)
    return NewEvent(
        job_id=row["id"],
        at=at,
        event=JobRequeued(by=by, run_at=at, reason=reason, batch=batch),
    )


# -- attempts: outcomes, heartbeats, rescues, releases ---------------------------------
@attrs.frozen(kw_only=True)
class Outcome:
    """What a worker reports for one attempt. `error_type` None means it completed."""

    job_id: int
    attempt: int
    task: str = ""
    """The job's task, for log lines about an attempt the Writer no longer holds."""
    error_type: str | None = None
    error_class: str | None = None
    """The exception's fully qualified class name (`builtins.ValueError`), for telemetry's
    `error.type`; the stored events keep the short `error_type` people read."""
    message: str = ""
    traceback: str = ""
    retryable: bool = True
    """False when running again cannot help: unknown task, payload the function rejects."""
    backoff: Backoff = attrs.field(factory=Backoff)
    jitter: float = 0.5
    """A draw from [0, 1) for the backoff's jitter, made by the caller."""
    duration: float = 0.0
    """Seconds the handler ran, for logs and metrics."""
    trace: str | None = None
    """The attempt's traceparent (its `process` span), stored with its outcome events."""
    span: Any = attrs.field(default=None, eq=False, repr=False)
    """The open `process` span, ended once the outcome is committed (tracing only)."""
    interrupted: bool = False
    """The handler returned (or raised) after being told its attempt was cancelled, timed
    out or given back: what it reports is not a finished run."""
    result: str | None = None
    """The handler's return value as canonical JSON text (None when it returned None)."""

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def reported(self) -> str:
        """What a stale attempt reported, as `result_ignored` records it."""
        if self.interrupted:
            return "interrupted"
        return "completed" if self.ok else "failed"


def _holds(row: JobRow | None, attempt: int) -> bool:
    """Whether `attempt` holds the job: claimed or running, and not superseded."""
    return row is not None and row["status"] in HELD_STATES and row["attempts"] == attempt


def _stale_reason(row: JobRow, attempt: int) -> str:
    if row["status"] in HELD_STATES:
        return f"attempt {row['attempts']} holds the job now"
    return f"the job is {row['status']}"


def settle(row: JobRow | None, outcome: Outcome, *, now: dt.datetime) -> list[NewEvent]:
    """The events for an attempt's outcome, fenced by its attempt number.

    A stale attempt's outcome becomes `result_ignored`. A failure is `attempt_failed`
    followed by `retry_scheduled` while retries remain (and the failure is retryable),
    else by `failed` with the last reason. An outcome for an attempt still `claimed`
    proves its handler ran though its start was not recorded (the engine records it
    first; a caller of the ledger may not): `run_started` comes first, `duration` ago.
    """
    if row is None:
        return []
    if _holds(row, outcome.attempt) and row["status"] == JobState.CLAIMED:
        began = now - dt.timedelta(seconds=outcome.duration)
        return [
            *run_started(row, outcome.attempt, at=began),
            *settle({**row, "status": JobState.IN_PROGRESS.value}, outcome, now=now),
        ]
    at = stamp(now)
    job_id = row["id"]
    if not _holds(row, outcome.attempt):
        return [
            NewEvent(
                job_id=job_id,
                at=at,
                trace=outcome.trace,
                event=JobResultIgnored(
                    attempt=outcome.attempt,
                    outcome=outcome.reported,
                    reason=_stale_reason(row, outcome.attempt),
                ),
            )
        ]
    if outcome.error_type is None:
        return [
            NewEvent(
                job_id=job_id,
                at=at,
                trace=outcome.trace,
                event=JobCompleted(attempt=outcome.attempt, result=outcome.result),
            )
        ]
    failed = NewEvent(
        job_id=job_id,
        at=at,
        trace=outcome.trace,
        event=JobAttemptFailed(
            attempt=outcome.attempt,
            error_type=outcome.error_type,
            message=outcome.message,
            traceback=outcome.traceback,
        ),
    )
    reason = f"{outcome.error_type}: {outcome.message}"
    if not outcome.retryable:
        then: JobRetryScheduled | JobFailed = JobFailed(
            attempt=outcome.attempt, reason=f"{reason} (not retried: it cannot succeed)"
        )
    elif row["retries"] < row["max_retries"]:
        delay = outcome.backoff.delay(row["retries"], outcome.jitter)
        then = JobRetryScheduled(attempt=outcome.attempt, run_at=stamp(now + delay))
    else:
        then = JobFailed(
            attempt=outcome.attempt,
            reason=f"{reason} (retries exhausted: {row['retries']} of {row['max_retries']})",
        )
    return [failed, NewEvent(job_id=job_id, at=at, trace=outcome.trace, event=then)]


def extend_lease(
    row: JobRow | None, attempt: int, *, now: dt.datetime, lease: dt.timedelta
) -> list[NewEvent]:
    """A heartbeat for an attempt this worker still holds; nothing for a lost one."""
    if row is None or not _holds(row, attempt):
        return []
    return [
        NewEvent(
            job_id=row["id"],
            at=stamp(now),
            event=JobLeaseExtended(attempt=attempt, lease_expires_at=stamp(now + lease)),
        )
    ]


def release(row: JobRow | None, attempt: int, *, reason: str, now: dt.datetime) -> list[NewEvent]:
    """Give an unfinished attempt back (shutdown); nothing if it is no longer held."""
    if row is None or not _holds(row, attempt):
        return []
    return [
        NewEvent(job_id=row["id"], at=stamp(now), event=JobReleased(attempt=attempt, reason=reason))
    ]


def rescue(
    row: JobRow | None, *, reason: str, now: dt.datetime, attempt: int | None = None
) -> list[NewEvent]:
    """Take a claimed or running job back from a lost worker; with `attempt`, only that
    attempt.

    A rescue uses one of the job's retries, as in Oban: a job that kills its worker every
    time (a poison pill) ends `failed` once its retries are used up instead of taking down
    every worker that picks it up, forever.
    """
    if row is None or row["status"] not in HELD_STATES:
        return []
    if attempt is not None and row["attempts"] != attempt:
        return []
    at = stamp(now)
    if row["retries"] >= row["max_retries"]:
        return [
            NewEvent(
                job_id=row["id"],
                at=at,
                event=JobFailed(
                    attempt=row["attempts"],
                    reason=(
                        f"{reason}; not rescued: retries exhausted "
                        f"({row['retries']} of {row['max_retries']})"
                    ),
                ),
            )
        ]
    return [
        NewEvent(
            job_id=row["id"],
            at=at,
            event=JobRescued(attempt=row["attempts"], reason=reason),
        )
    ]


def lease_expired(row: JobRow, now: dt.datetime) -> bool:
    """Whether a claimed or running job's lease ran out before `now`."""
    expiry = row["lease_expires_at"]
    return row["status"] in HELD_STATES and expiry is not None and expiry < stamp(now)
