"""Real `conductor worker` processes on one ledger: wake-ups, SIGKILL, SIGTERM, races."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.ledger.open import is_postgres
from tests import gated_tasks
from tests.conftest import CONDUCTOR, run_cli
from tests.engine.conftest import WorkerProcesses, attempt_starts, wait_until
from tests.engine.freeze import freeze_mid_attempt


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(db, tmp_path)
    yield pool
    pool.stop_all()


def open_app(db: Path | str) -> Conductor:
    return Conductor(settings=Settings(db=str(db)))


def assert_clean(db: str) -> None:
    verify = run_cli("replay", "--verify", db=db)
    assert verify.code == 0, verify.stdout
    audit = run_cli("audit", "verify", db=db)
    assert audit.code == 0, audit.stdout


@pytest.mark.sqlite_only("the wake-up sockets' directory is keyed by the SQLite file's path")
def test_a_job_enqueued_by_another_process_is_noticed_through_the_wake_up(
    db: str, workers: WorkerProcesses
) -> None:
    with open_app(db):
        pass
    workers.start("--poll", "120s")
    with open_app(db) as app:
        # Until the worker's socket exists a signal would be lost; the 120 s poll then
        # makes the test fail by its deadline rather than pass slowly.
        wait_until(lambda: app.ledger.last_seq() == 0 and _listening(db), what="socket")
        job_id = app.enqueue({"task": "noop"})
        wait_until(
            lambda: app.job(job_id)["status"] == "completed",
            timeout=300,
            what="the wake-up to deliver the job",
        )


def _listening(db: str) -> bool:
    from conductor.ledger import wakeup

    folder = wakeup.directory(db)
    return folder.exists() and any(folder.iterdir())


def test_sigkill_mid_run_loses_nothing_and_runs_each_job_to_one_completion(
    db: str, tmp_path: Path
) -> None:
    # Jobs that wait for the test: however fast the backend and the machine, the victim
    # still holds attempts when it is frozen (timed jobs all ended first on PostgreSQL).
    gate = tmp_path / "gate"
    with open_app(db) as app:
        app.enqueue_many([{"task": "gated", "gate": str(gate)}] * 300)
    workers = WorkerProcesses(db, tmp_path, "--app", gated_tasks.APP, env=gated_tasks.app_env())
    try:
        victim = workers.start("--concurrency", "8")
        survivor = workers.start("--concurrency", "8")
        with open_app(db) as app:
            # Killed at an instant it holds attempts: frozen first, its in-flight attempts
            # read from the ledger, then SIGKILL.
            held = freeze_mid_attempt(victim, app)
            victim.send_signal(signal.SIGKILL)
            victim.wait(300)
            gate.touch()
            drain = workers.start("--burst")
            assert drain.wait(300) == 0
            survivor.send_signal(signal.SIGTERM)
            assert survivor.wait(300) == 0
            stats = app.stats().overall
            assert (stats.completed, stats.in_progress, stats.pending) == (300, 0, 0)
            completed = collections.Counter(r.job_id for r in app.events(types=["completed"]))
            assert set(completed) == set(range(1, 301))
            assert set(completed.values()) == {1}
            started = collections.Counter(r.job_id for r in app.events(types=["claimed"]))
            interrupted = {job_id for job_id, n in started.items() if n > 1}
            rescued = {r.job_id for r in app.events(types=["rescued", "released"])}
            assert interrupted == rescued
            assert {job for job, _ in held} <= interrupted, "each held attempt ran again"
    finally:
        workers.stop_all()
    assert_clean(db)


def test_three_processes_never_start_one_attempt_twice(db: str, workers: WorkerProcesses) -> None:
    with open_app(db) as app:
        app.enqueue_many([{"task": "noop"}] * 3000)
    drains = [workers.start("--burst", "--concurrency", "8") for _ in range(3)]
    for process in drains:
        assert process.wait(300) == 0
    with open_app(db) as app:
        starts = attempt_starts(app)
        assert len(starts) == 3000
        assert set(starts.values()) == {1}
        assert app.stats().overall.completed == 3000
    assert_clean(db)


def test_sigterm_finishes_or_releases_in_flight_jobs_and_exits_zero(
    db: str, workers: WorkerProcesses
) -> None:
    with open_app(db) as app:
        app.enqueue_many([{"task": "sleep", "seconds": 60}] * 2 + [{"task": "noop"}] * 3)
    worker = workers.start("--concurrency", "2", "--grace", "0.3s")
    with open_app(db) as app:
        wait_until(lambda: app.stats().overall.in_progress >= 2, what="jobs in flight")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(300) == 0
        stats = app.stats().overall
        assert stats.in_progress == 0
        assert stats.pending + stats.completed == 5
        assert len(app.events(types=["released"])) >= 2
    assert_clean(db)


def test_a_second_signal_forces_the_exit_without_waiting_out_the_grace(
    db: str, workers: WorkerProcesses
) -> None:
    with open_app(db) as app:
        app.enqueue_many([{"task": "sleep", "seconds": 600}])
    worker = workers.start("--concurrency", "1", "--grace", "600s")
    with open_app(db) as app:
        wait_until(lambda: app.stats().overall.in_progress == 1, what="the job in flight")
        worker.send_signal(signal.SIGINT)
        wait_until(lambda: "stopping" in workers.log(0), what="the first signal to land")
        worker.send_signal(signal.SIGINT)
        assert worker.wait(300) == 0
        assert app.stats().overall.in_progress == 0
        assert app.job(1)["status"] == "pending"
        assert "released" in [r.type for r in app.ledger.history(1)]
    assert is_postgres(db) or os.path.exists(db)


def test_json_logs_carry_one_line_per_transition(db: str, workers: WorkerProcesses) -> None:
    import json

    with open_app(db) as app:
        app.enqueue({"task": "fail", "message": "boom"}, max_retries=0)
    process = subprocess.run(
        [CONDUCTOR, "worker", "--db", db, "--burst", "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0
    lines = [json.loads(line) for line in process.stderr.splitlines()]
    transitions = [line for line in lines if "event" in line]
    assert [(t["job"], t["task"], t["event"], t["status"], t["attempt"]) for t in transitions] == [
        (1, "fail", "run_started", "in_progress", 1),
        (1, "fail", "attempt_failed", "in_progress", 1),
        (1, "fail", "failed", "failed", 1),
    ]
    assert transitions[1]["error"] == "TaskFailedError: boom"
    assert "duration_ms" in transitions[2]
    quiet = subprocess.run(
        [CONDUCTOR, "worker", "--db", db, "--burst", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_the_demo_runs_every_job_to_an_end(tmp_path: Path) -> None:
    # A hang guard above the demo's own 60 s bound: its flaky job retries with random backoff.
    result = run_cli("demo", db=tmp_path / "demo.db", timeout=300)
    assert result.code == 0, result.stderr
    assert "18/18 finished" in result.stderr
    with open_app(tmp_path / "demo.db") as app:
        stats = app.stats().overall
    assert stats.total == 18
    assert stats.pending == stats.in_progress == 0
    assert stats.failed >= 1  # the job that always fails


def test_bench_reports_every_figure(tmp_path: Path) -> None:
    import json

    result = run_cli(
        "bench",
        "--jobs",
        "300",
        "--stream-seconds",
        "0.5",
        "--processes",
        "2",
        "--backlog",
        "2000",
        "--json",
        timeout=900,  # a hang guard: this bench takes ~11 s idle, several times that loaded
    )
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["enqueue"]["enqueue_many_jobs_per_s"] > 0
    assert report["enqueue"]["enqueue_file_jobs_per_s"] > 0
    assert report["enqueue"]["enqueue_file_batch_jobs_per_s"] > 0
    assert report["drain"]["jobs_per_s"] > 0
    assert report["drain"]["lifecycle_events_per_s"] == 4 * report["drain"]["jobs_per_s"]
    assert 0 < report["sleep"]["share_of_ideal"] <= 1.05
    assert 0 < report["sleep"]["bare_jobs_per_s"] <= report["sleep"]["ideal_jobs_per_s"] * 1.05
    for where in ("in_process", "cross_process"):
        latency = report["pickup_latency"][where]
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
    processes = report["processes"]
    assert set(processes["jobs_per_s"]) == {"1", "2"}
    assert processes["speedup"] > 0
    assert set(processes["drain_jobs_per_s"]) == {"1", "2"}
    assert processes["drain_speedup"] > 0
    assert processes["concurrency_per_process"] == 1
    assert set(processes["bare_jobs_per_s"]) == {"1", "2"}
    assert processes["bare_speedup"] > 0
    scale = report["scale"]
    assert scale["jobs_processed"] == 2000  # every job of the backlog ran
    assert scale["replay_events"] >= 2000 * 3  # 3 each, and the releases of a stop
    assert scale["replay_events_per_s"] > 0
    assert scale["stats_ms"] > 0
    assert scale["jobs_first_page_ms"] > 0
    assert all(v and v > 0 for v in scale["worker_peak_rss_mib"].values())
    assert len(scale["worker_peak_rss_mib"]) == 2
