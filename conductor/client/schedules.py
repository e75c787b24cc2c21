"""Cron schedules through the API: add, list (with the next runs), pause, resume, remove.

A mixin of `Conductor`. Each change is one operations-stream event naming who made it
(`by`, the OS user by default); the ledger's fold refuses what cannot apply (an unknown
schedule, a pause of a paused one) and nothing is stored then. Workers fire the slots
(`conductor.engine.cron`); this module never enqueues.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

from conductor.domain import cron, schedules
from conductor.domain import cron_decisions as decide
from conductor.domain.clock import Clock, Timestamp, stamp, unstamp
from conductor.domain.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    PRIORITY_NAMES,
    Settings,
    check_max_retries,
    check_queue,
    parse_priority,
)
from conductor.domain.errors import ControlUnchanged, UnknownSchedule
from conductor.domain.payloads import parse_payload
from conductor.ledger.base import Ledger

KIND: Final = "schedule"
NEXT_RUNS: Final = 3
"""How many upcoming slots `schedules()` lists per schedule."""


def operator_name() -> str:
    """Who is acting when no `by` is given: the OS user, as `git` and `sudo` record."""
    try:
        return getpass.getuser() or "operator"
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return "operator"


@attrs.frozen(kw_only=True)
class Schedule:
    """A schedule as `conductor cron list` shows it."""

    name: str
    expression: str
    zone: str
    task: str
    payload: str
    queue: str
    priority: str
    max_retries: int
    missed: str
    catch_up_max: int
    paused: bool
    by: str
    """Who last added, changed, paused or resumed it (`code`: a worker, from code)."""
    changed_at: Timestamp
    last_slot: Timestamp | None
    fired: int
    next_runs: tuple[Timestamp, ...]
    """The next slots after now (none while paused)."""

    def as_json(self) -> dict[str, Any]:
        fields = attrs.asdict(self)
        fields["payload"] = json.loads(self.payload)
        fields["next_runs"] = list(self.next_runs)
        return fields


def make_definition(
    settings: Settings,
    *,
    schedule: str,
    payload: Mapping[str, Any] | str | bytes,
    tz: str = "UTC",
    queue: str | None = None,
    priority: str | None = None,
    max_retries: int | None = None,
    missed: str = schedules.DEFAULT_MISSED,
    catch_up_max: int = schedules.DEFAULT_CATCH_UP_MAX,
) -> schedules.Definition:
    """A checked definition (`InvalidInput` naming the first bad part), with conductor's
    defaults for what is left out; the CLI asks before it opens (or creates) a database."""
    expression = cron.check_expression(schedule)
    zone = cron.zone(tz).key
    parsed = parse_payload(
        dict(payload) if isinstance(payload, Mapping) else payload, settings.max_payload_bytes
    )
    return schedules.define(
        expression=expression,
        zone=zone,
        payload=parsed.text,
        task=parsed.task,
        queue=check_queue(DEFAULT_QUEUE if queue is None else queue),
        priority=parse_priority(priority or DEFAULT_PRIORITY),
        max_retries=check_max_retries(DEFAULT_MAX_RETRIES if max_retries is None else max_retries),
        missed=schedules.check_missed(missed),
        catch_up_max=schedules.check_catch_up_max(catch_up_max),
    )


class Schedules:
    """The schedule methods of `Conductor`."""

    ledger: Ledger
    clock: Clock
    settings: Settings

    def add_schedule(
        self,
        name: str,
        *,
        schedule: str,
        payload: Mapping[str, Any] | str | bytes,
        tz: str = "UTC",
        queue: str | None = None,
        priority: str | None = None,
        max_retries: int | None = None,
        missed: str = schedules.DEFAULT_MISSED,
        catch_up_max: int = schedules.DEFAULT_CATCH_UP_MAX,
        replace: bool = False,
        by: str | None = None,
    ) -> Schedule:
        """Add a schedule that enqueues `payload` at every slot of the cron expression
        `schedule` in time zone `tz`; with `replace`, change the one of that name.

        Options left out are conductor's defaults (queue `default`, priority `medium`, 3
        retries), not a task's: this process may not know the task. Raises
        `InvalidInput` for a bad expression, zone, payload or option, and
        `ControlRefused` when the name is taken (without `replace`)."""
        definition = make_definition(
            self.settings,
            schedule=schedule,
            payload=payload,
            tz=tz,
            queue=queue,
            priority=priority,
            max_retries=max_retries,
            missed=missed,
            catch_up_max=catch_up_max,
        )
        schedules.check_name(name)
        now = self.clock.now()
        state = self.ledger.controls(KIND).get(name)
        event = decide.declare(
            name, definition, state, by=by or operator_name(), now=now, replace=replace
        )
        if event is None:
            raise ControlUnchanged(
                f"schedule {name!r} already has this definition; nothing changed"
            )
        self.ledger.append([event])
        return self.schedule(name)

    def schedules(self) -> list[Schedule]:
        """Every schedule (removed ones excepted) by name, with its next runs."""
        now = self.clock.now()
        return [
            _view(name, state, now)
            for name, state in sorted(self.ledger.controls(KIND).items())
            if decide.is_live(state)
        ]

    def schedule(self, name: str) -> Schedule:
        """One schedule; `UnknownSchedule` when there is none of that name."""
        state = self.ledger.controls(KIND).get(name)
        if not decide.is_live(state):
            raise UnknownSchedule(name)
        assert state is not None
        return _view(name, state, self.clock.now())

    def pause_schedule(self, name: str, *, by: str | None = None, reason: str = "") -> None:
        """Stop the schedule's slots firing until it is resumed."""
        self._operate("pause", name, by, reason)

    def resume_schedule(self, name: str, *, by: str | None = None, reason: str = "") -> None:
        """Fire the schedule's slots again, from now on (the paused ones never fire)."""
        self._operate("resume", name, by, reason)

    def remove_schedule(self, name: str, *, by: str | None = None, reason: str = "") -> None:
        """Remove the schedule: it fires no more."""
        self._operate("remove", name, by, reason)

    def _operate(self, action: str, name: str, by: str | None, reason: str) -> None:
        schedules.check_name(name)
        event = decide.operator(
            action, name, by=by or operator_name(), reason=reason, now=self.clock.now()
        )
        self.ledger.append([event])


def _view(name: str, state: Mapping[str, Any], now: dt.datetime) -> Schedule:
    start = max(now, unstamp(state["after"]))
    upcoming = (
        ()
        if state["paused"]
        else tuple(
            stamp(slot)
            for slot in schedules.upcoming(
                state["expression"], cron.zone(state["zone"]), start, NEXT_RUNS
            )
        )
    )
    return Schedule(
        name=name,
        expression=state["expression"],
        zone=state["zone"],
        task=state["task"],
        payload=state["payload"],
        queue=state["queue"],
        priority=PRIORITY_NAMES[state["priority"]],
        max_retries=state["max_retries"],
        missed=state["missed"],
        catch_up_max=state["catch_up_max"],
        paused=state["paused"],
        by=state["by"],
        changed_at=state["changed_at"],
        last_slot=state["last_slot"],
        fired=state["fired"],
        next_runs=upcoming,
    )
