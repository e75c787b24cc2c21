"""The ledger gauges (`conductor.jobs`, `conductor.oldest_due.age`,
`conductor.sqlite.wal.size`): registered on a meter, read from the ledger when a metric
reader collects, at most once per `VIEW_TTL`. Also conductor's meter, which both the
recording hooks (`metrics`) and the Prometheus views (`prometheus`) use.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from opentelemetry import metrics as otel
from opentelemetry.metrics import CallbackOptions, Observation

from conductor.domain.errors import LedgerError
from conductor.observe.conventions import QUEUE, STATUS, TASK
from conductor.observe.instruments import (
    JOBS,
    OLDEST_DUE_AGE,
    SCOPE,
    WAL_SIZE,
    LedgerView,
    read_view,
)

if TYPE_CHECKING:
    from conductor.domain.config import Settings

VIEW_TTL: Final = 1.0
"""Seconds one read of the ledger serves the observable gauges (one read per scrape)."""


def meter(provider: otel.MeterProvider) -> otel.Meter:
    """conductor's meter (scope `conductor`, versioned as the installed package)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release: str | None = version("conductor")
    except PackageNotFoundError:
        release = None
    return provider.get_meter(SCOPE, release)


def observe(scope: otel.Meter, view: Callable[[], LedgerView | None]) -> None:
    """Register the observable gauges on `scope`; each collection asks `view` for values."""

    def jobs(options: CallbackOptions) -> Iterable[Observation]:
        seen = view()
        if seen is None:
            return []
        return [
            Observation(n, {QUEUE: queue, TASK: task, STATUS: status})
            for queue, task, status, n in seen.counts
        ]

    def oldest_due(options: CallbackOptions) -> Iterable[Observation]:
        seen = view()
        if seen is None:
            return []
        return [Observation(age, {QUEUE: queue}) for queue, age in seen.oldest_due]

    def wal_size(options: CallbackOptions) -> Iterable[Observation]:
        seen = view()
        if seen is None or seen.wal_bytes is None:
            return []
        return [Observation(seen.wal_bytes)]

    for spec, callback in (
        (JOBS, jobs),
        (OLDEST_DUE_AGE, oldest_due),
        (WAL_SIZE, wal_size),
    ):
        scope.create_observable_gauge(
            spec.name, [callback], unit=spec.unit, description=spec.description
        )


class LedgerReader:
    """Reads the ledger for the gauges, at most once per `VIEW_TTL`, with a connection of
    its own per read (collection runs in the reader's thread, e.g. an HTTP handler)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._taken = -VIEW_TTL
        self._view: LedgerView | None = None
        self._failure: str | None = None

    def __call__(self) -> LedgerView | None:
        with self._lock:
            if time.monotonic() - self._taken >= VIEW_TTL:
                self._view = self._read()
                self._taken = time.monotonic()
            return self._view

    def _read(self) -> LedgerView | None:
        from conductor.ledger.open import open_ledger
        from conductor.observe import logs

        try:
            ledger = open_ledger(self._settings, create=False)
            try:
                view = read_view(ledger, dt.datetime.now(dt.UTC))
            finally:
                ledger.close()
        except LedgerError as e:
            if self._failure is None:  # once per streak, not at every scrape (an outage's
                # messages vary as the server goes down, restarts and refuses connections)
                logs.note(f"metrics: cannot read the ledger: {e}", warning=True)
            self._failure = str(e)
            return None
        self._failure = None
        return view
