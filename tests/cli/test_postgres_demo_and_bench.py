"""`conductor demo` and `conductor bench` on PostgreSQL, as commands: `--db` or
CONDUCTOR_DB names the server, and the bench leaves no schema behind."""

from __future__ import annotations

import json

import psycopg

from conductor import Conductor
from conductor.domain.config import Settings
from tests.conftest import run_cli


def _schemas(database: str, prefix: str) -> list[str]:
    with psycopg.connect(database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}%",)
        ).fetchall()
    return [row[0] for row in rows]


def test_the_demo_runs_every_job_to_its_end_on_postgres_named_by_conductor_db(
    pg_url: str,
) -> None:
    result = run_cli("demo", env={"CONDUCTOR_DB": pg_url}, timeout=300)
    assert result.code == 0, result.stderr
    assert "18/18 finished" in result.stderr
    with Conductor(settings=Settings(db=pg_url)) as app:
        stats = app.stats().overall
    assert stats.total == 18
    assert stats.pending == stats.in_progress == 0
    assert stats.failed >= 1  # the job that always fails


def test_a_second_demo_on_the_same_schema_is_refused_and_adds_nothing(pg_url: str) -> None:
    with Conductor(settings=Settings(db=pg_url)) as app:
        app.enqueue({"task": "noop"})
    result = run_cli("demo", "--db", pg_url, timeout=300)
    assert result.code == 1
    assert result.stderr.startswith("error: ")
    assert "already holds 1 job" in result.stderr
    assert "Traceback" not in result.stderr
    with Conductor(settings=Settings(db=pg_url)) as app:
        assert app.stats().overall.total == 1


def test_a_small_bench_on_postgres_reports_every_figure_and_drops_its_schemas(
    pg_database: str,
) -> None:
    result = run_cli(
        "bench",
        "--db",
        pg_database,
        "--jobs",
        "100",
        "--stream-seconds",
        "0.3",
        "--rate",
        "50",
        "--processes",
        "2",
        "--backlog",
        "1000",
        "--json",
        timeout=900,  # a hang guard: about a minute on a loaded 2-core machine
    )
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "postgresql"
    assert report["synchronous_commit"] in {"on", "off", "local", "remote_write", "remote_apply"}
    assert report["enqueue"]["enqueue_many_jobs_per_s"] > 0
    assert report["enqueue"]["enqueue_file_jobs_per_s"] > 0
    assert report["drain"]["jobs_per_s"] > 0
    assert report["sleep"]["jobs_per_s"] > 0
    for where in ("in_process", "cross_process"):
        latency = report["pickup_latency"][where]
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
    assert set(report["processes"]["jobs_per_s"]) == {"1", "2"}
    assert report["scale"]["jobs_processed"] == 1000
    assert report["scale"]["replay_events"] >= 1000 * 3
    assert _schemas(pg_database, "bench_") == []


def test_bench_names_an_unreachable_server_in_one_line() -> None:
    result = run_cli("bench", "--db", "postgresql://postgres@127.0.0.1:1/test", "--jobs", "10")
    assert result.code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:1/")
    assert "expected a running server" in line
