"""Names: every attribute and metric conductor emits is the one docs/observability.md
lists, one name per fact across spans, span events and metrics, and a failure's class is
named in full (`error.type`, `exception.type`), as the semantic conventions ask."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.registry import Registry
from conductor.observe import conventions, gauges, instruments, metrics
from tests.engine.conftest import RunningEngine, dead_process_worker, hold, wait_until

DOCS = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


class PaymentDeclinedError(Exception):
    """An application's own exception, to be named with its module."""


QUALIFIED = f"{__name__}.PaymentDeclinedError"


def documented(heading: str) -> set[str]:
    """The backticked names in the first column of the table under `### heading`."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.]+)` \|", section, flags=re.MULTILINE))


@attrs.frozen
class Telemetry:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    provider: MeterProvider


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Real SDK tracer and meter providers reading into memory, for one test only."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # test-only: the API allows one provider
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    metrics.install(meter_provider)
    yield Telemetry(exporter, reader, meter_provider)
    metrics.install(None)
    meter_provider.shutdown()
    tracer_provider.shutdown()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


def span_keys(spans: list[ReadableSpan]) -> tuple[set[str], set[str]]:
    """Attribute names on the spans, and on their events."""
    on_spans = {key for span in spans for key in (span.attributes or {})}
    on_events = {key for span in spans for event in span.events for key in event.attributes or {}}
    return on_spans, on_events


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [dict(p.attributes or {}) for p in metric.data.data_points]
    return found


def test_every_emitted_name_is_documented_once_and_failures_are_named_in_full(
    db_path: Path,
    registry: Registry,
    start_engine: Any,
    telemetry: Telemetry,
) -> None:
    @registry.task("charge", backoff=0.01)
    def charge() -> None:
        raise PaymentDeclinedError("card declined")

    registry.task("ok")(lambda: None)
    settings = Settings(db=str(db_path))
    with Conductor(settings=settings) as app:
        declined = app.enqueue({"task": "charge"}, max_retries=1)
        app.enqueue_many([{"task": "ok"}, {"task": "ok"}])
        rescued = app.enqueue({"task": "ok"})
        app.cancel(app.enqueue({"task": "ok"}, queue="later", delay=dt.timedelta(hours=1)))
    hold(db_path, rescued, dead_process_worker(), dt.timedelta(hours=1))
    gauges.observe(gauges.meter(telemetry.provider), gauges.LedgerReader(settings))
    running: RunningEngine = start_engine()
    wait_until(
        lambda: (
            running.statuses()[declined] == "failed" and running.statuses()[rescued] == "completed"
        ),
        timeout=300,
        what="the declined job to fail and the rescued one to complete",
    )
    wait_until(
        lambda: (
            len([s for s in telemetry.spans.get_finished_spans() if s.name.startswith("process")])
            == 5
        ),
        timeout=300,
        what="five process spans: two declined attempts, three ok jobs",
    )
    spans = list(telemetry.spans.get_finished_spans())
    points = metric_points(telemetry.reader)
    running.stop()

    on_spans, on_events = span_keys(spans)
    on_metrics = {key for attributes in points.values() for a in attributes for key in a}
    attributes = documented("Attributes")
    names_in_code = {
        value
        for name, value in vars(conventions).items()
        if name.isupper() and isinstance(value, str) and name != "SYSTEM"
    }
    assert attributes == names_in_code
    assert on_spans | on_events | on_metrics <= attributes
    assert {"conductor.attempt", "conductor.error_type", "conductor.reason"}.isdisjoint(
        on_spans | on_events
    )
    # The attempt number has one name wherever it appears.
    assert "conductor.job.attempt" in on_spans
    assert "conductor.job.attempt" in on_events
    assert {"conductor.job.reason", "conductor.job.by", "conductor.job.run_at"} <= on_events

    metric_names = documented("Instruments")
    in_code = {spec.name for spec in instruments.COUNTERS.values()} | {
        spec.name
        for spec in (
            instruments.ATTEMPT_DURATION,
            instruments.QUEUE_WAIT,
            instruments.JOBS,
            instruments.OLDEST_DUE_AGE,
            instruments.WAL_SIZE,
        )
    }
    assert metric_names == in_code
    assert set(points) <= metric_names
    assert {"conductor.jobs", "conductor.attempt.duration", "conductor.job.failed"} <= set(points)

    failed = [
        s for s in spans if s.name == "process default" and "error.type" in (s.attributes or {})
    ]
    assert [dict(s.attributes or {})["error.type"] for s in failed] == [QUALIFIED, QUALIFIED]
    for span in failed:
        [exception] = [e for e in span.events if e.name == "exception"]
        assert dict(exception.attributes or {}).keys() == {
            "exception.type",
            "exception.message",
            "exception.stacktrace",
        }
        assert dict(exception.attributes or {})["exception.type"] == QUALIFIED
        assert "card declined" in str(dict(exception.attributes or {})["exception.stacktrace"])
    errors = {a.get("error.type") for a in points["conductor.attempt.duration"]}
    assert errors == {None, QUALIFIED}


IDENTIFIER = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@given(
    module=st.lists(IDENTIFIER, min_size=1, max_size=3).map(".".join),
    qualname=st.lists(IDENTIFIER.map(str.title), min_size=1, max_size=2).map(".".join),
)
def test_error_type_is_the_module_and_qualified_name_of_any_exception_class(
    module: str, qualname: str
) -> None:
    cls = type(qualname.rpartition(".")[2], (Exception,), {"__module__": module})
    cls.__qualname__ = qualname
    assert conventions.error_type(cls("x")) == f"{module}.{qualname}"
    assert conventions.error_type(cls) == f"{module}.{qualname}"


def test_builtin_exceptions_keep_their_builtins_module() -> None:
    assert conventions.error_type(TimeoutError()) == "builtins.TimeoutError"
    assert conventions.error_type(PaymentDeclinedError()) == QUALIFIED
