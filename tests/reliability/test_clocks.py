"""Wall-clock jumps, with an injected clock driving a real engine on each backend."""

from __future__ import annotations

import collections
import datetime as dt
import glob
import threading
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from conductor import Conductor, ManualClock
from conductor.domain.clock import unstamp
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.registry import Registry
from conductor.engine.messages import Flush, Maintain, Tick
from conductor.engine.runtime import Engine
from tests import gated_tasks
from tests.engine.conftest import WorkerProcesses, wait_until


class Running:
    def __init__(self, db: str, registry: Registry, clock: ManualClock) -> None:
        self.settings = Settings(db=db)
        self.engine = Engine(
            self.settings,
            WorkerConfig(concurrency=2, poll_interval=0.1, maintenance_interval=0.1),
            registry=registry,
            clock=clock,
        )
        self.engine.start()
        self.thread = threading.Thread(target=self.engine.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.engine.request_stop()
        self.thread.join(30)


@pytest.fixture
def engines() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        if running.thread.is_alive():
            running.engine.request_stop(force=True)
            running.thread.join(30)
    pykka.ActorRegistry.stop_all()


def started_counts(app: Conductor) -> collections.Counter[int]:
    return collections.Counter(r.job_id for r in app.events(types=["claimed"]))


def test_a_jump_forward_runs_each_overdue_job_once(db: str, engines: list[Running]) -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC))
    registry = Registry()
    registry.task("quick")(lambda: None)
    with Conductor(settings=Settings(db=db), clock=clock) as app:
        ids = app.enqueue_many([{"task": "quick"}] * 5, delay=dt.timedelta(hours=1))
        engines.append(running := Running(db, registry, clock))
        # Nothing is due yet: however often it looks, the engine runs nothing.
        actors = running.engine.actors()
        for _ in range(3):
            actors.scheduler.ask(Tick(clock.now(), woken=True))
            actors.writer.ask(Flush())  # any claim the look caused is committed by now
        assert started_counts(app) == collections.Counter()
        clock.advance(dt.timedelta(hours=3))  # the wall clock leaps past every run_at
        running.engine.wake()
        wait_until(lambda: app.stats().overall.completed == 5, what="the overdue jobs")
        assert started_counts(app) == collections.Counter(dict.fromkeys(ids, 1))
        running.stop()


def test_a_jump_backward_neither_reruns_nor_rescues_a_live_job(
    db: str, engines: list[Running]
) -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC))
    registry = Registry()
    running_now = threading.Event()
    release = threading.Event()

    @registry.task("long")
    def long() -> None:
        running_now.set()
        release.wait(30)

    registry.task("quick")(lambda: None)
    with Conductor(settings=Settings(db=db), clock=clock) as app:
        long_id = app.enqueue({"task": "long"})
        done_id = app.enqueue({"task": "quick"})
        engines.append(running := Running(db, registry, clock))
        assert running_now.wait(30)
        wait_until(lambda: app.job(done_id)["status"] == "completed", what="the quick job")
        clock.set(clock.now() - dt.timedelta(hours=2))  # the wall clock falls back
        writer = running.engine.actors().writer
        for _ in range(3):  # maintenance (rescues, heartbeats) at the earlier time, awaited
            writer.ask(Maintain(clock.now()))
        assert [r.type for r in app.ledger.history(long_id)] == [
            "enqueued",
            "claimed",
            "run_started",
        ]
        assert started_counts(app) == collections.Counter({long_id: 1, done_id: 1})
        release.set()
        wait_until(lambda: app.job(long_id)["status"] == "completed", what="the long job")
        assert [r.type for r in app.ledger.history(long_id)] == [
            "enqueued",
            "claimed",
            "run_started",
            "completed",
        ]
        running.stop()


FAKETIME_LIBRARIES = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))


@pytest.mark.skipif(
    not FAKETIME_LIBRARIES,
    reason="libfaketime is not installed (Debian: apt-get install faketime; .ci/run does)",
)
def test_a_worker_process_under_libfaketime_survives_jumps_both_ways(
    db: str, tmp_path: Path
) -> None:
    """A real `conductor worker` whose wall clock libfaketime moves while it runs.

    Only the wall clock moves (FAKETIME_DONT_FAKE_MONOTONIC), as when NTP steps the system
    clock. libfaketime 0.9.10 then fails `time.sleep` with EINVAL (its clock_nanosleep
    wrapper), which the engine does not use on its paths here."""
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    gate = tmp_path / "gate"
    pool = WorkerProcesses(
        db,
        tmp_path,
        "--app",
        gated_tasks.APP,
        env={
            **gated_tasks.app_env(),
            "LD_PRELOAD": FAKETIME_LIBRARIES[0],
            "FAKETIME_TIMESTAMP_FILE": str(offset),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        },
    )
    log = tmp_path / "worker-0.log"
    with Conductor(settings=Settings(db=db)) as app:
        overdue = app.enqueue_many([{"task": "noop"}] * 5, delay=dt.timedelta(hours=1))
        first = app.enqueue({"task": "noop"})
        worker = pool.start("-c", "2", "--poll", "0.2s", "--lease", "1s")
        try:
            # The worker is up and has looked for due jobs: nothing delayed ran.
            wait_until(lambda: app.job(first)["status"] == "completed", what="a due job")
            assert started_counts(app) == collections.Counter({first: 1})

            # Forward: the worker's clock leaps two hours; each overdue job runs once.
            offset.write_text("+2h\n")
            wait_until(
                lambda: all(app.job(i)["status"] == "completed" for i in overdue),
                what="the overdue jobs",
            )
            assert started_counts(app) == collections.Counter(dict.fromkeys([first, *overdue], 1))

            # Backward: a job holds a 1 s lease renewed by heartbeats while the worker's
            # clock falls from two hours ahead to one behind; it is neither rescued nor run again.
            # It runs until the test opens its gate, not for a time a slow start outlasts.
            long_id = app.enqueue({"task": "gated", "gate": str(gate)})

            def beats() -> list[str]:
                return [r.type for r in app.ledger.history(long_id) if r.type == "lease_extended"]

            wait_until(lambda: beats() != [], what="a heartbeat of the long job")
            offset.write_text("-1h\n")
            gate.touch()
            wait_until(lambda: app.job(long_id)["status"] == "completed", what="the long job")
            types = [r.type for r in app.ledger.history(long_id) if r.type != "lease_extended"]
            assert types == ["enqueued", "claimed", "run_started", "completed"], types
            # It ended under the fallen clock: stamped about an hour behind the real time.
            (ended,) = [r for r in app.ledger.history(long_id) if r.type == "completed"]
            behind = dt.datetime.now(dt.UTC) - unstamp(ended.at)
            assert behind > dt.timedelta(minutes=50), ended.at
            assert started_counts(app)[long_id] == 1
        finally:
            worker.terminate()
            assert worker.wait(300) == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()
