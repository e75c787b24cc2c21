"""Cron in the worker: declaring code's schedules at start, firing due slots each round.

`Cron.run_once(now)` is one look: read the schedules (the `controls` rows of kind
`schedule`: one indexed read, and nothing more when there are none), ask the pure
`cron_decisions.due` which slots are due, and append each schedule's fires with their
jobs. Every worker process does this in its maintenance round; the ledger refuses a slot
that another got to first (`ControlRefused`), which is the ordinary outcome of the race
and passes quietly. Tests step it by hand with a chosen `now`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

import attrs

from conductor.domain import cron_decisions as decide
from conductor.domain.errors import ControlRefused, ControlUnchanged, InvalidInput
from conductor.domain.schedules import Definition
from conductor.ledger.base import Ledger
from conductor.observe import logs

KIND: Final = "schedule"
DECLARE_TRIES: Final = 3
"""Reads and appends one declaration may take: another worker declaring the same
schedule at the same moment makes the first refused, the second finds it declared."""


@attrs.frozen(kw_only=True)
class Round:
    """What one look did."""

    fired: int = 0
    """Slots fired (jobs enqueued) by this process."""
    lost: int = 0
    """Schedules whose due slots another process fired first."""


class Cron:
    """Fires due slots of the schedules in `ledger` as worker `by`."""

    def __init__(self, ledger: Ledger, *, by: str) -> None:
        self._ledger = ledger
        self._by = by
        self._broken: set[tuple[str, int]] = set()
        """(schedule, revision) whose slots cannot be computed here, warned about once."""

    def run_once(self, now: dt.datetime) -> Round:
        states = self._ledger.controls(KIND)
        if not states:
            return Round()
        fired = lost = 0
        for name, state in sorted(states.items()):
            try:
                fires = decide.due(state, now)
            except InvalidInput as e:
                # Stored by a process that could compute it: e.g. a zone this host's tz
                # database lacks. Other hosts may fire it; this one says so once.
                if (name, state["revision"]) not in self._broken:
                    self._broken.add((name, state["revision"]))
                    logs.note(f"schedule {name}: cannot compute its slots here: {e}", warning=True)
                continue
            if not fires:
                continue
            try:
                self._ledger.append(decide.fire(name, state, fires, by=self._by, now=now))
            except ControlRefused:
                lost += 1  # another worker fired it, or an operator changed it meanwhile
                continue
            fired += len(fires)
            late = sum(fire.late for fire in fires)
            skipped = sum(fire.skipped for fire in fires)
            if late or skipped:
                logs.note(
                    f"schedule {name}: fired {len(fires)} slots ({late} late, {skipped} "
                    f"missed slots skipped; policy {state['missed']})"
                )
        return Round(fired=fired, lost=lost)


def declare(
    ledger: Ledger, definitions: Mapping[str, Definition], now: dt.datetime, *, by: str = "code"
) -> list[str]:
    """Record the schedules declared in code whose definition the ledger does not hold
    yet (new, changed, or removed by an operator); returns their names. Several workers
    starting at once declare each change once: the ledger refuses an identical
    re-declaration, and a refused one is looked at again."""
    if not definitions:
        return []
    declared = []
    for name, definition in sorted(definitions.items()):
        for _ in range(DECLARE_TRIES):
            event = decide.declare(
                name, definition, ledger.controls(KIND).get(name), by=by, now=now
            )
            if event is None:
                break
            try:
                ledger.append([event])
            except ControlUnchanged:
                break
            except ControlRefused:
                continue
            declared.append(name)
            logs.note(
                f"schedule {name} declared from code: {definition.expression} ({definition.zone})"
            )
            break
    return declared
