"""The operations stream's events about cron schedules (`KIND` `schedule`).

A schedule is added, changed, paused, resumed and removed by an operator (`conductor cron
...`, `by` their name) or declared by a worker from code (`by` `code`); each slot it fires
is a `schedule_fired` event appended in one append with the `enqueued` event of the job
it makes (the event right after it in the log). The fold (`projections/schedule_folds.py`)
refuses a slot at or before the schedule's last fired one, so however many workers fire,
one job is enqueued per slot. docs/events.md describes each type for operators.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import attrs

from conductor.domain.clock import Timestamp
from conductor.domain.control_events import ControlEvent


class _Definition(ControlEvent):
    """The fields of a schedule's definition (`conductor.domain.schedules.Definition`)."""

    KIND: ClassVar[str] = "schedule"

    def definition(self) -> dict[str, Any]:
        fields = self.fields()
        return {name: fields[name] for name in DEFINITION_FIELDS}


@attrs.frozen(kw_only=True)
class ScheduleAdded(_Definition):
    """A schedule was added (or added again after its removal): from now on, each slot
    of `expression` in `zone` enqueues `payload`. Slots before the event's `at` never
    fire. Refused when a schedule of that name exists."""

    TYPE: ClassVar[str] = "schedule_added"
    VERSION: ClassVar[int] = 1

    schedule: str
    by: str
    """The operator's name, or `code` for a schedule declared in code by a worker."""
    expression: str
    """A 5-field cron expression or an alias (`@daily`), normalised."""
    zone: str
    """The IANA time zone the expression's wall-clock times are in."""
    payload: str
    """The jobs' payload object as canonical JSON text (it names the task)."""
    task: str
    queue: str
    priority: int
    """0 high, 1 medium, 2 low."""
    max_retries: int
    missed: str
    """What happens to slots missed while no worker looked: `none`, `latest` or `all`."""
    catch_up_max: int
    """With `all`, the most missed slots fired at once (the most recent ones)."""


@attrs.frozen(kw_only=True)
class ScheduleChanged(_Definition):
    """A schedule's definition was replaced (the fields as in `schedule_added`): slots
    count from the event's `at`. Refused when nothing would change."""

    TYPE: ClassVar[str] = "schedule_changed"
    VERSION: ClassVar[int] = 1

    schedule: str
    by: str
    expression: str
    zone: str
    payload: str
    task: str
    queue: str
    priority: int
    max_retries: int
    missed: str
    catch_up_max: int


@attrs.frozen(kw_only=True)
class SchedulePaused(ControlEvent):
    """An operator paused the schedule: its slots do not fire until it is resumed."""

    TYPE: ClassVar[str] = "schedule_paused"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "schedule"

    schedule: str
    by: str
    reason: str
    """Why, in the operator's words; empty when none was given."""


@attrs.frozen(kw_only=True)
class ScheduleResumed(ControlEvent):
    """An operator resumed the schedule: slots after the event's `at` fire again (those
    of the pause are not missed slots: they never fire)."""

    TYPE: ClassVar[str] = "schedule_resumed"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "schedule"

    schedule: str
    by: str
    reason: str


@attrs.frozen(kw_only=True)
class ScheduleRemoved(ControlEvent):
    """An operator removed the schedule: it fires no more. Its name may be added again."""

    TYPE: ClassVar[str] = "schedule_removed"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "schedule"

    schedule: str
    by: str
    reason: str


@attrs.frozen(kw_only=True)
class ScheduleFired(ControlEvent):
    """A worker fired one slot: the `enqueued` event right after this one, in the same
    append, is the job it made. The ledger refuses a slot at or before the schedule's last
    fired slot, a paused or removed schedule, and a decision made on an older revision of
    the schedule, so each slot enqueues one job however many workers race for it."""

    TYPE: ClassVar[str] = "schedule_fired"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "schedule"

    schedule: str
    by: str
    """The firing worker's id (`host:pid:start`)."""
    slot: Timestamp
    """The slot's instant (UTC): the wall-clock time it stands for is in the zone."""
    revision: int
    """The schedule's revision the worker decided on (each add, change, pause, resume
    and removal is a new one)."""
    missed: str
    """The missed-slot policy the worker applied."""
    late: bool
    """The slot was missed (seen more than a minute after it) and fired by the policy."""
    skipped: int
    """Missed slots between the previous fired slot and this one that did not fire."""


DEFINITION_FIELDS: Final = (
    "expression",
    "zone",
    "payload",
    "task",
    "queue",
    "priority",
    "max_retries",
    "missed",
    "catch_up_max",
)
SCHEDULE_EVENT_CLASSES: Final[tuple[type[ControlEvent], ...]] = (
    ScheduleAdded,
    ScheduleChanged,
    SchedulePaused,
    ScheduleResumed,
    ScheduleRemoved,
    ScheduleFired,
)
