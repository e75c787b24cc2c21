"""The per-job timeline that `conductor history ID` shows.

A fold over one job's events in seq order into display entries: time, type, time since
the previous event, the event's key facts, and the trace id of the span that produced it.
The events table, indexed by
(job_id, seq), already stores exactly this stream, so the timeline is folded when asked
rather than copied into a second table: a job's history can then never disagree with the
log, and the append path writes nothing extra for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import attrs

from conductor.domain.clock import seconds_between
from conductor.domain.config import PRIORITY_NAMES
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
    JobStarted,
    RecordedEvent,
)

name: Final = "history"

_TRACEPARENT: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_INVALID_TRACE_ID: Final = "0" * 32


def trace_id(traceparent: str | None) -> str | None:
    """The trace id in a stored W3C traceparent (`00-<trace id>-<span id>-<flags>`): what a
    tracing backend (Jaeger, Tempo, ...) looks a trace up by. None when there is none or
    the value is not a valid traceparent."""
    if not traceparent:
        return None
    text = traceparent.strip()
    match = _TRACEPARENT.match(text)
    if match is None or match.group(2) == _INVALID_TRACE_ID:
        return None
    version, end = match.group(1), match.end()
    # Version 00 is exactly four fields; later versions may append fields, ff is invalid.
    if version == "ff" or (end != len(text) and (version == "00" or text[end] != "-")):
        return None
    return match.group(2)


@attrs.frozen(kw_only=True)
class HistoryEntry:
    seq: int
    at: str
    type: str
    since_previous: float | None
    """Seconds since the job's previous event; None for the first."""
    facts: dict[str, object]
    trace: str | None
    """The stored W3C traceparent, when the event carries one."""

    @property
    def trace_id(self) -> str | None:
        return trace_id(self.trace)


def facts(rec: RecordedEvent) -> dict[str, object]:
    """The few fields of an event worth a glance in a timeline, named as the event names
    them; a priority by its name (`medium`), as every other view shows it."""
    ev = rec.event
    if isinstance(ev, JobEnqueued):
        return {
            "task": ev.task,
            "queue": ev.queue,
            "priority": PRIORITY_NAMES.get(ev.priority, ev.priority),
            "run_at": ev.run_at,
        }
    if isinstance(ev, JobStarted | JobClaimed):
        return {"attempt": ev.attempt, "worker": ev.worker, "lease_expires_at": ev.lease_expires_at}
    if isinstance(ev, JobAttemptFailed):
        return {"attempt": ev.attempt, "error": f"{ev.error_type}: {ev.message}"}
    if isinstance(ev, JobRetryScheduled):
        return {"attempt": ev.attempt, "run_at": ev.run_at}
    if isinstance(ev, JobFailed | JobRescued | JobReleased):
        return {"attempt": ev.attempt, "reason": ev.reason}
    if isinstance(ev, JobLeaseExtended):
        return {"attempt": ev.attempt, "lease_expires_at": ev.lease_expires_at}
    if isinstance(ev, JobResultIgnored):
        return {"attempt": ev.attempt, "outcome": ev.outcome, "reason": ev.reason}
    if isinstance(ev, JobCancelled):
        return {"by": ev.by, "reason": ev.reason}
    if isinstance(ev, JobRequeued):
        return {"by": ev.by, "run_at": ev.run_at}
    if isinstance(ev, JobCompleted) and ev.result is not None:
        return {"attempt": ev.attempt, "result": glance(ev.result)}
    if isinstance(ev, JobRunStarted | JobCompleted):
        return {"attempt": ev.attempt}
    return ev.fields()  # an operations event: never in a job's history


RESULT_GLANCE: Final = 60
"""Characters of a result a timeline shows; `conductor result ID` prints all of it."""


def glance(text: str) -> str:
    """A result's JSON text, cut to `RESULT_GLANCE` characters (`...` marks the cut)."""
    return text if len(text) <= RESULT_GLANCE else text[: RESULT_GLANCE - 3] + "..."


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
