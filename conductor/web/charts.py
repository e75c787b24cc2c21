"""The overview's charts: the last hour in one-minute buckets, read from the ledger.

`conductor stats` reports windows (the last minute, the last hour); a chart needs the same
figures per minute. `ActivityReader.series` reads the hour's events once (at most
`conductor.observe.activity.MAX_EVENTS` of the newest, as `stats` does, so a busy hour is
sampled rather than slow) and `projections.throughput.Tally.series` buckets them.
"""

from __future__ import annotations

from typing import Any, Final

from conductor.client import Conductor
from conductor.observe.activity import ActivityReader

WIDTH: Final = 60
"""Seconds per bucket."""
BUCKETS: Final = 60
"""Buckets per chart: one hour."""


def series(app: Conductor) -> dict[str, Any]:
    """Per-minute completed and failed counts and wait and run p50/p95 for the last hour,
    oldest first, as `/api/activity/series` answers and the overview's charts draw."""
    reader = ActivityReader(app.ledger, (("chart", WIDTH * BUCKETS),))
    buckets = reader.series(app.clock.now(), WIDTH, BUCKETS)
    return {"width": WIDTH, "buckets": [bucket.as_dict() for bucket in buckets]}
