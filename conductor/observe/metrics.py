"""The one place that talks to the OpenTelemetry metrics API and SDK.

Instruments (docs/observability.md describes each, and the conventions followed):

* counters `conductor.job.enqueued|completed|failed|retried|rescued|cancelled` - what this
  process recorded, counted after each commit, one `add` per (queue, task) per batch;
* histograms `conductor.attempt.duration` (seconds a handler ran) and `conductor.queue.wait`
  (seconds from a job's `run_at` to its claim);
* observable gauges `conductor.job.count`, `conductor.oldest_due.age` and
  `conductor.sqlite.wal.size`, read from the ledger's projections when a reader collects.

Nothing is measured unless a meter provider is active: `serve` installs one with a
Prometheus reader (`conductor worker --metrics-port`), or the application installs its
own OpenTelemetry SDK provider. Until then every hook returns after one identity check,
so metrics cost next to nothing. `exposition` prints the same instruments once, computed
from the ledger alone (`conductor metrics`).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
from opentelemetry import metrics as otel
from opentelemetry.metrics import CallbackOptions, Observation

# The stand-in the API hands out until a provider is set; it has no public name.
from opentelemetry.metrics._internal import _ProxyMeterProvider

from conductor.domain.clock import unstamp
from conductor.domain.errors import ConductorError, LedgerError
from conductor.domain.events import JobEnqueued, RecordedEvent

if TYPE_CHECKING:
    from conductor.domain.config import Settings
    from conductor.domain.decisions import Outcome
    from conductor.ledger.base import ClaimedJob, Ledger

SCOPE: Final = "conductor"
"""The instrumentation scope (meter) name."""

QUEUE: Final = "conductor.queue"
TASK: Final = "conductor.task"
STATUS: Final = "conductor.job.status"
ERROR_TYPE: Final = "error.type"
"""Attribute keys. `error.type` is the general semantic-conventions attribute."""

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
JOB_COUNT: Final = Instrument(
    "conductor.job.count", "{job}", "Jobs in the ledger by queue, task and status."
)
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


# -- instruments ------------------------------------------------------------------------
class _Instruments:
    """conductor's synchronous instruments on one meter provider."""

    def __init__(self, provider: otel.MeterProvider) -> None:
        meter = _meter(provider)
        self.counters = {
            kind: meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
            for kind, spec in COUNTERS.items()
        }
        self.duration = _histogram(meter, ATTEMPT_DURATION)
        self.wait = _histogram(meter, QUEUE_WAIT)


def _meter(provider: otel.MeterProvider) -> otel.Meter:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release: str | None = version("conductor")
    except PackageNotFoundError:
        release = None
    return provider.get_meter(SCOPE, release)


def _histogram(meter: otel.Meter, spec: Instrument) -> otel.Histogram:
    return meter.create_histogram(
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
        row = ledger.job(job_id)
        return None if row is None else (row["queue"], row["task"])

    if recorded:
        _add(instruments, increments(recorded, labels))
    for outcome in outcomes:
        holding = held.get(outcome.job_id)
        if holding is None or holding.job.attempt != outcome.attempt:
            continue  # a timed-out attempt's late result: its duration was recorded already
        attributes = {QUEUE: holding.job.queue, TASK: holding.job.task}
        if outcome.error_type is not None:
            attributes[ERROR_TYPE] = outcome.error_type
        instruments.duration.record(outcome.duration, attributes)
    if claimed and now is not None:
        for job in claimed:
            instruments.wait.record(
                seconds_since(job.run_at, now), {QUEUE: job.queue, TASK: job.task}
            )


def _add(instruments: _Instruments, counts: Counter[tuple[str, str, str]]) -> None:
    for (kind, queue, task), n in counts.items():
        instruments.counters[kind].add(n, {QUEUE: queue, TASK: task})


# -- observable gauges ------------------------------------------------------------------
def observe(meter: otel.Meter, view: Callable[[], LedgerView | None]) -> None:
    """Register the observable gauges on `meter`; each collection asks `view` for values."""

    def job_count(options: CallbackOptions) -> Iterable[Observation]:
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
        (JOB_COUNT, job_count),
        (OLDEST_DUE_AGE, oldest_due),
        (WAL_SIZE, wal_size),
    ):
        meter.create_observable_gauge(
            spec.name, [callback], unit=spec.unit, description=spec.description
        )


class _LedgerReader:
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
            if str(e) != self._failure:  # say it once, not at every scrape
                logs.note(f"metrics: cannot read the ledger: {e}", warning=True)
            self._failure = str(e)
            return None
        self._failure = None
        return view


# -- Prometheus -------------------------------------------------------------------------
def _resource() -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "conductor"}))
    return resource


@attrs.define
class Endpoint:
    """A running `/metrics` HTTP endpoint and the meter provider behind it."""

    host: str
    port: int
    _server: Any
    _provider: Any

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        install(None)
        self._provider.shutdown()


def serve(settings: Settings, *, host: str, port: int) -> Endpoint:
    """Serve Prometheus `/metrics` on `host:port` (port 0 picks a free one) from a meter
    provider installed for conductor's instruments, with the ledger gauges of `settings`
    and the process collectors of prometheus_client (CPU, memory, open files, GC)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import (
        GC_COLLECTOR,
        PLATFORM_COLLECTOR,
        PROCESS_COLLECTOR,
        CollectorRegistry,
        start_http_server,
    )

    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)], resource=_resource()
    )
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        provider.shutdown()
        reason = e.strerror or str(e)
        raise ConductorError(
            f"cannot serve metrics on {host}:{port}: {reason}; expected a free port and an "
            "address of this machine (--metrics-port, --metrics-host)"
        ) from None
    observe(_meter(provider), _LedgerReader(settings))
    install(provider)
    bound_host, bound_port = server.server_address[:2]
    return Endpoint(str(bound_host), int(bound_port), server, provider)


def start(settings: Settings, address: tuple[str, int] | None) -> Callable[[], None]:
    """A worker's metrics: serve Prometheus at `address` if given, else report the ledger
    gauges to an application-installed provider if there is one. Returns the closer."""
    from conductor.observe import logs

    if address is not None:
        endpoint = serve(settings, host=address[0], port=address[1])
        logs.note(f"metrics: serving {endpoint.url}")
        return endpoint.close
    if enabled():
        observe(_meter(otel.get_meter_provider()), _LedgerReader(settings))
    return lambda: None


def exposition(ledger: Ledger, now: dt.datetime) -> str:
    """The Prometheus text exposition of the ledger: counters as the totals of its events
    since it began, gauges from its projections. No histograms: attempt durations are
    measured in worker processes and not stored. Reads only."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    view = read_view(ledger, now)
    totals = ledger.event_counts(tuple(COUNTERS))
    registry = CollectorRegistry()
    # No target_info: its per-process instance id would make a new series every run.
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    provider = MeterProvider(metric_readers=[reader], resource=_resource())
    try:
        meter = _meter(provider)
        counters = {
            kind: meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
            for kind, spec in COUNTERS.items()
        }
        for queue, task, kind, n in totals:
            counters[kind].add(n, {QUEUE: queue, TASK: task})
        observe(meter, lambda: view)
        return generate_latest(registry).decode()
    finally:
        provider.shutdown()
