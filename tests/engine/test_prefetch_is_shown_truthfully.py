"""What the commands show about a real worker's prefetched jobs is literally true: a job
waiting in the prefetch buffer is `claimed`, never `in_progress`; no more jobs are
`in_progress` than there are slots; history times a handler from its `run_started`; the
worker logs `run_started` when the handler starts, not when the job is claimed."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.clock import seconds_between
from conductor.domain.config import Settings
from tests import gated_tasks
from tests.conftest import CONDUCTOR, run_cli
from tests.engine.conftest import WorkerProcesses, wait_until

SLOTS = 2
HANDLER = 2.0
"""Seconds each `sleep` handler takes."""
MARGIN = 1.5
"""Slack for the group commit that records an outcome after its handler returns. A run
timed from the claim instead would be at least 2 x HANDLER for a prefetched job."""


@pytest.fixture
def worker(db: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with Conductor(settings=Settings(db=db)) as app:
        app.enqueue_many([{"task": "sleep", "seconds": HANDLER} for _ in range(6)])
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [
                CONDUCTOR,
                "worker",
                "--db",
                db,
                "--concurrency",
                str(SLOTS),
                "--prefetch",
                "2",
                "--burst",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(30)


def listed(db: str, status: str) -> list[int]:
    result = run_cli("jobs", "--status", status, "--json", db=db)
    assert result.code == 0, result.stderr
    return [job["id"] for job in json.loads(result.stdout)]


def test_prefetched_jobs_are_listed_as_claimed_and_never_more_in_progress_than_slots(
    db: str, tmp_path: Path
) -> None:
    # Jobs that wait for the test: the buffer holds still while the commands list it (with
    # timed jobs a slot could free, and take a buffered job, while a listing started up).
    gate = tmp_path / "gate"
    with Conductor(settings=Settings(db=db)) as app:
        app.enqueue_many([{"task": "gated", "gate": str(gate)} for _ in range(6)])
    workers = WorkerProcesses(db, tmp_path, "--app", gated_tasks.APP, env=gated_tasks.app_env())
    try:
        worker = workers.start("--concurrency", str(SLOTS), "--prefetch", "2", "--burst")
        with Conductor(settings=Settings(db=db)) as app:

            def statuses() -> dict[str, int]:
                counts = app.stats().overall
                return {"claimed": counts.claimed, "in_progress": counts.in_progress}

            def buffered_while_busy() -> bool:
                now = statuses()
                assert now["in_progress"] <= SLOTS, now
                return now == {"claimed": 2, "in_progress": SLOTS}

            wait_until(buffered_while_busy, what="a full prefetch buffer while both slots run")
            running, waiting = listed(db, "in_progress"), listed(db, "claimed")
            assert len(running) == SLOTS
            assert len(waiting) == 2
            assert not set(running) & set(waiting)
            gate.touch()
            while worker.poll() is None:
                assert statuses()["in_progress"] <= SLOTS
                if app.stats().overall.completed == 6:
                    break
        assert worker.wait(60) == 0, workers.log(0)
    finally:
        workers.stop_all()


def test_history_times_each_handler_from_its_start_and_the_log_says_when_it_started(
    db: str, tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    assert worker.wait(120) == 0
    prefetched = 0
    with Conductor(settings=Settings(db=db)) as app:
        for job in app.jobs():
            events = {rec.type: rec for rec in app.ledger.history(job["id"])}
            claimed, began, done = events["claimed"], events["run_started"], events["completed"]
            run = seconds_between(began.at, done.at)
            assert HANDLER <= run < HANDLER + MARGIN, (job["id"], run)
            if seconds_between(claimed.at, began.at) >= HANDLER / 2:
                prefetched += 1
            # The same figure through the command users read.
            result = run_cli("history", str(job["id"]), "--json", db=db)
            entries = json.loads(result.stdout)
            assert [e["type"] for e in entries][-2:] == ["run_started", "completed"]
            assert HANDLER <= entries[-1]["since_previous"] < HANDLER + MARGIN
    assert prefetched >= 2, "some jobs waited in the buffer, else this proves nothing"
    # The log says `run_started` when a handler starts: with two slots, the third start is
    # a whole handler later than the first (claims of the prefetch are not logged).
    lines = (tmp_path / "worker.log").read_text().splitlines()
    starts = [logged_at(line) for line in lines if " sleep run_started -> in_progress" in line]
    assert len(starts) == 6
    assert (starts[SLOTS] - starts[0]).total_seconds() >= HANDLER / 2


def logged_at(line: str) -> dt.datetime:
    """The time a text log line was written (`2026-12-07 05:19:19,107 ...`)."""
    return dt.datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S,%f")
