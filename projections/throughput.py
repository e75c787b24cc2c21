"""Recent activity for `conductor stats`: throughput and wait/run-time percentiles.

A fold over the events of a time window (`Ledger.recent`), computed when asked and never
stored, like the history view. Each figure is taken from the events, so it means the same
whichever process did the work:

* **throughput** - `completed`, `failed` (jobs given up on) and `attempt_failed` events
  stamped inside each window, as counts and per second of the window's full length.
* **wait** - for each `run_started` inside the window: its stamp (when the handler began)
  minus the time its job became due (`run_at` of the `enqueued`, `retry_scheduled` or
  `requeued` event before it, or the stamp of a `rescued` or `released` one), floored at
  zero for clocks that disagree. Time spent claimed in a worker's prefetch buffer is wait.
* **run** - for each `completed` or `attempt_failed` inside the window: its stamp minus the
  stamp of the `run_started` of the same attempt: the handler's own time. Attempts cut
  short (rescued, released, cancelled) have no run time. Ledgers written before `claimed`
  and `run_started` existed have `started` (the claim) in their place.

A sample belongs to the window of the event that closes it. When its opening event lies
before the window, `Tally.missing` (or `unpaired`) names the job and the caller fetches
that event (`Ledger.preceding` with `LEAD_IN_TYPES`) and folds it in uncounted: it only
supplies the opening time. Percentiles use the nearest-rank method: the p-th percentile of
n sorted samples is the ceil(p/100 * n)-th, always one of the samples.

`Tally` is the fold, kept by a live view between refreshes; `summarise` is the one-off.
No I/O, no clock: `now` is an argument. `conductor.observe.activity` does the reading.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from conductor.domain.clock import Timestamp, seconds_between, stamp
from conductor.domain.events import (
    JobAttemptFailed,
    JobCancelled,
    JobCompleted,
    JobEnqueued,
    JobFailed,
    JobReleased,
    JobRequeued,
    JobRescued,
    JobRetryScheduled,
    JobRunStarted,
    JobStarted,
    RecordedEvent,
)

name: Final = "throughput"

SPANS: Final = (("last_minute", 60), ("last_hour", 3600))
"""The windows `conductor stats` reports: (name, seconds), ending now."""

_DUE: Final = (JobEnqueued, JobRetryScheduled, JobRequeued, JobRescued, JobReleased)
_BEGUN: Final = JobStarted | JobRunStarted
"""A handler began (`started`: the claim, in ledgers from before `run_started`)."""
LEAD_IN_TYPES: Final = (*(cls.TYPE for cls in _DUE), JobStarted.TYPE, JobRunStarted.TYPE)
"""The events that open a sample: a job becoming due (opens a wait) or starting (a run)."""


@attrs.frozen(kw_only=True)
class Spread:
    """Percentiles of a set of durations, in seconds (None when there are no samples)."""

    count: int
    p50: float | None
    p95: float | None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class Window:
    """What happened in the last `seconds` seconds."""

    name: str
    seconds: int
    """The seconds the figures cover: the window's length, or less when `sampled`."""
    completed: int
    failed: int
    """Jobs given up on (`failed` events), not failed attempts that will be retried."""
    attempts_failed: int
    wait: Spread
    run: Spread
    sampled: bool = False
    """The window held more events than were read: the figures cover only its newest
    `seconds` (the time since the oldest event read)."""
    since_first_event: bool = False
    """The log began inside the window: the figures (and so the rates) cover `seconds`,
    the time since its first event, not the whole window a one-minute-old database
    cannot have."""

    @property
    def completed_per_second(self) -> float:
        return self.completed / self.seconds

    @property
    def failed_per_second(self) -> float:
        return self.failed / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "sampled": self.sampled,
            "since_first_event": self.since_first_event,
            "completed": self.completed,
            "failed": self.failed,
            "attempts_failed": self.attempts_failed,
            "completed_per_second": self.completed_per_second,
            "failed_per_second": self.failed_per_second,
            "wait_seconds": self.wait.as_dict(),
            "run_seconds": self.run.as_dict(),
        }


@attrs.frozen(kw_only=True)
class Activity:
    """The figures of every window, as of `at`."""

    at: Timestamp
    windows: tuple[Window, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, **{w.name: w.as_dict() for w in self.windows}}


@attrs.frozen(kw_only=True)
class Bucket:
    """What closed in one slice of time: a chart's point."""

    start: Timestamp
    """Inclusive; the slice ends where the next one starts."""
    completed: int
    failed: int
    attempts_failed: int
    wait: Spread
    run: Spread

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "completed": self.completed,
            "failed": self.failed,
            "attempts_failed": self.attempts_failed,
            "wait_seconds": self.wait.as_dict(),
            "run_seconds": self.run.as_dict(),
        }


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100) of ascending `ordered`."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: Iterable[float]) -> Spread:
    ordered = sorted(values)
    return Spread(count=len(ordered), p50=percentile(ordered, 50), p95=percentile(ordered, 95))


def _due_at(rec: RecordedEvent) -> Timestamp | None:
    """When this event made its job due, if it is one that does."""
    ev = rec.event
    if isinstance(ev, JobEnqueued | JobRetryScheduled | JobRequeued):
        return ev.run_at
    if isinstance(ev, JobRescued | JobReleased):
        return rec.at
    return None


class Tally:
    """The fold: when each job became due or started, and the samples and outcomes so far,
    each kept with the stamp of the event that closed it.

    Feed it events in seq order (`add`); `figures` reads the windows ending at a given
    time and `forget` drops what has aged out, so a live view keeps one tally and feeds it
    only the events appended since its last refresh. Samples and outcomes are kept sorted
    by closing stamp (appends arrive nearly in that order, so inserting costs little), so a
    window is a slice found by bisection and a count is two bisections.
    """

    def __init__(self) -> None:
        self._due: dict[int, Timestamp] = {}
        self._running: dict[int, tuple[int, Timestamp]] = {}
        self._waits: list[tuple[Timestamp, float]] = []
        self._runs: list[tuple[Timestamp, float]] = []
        self._closed: dict[str, list[Timestamp]] = {
            JobCompleted.TYPE: [],
            JobFailed.TYPE: [],
            JobAttemptFailed.TYPE: [],
        }

    def missing(self, events: Iterable[RecordedEvent]) -> dict[int, int]:
        """Jobs whose first `run_started`, `completed` or `attempt_failed` in `events` (seq
        order) has no opening event, neither earlier in `events` nor already tallied: job id
        -> that event's seq, to look up with `Ledger.preceding(..., types=LEAD_IN_TYPES)`."""
        seen: set[int] = set()
        missing: dict[int, int] = {}
        for rec in events:
            job = rec.job_id
            if job in seen:
                continue
            ev = rec.event
            if isinstance(ev, _BEGUN | JobCompleted | JobAttemptFailed):
                known = self._due if isinstance(ev, _BEGUN) else self._running
                if job not in known:
                    missing[job] = rec.seq
                seen.add(job)
            elif isinstance(ev, _DUE):
                seen.add(job)
        return missing

    def add(self, events: Iterable[RecordedEvent], *, counted: bool = True) -> None:
        """Fold `events` (in seq order). With `counted=False` they only open samples: the
        lead-in events `missing` asked for, which lie before the windows."""
        due, running = self._due, self._running
        for rec in events:
            ev = rec.event
            job = rec.job_id
            became_due = _due_at(rec)
            if became_due is not None:
                due[job] = became_due
                running.pop(job, None)
            elif isinstance(ev, _BEGUN):
                opened = due.pop(job, None)
                if counted and opened is not None:
                    wait = max(0.0, seconds_between(opened, rec.at))
                    bisect.insort(self._waits, (rec.at, wait))
                running[job] = (ev.attempt, rec.at)
            elif isinstance(ev, JobCompleted | JobAttemptFailed):
                attempt = running.pop(job, None)
                if counted:
                    bisect.insort(self._closed[ev.TYPE], rec.at)
                    if attempt is not None and attempt[0] == ev.attempt:
                        ran = max(0.0, seconds_between(attempt[1], rec.at))
                        bisect.insort(self._runs, (rec.at, ran))
            elif isinstance(ev, JobFailed | JobCancelled):
                running.pop(job, None)
                if counted and isinstance(ev, JobFailed):
                    bisect.insort(self._closed[ev.TYPE], rec.at)

    def forget(self, before: Timestamp) -> None:
        """Drop samples and outcomes closed before `before` (older than every window)."""
        for samples in (self._waits, self._runs):
            del samples[: bisect.bisect_left(samples, (before,))]
        for stamps in self._closed.values():
            del stamps[: bisect.bisect_left(stamps, before)]

    def figures(
        self,
        now: dt.datetime,
        spans: Sequence[tuple[str, int]] = SPANS,
        *,
        covered_since: Timestamp | None = None,
        begun: Timestamp | None = None,
    ) -> Activity:
        """The figures of each window of `spans` ending at `now`. With `covered_since`,
        the events before that stamp were not read: a window reaching further back is
        reported over the time since then, marked `sampled`. With `begun` (the stamp of
        the log's first event), a window reaching back before it is reported over the
        time since then, marked `since_first_event`."""
        windows = []
        for span_name, span_seconds in spans:
            since = stamp(now - dt.timedelta(seconds=span_seconds))
            covered = span_seconds
            sampled = covered_since is not None and since < covered_since
            young = not sampled and begun is not None and since < begun
            start = covered_since if sampled else begun if young else None
            if start is not None:
                since = start
                covered = max(1, math.ceil(seconds_between(start, stamp(now))))
            windows.append(
                Window(
                    name=span_name,
                    seconds=covered,
                    sampled=sampled,
                    since_first_event=young,
                    completed=self._count(JobCompleted.TYPE, since),
                    failed=self._count(JobFailed.TYPE, since),
                    attempts_failed=self._count(JobAttemptFailed.TYPE, since),
                    wait=spread(_since(self._waits, since)),
                    run=spread(_since(self._runs, since)),
                )
            )
        return Activity(at=stamp(now), windows=tuple(windows))

    def buckets(self, now: dt.datetime, width: int, count: int) -> tuple[Bucket, ...]:
        """`count` consecutive slices of `width` seconds, the last ending at `now`, oldest
        first: completions, failures and wait and run percentiles per slice (a chart)."""
        edges = [stamp(now - dt.timedelta(seconds=width * (count - i))) for i in range(count)]
        ends = [*edges[1:], stamp(now + dt.timedelta(microseconds=1))]
        return tuple(
            Bucket(
                start=start,
                completed=self._between(JobCompleted.TYPE, start, end),
                failed=self._between(JobFailed.TYPE, start, end),
                attempts_failed=self._between(JobAttemptFailed.TYPE, start, end),
                wait=spread(_within(self._waits, start, end)),
                run=spread(_within(self._runs, start, end)),
            )
            for start, end in zip(edges, ends, strict=True)
        )

    def _between(self, kind: str, start: Timestamp, end: Timestamp) -> int:
        stamps = self._closed[kind]
        return bisect.bisect_left(stamps, end) - bisect.bisect_left(stamps, start)

    def _count(self, kind: str, since: Timestamp) -> int:
        stamps = self._closed[kind]
        return len(stamps) - bisect.bisect_left(stamps, since)


def _since(samples: list[tuple[Timestamp, float]], since: Timestamp) -> list[float]:
    """The values of the samples (sorted by stamp) closed at or after `since`."""
    return [value for _, value in samples[bisect.bisect_left(samples, (since,)) :]]


def _within(
    samples: list[tuple[Timestamp, float]], start: Timestamp, end: Timestamp
) -> list[float]:
    """The values of the samples closed at or after `start` and before `end`."""
    low = bisect.bisect_left(samples, (start,))
    high = bisect.bisect_left(samples, (end,))
    return [value for _, value in samples[low:high]]


def unpaired(events: Iterable[RecordedEvent]) -> dict[int, int]:
    """`Tally.missing` for a fresh tally: what a one-off summary must look up."""
    return Tally().missing(events)


def summarise(
    events: Iterable[RecordedEvent],
    *,
    now: dt.datetime,
    lead_in: Iterable[RecordedEvent] = (),
    spans: Sequence[tuple[str, int]] = SPANS,
) -> Activity:
    """The figures of each window of `spans` ending at `now`, from `events` (in seq order,
    covering at least the longest window) and the `lead_in` events `unpaired` asked for."""
    tally = Tally()
    tally.add(sorted(lead_in, key=lambda rec: rec.seq), counted=False)
    tally.add(events)
    return tally.figures(now, spans)
