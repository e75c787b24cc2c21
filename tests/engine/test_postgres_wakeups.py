"""Wake-ups on PostgreSQL: a commit's NOTIFY reaches a worker's LISTEN session, from any
process; a lost session is re-opened while waits fall back to the poll.

The engines here poll (and run maintenance) once an hour, so a job they pick up was
announced by a notification: the hour is what separates "woken" from "polled", and the
tests' deadlines are hang guards far below it, never measurements.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pykka
import pytest

from conductor import Conductor
from conductor.domain.config import Settings, WorkerConfig
from conductor.engine.runtime import Engine
from conductor.ledger import wakeup
from conductor.ledger.postgres.connection import parse
from conductor.ledger.postgres.listen import PostgresListener, application_name
from tests.conftest import run_cli
from tests.engine.conftest import WorkerProcesses, wait_until

HOUR = 3600.0


def _backends(url: str) -> list[int]:
    """The server processes of the sessions listening for `url`'s schema."""
    target = parse(url)
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (application_name(target.schema),),
        ).fetchall()
    return [row[0] for row in rows]


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(parse(url).conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _enqueue_elsewhere(url: str) -> int:
    """`conductor enqueue` in a process of its own, as another host's application would."""
    result = run_cli("enqueue", "--payload", '{"task": "noop"}', "--db", url, "--json")
    assert result.code == 0, result.stderr
    [job_id] = json.loads(result.stdout)["ids"]
    return int(job_id)


@pytest.fixture
def hourly_engine(pg_url: str) -> Iterator[Engine]:
    """An engine in this process that, without wake-ups, would look for work once an hour."""
    settings = Settings(db=pg_url)
    config = WorkerConfig(
        concurrency=2,
        poll_interval=HOUR,
        maintenance_interval=HOUR,
        grace=dt.timedelta(seconds=5),
    )
    engine = Engine(settings, config)
    engine.start()  # listening once it returns
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    yield engine
    engine.request_stop(force=True)
    thread.join(60)
    pykka.ActorRegistry.stop_all()


def test_a_job_enqueued_by_another_process_wakes_a_worker_that_polls_hourly(
    pg_url: str, hourly_engine: Engine
) -> None:
    job_id = _enqueue_elsewhere(pg_url)
    with Conductor(settings=Settings(db=pg_url)) as app:
        wait_until(lambda: app.job(job_id)["status"] == "completed", what="the notification")


def test_the_worker_listens_again_after_its_session_is_terminated(
    pg_url: str, hourly_engine: Engine
) -> None:
    [first] = wait_until(lambda: _backends(pg_url), what="the listening session")
    _terminate(pg_url, first)
    wait_until(
        lambda: (found := _backends(pg_url)) and first not in found,
        what="a new listening session",
    )
    job_id = _enqueue_elsewhere(pg_url)
    with Conductor(settings=Settings(db=pg_url)) as app:
        wait_until(lambda: app.job(job_id)["status"] == "completed", what="the notification")
    assert not hourly_engine.stop_requested.is_set()


def test_a_worker_process_picks_up_a_job_enqueued_by_another_process(
    pg_url: str, tmp_path: Path
) -> None:
    with Conductor(settings=Settings(db=pg_url)):
        pass  # the schema exists before the worker starts
    workers = WorkerProcesses(pg_url, tmp_path)  # type: ignore[arg-type]
    try:
        workers.start("--poll", "60s")
        # A notification reaches only a session that already listens.
        wait_until(lambda: wakeup.listening(pg_url), what="the worker to listen")
        job_id = _enqueue_elsewhere(pg_url)
        with Conductor(settings=Settings(db=pg_url)) as app:
            wait_until(lambda: app.job(job_id)["status"] == "completed", what="the job")
    finally:
        workers.stop_all()


def test_a_listener_is_woken_by_a_commit_again_after_its_session_was_terminated(
    pg_url: str,
) -> None:
    with Conductor(settings=Settings(db=pg_url)) as app:
        listener = PostgresListener(pg_url)
        try:
            assert listener.wait(0) is False
            app.enqueue({"task": "noop"})
            assert listener.wait(120) is True
            old = listener.backend_pid
            assert old is not None
            _terminate(pg_url, old)
            # Losing the session raises nothing; the wait that adopts the new one says
            # it was woken, since notifications of the gap are lost.
            wait_until(lambda: listener.wait(0.05) and listener.backend_pid not in (None, old))
            while listener.wait(0):
                pass
            app.enqueue({"task": "noop"})
            assert listener.wait(120) is True
        finally:
            listener.close()


def test_without_a_server_waits_return_at_their_timeout_and_wake_still_works() -> None:
    listener = PostgresListener("postgresql://nobody@127.0.0.1:1/none?schema=gone")
    try:
        assert listener.backend_pid is None
        assert listener.wait(0.01) is False
        listener.wake()
        assert listener.wait(120) is True
    finally:
        listener.close()
    listener.wake()  # after close: nothing to wake, and no error


def test_notify_does_nothing_on_postgres_and_leaves_no_socket_folder(pg_url: str) -> None:
    assert wakeup.notify(pg_url) == 0
    assert not wakeup.directory(pg_url).exists()


def test_a_notification_outside_a_commit_wakes_the_listeners_and_a_lost_server_is_no_error(
    pg_url: str,
) -> None:
    """What a burst worker sends once its last attempt is settled: that commit notifies
    nobody, yet every burst worker's exit test must run again."""
    with Conductor(settings=Settings(db=pg_url)):
        listener = PostgresListener(pg_url)
        try:
            wait_until(lambda: listener.backend_pid is not None, what="the listening session")
            assert listener.wait(0) is False
            assert wakeup.notify(pg_url, by_commit=False) == 1
            assert listener.wait(120) is True
        finally:
            listener.close()
    assert wakeup.notify("postgresql://nobody@127.0.0.1:1/none?schema=gone", by_commit=False) == 0
