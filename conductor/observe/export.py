"""Where traces and metrics go, chosen by OpenTelemetry's standard environment variables,
and a bounded flush at exit.

Read by every `conductor` command (and `conductor worker`) before it starts, unless the
application or `opentelemetry-instrument` already installed a provider for the signal:

* `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`: `otlp`, `console`, `none`, comma-
  separated; unset means the signal is off (conductor exports nothing unasked);
* `OTEL_EXPORTER_OTLP_PROTOCOL` and the per-signal `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`,
  `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`: `http/protobuf` (the spec's default) or `grpc`;
* `OTEL_EXPORTER_OTLP_TIMEOUT` and the per-signal `..._TRACES_TIMEOUT`,
  `..._METRICS_TIMEOUT`: milliseconds, as the specification says (the Python exporters
  read seconds; conductor passes them the converted value);
* endpoints, headers, certificates and compression are read by the exporters themselves,
  per the specification (`OTEL_EXPORTER_OTLP_ENDPOINT` gets `/v1/traces` appended over
  HTTP, is used as is over gRPC; a per-signal endpoint is used as is).

A short command must not wait out a retrying exporter when the collector is down: at exit
the providers are shut down together within `EXIT_BUDGET` seconds, or within the
configured OTLP timeout when one is set, and whatever is still unsent is dropped.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from conductor.domain.errors import InvalidInput

EXPORTERS: Final = ("otlp", "console", "none")
PROTOCOLS: Final = ("http/protobuf", "grpc")
DEFAULT_PROTOCOL: Final = "http/protobuf"
DEFAULT_TIMEOUT: Final = 10.0
"""Seconds one OTLP export may take, retries included (the specification's 10000 ms)."""
EXIT_BUDGET: Final = 1.0
"""Seconds the flush at exit may take, for all signals together, when no OTLP timeout is
configured: what an unreachable collector may add to a command."""

_EXTRAS: Final = {"http/protobuf": "otlp-http", "grpc": "otlp-grpc"}
_MODULES: Final = {"http/protobuf": "http", "grpc": "grpc"}

_shutdowns: list[Callable[[], object]] = []
"""The shutdowns of the providers `configure_from_env` installed, run at exit."""
_budget = EXIT_BUDGET
_metrics_from_env = False


def exporters(signal: str) -> list[str]:
    """The exporter names `OTEL_<SIGNAL>_EXPORTER` asks for (empty when unset or `none`);
    an unknown name is an InvalidInput naming the variable."""
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    wanted = [n.strip().lower() for n in os.environ.get(variable, "").split(",") if n.strip()]
    for name in wanted:
        if name not in EXPORTERS:
            raise InvalidInput(f"invalid {variable} {name!r}: expected console, otlp or none")
    return [name for name in wanted if name != "none"]


def _variables(signal: str, setting: str) -> tuple[str, str]:
    """The per-signal variable for an OTLP setting, then the general one."""
    return (f"OTEL_EXPORTER_OTLP_{signal.upper()}_{setting}", f"OTEL_EXPORTER_OTLP_{setting}")


def protocol(signal: str) -> str:
    """The OTLP protocol for `signal`: its own variable, else the general one, else
    http/protobuf."""
    for variable in _variables(signal, "PROTOCOL"):
        value = os.environ.get(variable, "").strip()
        if not value:
            continue
        if value.lower() == "http/json":
            raise InvalidInput(
                f"unsupported {variable} 'http/json': the Python OTLP exporters send only "
                "protobuf; expected grpc or http/protobuf"
            )
        if value.lower() not in PROTOCOLS:
            raise InvalidInput(f"invalid {variable} {value!r}: expected grpc or http/protobuf")
        return value.lower()
    return DEFAULT_PROTOCOL


def timeout(signal: str) -> float | None:
    """The OTLP timeout for `signal` in seconds, from its own variable or the general one
    (both in milliseconds); None when neither is set."""
    for variable in _variables(signal, "TIMEOUT"):
        value = os.environ.get(variable, "").strip()
        if not value:
            continue
        try:
            millis = float(value)
        except ValueError:
            millis = -1.0
        if not 0 < millis < float("inf"):
            raise InvalidInput(
                f"invalid {variable} {value!r}: expected a positive number of milliseconds"
            )
        return millis / 1000
    return None


def _otlp(signal: str, kind: str) -> Any:
    """The OTLP exporter class for `signal` ("traces" or "metrics") over its protocol."""
    chosen = protocol(signal)
    module = "trace_exporter" if signal == "traces" else "metric_exporter"
    name = "OTLPSpanExporter" if signal == "traces" else "OTLPMetricExporter"
    path = f"opentelemetry.exporter.otlp.proto.{_MODULES[chosen]}.{module}"
    try:
        imported = importlib.import_module(path)
    except ImportError:
        raise InvalidInput(
            f"OTEL_{signal.upper()}_EXPORTER=otlp over {chosen} needs the {kind} exporter; "
            f"expected it installed: pip install 'conductor[otlp]' (both protocols) or "
            f"'conductor[{_EXTRAS[chosen]}]'"
        ) from None
    return getattr(imported, name)


def _exporter_timeout(signal: str) -> float:
    configured = timeout(signal)
    return configured if configured is not None else DEFAULT_TIMEOUT


def span_processors() -> list[Any]:
    """The span processors `OTEL_TRACES_EXPORTER` asks for (validated, not yet in use)."""
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    processors: list[Any] = []
    for name in exporters("traces"):
        if name == "console":
            # stderr: stdout carries command output (e.g. the id `enqueue` prints).
            processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        else:
            exporter = _otlp("traces", "OTLP trace")(timeout=_exporter_timeout("traces"))
            processors.append(BatchSpanProcessor(exporter))
    return processors


def metric_readers() -> list[Any]:
    """The metric readers `OTEL_METRICS_EXPORTER` asks for (validated, not yet in use);
    each exports every `OTEL_METRIC_EXPORT_INTERVAL` ms and once more at shutdown."""
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    readers: list[Any] = []
    for name in exporters("metrics"):
        if name == "console":
            exporter: Any = ConsoleMetricExporter(out=sys.stderr)
        else:
            exporter = _otlp("metrics", "OTLP metric")(timeout=_exporter_timeout("metrics"))
        readers.append(PeriodicExportingMetricReader(exporter))
    return readers


def resource() -> Any:
    """The resource the `OTEL_*` variables describe, named `conductor` unless
    `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` name the service."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    described = Resource.create()
    if str(described.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        described = described.merge(Resource({SERVICE_NAME: "conductor"}))
    return described


def configure_from_env() -> None:
    """Install tracer and meter providers as the `OTEL_*` variables ask, for each signal
    no provider was installed for yet, and the bounded flush at exit. An invalid setting
    raises InvalidInput before anything is installed."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    from opentelemetry import metrics, trace

    # The API's stand-in until a provider is set; it has no public name.
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    traced = not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )
    measured = not isinstance(
        metrics.get_meter_provider(), _ProxyMeterProvider | metrics.NoOpMeterProvider
    )
    processors = [] if traced else span_processors()
    readers = [] if measured else metric_readers()
    if not processors and not readers:
        return
    if processors:
        from opentelemetry.sdk.trace import TracerProvider

        tracer_provider = TracerProvider(resource=resource(), shutdown_on_exit=False)
        for processor in processors:
            tracer_provider.add_span_processor(processor)
        trace.set_tracer_provider(tracer_provider)
        _shutdowns.append(tracer_provider.shutdown)
    if readers:
        from opentelemetry.sdk.metrics import MeterProvider

        meter_provider = MeterProvider(
            metric_readers=readers, resource=resource(), shutdown_on_exit=False
        )
        metrics.set_meter_provider(meter_provider)
        _shutdowns.append(meter_provider.shutdown)
    global _budget, _metrics_from_env  # noqa: PLW0603 - one process-wide configuration
    _metrics_from_env = bool(readers)
    configured = [t for t in (timeout("traces"), timeout("metrics")) if t is not None]
    _budget = max(configured) if configured else EXIT_BUDGET
    atexit.register(flush_at_exit)


def metrics_from_env() -> bool:
    """Whether `configure_from_env` installed a meter provider: a worker's Prometheus
    provider then exports through `OTEL_METRICS_EXPORTER` too."""
    return _metrics_from_env


def exit_budget() -> float:
    """Seconds a provider's shutdown may take at exit (see `EXIT_BUDGET`)."""
    return _budget


def shut_down(closers: list[Callable[[], object]], seconds: float) -> bool:
    """Run `closers` side by side, each in a daemon thread, and wait for them at most
    `seconds` in all. True when all finished; a closer stuck in an exporter's retries is
    left behind, and dies with the process."""
    threads = [threading.Thread(target=closer, daemon=True) for closer in closers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def flush_at_exit() -> None:
    """Shut the providers `configure_from_env` installed down within the exit budget."""
    closers, _shutdowns[:] = list(_shutdowns), []
    if closers and not shut_down(closers, _budget):
        from conductor.observe import logs

        logs.note(
            f"telemetry: the exporters did not finish within {_budget:g}s at exit; "
            "what they had not sent is dropped",
            warning=True,
        )
