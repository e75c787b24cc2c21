"""Exporters chosen by OpenTelemetry's standard variables: real `conductor enqueue` and
`conductor worker` processes sending traces and metrics to real receivers on 127.0.0.1
over OTLP/HTTP and OTLP/gRPC, misspelled settings refused in one line, and a collector
that is down or never answers costing a command about a second, not the exporter's
retry horizon."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.observe import export
from tests.conftest import CONDUCTOR, run_cli

grpc = pytest.importorskip("grpc", reason="the gRPC exporter's grpcio is not installed")
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc  # noqa: E402


class Received:
    """What a receiver was sent, decoded: span names and metric names, per service."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[str, str]] = []
        self.metrics: list[tuple[str, str]] = []

    def traces(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                service = _service(resource_spans.resource)
                for scope in resource_spans.scope_spans:
                    self.spans += [(service, span.name) for span in scope.spans]

    def metric_data(self, request: ExportMetricsServiceRequest) -> None:
        with self.lock:
            for resource_metrics in request.resource_metrics:
                service = _service(resource_metrics.resource)
                for scope in resource_metrics.scope_metrics:
                    self.metrics += [(service, metric.name) for metric in scope.metrics]


def _service(resource: Any) -> str:
    names = [a.value.string_value for a in resource.attributes if a.key == "service.name"]
    return names[0] if names else ""


# -- receivers ---------------------------------------------------------------------------
@pytest.fixture
def http_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver: decodes POSTs to /v1/traces and /v1/metrics."""
    received = Received()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                request: Any = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.traces(request)
                reply = ExportTraceServiceResponse().SerializeToString()
            elif self.path == "/v1/metrics":
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                received.metric_data(request)
                reply = ExportMetricsServiceResponse().SerializeToString()
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/gRPC receiver: a real grpc server with the collector's Export services."""
    received = Received()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the service's name
            received.traces(request)
            return ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the service's name
            received.metric_data(request)
            return ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(grace=None)


def run(argv: list[str], db: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [CONDUCTOR, *argv, "--db", str(db)],
        env={**clean, "OTEL_SERVICE_NAME": "shop", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def enqueue_and_work(db: Path, env: dict[str, str]) -> None:
    for argv in (["enqueue", "--payload", '{"task": "noop"}'], ["worker", "--burst", "-q"]):
        done = run(argv, db, env)
        assert done.returncode == 0, done.stderr


SPANS = [("shop", "process default"), ("shop", "send default")]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_traces_and_metrics_arrive_over_the_chosen_otlp_protocol(
    protocol: str,
    db_path: Path,
    http_receiver: tuple[str, Received],
    grpc_receiver: tuple[str, Received],
) -> None:
    chosen, other = (
        (http_receiver, grpc_receiver)
        if protocol != "grpc"
        else (
            grpc_receiver,
            http_receiver,
        )
    )
    endpoint, received = chosen
    enqueue_and_work(
        db_path,
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        },
    )
    assert sorted(received.spans) == SPANS
    metric_names = {name for service, name in received.metrics if service == "shop"}
    # The enqueue process counted its enqueue; the worker its completion, timings, gauges.
    assert {
        "conductor.job.enqueued",
        "conductor.job.completed",
        "conductor.attempt.duration",
        "conductor.queue.wait",
        "conductor.jobs",
    } <= metric_names
    assert other[1].spans == []
    assert other[1].metrics == []


def test_each_signal_takes_its_own_protocol_and_endpoint(
    db_path: Path, http_receiver: tuple[str, Received], grpc_receiver: tuple[str, Received]
) -> None:
    enqueue_and_work(
        db_path,
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver[0],
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": grpc_receiver[0],
        },
    )
    assert sorted(grpc_receiver[1].spans) == SPANS
    assert grpc_receiver[1].metrics == []
    assert http_receiver[1].spans == []
    assert "conductor.job.completed" in {name for _, name in http_receiver[1].metrics}


def test_a_worker_serving_prometheus_also_exports_through_otel_metrics_exporter(
    db_path: Path, http_receiver: tuple[str, Received]
) -> None:
    endpoint, received = http_receiver
    env = {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    assert run(["enqueue", "--payload", '{"task": "noop"}'], db_path, env).returncode == 0
    done = run(["worker", "--burst", "-q", "--metrics-port", "0"], db_path, env)
    assert done.returncode == 0, done.stderr
    names = {name for _, name in received.metrics}
    assert {"conductor.job.completed", "conductor.attempt.duration", "conductor.jobs"} <= names


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OTEL_TRACES_EXPORTER", "jaeger-ish", "expected console, otlp or none"),
        ("OTEL_METRICS_EXPORTER", "prometheus", "expected console, otlp or none"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grcp", "expected grpc or http/protobuf"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json", "send only protobuf"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1s", "expected a positive number of milliseconds"),
    ],
)
def test_a_misspelled_telemetry_setting_is_one_line_and_changes_nothing(
    db_path: Path, variable: str, value: str, expected: str
) -> None:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", variable: value}
    result = run_cli("enqueue", "--payload", '{"task": "noop"}', db=db_path, env=env)
    assert result.code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert variable in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not db_path.exists()


def test_the_otlp_timeout_is_read_in_milliseconds_as_the_specification_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "400")
    assert export.timeout("traces") == 2.5
    assert export.timeout("metrics") == 0.4
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TIMEOUT")
    assert export.timeout("traces") is None


# -- an unreachable collector ------------------------------------------------------------
@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound, then closed (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes connections (the kernel's backlog) but never reads or answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


RETRY_HORIZON = export.DEFAULT_TIMEOUT
"""How long the exporters keep retrying one export by default (seconds)."""
BOUND = 5.0
"""What a command may take with the collector down: start-up, the job, and the exit
budget (1 s), with room for a loaded machine; well under the retry horizon."""


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize("collector", ["closed_port", "silent_port"])
def test_an_unreachable_collector_costs_a_command_its_exit_budget_not_the_retries(
    protocol: str, collector: str, db_path: Path, request: pytest.FixtureRequest
) -> None:
    assert RETRY_HORIZON > BOUND + 3
    port = request.getfixturevalue(collector)
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
    }
    started = time.monotonic()
    done = run(["enqueue", "--payload", '{"task": "noop"}'], db_path, env)
    took = time.monotonic() - started

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert took < BOUND, f"enqueue took {took:.2f}s with the collector on a {collector}"
    with Conductor(settings=Settings(db=str(db_path))) as app:
        assert [row["status"] for row in app.jobs()] == ["pending"]
