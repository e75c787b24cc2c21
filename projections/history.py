"""The per-job timeline that `conductor history ID` shows.

A fold over one job's events in seq order into display entries: time, type, time since
the previous event, and the event's key facts. The events table, indexed by
(job_id, seq), already stores exactly this stream, so the timeline is folded when asked
rather than copied into a second table: a job's history can then never disagree with the
log, and the append path writes nothing extra for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from conductor.clock import seconds_between
from conductor.events import (
    JobAttemptFailed,
    JobCancelled,
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

name: Final = "history"


@attrs.frozen(kw_only=True)
class HistoryEntry:
    seq: int
    at: str
    type: str
    since_previous: float | None
    """Seconds since the job's previous event; None for the first."""
    facts: dict[str, object]
    trace: str | None


def facts(rec: RecordedEvent) -> dict[str, object]:
    """The few fields of an event worth a glance in a timeline."""
    ev = rec.event
    if isinstance(ev, JobEnqueued):
        return {"task": ev.task, "queue": ev.queue, "priority": ev.priority, "run_at": ev.run_at}
    if isinstance(ev, JobStarted):
        return {"attempt": ev.attempt, "worker": ev.worker, "lease_until": ev.lease_expires_at}
    if isinstance(ev, JobAttemptFailed):
        return {"attempt": ev.attempt, "error": f"{ev.error_type}: {ev.message}"}
    if isinstance(ev, JobRetryScheduled):
        return {"attempt": ev.attempt, "run_at": ev.run_at}
    if isinstance(ev, JobFailed | JobRescued | JobReleased):
        return {"attempt": ev.attempt, "reason": ev.reason}
    if isinstance(ev, JobLeaseExtended):
        return {"attempt": ev.attempt, "lease_until": ev.lease_expires_at}
    if isinstance(ev, JobResultIgnored):
        return {"attempt": ev.attempt, "outcome": ev.outcome, "reason": ev.reason}
    if isinstance(ev, JobCancelled):
        return {"by": ev.by, "reason": ev.reason}
    if isinstance(ev, JobRequeued):
        return {"by": ev.by, "run_at": ev.run_at}
    return {"attempt": ev.attempt}


def apply(entries: tuple[HistoryEntry, ...] | None, rec: RecordedEvent) -> tuple[HistoryEntry, ...]:
    """Append one event's entry to the timeline."""
    entries = entries or ()
    previous = entries[-1].at if entries else None
    entry = HistoryEntry(
        seq=rec.seq,
        at=rec.at,
        type=rec.type,
        since_previous=None if previous is None else seconds_between(previous, rec.at),
        facts=facts(rec),
        trace=rec.trace,
    )
    return (*entries, entry)


def timeline(events: Iterable[RecordedEvent]) -> tuple[HistoryEntry, ...]:
    """The whole timeline of one job."""
    entries: tuple[HistoryEntry, ...] = ()
    for rec in events:
        entries = apply(entries, rec)
    return entries
