"""Traces: producer and consumer spans, their links, outcomes as span events, markers for
rescues and cancellations; in memory, and as real OTLP over HTTP and console output."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.registry import Registry
from conductor.observe.tracing import trace_id
from tests.conftest import CONDUCTOR, run_cli
from tests.engine.conftest import RunningEngine, dead_process_worker, hold, wait_until

Start = Callable[..., RunningEngine]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """A real SDK tracer provider exporting to memory, installed for one test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # test-only: the API allows one provider
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def test_enqueue_inside_a_request_span_makes_a_child_producer_span_and_stores_its_context(
    db_path: Path, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("web")
    with (
        tracer.start_as_current_span("POST /signup") as request,
        Conductor(settings=Settings(db=str(db_path))) as app,
    ):
        job_id = app.enqueue({"task": "send_email", "email": "a@b.c"})
        enqueued = app.ledger.history(job_id)[0]
    (producer,) = named(spans, "send default")
    assert producer.kind is SpanKind.PRODUCER
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    assert dict(producer.attributes or {}) == {
        "messaging.system": "conductor",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": "default",
        "messaging.message.id": str(job_id),
    }
    assert enqueued.trace is not None
    assert trace_id(enqueued.trace) == hex_trace(producer)
    assert enqueued.trace.split("-")[2] == f"{producer.context.span_id:016x}"  # type: ignore[union-attr]


def test_each_attempt_is_a_consumer_span_in_the_producers_trace_with_its_outcomes(
    db_path: Path, registry: Registry, start_engine: Start, spans: InMemorySpanExporter
) -> None:
    calls: list[int] = []

    @registry.task("second_time_lucky", backoff=0.01)
    def second_time_lucky() -> None:
        with trace.get_tracer("app").start_as_current_span("inner work"):
            calls.append(1)
            if len(calls) == 1:
                raise ValueError("first attempt fails")

    with Conductor(settings=Settings(db=str(db_path))) as app:
        job_id = app.enqueue({"task": "second_time_lucky"})
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    wait_until(lambda: len(named(spans, "process default")) == 2, what="two process spans")
    (producer,) = named(spans, "send default")
    first, second = sorted(named(spans, "process default"), key=lambda s: s.start_time or 0)
    for attempt, span in enumerate((first, second), start=1):
        assert span.kind is SpanKind.CONSUMER
        assert hex_trace(span) == hex_trace(producer)
        assert span.parent is not None
        assert span.parent.span_id == producer.context.span_id  # type: ignore[union-attr]
        assert [link.context.span_id for link in span.links] == [producer.context.span_id]  # type: ignore[union-attr]
        attributes = dict(span.attributes or {})
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["messaging.destination.name"] == "default"
        assert attributes["messaging.message.id"] == str(job_id)
        assert attributes["conductor.job.attempt"] == attempt
        assert attributes["conductor.task"] == "second_time_lucky"
    assert first.status.status_code is StatusCode.ERROR
    assert dict(first.attributes or {})["error.type"] == "builtins.ValueError"
    assert [e.name for e in first.events] == ["exception", "attempt_failed", "retry_scheduled"]
    assert [e.name for e in second.events] == ["completed"]
    inner = named(spans, "inner work")
    assert sorted(s.parent.span_id for s in inner) == sorted(  # type: ignore[union-attr]
        s.context.span_id
        for s in (first, second)  # type: ignore[union-attr]
    )
    outcome_events = [
        r for r in running.app.ledger.history(job_id) if r.type in ("attempt_failed", "completed")
    ]
    assert [trace_id(r.trace) for r in outcome_events] == [hex_trace(first), hex_trace(second)]
    assert [r.trace.split("-")[2] for r in outcome_events] == [  # type: ignore[union-attr]
        f"{s.context.span_id:016x}"
        for s in (first, second)  # type: ignore[union-attr]
    ]
    running.stop()


def test_link_mode_starts_a_new_trace_per_attempt_linked_to_the_producer(
    db_path: Path,
    registry: Registry,
    start_engine: Start,
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONDUCTOR_TRACE_PARENT", "link")
    registry.task("quick")(lambda: None)
    with Conductor(settings=Settings(db=str(db_path))) as app:
        job_id = app.enqueue({"task": "quick"})
    running = start_engine()
    wait_until(lambda: named(spans, "process default"), what="the process span")
    (producer,) = named(spans, "send default")
    (process,) = named(spans, "process default")
    assert process.parent is None
    assert hex_trace(process) != hex_trace(producer)
    assert [link.context.span_id for link in process.links] == [producer.context.span_id]  # type: ignore[union-attr]
    assert running.statuses()[job_id] == "completed"
    running.stop()


def test_a_rescued_job_gets_a_marker_and_its_next_attempt_in_the_same_trace(
    db_path: Path, registry: Registry, start_engine: Start, spans: InMemorySpanExporter
) -> None:
    registry.task("quick")(lambda: None)
    with Conductor(settings=Settings(db=str(db_path))) as app:
        job_id = app.enqueue({"task": "quick"})
    hold(db_path, job_id, dead_process_worker(), dt.timedelta(hours=1))
    running = start_engine()
    wait_until(lambda: running.statuses().get(job_id) == "completed", what="completion")
    wait_until(lambda: named(spans, "process default"), what="the process span")
    (producer,) = named(spans, "send default")
    (rescue,) = named(spans, "rescued default")
    (process,) = named(spans, "process default")
    assert hex_trace(rescue) == hex_trace(producer) == hex_trace(process)
    assert [e.name for e in rescue.events] == ["rescued"]
    assert "is gone" in str(dict(rescue.events[0].attributes or {})["conductor.job.reason"])
    assert dict(process.attributes or {})["conductor.job.attempt"] == 2
    running.stop()


def test_a_cancellation_is_marked_in_the_jobs_trace(
    db_path: Path, spans: InMemorySpanExporter
) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        job_id = app.enqueue({"task": "noop"}, delay=dt.timedelta(hours=1))
        app.cancel(job_id)
    (producer,) = named(spans, "send default")
    (cancel,) = named(spans, "cancelled default")
    assert hex_trace(cancel) == hex_trace(producer)
    assert [e.name for e in cancel.events] == ["cancelled"]


def test_without_a_provider_nothing_is_traced_or_stored(db_path: Path) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        job_id = app.enqueue({"task": "noop"})
        assert app.ledger.history(job_id)[0].trace is None


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_real_otlp_over_http_carries_producer_and_consumer_spans_of_one_trace(
    db_path: Path,
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    handler = type("Collector", (_Collector,), {"bodies": []})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "OTEL_SERVICE_NAME": "shop",
    }
    try:
        for argv in (["enqueue", "--payload", '{"task": "noop"}'], ["worker", "--burst", "-q"]):
            done = subprocess.run(
                [CONDUCTOR, *argv, "--db", str(db_path)],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        received = []
        for body in handler.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    received += [
                        (service["service.name"], s.name, s.trace_id.hex(), s.kind)
                        for s in scope.spans
                    ]
    finally:
        server.shutdown()
    names = sorted((service, name) for service, name, _, _ in received)
    assert names == [("shop", "process default"), ("shop", "send default")]
    assert len({trace for _, _, trace, _ in received}) == 1
    kinds = {name: kind for _, name, _, kind in received}
    assert (kinds["send default"], kinds["process default"]) == (4, 5)  # PRODUCER, CONSUMER


def test_console_exporter_shows_spans_from_the_cli(db_path: Path) -> None:
    result = run_cli(
        "enqueue",
        "--payload",
        '{"task": "noop"}',
        db=db_path,
        env={"OTEL_TRACES_EXPORTER": "console"},
    )
    assert result.code == 0
    assert result.stdout.strip() == "1"  # spans go to stderr, not into the output
    assert '"name": "send default"' in result.stderr


def test_an_unknown_exporter_is_a_one_line_error(db_path: Path) -> None:
    result = run_cli(
        "enqueue",
        "--payload",
        '{"task": "noop"}',
        db=db_path,
        env={"OTEL_TRACES_EXPORTER": "zipkin-ish"},
    )
    assert result.code == 1
    assert result.stderr.count("\n") == 1
    assert "expected console, otlp or none" in result.stderr
    assert not db_path.exists()
