"""Properties of schedules for every sequence of operator actions, worker fires (winners
and losers of the race) and clock steps on a real ledger file: each slot fires at most
once and slots of a schedule strictly increase, every fire is followed by its job, a
refused operation changes nothing, and the `controls` rows rebuilt from the log equal the
live ones."""

from __future__ import annotations

import collections
import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from conductor import Conductor, ManualClock
from conductor.domain import cron, cron_decisions, schedules
from conductor.domain.clock import unstamp
from conductor.domain.config import Settings
from conductor.domain.errors import ControlRefused, UnknownSchedule
from conductor.ledger.base import JobFilter

ACTIONS = ("add", "replace", "pause", "resume", "remove", "fire", "refire", "look")
operation = st.one_of(
    st.tuples(st.sampled_from(ACTIONS), st.sampled_from(["s1", "s2"])),
    st.tuples(st.just("tick"), st.integers(1, 400)),
)


def snapshot(app: Conductor) -> tuple[object, ...]:
    return (app.ledger.last_seq(), app.ledger.controls("schedule"), app.ledger.jobs(JobFilter()))


def act(app: Conductor, action: str, name: str, now: dt.datetime) -> None:
    if action in ("add", "replace"):
        every = "* * * * *" if action == "add" else "*/2 * * * *"
        app.add_schedule(
            name, schedule=every, payload={"task": "a"}, replace=action == "replace", by="p"
        )
    elif action == "look":  # a worker's look: fires what `due` says at `now`
        state = app.ledger.controls("schedule").get(name)
        fires = [] if state is None else cron_decisions.due(state, now)
        if fires:
            assert state is not None
            app.ledger.append(cron_decisions.fire(name, state, fires, by="w", now=now))
    elif action in ("fire", "refire"):
        state = app.ledger.controls("schedule").get(name)
        if state is None:
            raise UnknownSchedule(name)
        after = unstamp(state["after"])
        # The next slot (a worker's fire), or the last one again (a loser of the race).
        slot = cron.next_slot(state["expression"], cron.zone(state["zone"]), after)
        fire = schedules.Fire(slot=slot if action == "fire" else after, late=False, skipped=0)
        app.ledger.append(cron_decisions.fire(name, state, [fire], by="w", now=now))
    else:
        getattr(app, f"{action}_schedule")(name, by="p")


@settings(max_examples=80, deadline=None)
@given(st.lists(operation, min_size=1, max_size=40))
def test_each_slot_fires_once_with_its_job_and_a_rebuild_equals_the_live_rows(
    operations: list[tuple[object, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        clock = ManualClock(dt.datetime(2026, 3, 29, 0, 50, tzinfo=dt.UTC))
        with Conductor(settings=Settings(db=str(Path(folder) / "s.db")), clock=clock) as app:
            for kind, value in operations:
                if kind == "tick":
                    clock.advance(int(value))  # type: ignore[call-overload]
                    continue
                before = snapshot(app)
                try:
                    act(app, str(kind), str(value), clock.now())
                except ControlRefused:
                    assert snapshot(app) == before
            log = app.events()
            fired = [
                (rec.event.schedule, rec.event.slot) for rec in log if rec.type == "schedule_fired"
            ]  # type: ignore[union-attr]
            assert max(collections.Counter(fired).values(), default=1) == 1
            for name in ("s1", "s2"):
                own = [slot for schedule, slot in fired if schedule == name]
                assert own == sorted(own)
            for index, rec in enumerate(log):
                if rec.type == "schedule_fired":
                    assert log[index + 1].type == "enqueued"
            assert len(app.jobs(limit=None)) == len(fired)
            live = app.ledger.controls("schedule")
            assert app.verify_projections() == []
            app.replay()
            assert app.ledger.controls("schedule") == live
            assert app.audit().ok
