"""Transactional enqueue on a real PostgreSQL server: a job enqueued through the caller's
own psycopg connection commits or rolls back with the caller's business data, and a
rolled-back job leaves no job, no event and a chain that verifies."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.errors import InvalidInput, LedgerError
from conductor.ledger.base import EventFilter
from conductor.ledger.postgres.connection import parse
from tests.engine.conftest import WorkerProcesses, wait_until


@pytest.fixture
def app(pg_url: str) -> Iterator[Conductor]:
    with Conductor(pg_url) as handle:
        yield handle


@pytest.fixture
def orders(pg_database: str) -> str:
    """A business table of the application's own, outside conductor's schema."""
    name = f"orders_{secrets.token_hex(4)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{name} (id serial PRIMARY KEY, job_id bigint)")
    return name


def enqueued_ids(app: Conductor) -> Counter[int]:
    """How many `enqueued` events the log holds for each job id."""
    return Counter(rec.job_id for rec in app.ledger.read(EventFilter(types=("enqueued",))))


def assert_clean(app: Conductor) -> None:
    assert app.audit().ok
    assert app.verify_projections() == []


def test_a_committed_job_is_run_by_a_worker_process(
    app: Conductor, pg_database: str, pg_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(pg_database) as conn:
        job_id = app.enqueue({"task": "noop"}, connection=conn)
        conn.commit()
    drain = WorkerProcesses(pg_url, tmp_path).start("--burst")  # type: ignore[arg-type]
    assert drain.wait(300) == 0
    assert app.job(job_id)["status"] == "completed"
    assert enqueued_ids(app) == {job_id: 1}
    assert_clean(app)


def test_a_rolled_back_job_leaves_no_job_no_event_and_a_chain_that_verifies(
    app: Conductor, pg_database: str
) -> None:
    kept = app.enqueue({"task": "noop"})
    with psycopg.connect(pg_database) as conn:
        lost = app.enqueue_many([{"task": "noop"}, {"task": "noop"}], connection=conn)
        conn.rollback()
    assert app.jobs() == [app.job(kept)]
    for job_id in lost:
        assert app.ledger.history(job_id) == []
    assert app.ledger.last_seq() == 1
    assert app.ledger.ingest(app.clock.now()) == 0
    assert_clean(app)


def test_a_business_row_and_its_job_commit_together_or_not_at_all(
    app: Conductor, pg_database: str, orders: str
) -> None:
    with psycopg.connect(pg_database) as conn:
        with conn.transaction():
            job_id = app.enqueue({"task": "noop", "order": 1}, connection=conn)
            conn.execute(f"INSERT INTO {orders} (job_id) VALUES (%s)", (job_id,))
        doomed: list[int] = []
        with pytest.raises(ZeroDivisionError):
            place_order_then_fail(app, conn, orders, doomed)
        stored = [row[0] for row in conn.execute(f"SELECT job_id FROM {orders}")]
    assert stored == [job_id]
    assert [row["id"] for row in app.jobs()] == [job_id]
    assert app.ledger.history(doomed[0]) == []
    assert_clean(app)


def place_order_then_fail(
    app: Conductor, conn: psycopg.Connection[tuple[object, ...]], orders: str, ids: list[int]
) -> None:
    """Business code that writes its row and its job, then fails inside the transaction."""
    with conn.transaction():
        ids.append(app.enqueue({"task": "noop", "order": 2}, connection=conn))
        conn.execute(f"INSERT INTO {orders} (job_id) VALUES (%s)", (ids[0],))
        raise ZeroDivisionError


def test_the_job_exists_for_readers_once_committed(app: Conductor, pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        job_id = app.enqueue({"task": "noop"}, connection=conn)
        with Conductor(app.settings.db) as other:
            assert other.jobs() == []  # not committed: invisible to everyone else
        conn.commit()
    with Conductor(app.settings.db) as reader:
        assert reader.job(job_id)["status"] == "pending"
    assert enqueued_ids(app) == {job_id: 1}


def test_an_autocommit_connection_commits_the_jobs_at_once(
    app: Conductor, pg_database: str
) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        ids = app.enqueue_many([{"task": "noop"}] * 3, connection=conn)
    assert [row["id"] for row in app.jobs()] == ids


def test_an_invalid_payload_is_refused_as_enqueue_refuses_it_and_the_transaction_goes_on(
    app: Conductor, pg_database: str, orders: str
) -> None:
    with psycopg.connect(pg_database) as conn:
        conn.execute(f"INSERT INTO {orders} (job_id) VALUES (0)")
        with pytest.raises(InvalidInput, match="appears more than once"):
            app.enqueue('{"task": "noop", "task": "fail"}', connection=conn)
        with pytest.raises(InvalidInput, match="invalid queue"):
            app.enqueue({"task": "noop"}, queue="no spaces", connection=conn)
        conn.commit()
        assert conn.execute(f"SELECT count(*) FROM {orders}").fetchone() == (1,)
    assert app.jobs() == []


def test_a_connection_that_is_not_psycopg_or_a_sqlite_ledger_is_refused_in_one_line(
    app: Conductor, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="expected a psycopg 3 connection"):
        app.enqueue({"task": "noop"}, connection=object())
    with (
        Conductor(settings=Settings(db=str(tmp_path / "c.db"))) as lite,
        pytest.raises(InvalidInput, match="needs a PostgreSQL ledger"),
    ):
        lite.enqueue({"task": "noop"}, connection=object())


def test_a_connection_to_a_database_without_the_schema_is_refused_naming_it(
    app: Conductor, pg_database: str
) -> None:
    other = app.settings.db.replace("schema=", "schema=x")
    with (
        Conductor(other) as elsewhere,
        psycopg.connect(pg_database) as conn,
        conn.transaction(),
    ):
        conn.execute(f'DROP SCHEMA "{parse(other).schema}" CASCADE')
        with pytest.raises(LedgerError, match="has no conductor schema"):
            elsewhere.enqueue({"task": "noop"}, connection=conn)


PRODUCER = """
import json, sys
import psycopg
from conductor import Conductor

url, database, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
committed, rolled_back = [], []
with Conductor(url) as app, psycopg.connect(database) as conn:
    for n in range(count):
        job_id = app.enqueue({"task": "noop", "n": n}, connection=conn)
        if n % 3 == 2:
            conn.rollback()
            rolled_back.append(job_id)
        else:
            conn.commit()
            committed.append(job_id)
print(json.dumps({"committed": committed, "rolled_back": rolled_back}))
"""


def test_concurrent_transactional_enqueues_from_many_processes_enter_the_log_once_each(
    app: Conductor, pg_database: str, pg_url: str, tmp_path: Path
) -> None:
    app.enqueue({"task": "noop"})  # the schema exists before anyone ingests
    workers = WorkerProcesses(pg_url, tmp_path, "--concurrency", "4")  # type: ignore[arg-type]
    try:
        for _ in range(2):
            workers.start()
        producers = [
            subprocess.Popen(
                [sys.executable, "-c", PRODUCER, pg_url, pg_database, "60"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [json.loads(p.communicate(timeout=300)[0]) for p in producers]
        assert all(p.returncode == 0 for p in producers)
        committed = [i for r in results for i in r["committed"]]
        rolled_back = [i for r in results for i in r["rolled_back"]]
        assert len(set(committed)) == len(committed) == 4 * 40
        wait_until(
            lambda: app.stats().overall.completed == len(committed) + 1,
            timeout=300,
            what="every committed job to complete",
        )
        for process in workers.processes:
            process.send_signal(signal.SIGTERM)
            assert process.wait(300) == 0
    finally:
        workers.stop_all()
    counts = enqueued_ids(app)
    assert all(counts[job_id] == 1 for job_id in committed)
    assert not any(job_id in counts for job_id in rolled_back)
    assert sum(counts.values()) == len(committed) + 1
    assert_clean(app)


def test_an_idle_worker_runs_a_job_committed_after_its_queue_ran_dry(
    app: Conductor, pg_database: str, pg_url: str, tmp_path: Path
) -> None:
    workers = WorkerProcesses(pg_url, tmp_path)  # type: ignore[arg-type]
    try:
        workers.start()
        first = app.enqueue({"task": "noop"})
        wait_until(lambda: app.job(first)["status"] == "completed", what="the first job")
        # Its claims now come back empty: only a tick or a wake-up makes it look again.
        with psycopg.connect(pg_database) as conn:
            job_id = app.enqueue({"task": "noop"}, connection=conn)
            conn.commit()
        wait_until(
            lambda: (app.ledger.job(job_id) or {}).get("status") == "completed",
            timeout=300,
            what="the worker to take in and run the committed job",
        )
    finally:
        workers.stop_all()
