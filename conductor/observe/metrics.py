"""The one place that records conductor's instruments with the OpenTelemetry metrics API.

Instruments (named in `instruments`, described in docs/observability.md):

* counters `conductor.job.enqueued|completed|failed|retried|rescued|cancelled` - what this
  process recorded, counted after each commit, one `add` per (queue, task) per batch;
* histograms `conductor.attempt.duration` (seconds a handler ran) and `conductor.queue.wait`
  (seconds from a job's `run_at` to its claim);
* observable gauges `conductor.jobs`, `conductor.oldest_due.age` and
  `conductor.sqlite.wal.size`, read from the ledger's projections when a reader collects.

Nothing is measured unless a meter provider is active: `prometheus.serve` installs one
(`conductor worker --metrics-port`), `OTEL_METRICS_EXPORTER` makes `export` install one,
or the application installs its own OpenTelemetry SDK provider. Until then every hook
returns after one identity check, so metrics cost next to nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from opentelemetry import metrics as otel

# The stand-in the API hands out until a provider is set; it has no public name.
from opentelemetry.metrics._internal import _ProxyMeterProvider

from conductor.domain.errors import LedgerError
from conductor.observe.conventions import ERROR_TYPE, QUEUE, TASK
from conductor.observe.gauges import LedgerReader, meter, observe
from conductor.observe.instruments import (
    ATTEMPT_DURATION,
    BUCKETS,
    COUNTERS,
    QUEUE_WAIT,
    Instrument,
    Labels,
    increments,
    seconds_since,
    wal_path,
)

if TYPE_CHECKING:
    from conductor.domain.config import Settings
    from conductor.domain.decisions import Outcome
    from conductor.domain.events import RecordedEvent
    from conductor.ledger.base import ClaimedJob, Ledger

__all__ = [
    "Holding",
    "count_appended",
    "enabled",
    "install",
    "record_commit",
    "start",
    "wal_path",
]


# -- instruments ------------------------------------------------------------------------
class _Instruments:
    """conductor's synchronous instruments on one meter provider."""

    def __init__(self, provider: otel.MeterProvider) -> None:
        scope = meter(provider)
        self.counters = {
            kind: scope.create_counter(spec.name, unit=spec.unit, description=spec.description)
            for kind, spec in COUNTERS.items()
        }
        self.duration = _histogram(scope, ATTEMPT_DURATION)
        self.wait = _histogram(scope, QUEUE_WAIT)


def _histogram(scope: otel.Meter, spec: Instrument) -> otel.Histogram:
    return scope.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=list(BUCKETS),
    )


_installed: otel.MeterProvider | None = None
"""A provider for conductor's own instruments (set by `serve`), in place of the global one."""
_cache: tuple[object, _Instruments | None] = (None, None)
_lock = threading.Lock()


def install(provider: otel.MeterProvider | None) -> None:
    """Record conductor's instruments with `provider` instead of the global provider
    (None goes back to the global one). `serve` calls it; so may tests and embedders."""
    global _installed  # noqa: PLW0603 - the process-wide choice of provider
    _installed = provider


def _active() -> _Instruments | None:
    """The instruments of the active provider, or None when metrics are off (the cheap
    path: one global read and an identity check)."""
    global _cache  # noqa: PLW0603 - rebuilt only when the provider changes
    provider = _installed if _installed is not None else otel.get_meter_provider()
    cached_provider, instruments = _cache
    if cached_provider is provider:
        return instruments
    with _lock:
        if isinstance(provider, _ProxyMeterProvider | otel.NoOpMeterProvider):
            instruments = None
        else:
            instruments = _Instruments(provider)
        _cache = (provider, instruments)
    return instruments


def enabled() -> bool:
    """Whether measurements go anywhere (a provider other than the API's no-op is active)."""
    return _active() is not None


class Holding(Protocol):
    """An attempt the Writer holds (`upkeep.Held`): its claimed job."""

    @property
    def job(self) -> ClaimedJob: ...


def count_appended(
    recorded: Sequence[RecordedEvent], labels: Mapping[int, Labels] | None = None
) -> None:
    """Count what one append stored (`enqueue`, `cancel`); `labels` places non-enqueued
    events' jobs."""
    instruments = _active()
    if instruments is None or not recorded:
        return
    known = labels or {}
    _add(instruments, increments(recorded, known.get))


def record_commit(
    recorded: Sequence[RecordedEvent],
    held: Mapping[int, Holding],
    ledger: Ledger,
    *,
    outcomes: Sequence[Outcome] = (),
    claimed: Sequence[ClaimedJob] = (),
    now: dt.datetime | None = None,
) -> None:
    """The Writer's hook after a successful commit: count the batch's events, time its
    settled attempts and the claimed jobs' queue waits.

    `held` places most jobs; one it does not hold (a rescued job of a dead process) is
    looked up in `ledger`, which only happens with metrics on.
    """
    instruments = _active()
    if instruments is None:
        return

    def labels(job_id: int) -> Labels | None:
        holding = held.get(job_id)
        if holding is not None:
            return (holding.job.queue, holding.job.task)
        try:
            row = ledger.job(job_id)
        except LedgerError:  # the commit is done; a lost label must not undo the Writer
            return None
        return None if row is None else (row["queue"], row["task"])

    if recorded:
        _add(instruments, increments(recorded, labels))
    for outcome in outcomes:
        holding = held.get(outcome.job_id)
        if holding is None or holding.job.attempt != outcome.attempt:
            continue  # a timed-out attempt's late result: its duration was recorded already
        attributes = {QUEUE: holding.job.queue, TASK: holding.job.task}
        if outcome.error_type is not None:
            attributes[ERROR_TYPE] = outcome.error_class or outcome.error_type
        instruments.duration.record(outcome.duration, attributes)
    if claimed and now is not None:
        for job in claimed:
            instruments.wait.record(
                seconds_since(job.run_at, now), {QUEUE: job.queue, TASK: job.task}
            )


def _add(instruments: _Instruments, counts: Counter[tuple[str, str, str]]) -> None:
    for (kind, queue, task), n in counts.items():
        instruments.counters[kind].add(n, {QUEUE: queue, TASK: task})


def start(settings: Settings, address: tuple[str, int] | None) -> Callable[[], None]:
    """A worker's metrics: serve Prometheus at `address` if given, else report the ledger
    gauges to an application-installed provider if there is one. Returns the closer."""
    from conductor.observe import logs

    if address is not None:
        from conductor.observe.prometheus import serve

        endpoint = serve(settings, host=address[0], port=address[1])
        install(endpoint.provider)
        logs.note(f"metrics: serving {endpoint.url}")

        def close() -> None:
            install(None)
            endpoint.close()

        return close
    if enabled():
        observe(meter(otel.get_meter_provider()), LedgerReader(settings))
    return lambda: None
