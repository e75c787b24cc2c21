"""Cron schedules in the ledger (contract), on every backend: a fired slot and its job
are one append; the ledger refuses a slot at or before the last fired one, a fire of a
paused, removed or since-changed schedule, and an identical re-declaration - storing
nothing - and a rebuild folds the same schedule rows."""

from __future__ import annotations

import datetime as dt

import pytest

from conductor.domain import cron_decisions as decide
from conductor.domain import schedules
from conductor.domain.clock import stamp
from conductor.domain.errors import ControlRefused, ControlUnchanged, UnknownSchedule
from conductor.domain.events import NewEvent
from conductor.ledger.base import EventFilter, JobFilter, Ledger

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HOURLY = schedules.define(
    expression="0 * * * *",
    zone="Europe/Paris",
    payload='{"report":"daily","task":"report"}',
    task="report",
    queue="reports",
    priority=0,
    max_retries=2,
)


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def add(ledger: Ledger, name: str = "hourly", definition: schedules.Definition = HOURLY) -> None:
    event = decide.declare(
        name, definition, ledger.controls("schedule").get(name), by="ops", now=T0
    )
    assert event is not None
    ledger.append([event])


def fire_events(ledger: Ledger, now: dt.datetime, name: str = "hourly") -> list[NewEvent]:
    state = ledger.controls("schedule")[name]
    fires = decide.due(state, now)
    assert fires, f"nothing due at {now}"
    return decide.fire(name, state, fires, by="w1", now=now)


def test_a_fired_slot_and_its_job_are_one_append(ledger: Ledger) -> None:
    add(ledger)
    recorded = ledger.append(fire_events(ledger, hours(1) + dt.timedelta(seconds=2)))
    assert [(rec.job_id, rec.type) for rec in recorded] == [(0, "schedule_fired"), (1, "enqueued")]
    assert recorded[1].seq == recorded[0].seq + 1
    assert recorded[0].event.slot == stamp(hours(1))  # type: ignore[union-attr]
    job = ledger.job(1)
    assert job is not None
    assert (job["task"], job["queue"], job["priority"], job["max_retries"]) == (
        "report",
        "reports",
        0,
        2,
    )
    state = ledger.controls("schedule")["hourly"]
    assert (state["last_slot"], state["after"], state["fired"]) == (
        stamp(hours(1)),
        stamp(hours(1)),
        1,
    )


def test_the_ledger_refuses_a_slot_fired_already_and_stores_nothing(ledger: Ledger) -> None:
    add(ledger)
    now = hours(1) + dt.timedelta(seconds=2)
    first = fire_events(ledger, now)
    second = list(first)  # another worker decided on the same read
    ledger.append(first)
    head = ledger.last_seq()
    with pytest.raises(ControlRefused, match="is not after"):
        ledger.append(second)
    assert ledger.last_seq() == head
    assert len(ledger.jobs(JobFilter())) == 1


def test_a_slot_at_or_before_the_schedule_was_added_never_fires(ledger: Ledger) -> None:
    add(ledger)
    state = ledger.controls("schedule")["hourly"]
    early = decide.fire(
        "hourly", state, [schedules.Fire(slot=T0, late=False, skipped=0)], by="w", now=T0
    )
    with pytest.raises(ControlRefused):
        ledger.append(early)
    assert ledger.jobs(JobFilter()) == []


@pytest.mark.parametrize("action", ["pause", "remove"])
def test_a_fire_decided_before_a_pause_or_removal_is_refused(ledger: Ledger, action: str) -> None:
    add(ledger)
    stale = fire_events(ledger, hours(1))
    ledger.append([decide.operator(action, "hourly", by="ops", reason="", now=hours(0.9))])
    with pytest.raises(ControlRefused):
        ledger.append(stale)
    assert ledger.jobs(JobFilter()) == []


def test_a_fire_decided_on_an_older_definition_is_refused(ledger: Ledger) -> None:
    add(ledger)
    stale = fire_events(ledger, hours(1))
    changed = schedules.define(**{**HOURLY.fields(), "queue": "other"})
    event = decide.declare(
        "hourly", changed, ledger.controls("schedule")["hourly"], by="ops", now=T0
    )
    assert event is not None
    ledger.append([event])
    with pytest.raises(ControlRefused, match="revision"):
        ledger.append(stale)
    assert ledger.jobs(JobFilter()) == []


def test_pause_and_resume_are_recorded_and_refused_when_they_change_nothing(
    ledger: Ledger,
) -> None:
    add(ledger)
    ledger.append([decide.operator("pause", "hourly", by="alice", reason="db upgrade", now=T0)])
    state = ledger.controls("schedule")["hourly"]
    assert (state["paused"], state["by"]) == (True, "alice")
    assert decide.due(state, hours(5)) == []
    with pytest.raises(ControlUnchanged, match="already paused"):
        ledger.append([decide.operator("pause", "hourly", by="alice", reason="", now=T0)])
    ledger.append([decide.operator("resume", "hourly", by="bob", reason="", now=hours(5.5))])
    state = ledger.controls("schedule")["hourly"]
    # The paused hours are not missed slots: the next fire is the first after the resume.
    assert state["after"] == stamp(hours(5.5))
    fires = decide.due(state, hours(6) + dt.timedelta(seconds=1))
    assert [(fire.slot, fire.skipped) for fire in fires] == [(hours(6), 0)]


def test_an_unknown_schedule_cannot_be_paused_resumed_removed_or_fired(ledger: Ledger) -> None:
    for action in ("pause", "resume", "remove"):
        with pytest.raises(UnknownSchedule, match="no schedule named 'ghost'"):
            ledger.append([decide.operator(action, "ghost", by="ops", reason="", now=T0)])
    assert ledger.last_seq() == 0


def test_an_identical_declaration_is_refused_as_no_change_and_a_different_add_as_taken(
    ledger: Ledger,
) -> None:
    add(ledger)
    again = decide.declare("hourly", HOURLY, None, by="code", now=T0)  # decided on a stale read
    assert again is not None
    with pytest.raises(ControlUnchanged):
        ledger.append([again])
    other = schedules.define(**{**HOURLY.fields(), "expression": "*/5 * * * *"})
    taken = decide.declare("hourly", other, None, by="ops", now=T0)
    assert taken is not None
    with pytest.raises(ControlRefused, match="already exists"):
        ledger.append([taken])
    assert (
        decide.declare("hourly", HOURLY, ledger.controls("schedule")["hourly"], by="x", now=T0)
        is None
    )
    assert len(ledger.read(EventFilter())) == 1


def test_a_removed_schedule_can_be_added_again_and_never_refires_an_old_slot(
    ledger: Ledger,
) -> None:
    add(ledger)
    ledger.append(fire_events(ledger, hours(1)))
    ledger.append([decide.operator("remove", "hourly", by="ops", reason="", now=hours(1.1))])
    assert "hourly" in ledger.controls("schedule")  # kept, marked removed
    add(ledger)  # the add is stamped T0, before the slot that fired
    state = ledger.controls("schedule")["hourly"]
    assert (state["removed"], state["after"], state["fired"]) == (False, stamp(hours(1)), 1)


def test_a_rebuild_folds_the_same_schedule_rows(ledger: Ledger) -> None:
    add(ledger)
    add(ledger, "nightly", schedules.define(**{**HOURLY.fields(), "expression": "0 3 * * *"}))
    ledger.append(fire_events(ledger, hours(1)))
    ledger.append([decide.operator("pause", "nightly", by="ops", reason="", now=hours(2))])
    before = ledger.controls("schedule")
    assert ledger.diff_projections() == []
    ledger.rebuild_projections()
    assert ledger.controls("schedule") == before
    assert ledger.verify_chain().ok
