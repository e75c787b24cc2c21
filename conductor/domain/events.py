"""The event catalogue: every fact the ledger can record about a job.

Events are frozen, keyword-only attrs classes named in the past tense. Each has a stored
`TYPE` (the name users filter on, e.g. `conductor events --type attempt_failed`) and a
`VERSION`. A type never changes meaning: a new shape bumps `VERSION` and registers an
upcaster that turns older stored data into the current shape on read, so projections only
ever see current events. docs/events.md describes each type for operators.

Serialisation is deliberately boring: `data` is compact JSON with sorted keys, so the same
event always has the same bytes and the hash chain can be recomputed from stored columns.
A payload is carried as JSON text end to end (validated and normalised once, at enqueue)
and spliced into `data` as an object, so it is never re-encoded on the hot path.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final, get_args

import attrs

from conductor.domain.clock import Timestamp
from conductor.domain.codec import canonical_json, loads
from conductor.domain.control_events import (
    ControlEvent,
    QueueLimitCleared,
    QueueLimitSet,
    QueuePaused,
    QueueRateSpent,
    QueueResumed,
)
from conductor.domain.errors import UnreadableEvent
from conductor.domain.event_base import EventBase as _Event
from conductor.domain.schedule_events import (
    ScheduleAdded,
    ScheduleChanged,
    ScheduleFired,
    SchedulePaused,
    ScheduleRemoved,
    ScheduleResumed,
)


@attrs.frozen(kw_only=True)
class JobEnqueued(_Event):
    """A job was accepted: what to run, where, when, and how often it may be retried.

    Version 2 added the unique key the job was accepted under, if any, and its scope.
    Absent from `data` when there is none, so a job enqueued without a key is stored as
    version 1 stored it (apart from the version); `UPCASTERS` reads version 1 data as a
    job without a key."""

    TYPE: ClassVar[str] = "enqueued"
    VERSION: ClassVar[int] = 2

    task: str
    queue: str
    priority: int
    """0 high, 1 medium, 2 low: lower runs first, like Oban."""
    max_retries: int
    run_at: Timestamp
    """Not before this time; equal to the event's `at` for immediate jobs."""
    payload: str
    """The job's payload object as canonical JSON text (it names the task)."""
    unique_key: str | None = None
    """The job was accepted only because no other job held this key (`enqueue
    --unique-key`); None for a job enqueued without one."""
    unique_for: int | None = None
    """The key's scope, in seconds: a job with the key enqueued within that long before
    this one would have refused it, whatever its state. None with a key: it was refused
    only by a job with the key still pending, claimed or running."""

    def encode(self) -> str:
        head: dict[str, object] = {
            "max_retries": self.max_retries,
            "priority": self.priority,
            "queue": self.queue,
            "run_at": self.run_at,
            "task": self.task,
        }
        if self.unique_key is not None:
            head["unique_key"] = self.unique_key
        if self.unique_for is not None:
            head["unique_for"] = self.unique_for
        text = canonical_json(head)
        return f'{text[:-1]},"payload":{self.payload}}}'

    @classmethod
    def decode_fields(cls, data: str) -> dict[str, Any]:
        # The payload is spliced in last (see encode); the keys before it are fixed and their
        # values JSON-escaped, so the first `,"payload":` is the splice point.
        cut = data.index(',"payload":')
        fields: dict[str, Any] = loads(data[:cut] + "}")
        if "payload" in fields:
            raise TypeError(f"stored {cls.TYPE} data has two payloads: {data[:80]!r}")
        fields["payload"] = data[cut + 11 : -1]
        fields.setdefault("unique_key", None)
        fields.setdefault("unique_for", None)
        return fields


@attrs.frozen(kw_only=True)
class JobStarted(_Event):
    """A worker claimed the job for one attempt and holds a lease on it until expiry; the
    job counted as running from then on.

    Written by conductor before issue 13, which split it into `claimed` (the claim and
    lease) and `run_started` (the handler began): a prefetched job waited as `in_progress`
    and its history timed the wait as run time. Still read, never written now.

    `attempt` numbers every attempt of the job from 1 and never repeats, so it is also the
    attempt's fencing token: a result carrying an older attempt is stale.
    """

    TYPE: ClassVar[str] = "started"
    VERSION: ClassVar[int] = 1

    attempt: int
    worker: str
    """Who holds the lease: `host:pid:actor`."""
    lease_expires_at: Timestamp


@attrs.frozen(kw_only=True)
class JobClaimed(_Event):
    """A worker claimed the job for one attempt and holds a lease on it until expiry; its
    handler has not begun (the job waits in the worker's prefetch buffer for a free slot).

    The attempt has begun as far as the ledger is concerned: `attempt` is its number (from
    1, never repeated, the attempt's fencing token), the lease is renewed by heartbeats,
    and a lost lease is rescued, using a retry, as for a running attempt.
    """

    TYPE: ClassVar[str] = "claimed"
    VERSION: ClassVar[int] = 1

    attempt: int
    worker: str
    """Who holds the lease: `host:pid:actor`."""
    lease_expires_at: Timestamp


@attrs.frozen(kw_only=True)
class JobRunStarted(_Event):
    """A worker slot began the claimed attempt's handler. The event's `at` is when the
    handler began (the worker's clock), so history times the run, not the wait before it."""

    TYPE: ClassVar[str] = "run_started"
    VERSION: ClassVar[int] = 1

    attempt: int


@attrs.frozen(kw_only=True)
class JobCompleted(_Event):
    """The attempt's handler returned; the job is done for good.

    Version 2 (issue 15) added `result`; version-1 data is upcast to `result` None.
    """

    TYPE: ClassVar[str] = "completed"
    VERSION: ClassVar[int] = 2

    attempt: int
    result: str | None = None
    """The handler's return value as canonical JSON text, spliced into `data` as a value
    (as `enqueued`'s payload is); None (stored `null`) when it returned None."""

    def encode(self) -> str:
        result = "null" if self.result is None else self.result
        return f'{{"attempt":{self.attempt},"result":{result}}}'

    @classmethod
    def decode_fields(cls, data: str) -> dict[str, Any]:
        # `attempt` is an integer and comes first, so the first `,"result":` is the splice.
        cut = data.index(',"result":')
        result = data[cut + 10 : -1]
        return {"attempt": loads(data[:cut] + "}")["attempt"], "result": _or_none(result)}


@attrs.frozen(kw_only=True)
class JobAttemptFailed(_Event):
    """The attempt's handler raised (or timed out, or could not run). Always followed, in
    the same append, by `retry_scheduled` or `failed`."""

    TYPE: ClassVar[str] = "attempt_failed"
    VERSION: ClassVar[int] = 1

    attempt: int
    error_type: str
    message: str
    traceback: str


@attrs.frozen(kw_only=True)
class JobRetryScheduled(_Event):
    """Attempts remain: the job waits for its backoff and becomes due at `run_at`."""

    TYPE: ClassVar[str] = "retry_scheduled"
    VERSION: ClassVar[int] = 1

    attempt: int
    """The attempt that failed."""
    run_at: Timestamp


@attrs.frozen(kw_only=True)
class JobFailed(_Event):
    """The job will not run again on its own: retries are exhausted or it cannot run."""

    TYPE: ClassVar[str] = "failed"
    VERSION: ClassVar[int] = 1

    attempt: int
    reason: str


@attrs.frozen(kw_only=True)
class JobCancelled(_Event):
    """Someone cancelled the job; it is never retried unless an operator requeues it.

    Version 2 added `batch`: every job one command (or API call) cancels carries the same
    batch id, so the audit trail groups them (`conductor batch ID`)."""

    TYPE: ClassVar[str] = "cancelled"
    VERSION: ClassVar[int] = 2

    by: str
    """Who asked: the OS user (or `--by`) from the CLI, or the API caller's label."""
    reason: str
    batch: str | None
    """The action's batch id; None in version 1 events, written before batches existed."""


@attrs.frozen(kw_only=True)
class JobRequeued(_Event):
    """An operator sent a failed or cancelled job back to pending with a fresh retry budget.

    Version 2 added `reason` and `batch`, as `cancelled` has them: why, and which one
    action (of possibly thousands of jobs) this requeue was part of."""

    TYPE: ClassVar[str] = "requeued"
    VERSION: ClassVar[int] = 2

    by: str
    run_at: Timestamp
    reason: str
    """Free text; `requeued` when none was given (and in version 1 events)."""
    batch: str | None
    """The action's batch id; None in version 1 events, written before batches existed."""


@attrs.frozen(kw_only=True)
class JobRescued(_Event):
    """The attempt's worker lost its lease (process died or lease expired); the job is due
    again. Delivery is at-least-once: the interrupted attempt may have had side effects."""

    TYPE: ClassVar[str] = "rescued"
    VERSION: ClassVar[int] = 1

    attempt: int
    reason: str


@attrs.frozen(kw_only=True)
class JobLeaseExtended(_Event):
    """A heartbeat: the attempt's worker is alive and keeps its lease until the new expiry."""

    TYPE: ClassVar[str] = "lease_extended"
    VERSION: ClassVar[int] = 1

    attempt: int
    lease_expires_at: Timestamp


@attrs.frozen(kw_only=True)
class JobReleased(_Event):
    """A worker shutting down gave the attempt back unfinished; the job is due again at
    once, for any worker. Like a rescue, but announced rather than discovered."""

    TYPE: ClassVar[str] = "released"
    VERSION: ClassVar[int] = 1

    attempt: int
    reason: str


@attrs.frozen(kw_only=True)
class JobResultIgnored(_Event):
    """An outcome arrived for an attempt that no longer holds the job (it was rescued,
    timed out, released or cancelled meanwhile). Recorded for the audit trail; it changes
    nothing. This is the fencing: `attempt` is the stale token."""

    TYPE: ClassVar[str] = "result_ignored"
    VERSION: ClassVar[int] = 1

    attempt: int
    outcome: str
    """What the stale attempt reported: `completed`, `failed`, or `interrupted` (its
    handler stopped early because it was told the attempt was cancelled, timed out or
    given back; recorded since issue 13, as `completed` before)."""
    reason: str


Event = (
    JobEnqueued
    | JobStarted
    | JobClaimed
    | JobRunStarted
    | JobCompleted
    | JobAttemptFailed
    | JobRetryScheduled
    | JobFailed
    | JobCancelled
    | JobRequeued
    | JobRescued
    | JobLeaseExtended
    | JobReleased
    | JobResultIgnored
    | QueuePaused
    | QueueResumed
    | QueueLimitSet
    | QueueLimitCleared
    | QueueRateSpent
    | ScheduleAdded
    | ScheduleChanged
    | SchedulePaused
    | ScheduleResumed
    | ScheduleRemoved
    | ScheduleFired
)

EVENT_CLASSES: Final[dict[str, type[Event]]] = {cls.TYPE: cls for cls in get_args(Event)}
"""Every event class by its stored type name, in the order of the `Event` union."""
EVENT_TYPES: Final = tuple(EVENT_CLASSES)
JOB_EVENT_TYPES: Final = tuple(
    name for name, cls in EVENT_CLASSES.items() if not issubclass(cls, ControlEvent)
)
"""The types of events about a job (every type the state table knows); the rest are the
operations stream's, stored with job id 0 (`control_events.OPERATIONS`)."""


def _or_none(text: str) -> str | None:
    return None if text == "null" else text


def decode_event(event_type: str, version: int, data: str) -> Event:
    """Turn a stored row into the current-version event, upcasting older versions."""
    cls = EVENT_CLASSES.get(event_type)
    if cls is None:
        raise UnreadableEvent(
            f"stored event type {event_type!r} is unknown to this conductor; "
            "expected a conductor version that wrote it"
        )
    if version == cls.VERSION:
        decoded: Event = cls.decode(data)
        return decoded
    if version > cls.VERSION:
        raise UnreadableEvent(
            f"stored event type {event_type!r} version {version} is newer than this "
            f"conductor understands (up to {cls.VERSION}); expected an upgraded conductor"
        )
    from conductor.domain.upcasters import UPCASTERS  # only old rows pay for the import

    fields = json.loads(data)
    while version < cls.VERSION:
        fields = UPCASTERS[(event_type, version)](fields)
        version += 1
    if event_type == JobEnqueued.TYPE:
        fields["payload"] = canonical_json(fields["payload"])
    elif fields.get("result") is not None:
        fields["result"] = canonical_json(fields["result"])
    return cls(**fields)


@attrs.frozen(kw_only=True)
class NewEvent:
    """An event on its way into the ledger: not yet numbered or hashed.

    `job_id` is None only for `enqueued`, whose id the ledger assigns in the append.
    """

    job_id: int | None
    at: Timestamp
    event: Event
    trace: str | None = None
    """W3C traceparent of the span that produced the event, when there is one."""


@attrs.frozen(kw_only=True)
class RecordedEvent:
    """An event as stored: numbered, timestamped, chained."""

    seq: int
    job_id: int
    at: Timestamp
    event: Event
    trace: str | None
    hash: str

    @property
    def type(self) -> str:
        return self.event.TYPE
