"""What only the PostgreSQL backend can show: its schema, its triggers, its chain lock under
writers in several processes, and the URL it is given. Against the real server."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from typing import Any

import psycopg
import pytest

from conductor import Conductor
from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.config import Settings
from conductor.domain.errors import (
    DatabaseNotFound,
    InvalidInput,
    InvalidTransition,
    NotAConductorDatabase,
    SchemaTooNew,
)
from conductor.domain.events import JobCompleted, NewEvent
from conductor.domain.payloads import parse_payload
from conductor.ledger.postgres import PostgresLedger
from conductor.ledger.postgres.connection import parse
from tests.conftest import run_cli

LEASE = dt.timedelta(seconds=30)


def open_app(url: str) -> Conductor:
    return Conductor(settings=Settings(db=url))


def raw(url: str) -> psycopg.Connection[Any]:
    """A plain connection to the test's schema, as an operator's psql session would be."""
    target = parse(url)
    return psycopg.connect(
        target.conninfo, autocommit=True, options=f"-c search_path={target.schema}"
    )


def test_the_database_refuses_to_update_delete_or_truncate_events(pg_url: str) -> None:
    with open_app(pg_url) as app:
        app.enqueue({"task": "t"})
    with raw(pg_url) as conn:
        for statement in (
            "UPDATE events SET data = '{}'",
            "DELETE FROM events",
            "TRUNCATE events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_tampering_behind_the_triggers_is_named_by_seq(pg_url: str) -> None:
    with open_app(pg_url) as app:
        app.enqueue_many([{"task": "t"}] * 3)
    with raw(pg_url) as conn:
        # A superuser can switch triggers off: the chain is what catches that.
        conn.execute("SET session_replication_role = replica")
        conn.execute("""UPDATE events SET data = replace(data, '"t"', '"u"') WHERE seq = 2""")
    with open_app(pg_url) as app:
        report = app.audit()
    assert report.first_bad_seq == 2
    assert report.problem is not None
    assert "altered" in report.problem


def test_writers_in_several_processes_keep_one_gapless_verifiable_chain(pg_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_enqueue_batches, args=(pg_url, 40)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(300)
        assert process.exitcode == 0
    with open_app(pg_url) as app:
        events = app.events()
        report = app.audit()
        assert app.verify_projections() == []
    assert [rec.seq for rec in events] == list(range(1, 4 * 40 * 5 + 1))
    assert len({rec.job_id for rec in events}) == 4 * 40 * 5
    assert report.ok
    assert report.events == 800


def _enqueue_batches(url: str, batches: int) -> None:
    with open_app(url) as app:
        for _ in range(batches):
            app.enqueue_many([{"task": "t"}] * 5)


def _claim_until_empty(url: str, worker: str, out: Any) -> None:
    ledger = PostgresLedger(Settings(db=url), create=False)
    claimed: list[int] = []
    now = dt.datetime.now(dt.UTC)
    while batch := ledger.claim(worker=worker, queues=["default"], limit=7, now=now, lease=LEASE):
        claimed.extend(job.id for job in batch)
    ledger.close()
    out.put(claimed)


def test_concurrent_processes_claim_each_job_exactly_once(pg_url: str) -> None:
    with open_app(pg_url) as app:
        ids = app.enqueue_many([{"task": "t"}] * 600)
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [
        context.Process(target=_claim_until_empty, args=(pg_url, f"w{n}", results))
        for n in range(4)
    ]
    for process in workers:
        process.start()
    claimed = [results.get(timeout=300) for _ in workers]
    for process in workers:
        process.join(timeout=300)
        assert process.exitcode == 0
    assert sorted(job_id for part in claimed for job_id in part) == sorted(ids)
    with open_app(pg_url) as app:
        assert len(app.events(types=["claimed"])) == 600
        assert app.audit().ok
        assert app.verify_projections() == []


def test_a_refused_append_leaves_no_event_and_no_gap_in_seq(pg_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with open_app(pg_url) as app:
        first = app.enqueue({"task": "t"})
        fresh = decide.enqueue(
            parse_payload({"task": "t"}, 1 << 20),
            queue="default",
            priority=1,
            max_retries=0,
            run_at=None,
            now=now,
        )
        illegal = NewEvent(job_id=first, at=stamp(now), event=JobCompleted(attempt=1))
        with pytest.raises(InvalidTransition):
            app.ledger.append([fresh, illegal])
        # The refused batch took a job id from the sequence (a gap in ids, as with any
        # PostgreSQL serial) but no seq: the log has no gap.
        second = app.enqueue({"task": "t"})
        assert second > first
        assert [rec.seq for rec in app.events()] == [1, 2]
        assert app.audit().ok


def test_reads_never_create_a_ledger(pg_url: str) -> None:
    with pytest.raises(DatabaseNotFound, match="no conductor ledger"):
        Conductor(settings=Settings(db=pg_url), create=False)
    done = run_cli("jobs", "--db", pg_url)
    assert done.code == 1
    assert done.stderr.startswith("error: no conductor ledger at postgresql://")
    assert len(done.stderr.strip().splitlines()) == 1
    with raw(pg_url) as conn:
        schema = parse(pg_url).schema
        found = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,))
        assert found.fetchone() == (0,)


def test_a_schema_holding_other_tables_is_refused(pg_url: str) -> None:
    schema = parse(pg_url).schema
    with raw(pg_url) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute("CREATE TABLE jobs (id int)")
    with pytest.raises(NotAConductorDatabase, match="not conductor's"):
        open_app(pg_url)


def test_an_application_table_named_jobs_elsewhere_does_not_matter(pg_url: str) -> None:
    # conductor's tables live in their own schema: an application's public.jobs is not
    # read, written or refused.
    with raw(pg_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.jobs (id int, note text)")
    with open_app(pg_url) as app:
        job = app.enqueue({"task": "t"})
        assert app.job(job)["status"] == "pending"


def test_a_newer_schema_is_refused_in_one_line(pg_url: str) -> None:
    with open_app(pg_url):
        pass
    with raw(pg_url) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(SchemaTooNew, match="schema version 999"):
        open_app(pg_url)
    done = run_cli("enqueue", "--db", pg_url, "--payload", '{"task": "t"}')
    assert done.code == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "newer than this conductor understands" in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/test?schema=Bad-Name",
        "postgresql://postgres@127.0.0.1:5432/test?schema=",
    ],
)
def test_a_bad_schema_name_is_refused_in_one_line(url: str) -> None:
    with pytest.raises(InvalidInput, match="invalid schema"):
        parse(url)
    done = run_cli("jobs", "--db", url)
    assert done.code != 0
    assert done.stderr.count("\n") == 1
    assert "invalid schema" in done.stderr


def test_the_url_shown_in_messages_carries_no_password() -> None:
    target = parse("postgresql://app:s3cret@db.example:6543/jobs?schema=work&sslmode=require")
    assert target.shown == "postgresql://app@db.example:6543/jobs?schema=work"
    assert "s3cret" not in target.shown
    assert "schema" not in target.conninfo
    assert "sslmode=require" in target.conninfo


def test_an_unknown_database_is_one_line(pg_database: str) -> None:
    url = pg_database.rsplit("/", 1)[0] + "/conductor_no_such_database"
    done = run_cli("jobs", "--db", url)
    assert done.code == 1
    assert done.stderr.startswith("error: no PostgreSQL database at postgresql://")
    assert len(done.stderr.strip().splitlines()) == 1
