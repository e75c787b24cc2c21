"""A stop signal at any moment of a real worker's start-up takes the graceful path.

Each test sends SIGTERM at one observable milestone of start-up (the process catching
signals, the `--app` import underway, the `worker starting` line) and expects exit 0, the
signal's log line, and no job left claimed or running.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from tests.conftest import CONDUCTOR
from tests.engine.conftest import wait_until

STOPPING = "SIGTERM: stopping"


class Starting:
    """One `conductor worker` process being started, logging to a file."""

    def __init__(self, db: str, log: Path, *args: str, env: dict[str, str] | None = None):
        self.log_path = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [CONDUCTOR, "worker", "--db", db, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=log.parent,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def catches_sigterm(self) -> bool:
        """Whether the process has a handler for SIGTERM (Linux: its SigCgt mask)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
        return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Starting]]:
    processes: list[Starting] = []
    yield processes
    for starting in processes:
        if starting.process.poll() is None:
            starting.process.kill()
            starting.process.wait(30)


def enqueue_noops(db: str, count: int) -> None:
    with Conductor(settings=Settings(db=db)) as app:
        app.enqueue_many([{"task": "noop"} for _ in range(count)])


def assert_nothing_held(db: str) -> None:
    with Conductor(settings=Settings(db=db)) as app:
        held = [row["id"] for row in app.jobs() if row["status"] in ("claimed", "in_progress")]
    assert held == []


def test_a_sigterm_as_soon_as_the_worker_catches_signals_exits_0_and_claims_nothing(
    db: str, tmp_path: Path, started: list[Starting]
) -> None:
    enqueue_noops(db, 3)
    worker = Starting(db, tmp_path / "worker.log")
    started.append(worker)
    # The earliest moment a process can take a signal gracefully: before any output, before
    # click has parsed the command line.
    wait_until(lambda: worker.catches_sigterm() or worker.process.poll() is not None, 60)
    assert worker.stop() == 0, worker.log
    assert STOPPING in worker.log
    assert "Traceback" not in worker.log
    with Conductor(settings=Settings(db=db)) as app:
        assert app.stats().overall.pending == 3
        assert app.events(types=["claimed"]) == []


def test_a_sigterm_while_the_app_module_imports_exits_0_once_the_import_ends(
    db: str, tmp_path: Path, started: list[Starting]
) -> None:
    enqueue_noops(db, 3)
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    (tmp_path / "gated_app.py").write_text(
        f"with open({str(fifo)!r}) as gate:\n    gate.read()\n", encoding="utf-8"
    )
    worker = Starting(db, tmp_path / "worker.log", "--app", "gated_app")
    started.append(worker)
    # Opening a fifo for writing returns once its reader has opened it: the worker is now
    # inside the import of its --app module, and stays there until the gate closes.
    with fifo.open("w") as gate:
        worker.process.send_signal(signal.SIGTERM)
        gate.write("go")
    assert worker.process.wait(60) == 0, worker.log
    assert STOPPING in worker.log
    assert "Traceback" not in worker.log
    with Conductor(settings=Settings(db=db)) as app:
        assert app.stats().overall.pending == 3
        assert app.events(types=["claimed"]) == []


def test_a_sigterm_right_after_the_starting_line_stops_gracefully_holding_nothing(
    db: str, tmp_path: Path, started: list[Starting]
) -> None:
    enqueue_noops(db, 50)
    worker = Starting(db, tmp_path / "worker.log", "--concurrency", "2")
    started.append(worker)
    wait_until(lambda: "worker starting" in worker.log, 60, "the starting line")
    assert worker.stop() == 0, worker.log
    assert STOPPING in worker.log
    assert "Traceback" not in worker.log
    assert_nothing_held(db)


def test_a_second_sigterm_during_start_up_still_exits_0(
    db: str, tmp_path: Path, started: list[Starting]
) -> None:
    worker = Starting(db, tmp_path / "worker.log")
    started.append(worker)
    wait_until(lambda: worker.catches_sigterm() or worker.process.poll() is not None, 60)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.stop() == 0, worker.log
    assert "Traceback" not in worker.log
