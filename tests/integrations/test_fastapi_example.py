"""docs/examples/fastapi_app.py, served by uvicorn in a subprocess on a free loopback
port and driven over real HTTP, on both backends: a request enqueues, the embedded worker
runs the job in the server's process, another request shows it completed; SIGTERM stops
the server gracefully. A database it cannot use stops it at start-up with one error."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from conductor import Conductor
from tests.gated_tasks import REPO

EXAMPLES = REPO / "docs" / "examples"
DEADLINE = 120.0
"""A hang guard: the test waits on the server's log and on the job's status."""
UVICORN = (sys.executable, "-m", "uvicorn", "fastapi_app:api")
_RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@contextlib.contextmanager
def serve(db: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`uvicorn fastapi_app:api` on a free 127.0.0.1 port, with CONDUCTOR_DB=db."""
    env = {
        **os.environ,
        "CONDUCTOR_DB": db,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*UVICORN, "--host", "127.0.0.1", "--port", "0", "--app-dir", str(EXAMPLES)],
            cwd=log.parent,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield server
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(DEADLINE)


def address(server: subprocess.Popen[bytes], log: Path) -> str:
    """The server's base URL, read from its log once it is listening."""
    deadline = time.monotonic() + DEADLINE
    while not (found := _RUNNING.search(log.read_text(errors="replace"))):
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)  # polling the log for uvicorn's address, with a deadline
    return found.group(1)


def test_a_request_enqueues_and_another_shows_the_job_completed_by_the_embedded_worker(
    db: str, tmp_path: Path
) -> None:
    log = tmp_path / "uvicorn.log"
    with serve(db, log) as server:
        with httpx.Client(base_url=address(server, log), trust_env=False, timeout=60) as http:
            accepted = http.post("/signup", json={"email": "ada@example.com"})
            assert accepted.status_code == 202
            job = accepted.json()["job"]
            deadline = time.monotonic() + DEADLINE
            while (shown := http.get(f"/jobs/{job}").json())["status"] != "completed":
                assert shown["status"] in ("pending", "claimed", "in_progress"), shown
                assert time.monotonic() < deadline, shown
                time.sleep(0.02)  # polling the job's status over HTTP, with a deadline
            assert shown == {
                "job": job,
                "status": "completed",
                "result": "welcomed ada@example.com",
                "error": None,
            }
            assert http.get("/jobs/999").status_code == 404
            assert http.post("/signup", json={"mail": "x"}).status_code == 422
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then dies of the signal it caught, as a shell expects
        assert server.wait(DEADLINE) in (0, -signal.SIGTERM), log.read_text()
    shown_log = log.read_text()
    assert "Application shutdown complete" in shown_log
    assert "Finished server process" in shown_log
    with Conductor(db, create=False) as app:
        assert [(row["id"], row["status"]) for row in app.jobs()] == [(job, "completed")]
        assert [e.type for e in app.ledger.history(job)].count("run_started") == 1


def test_a_database_the_app_cannot_use_stops_it_at_start_up_with_one_error_line(
    backend: str, pg_database: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        db = str(tmp_path / "no-such-dir" / "app.db")
    else:
        db = pg_database.rsplit("/", 1)[0] + "/conductor_no_such_database"
    log = tmp_path / "uvicorn.log"
    with serve(db, log) as server:
        assert server.wait(DEADLINE) != 0
    shown = log.read_text()
    errors = [line for line in shown.splitlines() if "ConfigurationError" in line]
    assert errors == [
        "conductor.domain.errors.ConfigurationError: conductor: the database setting "
        f"(CONDUCTOR_DB) cannot be used: {_reason(backend, db)}"
    ]
    assert "During handling" not in shown
    assert "direct cause" not in shown
    assert "Application startup failed" in shown
    assert not (tmp_path / "no-such-dir").exists()


def _reason(backend: str, db: str) -> str:
    if backend == "sqlite":
        return f"cannot create {db}: No such file or directory; expected a writable directory"
    return (
        f"no PostgreSQL database at {db}?schema=conductor "
        '(database "conductor_no_such_database" does not exist); '
        "expected an existing database (create it with `createdb`)"
    )
