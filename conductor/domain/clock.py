"""Time: a Clock protocol, the system clock, a manual clock for tests, and the one
timestamp format the ledger stores.

Stored times are fixed-width ISO-8601 UTC strings with microseconds
(`2026-11-28T00:25:18.123456Z`). Fixed width makes string order equal time order, so the
claim query compares `run_at <= now` on text with an index and projections copy times
without parsing them.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from typing import Protocol

UTC = dt.UTC

Timestamp = str
"""A stored time: fixed-width ISO-8601 UTC with microseconds and a trailing Z."""


class Clock(Protocol):
    """Where decide-functions and the ledger get `now`; injectable so tests control time."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; thread-safe so actors can share it."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta | float) -> dt.datetime:
        """Move forward by `delta` (seconds or a timedelta) and return the new time."""
        step = delta if isinstance(delta, dt.timedelta) else dt.timedelta(seconds=delta)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: dt.datetime) -> None:
        """Jump to `when` (forwards or backwards, as wall clocks can)."""
        with self._lock:
            self._now = when


@functools.lru_cache(maxsize=64)
def stamp(when: dt.datetime) -> Timestamp:
    """Format an aware datetime as a stored timestamp. Cached: a commit stamps many events
    with the same instant (its `now`, a claim's lease expiry)."""
    utc = when.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def unstamp(value: Timestamp) -> dt.datetime:
    """Parse a stored timestamp back into an aware UTC datetime."""
    return dt.datetime.fromisoformat(value)


def seconds_between(earlier: Timestamp, later: Timestamp) -> float:
    """Elapsed seconds from one stored timestamp to another."""
    return (unstamp(later) - unstamp(earlier)).total_seconds()
