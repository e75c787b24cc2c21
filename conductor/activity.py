"""Reading `conductor stats`' activity figures from a ledger, once or refresh after refresh.

The figures are computed by `projections.throughput` from the events of the longest
window. The first read walks back over that window (`Ledger.recent`, whose cost is the
window, not the log) and looks up the events that opened samples before it
(`Ledger.preceding`). Later reads of the same reader fetch only the events appended since
(a range seek on seq) and drop what aged out, so a live view refreshing every second pays
for the new events only.
"""

from __future__ import annotations

import datetime as dt

from conductor.clock import stamp
from conductor.events import RecordedEvent
from conductor.ledger.base import EventFilter, Ledger
from projections import throughput


class ActivityReader:
    """Activity figures of one ledger for windows ending at each `read`'s `now`."""

    def __init__(
        self, ledger: Ledger, spans: tuple[tuple[str, int], ...] = throughput.SPANS
    ) -> None:
        self._ledger = ledger
        self._spans = spans
        self._longest = dt.timedelta(seconds=max(seconds for _, seconds in spans))
        self._tally = throughput.Tally()
        self._seq: int | None = None
        """The last seq read; None before the first read."""

    def read(self, now: dt.datetime) -> throughput.Activity:
        since = stamp(now - self._longest)
        head = self._ledger.last_seq()  # before reading: nothing after it is skipped
        if self._seq is None:
            events = self._ledger.recent(since)
        else:
            events = self._ledger.read(EventFilter(after_seq=self._seq))
        self._feed(events)
        self._seq = max(head, events[-1].seq if events else 0, self._seq or 0)
        self._tally.forget(since)
        return self._tally.figures(now, self._spans)

    def _feed(self, events: list[RecordedEvent]) -> None:
        missing = self._tally.missing(events)
        if missing:
            lead_in = self._ledger.preceding(missing, types=throughput.LEAD_IN_TYPES)
            self._tally.add(sorted(lead_in.values(), key=lambda rec: rec.seq), counted=False)
        self._tally.add(events)
