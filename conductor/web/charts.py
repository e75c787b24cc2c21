"""The last hour's activity, kept up to date for every page and `/api/activity`.

One `ActivityReader` per dashboard process (`Conductor.activity_reader`), on a handle of
its own, read under a lock: the first read decodes the log's tail (at most
`conductor.observe.activity.MAX_EVENTS` events), each later one only the events appended
since, so an overview refreshed by many browsers costs the database one small read.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from conductor.client import Conductor
from conductor.domain.config import Settings
from conductor.observe.activity import ActivityReader

SLICE: Final = 60
"""Seconds per point of the charts."""
SLICES: Final = 60
"""Points per chart: the last hour."""


class Charts:
    """The shared activity reader of one dashboard."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._app: Conductor | None = None
        self._reader: ActivityReader | None = None

    def snapshot(self) -> dict[str, Any]:
        """The last minute's and hour's figures, and the hour per minute (`series`)."""
        with self._lock:
            if self._app is None or self._reader is None:
                self._app = Conductor(settings=self.settings, create=False)
                self._reader = self._app.activity_reader()
            now = self._app.clock.now()
            figures = self._reader.read(now).as_dict()
            series = self._reader.series(now, SLICE, SLICES)
        return {**figures, "slice_seconds": SLICE, "series": [b.as_dict() for b in series]}

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
            self._app = self._reader = None
