"""The folds of the schedule events into their `controls` rows (kind `schedule`).

Pure, like every fold: `(state | None, fields, at) -> (kind, name, new state)`. The state
of a schedule is its definition (`schedule_events.DEFINITION_FIELDS`) and:

* `paused`, `removed` - whether it fires;
* `revision` - bumped by every add, change, pause, resume and removal: a `schedule_fired`
  decided on an older revision is refused, so a fire never outlives the definition it
  was computed from;
* `after` - slots at or before this instant never fire: the last fired slot, or when the
  schedule was added, changed or resumed (never moving back);
* `last_slot`, `fired` - the last fired slot and how many slots fired;
* `by`, `changed_at` - who last changed it and when.

A fold refuses by raising `ControlRefused` (or `ControlUnchanged` for a request that
changes nothing): the append is refused whole. This is where "exactly one enqueue per
slot" lives: the fired slot must be after `after`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from conductor.domain.errors import ControlRefused, ControlUnchanged, UnknownSchedule
from conductor.domain.schedule_events import (
    DEFINITION_FIELDS,
    ScheduleAdded,
    ScheduleChanged,
    ScheduleFired,
    SchedulePaused,
    ScheduleRemoved,
    ScheduleResumed,
)

State = dict[str, Any]
Fold = Callable[[State | None, Mapping[str, Any], str], tuple[str, str, State]]
KIND: Final = "schedule"


def is_live(state: State | None) -> bool:
    """Whether the schedule exists (was added and not removed since)."""
    return state is not None and not state["removed"]


def definition(state: Mapping[str, Any]) -> dict[str, Any]:
    return {name: state[name] for name in DEFINITION_FIELDS}


def _live(state: State | None, name: str) -> State:
    if state is None or not is_live(state):
        raise UnknownSchedule(name)
    return dict(state)


def _changed(state: State, fields: Mapping[str, Any], at: str, *, restart: bool) -> State:
    state["revision"] += 1
    state["by"] = fields["by"]
    state["changed_at"] = at
    if restart:
        state["after"] = max(at, state["after"])
    return state


def _added(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    name = fields["schedule"]
    if is_live(state):
        assert state is not None
        if definition(state) == definition(fields):
            raise ControlUnchanged(
                f"schedule {name!r} already exists with this definition; nothing changed"
            )
        raise ControlRefused(
            f"schedule {name!r} already exists; expected a new name, or "
            "`conductor cron add --replace` to change it"
        )
    new: State = {
        **definition(fields),
        "paused": False,
        "removed": False,
        "revision": 0 if state is None else state["revision"],
        "after": at if state is None else state["after"],
        "last_slot": None if state is None else state["last_slot"],
        "fired": 0 if state is None else state["fired"],
    }
    return KIND, name, _changed(new, fields, at, restart=True)


def _changed_definition(
    state: State | None, fields: Mapping[str, Any], at: str
) -> tuple[str, str, State]:
    name = fields["schedule"]
    new = _live(state, name)
    if definition(new) == definition(fields):
        raise ControlUnchanged(f"schedule {name!r} already has this definition; nothing changed")
    new.update(definition(fields))
    return KIND, name, _changed(new, fields, at, restart=True)


def _paused(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    name = fields["schedule"]
    new = _live(state, name)
    if new["paused"]:
        raise ControlUnchanged(f"schedule {name!r} is already paused; nothing changed")
    new["paused"] = True
    return KIND, name, _changed(new, fields, at, restart=False)


def _resumed(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    name = fields["schedule"]
    new = _live(state, name)
    if not new["paused"]:
        raise ControlUnchanged(f"schedule {name!r} is not paused; nothing changed")
    new["paused"] = False
    return KIND, name, _changed(new, fields, at, restart=True)


def _removed(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    name = fields["schedule"]
    new = _live(state, name)
    new["removed"] = True
    return KIND, name, _changed(new, fields, at, restart=False)


def _fired(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    name, slot = fields["schedule"], fields["slot"]
    new = _live(state, name)
    if new["paused"]:
        raise ControlRefused(f"schedule {name!r} is paused; slot {slot} does not fire")
    if fields["revision"] != new["revision"]:
        raise ControlRefused(
            f"schedule {name!r} changed (revision {new['revision']}, the fire was decided "
            f"on {fields['revision']}); slot {slot} is decided again"
        )
    if slot <= new["after"]:
        raise ControlRefused(
            f"schedule {name!r}: slot {slot} is not after {new['after']} (fired already, or "
            "before the schedule was added, changed or resumed)"
        )
    new["after"] = new["last_slot"] = slot
    new["fired"] += 1
    return KIND, name, new


SCHEDULE_FOLDS: Final[dict[str, Fold]] = {
    ScheduleAdded.TYPE: _added,
    ScheduleChanged.TYPE: _changed_definition,
    SchedulePaused.TYPE: _paused,
    ScheduleResumed.TYPE: _resumed,
    ScheduleRemoved.TYPE: _removed,
    ScheduleFired.TYPE: _fired,
}
"""Event type -> fold, registered into `projections.controls.FOLDS`."""
