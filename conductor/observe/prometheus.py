"""conductor's metrics in the Prometheus text format: a worker's `/metrics` endpoint
(`serve`) and the ledger's figures printed once (`exposition`, `conductor metrics`).

Both go through OpenTelemetry's Prometheus reader, so names follow the OpenTelemetry
Prometheus compatibility rules; `promtool check metrics` accepts both (a test runs it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs

from conductor.domain.errors import ConductorError
from conductor.observe.conventions import QUEUE, TASK
from conductor.observe.gauges import LedgerReader, meter, observe
from conductor.observe.instruments import COUNTERS, read_view

if TYPE_CHECKING:
    from conductor.domain.config import Settings
    from conductor.ledger.base import Ledger


@attrs.define
class Endpoint:
    """A running `/metrics` HTTP endpoint and the meter provider behind it."""

    host: str
    port: int
    provider: Any
    """The meter provider whose reader the endpoint serves (`metrics.start` installs it)."""
    _server: Any

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        from conductor.observe import export

        export.shut_down([self.provider.shutdown], export.exit_budget())


def serve(settings: Settings, *, host: str, port: int) -> Endpoint:
    """Serve Prometheus `/metrics` on `host:port` (port 0 picks a free one) from a meter
    provider of its own (for `metrics.install`), with the ledger gauges of `settings`
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
    from conductor.observe import export

    # With OTEL_METRICS_EXPORTER set, conductor's instruments go there as well.
    also = export.metric_readers() if export.metrics_from_env() else []
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry), *also],
        resource=export.resource(),
        shutdown_on_exit=False,
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
    observe(meter(provider), LedgerReader(settings))
    bound_host, bound_port = server.server_address[:2]
    return Endpoint(str(bound_host), int(bound_port), provider, server)


def exposition(ledger: Ledger, now: dt.datetime) -> str:
    """The Prometheus text exposition of the ledger: counters as the totals of its events
    since it began, gauges from its projections. No histograms: attempt durations are
    measured in worker processes and not stored. Reads only."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    from conductor.observe import export

    view = read_view(ledger, now)
    totals = ledger.event_counts(tuple(COUNTERS))
    registry = CollectorRegistry()
    # No target_info: its per-process instance id would make a new series every run.
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    provider = MeterProvider(metric_readers=[reader], resource=export.resource())
    try:
        scope = meter(provider)
        counters = {
            kind: scope.create_counter(spec.name, unit=spec.unit, description=spec.description)
            for kind, spec in COUNTERS.items()
        }
        for queue, task, kind, n in totals:
            counters[kind].add(n, {QUEUE: queue, TASK: task})
        observe(scope, lambda: view)
        return generate_latest(registry).decode()
    finally:
        provider.shutdown()
