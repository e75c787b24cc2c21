"""The one place that talks to OpenTelemetry tracing.

Spans follow the OpenTelemetry messaging semantic conventions (semconv 1.27+ messaging
spans, status Development): a PRODUCER span `send <queue>` around an enqueue, whose W3C
traceparent is stored in the `enqueued` event, and a CONSUMER span `process <queue>`
around each attempt, linked to that stored context and, by default, its child (so one
trace runs from the web request that enqueued a job through every attempt;
`CONDUCTOR_TRACE_PARENT=link` starts a new trace per attempt, linked). What happens to
the attempt afterwards (completed, retry scheduled, failed, ignored as stale) is added
as span events when the Writer has committed it; rescues and cancellations, which
happen away from any running attempt, get a short span of their own in the job's trace.

Configured the standard way (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_*`,
`OTEL_SERVICE_NAME`, ...: see `export`) unless the application already installed a
tracer provider. With nothing configured every entry point returns after one cheap
check, so tracing costs next to nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER: Final = "conductor"
SYSTEM: Final = "conductor"
_PROPAGATOR: Final = TraceContextTextMapPropagator()
_NOOP_PROVIDERS: Final = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def enabled() -> bool:
    """Whether a real tracer provider is installed (by `export.configure_from_env` or the
    application)."""
    return not isinstance(trace.get_tracer_provider(), _NOOP_PROVIDERS)


def _tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def _context_of(traceparent: str | None) -> Any:
    return None if not traceparent else _PROPAGATOR.extract({"traceparent": traceparent})


def _span_context(traceparent: str | None) -> trace.SpanContext | None:
    if not traceparent:
        return None
    context = trace.get_current_span(_context_of(traceparent)).get_span_context()
    return context if context.is_valid else None


def traceparent_of(span: trace.Span) -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return carrier.get("traceparent")


def trace_id(traceparent: str | None) -> str | None:
    """The 32-hex-digit trace id inside a stored traceparent (`00-<trace>-<span>-<flags>`)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


class Producer:
    """An open `send` span; `traceparent` is what the `enqueued` events store."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.traceparent = traceparent_of(span)

    def sent(self, job_ids: Sequence[int]) -> None:
        if len(job_ids) == 1:
            self.span.set_attribute("messaging.message.id", str(job_ids[0]))
        else:
            self.span.set_attribute("messaging.batch.message_count", len(job_ids))


@contextlib.contextmanager
def producer(queues: Iterable[str]) -> Iterator[Producer | None]:
    """The PRODUCER span of one enqueue call (a child of the caller's current span)."""
    if not enabled():
        yield None
        return
    names = sorted(set(queues))
    destination = names[0] if len(names) == 1 else None
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
    }
    if destination is not None:
        attributes["messaging.destination.name"] = destination
    name = f"send {destination}" if destination else "send"
    with _tracer().start_as_current_span(
        name, kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield Producer(span)


def start_process(
    *, job_id: int, queue: str, task: str, attempt: int, traceparent: str | None
) -> trace.Span | None:
    """Start the CONSUMER span of one attempt (ended by `settled` or `abandon`)."""
    if not enabled():
        return None
    producer_context = _span_context(traceparent)
    links = [Link(producer_context)] if producer_context is not None else []
    as_child = os.environ.get("CONDUCTOR_TRACE_PARENT", "child").strip().lower() != "link"
    parent = _context_of(traceparent) if as_child and producer_context is not None else None
    return _tracer().start_span(
        f"process {queue}",
        context=parent if parent is not None else trace.set_span_in_context(trace.INVALID_SPAN),
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": SYSTEM,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": str(job_id),
            "conductor.task": task,
            "conductor.job.attempt": attempt,
        },
    )


@contextlib.contextmanager
def current(span: trace.Span | None) -> Iterator[None]:
    """Make `span` current while the handler runs, so the task's own spans nest under it."""
    if span is None:
        yield
        return
    with trace.use_span(span, end_on_exit=False, record_exception=False):
        yield


def current_span() -> trace.Span | None:
    """The span current in this thread, if it is a recording one."""
    span = trace.get_current_span()
    return span if span.is_recording() else None


def failed(span: trace.Span | None, error: BaseException) -> None:
    if span is None:
        return
    span.record_exception(error)
    span.set_attribute("error.type", type(error).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def settled(span: trace.Span | None, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """The Writer committed the attempt's outcome: add it as span events and end the span."""
    if span is None:
        return
    for name, attributes in events:
        span.add_event(name, attributes)
    span.end()


def marker(
    name: str, *, queue: str, job_id: int, traceparent: str | None, attributes: dict[str, Any]
) -> None:
    """A short span in the job's trace for something that happened outside any attempt
    (a rescue, a cancellation), carrying it as a span event of the same name."""
    if not enabled():
        return
    span = _tracer().start_span(
        f"{name} {queue}",
        context=_context_of(traceparent),
        kind=SpanKind.INTERNAL,
        attributes={
            "messaging.system": SYSTEM,
            "messaging.destination.name": queue,
            "messaging.message.id": str(job_id),
        },
    )
    span.add_event(name, attributes)
    span.end()
