"""Cron across real worker processes on each backend, their clock a file the test moves:
several processes racing on the same schedules fire exactly one job per slot, a code
declaration made by all of them at once is recorded once, and a worker SIGKILLed in the
middle of firing a slot (deciding it, inside the append's transaction, or just after the
commit) leaves that slot fired exactly once in the end."""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor, ManualClock
from conductor.domain.clock import stamp
from conductor.domain.config import Settings
from tests.engine.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 28, 12, 0, 30, tzinfo=dt.UTC)


class ClockFile:
    """The wall clock of the `cron_worker` processes: a timestamp in a file."""

    def __init__(self, path: Path, start: dt.datetime) -> None:
        self.path = path
        self.set(start)

    def set(self, when: dt.datetime) -> None:
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(stamp(when) + "\n")
        os.replace(scratch, self.path)  # atomic: a reader sees the old time or the new


class Workers:
    def __init__(self, db: str, clock: ClockFile, logs: Path) -> None:
        self.db, self.clock, self.logs = db, clock, logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"cron-worker-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.engine.cron_worker",
                    self.db,
                    str(self.clock.path),
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(60)

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(60)


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(db, ClockFile(tmp_path / "clock", T0), tmp_path)
    yield running
    running.kill_all()


def minute(n: int, seconds: float = 0.5) -> dt.datetime:
    """Just after the slot `n` minutes after 12:00."""
    return dt.datetime(2026, 3, 28, 12, n, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def fires(app: Conductor) -> collections.Counter[tuple[str, str]]:
    return collections.Counter(
        (rec.event.schedule, rec.event.slot)  # type: ignore[union-attr]
        for rec in app.events(types=["schedule_fired"])
    )


def each_fire_is_followed_by_its_job(app: Conductor) -> None:
    log = app.events()
    for index, rec in enumerate(log):
        if rec.type == "schedule_fired":
            job = log[index + 1]
            assert (job.type, job.seq) == ("enqueued", rec.seq + 1)
    assert len(app.jobs(limit=None)) == sum(fires(app).values())


def test_several_worker_processes_racing_fire_exactly_one_job_per_slot(
    db: str, workers: Workers
) -> None:
    with Conductor(settings=Settings(db=db), clock=ManualClock(T0)) as app:
        app.add_schedule("every", schedule="* * * * *", payload={"task": "noop"}, by="ops")
        app.add_schedule("even", schedule="*/2 * * * *", payload={"task": "noop"}, by="ops")
        app.add_schedule(
            "all",
            schedule="* * * * *",
            payload={"task": "noop"},
            missed="all",
            catch_up_max=4,
            by="ops",
        )
        for _ in range(3):
            workers.start("--declare")
        wait_until(lambda: "from-code" in app.ledger.controls("schedule"), what="a declaration")
        expected: set[tuple[str, str]] = set()
        for n in range(1, 5):
            workers.clock.set(minute(n))
            slot = stamp(minute(n, 0))
            expected |= {("every", slot), ("all", slot), ("from-code", slot)}
            if n % 2 == 0:
                expected.add(("even", slot))
            wanted = set(expected)
            wait_until(lambda: wanted <= set(fires(app)), what=f"the slots of minute {n}")  # noqa: B023
        # Ten minutes pass unseen: 12:14 is on time for all; `all` catches up the four newest
        # of the missed slots before it, the others (policy `latest`) skip them.
        workers.clock.set(minute(14, 30))
        expected |= {("all", stamp(minute(n, 0))) for n in (10, 11, 12, 13, 14)}
        expected |= {(name, stamp(minute(14, 0))) for name in ("every", "even", "from-code")}
        wait_until(lambda: expected <= set(fires(app)), what="the catch-up")
        # One more on-time slot: by the time it fires, every process has looked at the
        # earlier ones many times over.
        workers.clock.set(minute(15))
        expected |= {(name, stamp(minute(15, 0))) for name in ("every", "all", "from-code")}
        wait_until(lambda: expected <= set(fires(app)), what="the last slot")
        workers.stop()
        counted = fires(app)
        assert set(counted) == expected
        assert set(counted.values()) == {1}, [key for key, n in counted.items() if n > 1]
        assert len(app.events(types=["schedule_added"])) == 4  # from-code: once, not thrice
        each_fire_is_followed_by_its_job(app)
        assert app.audit().ok
        assert app.verify_projections() == []


@pytest.mark.parametrize("stage", ["deciding", "folding", "committed"])
def test_a_worker_killed_mid_slot_leaves_the_slot_fired_exactly_once(
    db: str, workers: Workers, tmp_path: Path, stage: str
) -> None:
    marker = tmp_path / "hanging"
    with Conductor(settings=Settings(db=db), clock=ManualClock(T0)) as app:
        app.add_schedule("minutely", schedule="* * * * *", payload={"task": "noop"}, by="ops")
        workers.clock.set(minute(1))
        victim = workers.start("--hang", stage, str(marker))
        wait_until(marker.exists, what=f"the worker to hang while {stage}")
        victim.kill()
        victim.wait(60)
        slot = stamp(minute(1, 0))
        assert fires(app) == (
            collections.Counter({("minutely", slot): 1})
            if stage == "committed"
            else collections.Counter()
        )
        workers.start()
        wait_until(lambda: fires(app)[("minutely", slot)], what="the slot, fired by the survivor")
        workers.clock.set(minute(2))
        wait_until(lambda: fires(app)[("minutely", stamp(minute(2, 0)))], what="the next slot")
        workers.stop()
        assert fires(app) == collections.Counter(
            {("minutely", slot): 1, ("minutely", stamp(minute(2, 0))): 1}
        )
        each_fire_is_followed_by_its_job(app)
        assert app.audit().ok
        assert app.verify_projections() == []
