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
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conductor.observe import conventions as names

if TYPE_CHECKING:
    from conductor.domain.events import RecordedEvent

TRACER: Final = "conductor"
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
            self.span.set_attribute(names.MESSAGE_ID, str(job_ids[0]))
        else:
            self.span.set_attribute(names.BATCH_COUNT, len(job_ids))


@contextlib.contextmanager
def producer(queues: Iterable[str]) -> Iterator[Producer | None]:
    """The PRODUCER span of one enqueue call (a child of the caller's current span)."""
    if not enabled():
        yield None
        return
    distinct = sorted(set(queues))
    destination = distinct[0] if len(distinct) == 1 else None
    attributes: dict[str, Any] = {
        names.MESSAGING_SYSTEM: names.SYSTEM,
        names.OPERATION_NAME: "send",
        names.OPERATION_TYPE: "send",
    }
    if destination is not None:
        attributes[names.DESTINATION] = destination
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
            names.MESSAGING_SYSTEM: names.SYSTEM,
            names.OPERATION_NAME: "process",
            names.OPERATION_TYPE: "process",
            names.DESTINATION: queue,
            names.MESSAGE_ID: str(job_id),
            names.TASK: task,
            names.ATTEMPT: attempt,
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
    """The attempt raised: an `exception` event, `error.type` and an ERROR status, the
    class named in full in both (`builtins.ValueError`; the SDK would drop `builtins.`)."""
    if span is None:
        return
    qualified = names.error_type(error)
    # The conventions' exception event, without the SDK's deprecated `exception.escaped`.
    span.add_event(
        "exception",
        {
            names.EXCEPTION_TYPE: qualified,
            names.EXCEPTION_MESSAGE: str(error),
            names.EXCEPTION_STACKTRACE: "".join(traceback.format_exception(error)),
        },
    )
    span.set_attribute(names.ERROR_TYPE, qualified)
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
            names.MESSAGING_SYSTEM: names.SYSTEM,
            names.DESTINATION: queue,
            names.MESSAGE_ID: str(job_id),
        },
    )
    span.add_event(name, attributes)
    span.end()


_EVENT_FIELDS: Final = (
    ("attempt", names.ATTEMPT),
    ("run_at", names.RUN_AT),
    ("reason", names.REASON),
    ("by", names.BY),
    ("outcome", names.OUTCOME),
)
"""Stored event fields carried by its span event, and their attribute names. An
attempt's `error_type` is not among them: its span has `error.type` already."""


def event_attributes(rec: RecordedEvent) -> dict[str, Any]:
    """The attributes of the span event that mirrors a stored event."""
    attributes: dict[str, Any] = {names.EVENT_SEQ: rec.seq}
    for field, name in _EVENT_FIELDS:
        value = getattr(rec.event, field, None)
        if value is not None:
            attributes[name] = value
    return attributes
