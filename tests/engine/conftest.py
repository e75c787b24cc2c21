"""Engine fixtures: a real engine on a real ledger (each backend's: the `db` fixture), in
this process, with test tasks; `conductor worker` processes on the same ledger."""

from __future__ import annotations

import collections
import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pykka
import pytest

from conductor import Conductor
from conductor.domain.clock import Clock, stamp
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.events import JobClaimed, NewEvent
from conductor.domain.registry import Registry
from conductor.engine.runtime import Engine
from tests.conftest import CONDUCTOR


def wait_until(
    predicate: Callable[[], Any], timeout: float = 120.0, what: str = "condition"
) -> Any:
    """Poll `predicate` (usually a ledger query) until truthy; fail after `timeout`, a hang
    guard generous enough for worker processes starting on a loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def enqueue(db: str | Path, payloads: list[dict[str, object]], **options: object) -> list[int]:
    """Enqueue through the public API, as an application would, in one transaction, into
    the ledger at `db` (a `--db` location: a SQLite path or a `postgresql://` URL)."""
    with Conductor(settings=Settings(db=str(db))) as app:
        return app.enqueue_many(payloads, **options)  # type: ignore[arg-type]


def hold(db: str | Path, job_id: int, worker: str, lease: dt.timedelta) -> None:
    """Record that `worker` claimed attempt 1 of `job_id` with a lease ending `lease` from
    now (negative: already expired), as another worker process would have."""
    now = dt.datetime.now(dt.UTC)
    started = JobClaimed(attempt=1, worker=worker, lease_expires_at=stamp(now + lease))
    with Conductor(settings=Settings(db=str(db))) as app:
        app.ledger.append([NewEvent(job_id=job_id, at=stamp(now), event=started)])


def dead_process_worker() -> str:
    """The worker id of a process on this host that has already exited."""
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from conductor.engine.identity import process_id; print(process_id())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return child.stdout.strip()


def attempt_starts(app: Conductor) -> collections.Counter[tuple[int, int]]:
    """How often each (job, attempt) was claimed: every value 1 when no claim raced."""
    return collections.Counter(
        (r.job_id, r.event.attempt)  # type: ignore[union-attr]
        for r in app.events(types=["claimed"])
    )


class WorkerProcesses:
    """Starts `conductor worker` processes (each with `base_args`, logging to its own file)
    and makes sure none outlives the test."""

    def __init__(
        self, db: str | Path, logs: Path, *base_args: str, env: dict[str, str] | None = None
    ) -> None:
        self.db = str(db)
        self.logs = logs
        self.base_args = base_args
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"worker-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen(
                [CONDUCTOR, "worker", "--db", self.db, *self.base_args, "-q", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        self.processes.append(process)
        return process

    def log(self, index: int) -> str:
        return (self.logs / f"worker-{index}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(300)


@attrs.define
class RunningEngine:
    engine: Engine
    app: Conductor
    thread: threading.Thread
    result: list[int]

    def stop(self) -> int:
        self.engine.request_stop()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.result[0]

    def statuses(self) -> dict[int, str]:
        return {row["id"]: row["status"] for row in self.app.jobs()}

    def types(self, job_id: int) -> list[str]:
        return [rec.type for rec in self.app.ledger.history(job_id)]


Start = Callable[..., RunningEngine]


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def start_engine(db: str, registry: Registry) -> Iterator[Callable[..., RunningEngine]]:
    running: list[RunningEngine] = []

    def start(*, clock: Clock | None = None, **options: Any) -> RunningEngine:
        defaults: dict[str, Any] = {
            "concurrency": 4,
            "poll_interval": 0.2,
            "maintenance_interval": 0.2,
            "grace": dt.timedelta(seconds=5),
        }
        config = WorkerConfig(**{**defaults, **options})
        settings = Settings(db=db)
        engine = Engine(settings, config, registry=registry, clock=clock)
        engine.start()
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(engine.run()), daemon=True)
        thread.start()
        handle = RunningEngine(engine, Conductor(settings=settings, clock=clock), thread, result)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if handle.thread.is_alive():
            handle.engine.request_stop(force=True)
            handle.thread.join(30)
        handle.app.close()
    pykka.ActorRegistry.stop_all()
