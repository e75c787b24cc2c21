"""What conductor measures: instrument names, units and attribute keys, and the pure
arithmetic behind the measurements (per-batch counter increments, ages, the gauges'
reading of the ledger). `metrics` records them; `prometheus` exposes them.

docs/observability.md lists every name here, and tests/observability/test_conventions.py
keeps the two in step.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

import attrs

from conductor.domain.clock import unstamp
from conductor.domain.events import JobEnqueued, RecordedEvent

if TYPE_CHECKING:
    from conductor.ledger.base import Ledger

SCOPE: Final = "conductor"
"""The instrumentation scope (meter) name."""

Labels = tuple[str, str]
"""(queue, task) of a job."""


@attrs.frozen
class Instrument:
    """Name, UCUM unit and description of one instrument."""

    name: str
    unit: str
    description: str


COUNTERS: Final[dict[str, Instrument]] = {
    "enqueued": Instrument(
        "conductor.job.enqueued", "{job}", "Jobs enqueued (`enqueued` events appended)."
    ),
    "completed": Instrument(
        "conductor.job.completed", "{job}", "Jobs completed (`completed` events appended)."
    ),
    "failed": Instrument(
        "conductor.job.failed",
        "{job}",
        "Jobs failed for good: retries exhausted or not retryable (`failed` events appended).",
    ),
    "retry_scheduled": Instrument(
        "conductor.job.retried",
        "{job}",
        "Failed attempts given another try (`retry_scheduled` events appended).",
    ),
    "rescued": Instrument(
        "conductor.job.rescued",
        "{job}",
        "Attempts taken back from a lost worker (`rescued` events appended).",
    ),
    "cancelled": Instrument(
        "conductor.job.cancelled", "{job}", "Jobs cancelled (`cancelled` events appended)."
    ),
}
"""The counted event types and their counters."""

ATTEMPT_DURATION: Final = Instrument(
    "conductor.attempt.duration", "s", "How long attempts' handlers ran, in seconds."
)
QUEUE_WAIT: Final = Instrument(
    "conductor.queue.wait",
    "s",
    "Seconds from a job's run_at (when it fell due) to the claim that started it.",
)
JOBS: Final = Instrument("conductor.jobs", "{job}", "Jobs in the ledger by queue, task and status.")
OLDEST_DUE_AGE: Final = Instrument(
    "conductor.oldest_due.age",
    "s",
    "Seconds since the run_at of the queue's oldest due pending job (0 when none is due).",
)
WAL_SIZE: Final = Instrument(
    "conductor.sqlite.wal.size", "By", "Bytes in the SQLite database's write-ahead log file."
)

BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Histogram bounds in seconds: the messaging conventions' bounds up to 10 s, then up to
an hour, since jobs and queue waits run far longer than message handling."""

VIEW_TTL: Final = 1.0
"""Seconds one read of the ledger serves the observable gauges (one read per scrape)."""


# -- pure parts -------------------------------------------------------------------------
def increments(
    recorded: Iterable[RecordedEvent], labels: Callable[[int], Labels | None]
) -> Counter[tuple[str, str, str]]:
    """How much each counter grows for a batch of stored events, keyed by (event type,
    queue, task). `labels` names a job's queue and task (enqueued events carry their own).
    Events of a job `labels` cannot place are left out rather than counted under a guess.
    """
    counts: Counter[tuple[str, str, str]] = Counter()
    for rec in recorded:
        event = rec.event
        kind = event.TYPE
        if kind not in COUNTERS:
            continue
        if isinstance(event, JobEnqueued):
            counts[(kind, event.queue, event.task)] += 1
            continue
        found = labels(rec.job_id)
        if found is not None:
            counts[(kind, *found)] += 1
    return counts


def seconds_since(run_at: str | None, now: dt.datetime) -> float:
    """Seconds from a stored `run_at` to `now`; 0 for none, or one still in the future."""
    if run_at is None:
        return 0.0
    return max(0.0, (now - unstamp(run_at)).total_seconds())


def wal_path(location: str) -> str | None:
    """The -wal file beside a database path (None for `file:` URIs and URLs)."""
    if location.startswith("file:") or "://" in location:
        return None
    return location + "-wal"


@attrs.frozen(kw_only=True)
class LedgerView:
    """What the observable gauges report, read from the ledger at one moment."""

    counts: tuple[tuple[str, str, str, int], ...]
    """(queue, task, status, jobs) from the counters projection."""
    oldest_due: tuple[tuple[str, float], ...]
    """(queue, seconds) for every queue the ledger knows."""
    wal_bytes: int | None
    """Size of the -wal file (0 when absent); None when the database is not a local file."""


def read_view(ledger: Ledger, now: dt.datetime) -> LedgerView:
    """Read the gauges' values: counters, each queue's oldest due job, the WAL size."""
    counts = ledger.counts()
    queues = sorted({queue for queue, _, _, _ in counts})
    oldest = tuple((queue, seconds_since(ledger.next_due([queue]), now)) for queue in queues)
    path = wal_path(ledger.location)
    wal: int | None = None
    if path is not None:
        try:
            wal = os.stat(path).st_size
        except FileNotFoundError:
            wal = 0  # a cleanly closed WAL database has no -wal file: nothing is in it
    return LedgerView(counts=tuple(counts), oldest_due=oldest, wal_bytes=wal)
