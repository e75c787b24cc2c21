"""Pure decide-functions for schedules: (schedule state, command, now) -> events.

The schedule's state is its `controls` row (`projections/schedule_folds.py`); the ledger
folds the decided events under its lock and refuses what is stale, so deciding on a read
taken a moment earlier is safe: a refusal means another worker or operator got there
first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from conductor.domain import cron, decisions, schedules
from conductor.domain.clock import stamp, unstamp
from conductor.domain.control_events import OPERATIONS
from conductor.domain.events import NewEvent
from conductor.domain.payloads import Payload
from conductor.domain.schedule_events import (
    DEFINITION_FIELDS,
    ScheduleAdded,
    ScheduleChanged,
    ScheduleFired,
    SchedulePaused,
    ScheduleRemoved,
    ScheduleResumed,
)

OPERATOR_EVENTS: Final[
    dict[str, type[SchedulePaused] | type[ScheduleResumed] | type[ScheduleRemoved]]
] = {
    "pause": SchedulePaused,
    "resume": ScheduleResumed,
    "remove": ScheduleRemoved,
}


def is_live(state: Mapping[str, Any] | None) -> bool:
    return state is not None and not state["removed"]


def definition_of(state: Mapping[str, Any]) -> schedules.Definition:
    """The definition a schedule's state holds."""
    return schedules.Definition(**{name: state[name] for name in DEFINITION_FIELDS})


def declare(
    name: str,
    definition: schedules.Definition,
    state: Mapping[str, Any] | None,
    *,
    by: str,
    now: dt.datetime,
    replace: bool = True,
) -> NewEvent | None:
    """`schedule_added` for a schedule that does not exist (or was removed),
    `schedule_changed` (only if `replace`) for one whose definition differs, None when
    it already holds this definition. Without `replace`, an existing schedule gets
    `schedule_added`, which the ledger refuses, naming the schedule."""
    if is_live(state) and state is not None and definition_of(state) == definition:
        return None
    cls = ScheduleChanged if is_live(state) and replace else ScheduleAdded
    return NewEvent(
        job_id=OPERATIONS,
        at=stamp(now),
        event=cls(schedule=schedules.check_name(name), by=by, **definition.fields()),
    )


def operator(action: str, name: str, *, by: str, reason: str, now: dt.datetime) -> NewEvent:
    """`schedule_paused`, `schedule_resumed` or `schedule_removed` (`action` pause,
    resume, remove); the ledger refuses it for an unknown schedule or one already so."""
    return NewEvent(
        job_id=OPERATIONS,
        at=stamp(now),
        event=OPERATOR_EVENTS[action](schedule=name, by=by, reason=reason),
    )


def due(state: Mapping[str, Any], now: dt.datetime) -> list[schedules.Fire]:
    """The slots of a live, running schedule to fire at `now` (see `schedules.due`)."""
    if not is_live(state) or state["paused"]:
        return []
    return schedules.due(
        state["expression"],
        cron.zone(state["zone"]),
        after=unstamp(state["after"]),
        now=now,
        missed=state["missed"],
        catch_up_max=state["catch_up_max"],
    )


def fire(
    name: str,
    state: Mapping[str, Any],
    fires: Sequence[schedules.Fire],
    *,
    by: str,
    now: dt.datetime,
) -> list[NewEvent]:
    """For each slot, `schedule_fired` followed by the `enqueued` event of its job: one
    append, so the job exists exactly when its slot is recorded as fired."""
    at = stamp(now)
    payload = Payload(task=state["task"], text=state["payload"])
    events: list[NewEvent] = []
    for slot in fires:
        events.append(
            NewEvent(
                job_id=OPERATIONS,
                at=at,
                event=ScheduleFired(
                    schedule=name,
                    by=by,
                    slot=stamp(slot.slot),
                    revision=state["revision"],
                    missed=state["missed"],
                    late=slot.late,
                    skipped=slot.skipped,
                ),
            )
        )
        events.append(
            decisions.enqueue(
                payload,
                queue=state["queue"],
                priority=state["priority"],
                max_retries=state["max_retries"],
                run_at=None,
                now=now,
            )
        )
    return events
