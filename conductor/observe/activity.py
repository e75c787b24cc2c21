"""Reading `conductor stats`' activity figures from a ledger, once or refresh after refresh.

The figures are computed by `projections.throughput` from the events of the longest
window. The first read walks back over that window (`Ledger.recent`, whose cost is the
window, not the log) and looks up the events that opened samples before it
(`Ledger.preceding`). Later reads of the same reader fetch only the events appended since
(a range seek on seq) and drop what aged out, so a live view refreshing every second pays
for the new events only.

The first read takes at most `MAX_EVENTS` of the window's newest events: a busy hour holds
millions (3,000,000 after a million jobs), and `conductor stats` must answer in a blink
whatever the load. A window reaching past the oldest event read is reported over the time
since that event, marked `sampled`; one reaching back before the log's first event (a
young database), over the time since that event, marked `since_first_event`.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from conductor.domain.clock import stamp
from conductor.domain.events import RecordedEvent
from conductor.ledger.base import EventFilter, Ledger
from projections import throughput

MAX_EVENTS: Final = 5_000
"""The most events the first read decodes: about 80 ms on the 2-core test machines, where
the whole command then takes about 0.3 s, against 5.7 s and 380 MB for 300,000 events."""


class ActivityReader:
    """Activity figures of one ledger for windows ending at each `read`'s `now`."""

    def __init__(
        self,
        ledger: Ledger,
        spans: tuple[tuple[str, int], ...] = throughput.SPANS,
        *,
        max_events: int = MAX_EVENTS,
    ) -> None:
        self._ledger = ledger
        self._spans = spans
        self._max_events = max_events
        self._covered_since: str | None = None
        """The stamp of the oldest event read, when the first read was cut short."""
        self._longest = dt.timedelta(seconds=max(seconds for _, seconds in spans))
        self._tally = throughput.Tally()
        self._seq: int | None = None
        """The last seq read; None before the first read."""
        self._begun: str | None = None
        """The stamp of the log's first event, once a read has met it (seq 1)."""

    def read(self, now: dt.datetime) -> throughput.Activity:
        self._catch_up(now)
        return self._tally.figures(
            now, self._spans, covered_since=self._covered_since, begun=self._begun
        )

    def series(self, now: dt.datetime, width: int, count: int) -> tuple[throughput.Bucket, ...]:
        """The last `count` slices of `width` seconds up to `now` (a chart), read like
        `read`: only the events appended since the previous call. `width * count` should
        not exceed the longest span, which bounds what the reader keeps."""
        self._catch_up(now)
        return self._tally.buckets(now, width, count)

    def _catch_up(self, now: dt.datetime) -> None:
        since = stamp(now - self._longest)
        head = self._ledger.last_seq()  # before reading: nothing after it is skipped
        if self._seq is None:
            events = self._ledger.recent(since, limit=self._max_events)
            if len(events) == self._max_events:
                self._covered_since = events[0].at
        else:
            events = self._ledger.read(EventFilter(after_seq=self._seq))
        if self._begun is None and events and events[0].seq == 1:
            # The log began inside the window: rates are over the time since then.
            self._begun = events[0].at
        self._feed(events)
        self._seq = max(head, events[-1].seq if events else 0, self._seq or 0)
        self._tally.forget(since)
        if self._covered_since is not None and self._covered_since <= since:
            self._covered_since = None  # everything before the cut has aged out

    def _feed(self, events: list[RecordedEvent]) -> None:
        missing = self._tally.missing(events)
        if missing:
            lead_in = self._ledger.preceding(missing, types=throughput.LEAD_IN_TYPES)
            self._tally.add(sorted(lead_in.values(), key=lambda rec: rec.seq), counted=False)
        self._tally.add(events)
