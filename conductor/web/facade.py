"""One `Conductor` per thread for the dashboard's request handlers.

A ledger is not thread-safe (`conductor.ledger.base.Ledger`: one per thread), and
Starlette runs synchronous endpoints in a thread pool, so each worker thread opens its
own `Conductor` on first use and keeps it. Reads are single statements in autocommit, so
no read transaction outlives a request (nothing pins SQLite's WAL).
"""

from __future__ import annotations

import threading

from conductor.client import Conductor
from conductor.domain.config import Settings


class Facades:
    """Hands each thread its own `Conductor` on one database; closes them all at the end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[Conductor] = []

    def get(self) -> Conductor:
        app: Conductor | None = getattr(self._local, "app", None)
        if app is None:
            app = Conductor(settings=self.settings, create=False)
            self._local.app = app
            with self._lock:
                self._opened.append(app)
        return app

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for app in opened:
            app.close()
