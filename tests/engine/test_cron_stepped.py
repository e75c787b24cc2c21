"""Cron in the worker, stepped by hand with an injected clock on each backend: slots on
the days the clocks change, a clock that jumps forward (the missed-slot policy applied and
recorded) or back (no second fire), code declarations at start, and a real engine whose
scheduler fires a slot that a worker then runs."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pykka
import pytest

from conductor import Conductor, ManualClock
from conductor.domain.clock import stamp
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.registry import Registry
from conductor.domain.schedule_events import ScheduleFired
from conductor.engine.cron import Cron, declare
from conductor.engine.runtime import Engine
from tests.engine.conftest import wait_until

UTC = dt.UTC


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(utc(2026, 3, 28, 12))


@pytest.fixture
def app(db: str, clock: ManualClock) -> Iterator[Conductor]:
    with Conductor(settings=Settings(db=db), clock=clock) as handle:
        yield handle


def fired(app: Conductor) -> list[ScheduleFired]:
    return [rec.event for rec in app.events(types=["schedule_fired"])]  # type: ignore[misc]


def slots(app: Conductor) -> list[str]:
    return [event.slot for event in fired(app)]


def step(app: Conductor, now: dt.datetime, worker: str = "w1") -> int:
    return Cron(app.ledger, by=worker).run_once(now).fired


def test_a_daily_slot_in_the_spring_forward_gap_fires_once_at_the_end_of_the_gap(
    app: Conductor,
) -> None:
    app.add_schedule(
        "night", schedule="30 2 * * *", tz="Europe/Paris", payload={"task": "noop"}, by="ops"
    )
    # 2026-03-29: Paris jumps from 02:00 CET to 03:00 CEST (01:00 UTC); 02:30 never exists.
    assert step(app, utc(2026, 3, 29, 0, 59, 59)) == 0
    assert step(app, utc(2026, 3, 29, 1, 0, 1)) == 1
    assert step(app, utc(2026, 3, 29, 1, 30, 1)) == 0  # 03:30 CEST: nothing more that day
    assert step(app, utc(2026, 3, 30, 0, 30, 1)) == 1  # 02:30 CEST the next day
    assert slots(app) == [stamp(utc(2026, 3, 29, 1)), stamp(utc(2026, 3, 30, 0, 30))]
    assert len(app.jobs()) == 2


def test_a_wall_time_repeated_by_fall_back_fires_once(app: Conductor) -> None:
    app.clock.set(utc(2026, 10, 24, 12))  # type: ignore[attr-defined]
    app.add_schedule(
        "night", schedule="30 2 * * *", tz="Europe/Paris", payload={"task": "noop"}, by="ops"
    )
    # 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    assert step(app, utc(2026, 10, 25, 0, 30, 1)) == 1
    assert step(app, utc(2026, 10, 25, 1, 30, 1), worker="w2") == 0
    assert step(app, utc(2026, 10, 25, 1, 59), worker="w3") == 0
    assert slots(app) == [stamp(utc(2026, 10, 25, 0, 30))]
    assert len(app.jobs()) == 1


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("none", []),
        ("latest", [(utc(2026, 3, 28, 17), True, 4)]),
        (
            "all",
            [
                (utc(2026, 3, 28, 15), True, 2),
                (utc(2026, 3, 28, 16), True, 0),
                (utc(2026, 3, 28, 17), True, 0),
            ],
        ),
    ],
)
def test_a_clock_jump_forward_applies_the_missed_slot_policy_and_records_it(
    app: Conductor, clock: ManualClock, policy: str, expected: list[tuple[dt.datetime, bool, int]]
) -> None:
    app.add_schedule(
        "hourly",
        schedule="0 * * * *",
        payload={"task": "noop"},
        missed=policy,
        catch_up_max=3,
        by="ops",
    )
    assert step(app, utc(2026, 3, 28, 12, 30)) == 0
    clock.set(utc(2026, 3, 28, 17, 20))  # five hourly slots pass unseen
    step(app, clock.now())
    assert [(e.slot, e.late, e.skipped, e.missed) for e in fired(app)] == [
        (stamp(slot), late, skipped, policy) for slot, late, skipped in expected
    ]
    assert len(app.jobs()) == len(expected)
    # The next on-time slot fires and counts what `none` skipped.
    step(app, utc(2026, 3, 28, 18, 0, 2))
    last = fired(app)[-1]
    assert (last.slot, last.late) == (stamp(utc(2026, 3, 28, 18)), False)
    assert last.skipped == (5 if policy == "none" else 0)


def test_a_clock_jump_backward_fires_no_slot_twice(app: Conductor, clock: ManualClock) -> None:
    app.add_schedule("half", schedule="*/30 * * * *", payload={"task": "noop"}, by="ops")
    assert step(app, utc(2026, 3, 28, 13, 0, 1)) == 1
    clock.set(utc(2026, 3, 28, 12, 29))  # the wall clock falls back 31 minutes
    assert step(app, clock.now()) == 0
    assert step(app, utc(2026, 3, 28, 12, 30, 1)) == 0  # a slot before the one that fired
    assert step(app, utc(2026, 3, 28, 13, 0, 5)) == 0  # the same slot again
    assert step(app, utc(2026, 3, 28, 13, 30, 1)) == 1
    assert slots(app) == [stamp(utc(2026, 3, 28, 13)), stamp(utc(2026, 3, 28, 13, 30))]


def test_two_workers_looking_at_once_fire_one_job_per_slot(app: Conductor) -> None:
    app.add_schedule("minutely", schedule="* * * * *", payload={"task": "noop"}, by="ops")
    now = utc(2026, 3, 28, 12, 1, 0, 500)
    one, two = Cron(app.ledger, by="w1"), Cron(app.ledger, by="w2")
    assert one.run_once(now).fired == 1
    refused = two.run_once(now)
    assert (refused.fired, refused.lost) == (0, 0)  # it saw the slot fired: nothing due
    # A loser that decided before the winner's append: refused by the ledger, quietly.
    state = app.ledger.controls("schedule")["minutely"]
    from conductor.domain import cron_decisions

    later = utc(2026, 3, 28, 12, 2, 1)
    stale = cron_decisions.fire(
        "minutely", state, cron_decisions.due(state, later), by="w2", now=later
    )
    assert one.run_once(later).fired == 1
    from conductor.domain.errors import ControlRefused

    with pytest.raises(ControlRefused):
        app.ledger.append(stale)
    assert len(app.jobs()) == 2


def test_paused_and_removed_schedules_do_not_fire(app: Conductor, clock: ManualClock) -> None:
    app.add_schedule("a", schedule="* * * * *", payload={"task": "noop"}, by="ops")
    app.add_schedule("b", schedule="* * * * *", payload={"task": "noop"}, by="ops")
    app.pause_schedule("a", by="ops")
    app.remove_schedule("b", by="ops")
    assert step(app, utc(2026, 3, 28, 12, 5, 1)) == 0
    clock.set(utc(2026, 3, 28, 12, 5, 1, 500))
    app.resume_schedule("a", by="ops", reason="after the upgrade")
    assert step(app, utc(2026, 3, 28, 12, 5, 2)) == 0  # 12:05 passed while paused
    assert step(app, utc(2026, 3, 28, 12, 6, 1)) == 1


def test_no_schedules_costs_one_read_and_fires_nothing(app: Conductor) -> None:
    head = app.ledger.last_seq()
    assert Cron(app.ledger, by="w1").run_once(utc(2026, 3, 28, 13)).fired == 0
    assert app.ledger.last_seq() == head


def test_code_declarations_are_recorded_once_and_again_only_when_they_change(
    app: Conductor, clock: ManualClock
) -> None:
    registry = Registry()
    registry.task("cleanup", cron="0 3 * * *", tz="Europe/Paris", queue="maint")(lambda: None)
    registry.periodic(
        "report", cron="@hourly", payload={"task": "cleanup", "deep": True}, priority="low"
    )
    definitions = registry.schedules()
    assert declare(app.ledger, definitions, clock.now()) == ["cleanup", "report"]
    assert declare(app.ledger, definitions, clock.now()) == []  # a second worker starting
    listed = {schedule.name: schedule for schedule in app.schedules()}
    assert (listed["cleanup"].queue, listed["cleanup"].by) == ("maint", "code")
    assert (listed["report"].priority, listed["report"].payload) == (
        "low",
        '{"deep":true,"task":"cleanup"}',
    )
    app.pause_schedule("report", by="ops")
    changed = Registry()
    changed.task("cleanup", cron="0 4 * * *", tz="Europe/Paris", queue="maint")(lambda: None)
    changed.periodic(
        "report", cron="@hourly", payload={"task": "cleanup", "deep": True}, priority="low"
    )
    assert declare(app.ledger, changed.schedules(), clock.now()) == ["cleanup"]
    types = [rec.type for rec in app.events(types=["schedule_added", "schedule_changed"])]
    assert types == ["schedule_added", "schedule_added", "schedule_changed"]
    assert app.schedule("report").paused  # a re-declaration keeps an operator's pause


def test_a_running_engine_fires_the_slot_and_runs_its_job(db: str) -> None:
    clock = ManualClock(utc(2026, 3, 28, 12, 0, 30))
    registry = Registry()
    ran = threading.Event()
    registry.task("tick", cron="* * * * *")(ran.set)
    config = WorkerConfig(concurrency=2, poll_interval=0.1, maintenance_interval=0.1)
    engine = Engine(Settings(db=db), config, registry=registry, clock=clock)
    engine.start()
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    try:
        with Conductor(settings=Settings(db=db), clock=clock) as app:
            wait_until(lambda: app.events(types=["schedule_added"]), what="the declaration")
            assert app.events(types=["schedule_added"])[0].event.by == "code"  # type: ignore[union-attr]
            clock.set(utc(2026, 3, 28, 12, 1, 0, 200))
            engine.wake()
            assert ran.wait(60), "the fired slot's job did not run"
            wait_until(lambda: app.jobs(status="completed"), what="the job to complete")
            assert slots(app) == [stamp(utc(2026, 3, 28, 12, 1))]
    finally:
        engine.request_stop()
        thread.join(30)
        pykka.ActorRegistry.stop_all()


def test_a_schedule_whose_slots_cannot_be_computed_here_is_skipped_not_fatal(
    app: Conductor,
) -> None:
    app.add_schedule("good", schedule="* * * * *", payload={"task": "noop"}, by="ops")
    app.add_schedule("odd", schedule="* * * * *", payload={"task": "noop"}, by="ops")
    states = app.ledger.controls("schedule")
    # As if another host, with a newer time zone database, had stored it.
    states["odd"] = {**states["odd"], "zone": "Mars/Olympus_Mons"}

    class Seen:
        def __init__(self, ledger: object) -> None:
            self.ledger = ledger

        def controls(self, kind: str) -> dict[str, dict[str, object]]:
            return states

        def __getattr__(self, name: str) -> object:
            return getattr(self.ledger, name)

    cron = Cron(Seen(app.ledger), by="w1")  # type: ignore[arg-type]
    assert cron.run_once(utc(2026, 3, 28, 12, 1, 1)).fired == 1
    assert [event.schedule for event in fired(app)] == ["good"]
