"""Metrics: per-batch counts (pure), the Writer's and the client's hooks (in memory), a real
worker's Prometheus endpoint scraped over HTTP, and `conductor metrics` from the ledger."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families

from conductor import Conductor
from conductor.client import STATUSES
from conductor.domain.clock import stamp
from conductor.domain.config import Settings
from conductor.domain.decisions import Outcome
from conductor.domain.events import (
    JobAttemptFailed,
    JobCompleted,
    JobEnqueued,
    JobLeaseExtended,
    JobRescued,
    JobRetryScheduled,
    RecordedEvent,
)
from conductor.domain.registry import Registry
from conductor.ledger.base import ClaimedJob
from conductor.observe import instruments, metrics
from tests.conftest import CONDUCTOR, run_cli
from tests.engine.conftest import RunningEngine, wait_until

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
Sample = tuple[str, dict[str, str], float]


# -- pure parts -------------------------------------------------------------------------
def recorded(job_id: int, event: Any, seq: int = 1) -> RecordedEvent:
    return RecordedEvent(seq=seq, job_id=job_id, at=stamp(NOW), event=event, trace=None, hash="")


def enqueued(job_id: int, task: str, queue: str = "default") -> RecordedEvent:
    event = JobEnqueued(
        task=task, queue=queue, priority=1, max_retries=3, run_at=stamp(NOW), payload="{}"
    )
    return recorded(job_id, event)


def test_increments_add_up_a_batch_per_counter_queue_and_task() -> None:
    batch = [
        enqueued(1, "send_email"),
        enqueued(2, "send_email"),
        enqueued(3, "report", queue="slow"),
        recorded(4, JobCompleted(attempt=1)),
        recorded(5, JobCompleted(attempt=2)),
        recorded(6, JobAttemptFailed(attempt=1, error_type="E", message="m", traceback="")),
        recorded(6, JobRetryScheduled(attempt=1, run_at=stamp(NOW))),
        recorded(7, JobLeaseExtended(attempt=1, lease_expires_at=stamp(NOW))),
        recorded(8, JobRescued(attempt=1, reason="gone")),
    ]
    places = {4: ("default", "noop"), 5: ("default", "noop"), 6: ("slow", "report")}

    counts = instruments.increments(batch, places.get)

    assert counts == {
        ("enqueued", "default", "send_email"): 2,
        ("enqueued", "slow", "report"): 1,
        ("completed", "default", "noop"): 2,
        ("retry_scheduled", "slow", "report"): 1,
    }, "attempt_failed and lease_extended are not counted; job 8 has no known place"


def test_seconds_since_run_at_is_never_negative() -> None:
    assert instruments.seconds_since(stamp(NOW - dt.timedelta(seconds=90)), NOW) == 90.0
    assert instruments.seconds_since(stamp(NOW + dt.timedelta(seconds=5)), NOW) == 0.0
    assert instruments.seconds_since(None, NOW) == 0.0


def test_the_wal_sits_beside_a_database_path_only() -> None:
    assert instruments.wal_path("/data/conductor.db") == "/data/conductor.db-wal"
    assert instruments.wal_path("file:/data/conductor.db?mode=ro") is None


# -- hooks, in memory --------------------------------------------------------------------
@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    """A real SDK meter provider reading into memory, for conductor's instruments only."""
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    metrics.install(provider)
    yield memory
    metrics.install(None)
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Metric name -> [(attributes, data point)] of one collection."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = collections.defaultdict(list)
    data = reader.get_metrics_data()
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found[metric.name].append((dict(point.attributes or {}), point))
    return found


class _Held:
    def __init__(self, job: ClaimedJob) -> None:
        self.job = job


def claimed(job_id: int, task: str, *, attempt: int = 1, run_at: dt.datetime = NOW) -> ClaimedJob:
    return ClaimedJob(
        id=job_id,
        task=task,
        queue="default",
        payload="{}",
        attempt=attempt,
        retries=0,
        max_retries=3,
        lease_expires_at=stamp(NOW),
        trace=None,
        run_at=stamp(run_at),
    )


class _Rows:
    """A ledger stand-in that knows where job 9 lives (a job the Writer does not hold)."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def job(self, job_id: int) -> dict[str, Any] | None:
        self.asked.append(job_id)
        return {"queue": "other", "task": "lost"} if job_id == 9 else None


def test_nothing_is_measured_or_looked_up_without_a_meter_provider() -> None:
    assert not metrics.enabled()
    rows = _Rows()
    metrics.record_commit([recorded(9, JobRescued(attempt=1, reason="gone"))], {}, rows)  # type: ignore[arg-type]
    assert rows.asked == []


def test_the_writer_hook_counts_a_batch_and_times_attempts_it_held(
    reader: InMemoryMetricReader,
) -> None:
    held = {1: _Held(claimed(1, "noop")), 2: _Held(claimed(2, "noop", attempt=3))}
    rows = _Rows()
    metrics.record_commit(
        [
            recorded(1, JobCompleted(attempt=1)),
            recorded(2, JobAttemptFailed(attempt=3, error_type="E", message="", traceback="")),
            recorded(2, JobRetryScheduled(attempt=3, run_at=stamp(NOW))),
            recorded(9, JobRescued(attempt=1, reason="gone")),
        ],
        held,
        rows,  # type: ignore[arg-type]
        outcomes=[
            Outcome(job_id=1, attempt=1, duration=0.25),
            Outcome(
                job_id=2,
                attempt=3,
                error_type="ValueError",
                error_class="builtins.ValueError",
                duration=0.5,
            ),
            Outcome(job_id=2, attempt=2, duration=9.0),  # a stale attempt's late result
            Outcome(job_id=7, attempt=1, duration=9.0),  # a job no longer held
        ],
        claimed=[claimed(3, "report", run_at=NOW - dt.timedelta(seconds=4))],
        now=NOW,
    )

    found = points(reader)
    counters = {
        (name, attrs["conductor.task"]): point.value
        for name in ("conductor.job.completed", "conductor.job.retried", "conductor.job.rescued")
        for attrs, point in found[name]
    }
    assert counters == {
        ("conductor.job.completed", "noop"): 1,
        ("conductor.job.retried", "noop"): 1,
        ("conductor.job.rescued", "lost"): 1,
    }
    assert rows.asked == [9], "only the job the Writer does not hold is looked up"
    durations = {
        attrs.get("error.type"): (point.count, point.sum)
        for attrs, point in found["conductor.attempt.duration"]
    }
    assert durations == {None: (1, 0.25), "builtins.ValueError": (1, 0.5)}
    [(wait_attrs, wait)] = found["conductor.queue.wait"]
    assert (wait.count, wait.sum) == (1, 4.0)
    assert wait_attrs == {"conductor.queue": "default", "conductor.task": "report"}


def test_enqueue_and_cancel_count_in_the_process_that_made_them(
    db_path: Path, reader: InMemoryMetricReader
) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        app.enqueue_many([{"task": "noop"}, {"task": "noop"}])
        later = app.enqueue({"task": "report"}, queue="slow", delay=dt.timedelta(hours=1))
        app.cancel(later)

    found = points(reader)
    enqueues = {
        (a["conductor.queue"], a["conductor.task"]): p.value
        for a, p in found["conductor.job.enqueued"]
    }
    assert enqueues == {("default", "noop"): 2, ("slow", "report"): 1}
    [(attrs, cancelled)] = found["conductor.job.cancelled"]
    assert (attrs, cancelled.value) == (
        {"conductor.queue": "slow", "conductor.task": "report"},
        1,
    )


# -- Prometheus, for real ----------------------------------------------------------------
def parse(text: str) -> list[Sample]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def by(samples: list[Sample], name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """The samples called `name`, summed by the values of label `keys`."""
    found: dict[tuple[str, ...], float] = collections.defaultdict(float)
    for sample_name, labels, value in samples:
        if sample_name == name:
            found[tuple(labels.get(key, "") for key in keys)] += value
    return dict(found)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        assert response.status == 200
        return str(response.read().decode())


def try_scrape(port: int) -> str | None:
    try:
        return scrape(port)
    except (urllib.error.URLError, ConnectionError):
        return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening_on(port: int) -> set[str]:
    """Local addresses of the sockets listening on TCP `port` (Linux /proc/net)."""
    found: set[str] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, ordered))
    return found


def ledger_counts(app: Conductor, event_type: str) -> dict[tuple[str, ...], float]:
    """How many `event_type` events each task has in the ledger, from the log itself."""
    tasks = {row["id"]: row["task"] for row in app.jobs()}
    counted: collections.Counter[tuple[str, ...]] = collections.Counter(
        (tasks[rec.job_id],) for rec in app.events(types=[event_type])
    )
    return {key: float(n) for key, n in counted.items()}


APP = """
    import datetime as dt
    import os

    from conductor import Conductor
    from conductor import task


    @task("quick_fail", backoff=0.01)
    def quick_fail(**_):
        raise RuntimeError("always")


    @task("spawn")
    def spawn(**_):
        # Enqueues and cancels from inside the worker, so the worker's process counts both.
        with Conductor(os.environ["CONDUCTOR_DB"]) as app:
            child = app.enqueue({"task": "child"}, delay=dt.timedelta(hours=1))
            app.cancel(child)
"""


@pytest.fixture
def worker_process(
    db_path: Path, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        (tmp_path / "metrics_app.py").write_text(textwrap.dedent(APP))
        # The app's folder first, then the tree under test (a worktree, say).
        path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path, "CONDUCTOR_DB": str(db_path)}
        log = (tmp_path / "worker.log").open("wb")
        process = subprocess.Popen(
            [CONDUCTOR, "worker", "--db", str(db_path), "--app", "metrics_app", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(300)


def test_a_worker_serves_prometheus_metrics_that_agree_with_the_ledger(
    db_path: Path, tmp_path: Path, worker_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        app.enqueue_many([{"task": "noop"}] * 3)
        app.enqueue({"task": "quick_fail"}, max_retries=2)
        app.enqueue({"task": "spawn"})
        sleeper = app.enqueue({"task": "sleep", "seconds": 30})
        app.enqueue({"task": "noop"}, queue="elsewhere")  # no worker serves it: it ages
        aging_since = time.monotonic()
        port = free_port()
        worker = worker_process("--metrics-port", str(port), "--concurrency", "4")

        wait_until(lambda: app.job(sleeper)["status"] == "in_progress", what="the sleeper")
        app.cancel(sleeper)  # by this process: not the worker's count to make

        def finished() -> bool:
            statuses = {row["status"] for row in app.jobs(queue="default")}
            ignored = [rec.type for rec in app.ledger.history(sleeper)][-1] == "result_ignored"
            return statuses <= {"completed", "failed", "cancelled"} and ignored

        wait_until(finished, what="every job of the default queue to finish")
        started = ledger_counts(app, "claimed")
        expected = {
            "conductor_job_completed_total": ledger_counts(app, "completed"),
            "conductor_job_failed_total": ledger_counts(app, "failed"),
            "conductor_job_retried_total": ledger_counts(app, "retry_scheduled"),
            # Enqueued and cancelled inside the worker (by `spawn`), so counted there; the
            # test's own enqueues and its cancel of the sleeper count in this process.
            "conductor_job_enqueued_total": {("child",): 1.0},
            "conductor_job_cancelled_total": {("child",): 1.0},
        }
        assert expected["conductor_job_completed_total"] == {("noop",): 3.0, ("spawn",): 1.0}
        assert expected["conductor_job_retried_total"] == {("quick_fail",): 2.0}
        assert sum(started.values()) == 8, "3 noop, 3 quick_fail, spawn, and the sleeper"

        def agrees() -> list[Sample] | None:
            text = try_scrape(port)
            if text is None:
                return None
            samples = parse(text)
            counted = {name: by(samples, name, "conductor_task") for name in expected}
            done = by(samples, "conductor_attempt_duration_seconds_count", "conductor_task")
            return samples if counted == expected and done == started else None

        samples = wait_until(agrees, what="the scrape to agree with the ledger")
        wal = os.path.getsize(f"{db_path}-wal")
        stats = json.loads(run_cli("stats", "--json", db=db_path).stdout)
        counts = app.ledger.counts()

    assert by(samples, "conductor_job_rescued_total") == {}
    assert by(samples, "conductor_queue_wait_seconds_count", "conductor_task") == started
    failures = by(samples, "conductor_attempt_duration_seconds_count", "error_type")
    assert failures == {("",): 5.0, ("builtins.RuntimeError",): 3.0}
    assert by(samples, "conductor_attempt_duration_seconds_bucket", "le")[("+Inf",)] == 8.0
    gauge = by(
        samples, "conductor_jobs", "conductor_queue", "conductor_task", "conductor_job_status"
    )
    assert gauge == {(q, t, s): float(n) for q, t, s, n in counts}
    statuses = by(samples, "conductor_jobs", "conductor_job_status")
    assert {s: n for (s,), n in statuses.items()} == {
        s: float(stats[s]) for s in STATUSES if stats[s]
    }
    ages = by(samples, "conductor_oldest_due_age_seconds", "conductor_queue")
    assert ages[("default",)] == 0.0
    # Bounded by the time measured since the enqueue, however slow the machine (+ 1 s: the
    # enqueue's stamp comes from the wall clock, this from the monotonic one).
    assert 0.0 < ages[("elsewhere",)] <= time.monotonic() - aging_since + 1.0
    assert by(samples, "conductor_sqlite_wal_size_bytes") == {(): float(wal)}
    assert any(name == "target_info" for name, _, _ in samples)
    assert any(name == "process_resident_memory_bytes" for name, _, _ in samples)

    # Loopback only, by default: the one listening socket is bound to 127.0.0.1.
    assert listening_on(port) == {"127.0.0.1"}
    assert (
        f"metrics: serving http://127.0.0.1:{port}/metrics" in (tmp_path / "worker.log").read_text()
    )

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(300) == 0
    assert listening_on(port) == set()


def test_a_taken_metrics_port_fails_the_worker_before_it_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "never.db"
        result = run_cli("worker", "--burst", "--metrics-port", str(port), db=db)
    assert result.code == 1
    assert result.stderr.startswith(f"error: cannot serve metrics on 127.0.0.1:{port}: ")
    assert result.stderr.count("\n") == 1
    assert not db.exists()


# -- conductor metrics -------------------------------------------------------------------
def test_conductor_metrics_prints_the_ledger_as_prometheus_text(
    db_path: Path, registry: Registry, start_engine: Callable[..., RunningEngine]
) -> None:
    @registry.task("ok")
    def ok() -> None:
        pass

    @registry.task("bad", backoff=0.0)
    def bad() -> None:
        raise ValueError("no")

    with Conductor(settings=Settings(db=str(db_path))) as app:
        app.enqueue_many([{"task": "ok"}] * 2)
        app.enqueue({"task": "bad"}, max_retries=1)
        app.cancel(app.enqueue({"task": "ok"}, queue="later", delay=dt.timedelta(hours=1)))
        app.enqueue({"task": "ok"}, queue="later")
        running = start_engine()
        wait_until(
            lambda: {r["status"] for r in app.jobs(queue="default")} == {"completed", "failed"},
            what="the default queue to finish",
        )
        assert running.stop() == 0

        result = run_cli("metrics", db=db_path)
        assert result.code == 0, result.stderr
        samples = parse(result.stdout)
        for event_type, name in (
            ("enqueued", "conductor_job_enqueued_total"),
            ("completed", "conductor_job_completed_total"),
            ("failed", "conductor_job_failed_total"),
            ("retry_scheduled", "conductor_job_retried_total"),
            ("cancelled", "conductor_job_cancelled_total"),
        ):
            assert by(samples, name, "conductor_task") == ledger_counts(app, event_type), name
        assert by(samples, "conductor_job_enqueued_total", "conductor_queue") == {
            ("default",): 3.0,
            ("later",): 2.0,
        }
        gauge = by(
            samples,
            "conductor_jobs",
            "conductor_queue",
            "conductor_task",
            "conductor_job_status",
        )
        assert gauge == {(q, t, s): float(n) for q, t, s, n in app.ledger.counts()}
        ages = by(samples, "conductor_oldest_due_age_seconds", "conductor_queue")
        assert ages[("default",)] == 0.0
        assert ages[("later",)] > 0.0
        wal = Path(f"{db_path}-wal")
        size = wal.stat().st_size if wal.exists() else 0
        assert by(samples, "conductor_sqlite_wal_size_bytes") == {(): float(size)}
    assert not any(name.startswith("conductor_attempt_duration") for name, _, _ in samples)
    assert not any(name == "target_info" for name, _, _ in samples)


def test_conductor_metrics_on_a_missing_database_says_so_and_creates_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "missing.db"
    result = run_cli("metrics", db=db)
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: no conductor database at {db}")
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
