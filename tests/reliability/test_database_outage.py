"""The database goes away under running workers (issue 14): a PostgreSQL restart mid-drain,
and an outage longer than a lease.

Each test runs a PostgreSQL server of its own (`private_postgres.py`): the shared server
serves every other test in parallel and must never be restarted. Workers are real
`conductor worker` processes; every wait polls the ledger, a worker's log or a journal
the handlers write, except the one the second test is about: the server stays down until
the wall clock is past every lease it could have granted.
"""

from __future__ import annotations

import collections
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.errors import DatabaseUnavailable
from tests.conftest import CONDUCTOR, run_cli
from tests.engine.conftest import wait_until
from tests.engine.freeze import freeze
from tests.gated_tasks import app_env
from tests.reliability.private_postgres import PrivatePostgres, private_postgres

__all__ = ["private_postgres"]

T = TypeVar("T")

JOBS = 3000
"""Short jobs drained by two workers while the server restarts."""
JOB_SECONDS = 0.02
"""Each job's sleep: 3,000 of them keep 2 x 4 slots busy for 7.5 s at the very least, so
the drain is still going when the restart (well under a second) cuts it."""
LEASE = 5.0
"""The second test's lease: its outage outlasts it."""
APP = "tests.reliability.outage_tasks"


class Reader:
    """Reads the ledger for the test; None while the server is away (the test process's
    own pooled connections are cut by a restart too)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._app: Conductor | None = None

    def __call__(self, read: Callable[[Conductor], T]) -> T | None:
        try:
            if self._app is None:
                self._app = Conductor(settings=Settings(db=self.url))
            return read(self._app)
        except DatabaseUnavailable:
            return None

    def get(self, read: Callable[[Conductor], T]) -> T:
        """`read`, once the server answers (the first read after a restart may meet a
        connection it cut)."""
        found: list[T] = []

        def attempt() -> bool:
            value = self(read)
            if value is not None:
                found.append(value)
            return value is not None

        wait_until(attempt, timeout=120, what="the private server to answer a read")
        return found[0]

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


class Workers:
    """`conductor worker` processes on one database, each logging to its own file."""

    def __init__(self, url: str, logs: Path, *args: str) -> None:
        self.url = url
        self.logs = logs
        self.args = args
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> list[subprocess.Popen[bytes]]:
        for _ in range(count):
            with (self.logs / f"worker-{len(self.processes)}.log").open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        [CONDUCTOR, "worker", "--db", self.url, "-q", *self.args],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=app_env(),
                    )
                )
        return self.processes

    def log(self, index: int) -> str:
        return (self.logs / f"worker-{index}.log").read_text()

    def logged(self, phrase: str) -> bool:
        """Whether every worker's log holds `phrase`."""
        return all(phrase in self.log(n) for n in range(len(self.processes)))

    def stop(self) -> list[int]:
        """SIGTERM every worker; their exit codes."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        return [process.wait(300) for process in self.processes]

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a frozen one dies only once thawed
                process.kill()
                process.wait(300)


@pytest.fixture
def server_and_reader(
    private_postgres: PrivatePostgres,
) -> Iterator[tuple[PrivatePostgres, Reader]]:
    """The private server and a reader of its `outage` schema."""
    reader = Reader(private_postgres.url(schema="outage"))
    yield private_postgres, reader
    reader.close()


def _count(reader: Reader, kind: str) -> int:
    return reader(lambda app: len(app.events(types=[kind]))) or 0


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
"""conductor's own log lines start with a timestamp; a library's warning does not."""


def _assert_one_outage_each(workers: Workers) -> None:
    """Exactly one "unreachable" and one "back" line per worker (one outage), no traceback,
    and nothing but conductor's own lines."""
    for n in range(len(workers.processes)):
        log = workers.log(n)
        lines = log.splitlines()
        assert [line for line in lines if not LOG_LINE.match(line)] == [], log[-3000:]
        assert sum("database unreachable" in line for line in lines) == 1, log[-3000:]
        assert sum("database back after" in line for line in lines) == 1, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


def _assert_ledger_sound(url: str, job_ids: list[int], reader: Reader) -> None:
    """One `completed` per job, the read models equal a rebuild, the chain verifies."""
    completed = collections.Counter(
        rec.job_id for rec in reader.get(lambda app: app.events(types=["completed"]))
    )
    assert sorted(completed) == sorted(job_ids)
    assert set(completed.values()) == {1}
    for args in (("replay", "--verify"), ("audit", "verify")):
        result = run_cli(*args, "--db", url)
        assert result.code == 0, (args, result.stdout, result.stderr)


def test_a_restart_mid_drain_loses_no_job_and_completes_none_twice(
    server_and_reader: tuple[PrivatePostgres, Reader], tmp_path: Path
) -> None:
    server, reader = server_and_reader
    url = reader.url
    with Conductor(settings=Settings(db=url)) as app:
        job_ids = app.enqueue_many([{"task": "sleep", "seconds": JOB_SECONDS}] * JOBS)
    workers = Workers(url, tmp_path, "--concurrency", "4")
    try:
        workers.start(2)
        wait_until(
            lambda: _count(reader, "completed") >= JOBS // 10,
            timeout=300,
            what="a tenth of the jobs completed",
        )
        before = reader.get(lambda app: app.ledger.last_seq())
        assert _count(reader, "completed") < JOBS  # the restart lands mid-drain
        server.restart()
        wait_until(lambda: workers.logged("database back after"), timeout=300, what="both back")
        wait_until(
            lambda: _count(reader, "completed") == JOBS, timeout=600, what="every job completed"
        )
        assert workers.stop() == [0, 0]
    finally:
        workers.kill_all()
    # Work went on after the restart (it cut a drain, not an idle pair of workers).
    completions = reader.get(lambda app: app.events(types=["completed"]))
    assert any(rec.seq > before for rec in completions)
    _assert_one_outage_each(workers)
    _assert_ledger_sound(url, job_ids, reader)


def _pid(worker: str) -> int:
    return int(worker.split(":")[-2])


def test_an_outage_longer_than_a_lease_rescues_and_fences_the_stalled_attempts(
    server_and_reader: tuple[PrivatePostgres, Reader], tmp_path: Path
) -> None:
    """Eight gated jobs run on two workers (four each, nothing prefetched) when the server
    stops. Their handlers finish during the outage: the outcomes wait in memory. Once the
    wall clock is past every lease, worker A is frozen and the server started: B writes
    its own outcomes, rescues A's expired attempts and runs them again; thawed, A writes
    its late outcomes, which fencing records as `result_ignored`."""
    server, reader = server_and_reader
    url = reader.url
    gate, journal = tmp_path / "gate", tmp_path / "journal"
    payload = {"task": "outage_gated", "gate": str(gate), "journal": str(journal)}
    with Conductor(settings=Settings(db=url)) as app:
        job_ids = app.enqueue_many([payload] * 8)
    workers = Workers(
        url, tmp_path, "--app", APP, "--concurrency", "4", "--prefetch", "0",
        "--lease", f"{LEASE:g}s",
    )  # fmt: skip
    try:
        a, b = workers.start(2)

        def holders() -> dict[int, int] | None:
            rows = reader(lambda app: app.jobs(status="in_progress"))
            if not rows or len(rows) < len(job_ids):
                return None
            return {row["id"]: _pid(row["worker"]) for row in rows}

        held_by = wait_until(holders, timeout=300, what="all eight jobs running")
        assert set(held_by.values()) == {a.pid, b.pid}
        of_a = sorted(job for job, pid in held_by.items() if pid == a.pid)

        server.stop()
        stopped_at = time.time()
        wait_until(lambda: workers.logged("database unreachable"), timeout=300, what="outage seen")
        gate.touch()
        wait_until(
            lambda: journal.exists() and len(journal.read_text().splitlines()) == len(job_ids),
            timeout=300,
            what="every handler returned during the outage",
        )
        # No heartbeat can have been written since the stop: past this, every lease is gone.
        wait_until(lambda: time.time() > stopped_at + LEASE + 1, timeout=LEASE + 60)
        freeze(a)
        server.start()
        wait_until(
            lambda: _count(reader, "completed") == len(job_ids),
            timeout=300,
            what="B to complete its jobs and rerun A's",
        )
        a.send_signal(signal.SIGCONT)
        wait_until(
            lambda: _count(reader, "result_ignored") == len(of_a),
            timeout=300,
            what="A's late outcomes fenced",
        )
        wait_until(lambda: workers.logged("database back after"), timeout=300, what="both back")
        assert workers.stop() == [0, 0]
    finally:
        workers.kill_all()

    _assert_one_outage_each(workers)
    _assert_ledger_sound(url, job_ids, reader)

    def types(job_id: int) -> list[str]:
        return [rec.type for rec in reader.get(lambda app: app.ledger.history(job_id))]

    for job_id in of_a:
        kinds = types(job_id)
        assert "rescued" in kinds, (job_id, kinds)
        assert "result_ignored" in kinds, (job_id, kinds)
        assert kinds.index("rescued") < kinds.index("completed"), (job_id, kinds)
    for job_id in set(job_ids) - set(of_a):
        kinds = types(job_id)
        assert "rescued" not in kinds, (job_id, kinds)
        assert "result_ignored" not in kinds, (job_id, kinds)


def test_a_worker_stopped_during_an_outage_exits_1_in_one_line_and_loses_no_job(
    server_and_reader: tuple[PrivatePostgres, Reader], tmp_path: Path
) -> None:
    """SIGTERM while the server is down: nothing can be recorded, releases included, so
    the worker says so in one line and exits 1 without waiting for the server; its jobs
    keep their claims, and the next worker rescues them (their holder is gone) and runs
    them again."""
    server, reader = server_and_reader
    url = reader.url
    gate, journal = tmp_path / "gate", tmp_path / "journal"
    payload = {"task": "outage_gated", "gate": str(gate), "journal": str(journal)}
    with Conductor(settings=Settings(db=url)) as app:
        job_ids = app.enqueue_many([payload] * 2)
    workers = Workers(url, tmp_path, "--app", APP, "--concurrency", "2", "--prefetch", "0")
    try:
        (worker,) = workers.start(1)
        wait_until(
            lambda: len(reader(lambda app: app.jobs(status="in_progress")) or []) == 2,
            timeout=300,
            what="both jobs running",
        )
        server.stop()
        wait_until(lambda: workers.logged("database unreachable"), timeout=300, what="outage seen")
        gate.touch()
        wait_until(
            lambda: journal.exists() and len(journal.read_text().splitlines()) == 2,
            timeout=300,
            what="both handlers returned, their outcomes kept in memory",
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(300) == 1
    finally:
        workers.kill_all()
    log = workers.log(0)
    assert [line for line in log.splitlines() if not LOG_LINE.match(line)] == [], log
    assert "Traceback" not in log
    releases = [line for line in log.splitlines() if "could not record the release" in line]
    assert len(releases) == 1, log
    assert "of 2 attempts" in releases[0]

    server.start()
    burst = run_cli("worker", "--burst", "-q", "--app", APP, "--db", url, env=app_env())
    assert burst.code == 0, burst
    _assert_ledger_sound(url, job_ids, reader)
    for job_id in job_ids:
        kinds = [rec.type for rec in reader.get(lambda app: app.ledger.history(job_id))]  # noqa: B023
        assert "rescued" in kinds, kinds


def test_a_url_naming_several_hosts_reaches_the_one_that_answers(
    private_postgres: PrivatePostgres,
) -> None:
    """libpq's own failover: `h1:p1,h2:p2` tries each host in turn (with
    `target_session_attrs=read-write`, only a primary will do); a URL with no host at all
    reaches the server's Unix socket."""
    dead = _port_nobody_listens_on()
    several = (
        f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{private_postgres.port}/postgres"
        "?target_session_attrs=read-write&schema=hosts"
    )
    enqueued = run_cli("enqueue", "--payload", '{"task": "noop"}', "--db", several)
    assert enqueued.code == 0, enqueued
    socket_url = (
        f"postgresql:///postgres?host={private_postgres.directory}"
        f"&port={private_postgres.port}&user=postgres&schema=hosts"
    )
    listed = run_cli("jobs", "--db", socket_url)
    assert listed.code == 0, listed
    assert "noop" in listed.stdout


def _port_nobody_listens_on() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there now


@pytest.mark.parametrize(
    "command",
    [
        ("worker",),
        ("worker", "--processes", "2"),
        ("enqueue", "--payload", '{"task": "noop"}'),
        ("jobs",),
    ],
    ids=["worker", "worker-processes", "enqueue", "jobs"],
)
def test_a_server_down_at_start_is_one_line_and_exit_1(command: tuple[str, ...]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_port_nobody_listens_on()}/postgres"
    result = run_cli(*command, "--db", url, timeout=120)
    assert result.code == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach PostgreSQL at postgresql://"), lines
    assert "expected a running server" in lines[0]
