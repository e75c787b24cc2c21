"""Schedules: a cron definition, and which of its slots are due at an instant.

Pure: `due` takes the instant after which slots count (the last fired slot, or when the
schedule was added, changed or resumed) and `now`, and says which slots to fire now and
how many missed ones it skips. The ledger keeps those instants (the `controls` read
model), refuses a slot at or before the last fired one, and so makes one enqueue per slot
however many workers ask (docs/operations.md, "Cron at run time").

The missed-slot policy, for slots that passed while no worker looked (downtime, a clock
jump forward). A slot is *on time* while less than `ON_TIME` has passed since it; an older
one is *missed*:

* `none`   - missed slots are skipped; the next on-time slot fires (and says how many it
             skipped).
* `latest` - the most recent slot fires once, late if it was missed; older missed ones are
             skipped. The default: a nightly job that missed its night runs once.
* `all`    - every missed slot fires, oldest first, up to `catch_up_max` of the most recent
             ones; older ones beyond the cap are skipped.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any, Final

import attrs

from conductor.domain import cron
from conductor.domain.config import PRIORITY_NAMES, check_max_retries, check_queue
from conductor.domain.errors import InvalidInput

MISSED_POLICIES: Final = ("none", "latest", "all")
DEFAULT_MISSED: Final = "latest"
DEFAULT_CATCH_UP_MAX: Final = 10
CATCH_UP_LIMIT: Final = 1000
"""The most missed slots one schedule may catch up (`--catch-up-max`)."""
ON_TIME: Final = dt.timedelta(minutes=1)
"""How late a slot may be seen and still count as on time: a worker looks every poll
interval (a second by default), or later while its database is busy or away."""
COUNT_LIMIT: Final = 10_000
"""Skipped slots are counted up to this many (a minutely schedule down for a week would
otherwise walk ten thousand slots on every fire); the count then reads `at least`."""
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def check_name(name: str) -> str:
    """A schedule's name: like a queue's, 1-100 letters, digits or _ . : -"""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid schedule name {name!r}: expected 1-100 letters, digits or _ . : -"
        )
    return name


def check_missed(policy: str) -> str:
    if policy not in MISSED_POLICIES:
        raise InvalidInput(
            f"invalid missed-slot policy {policy!r}: expected {', '.join(MISSED_POLICIES)}"
        )
    return policy


def check_catch_up_max(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= CATCH_UP_LIMIT:
        raise InvalidInput(
            f"invalid catch-up maximum {value!r}: expected a whole number from 1 to "
            f"{CATCH_UP_LIMIT}"
        )
    return value


@attrs.frozen(kw_only=True)
class Definition:
    """What a schedule enqueues and when: the fields of its `schedule_added` and
    `schedule_changed` events, validated. Two definitions are equal when they fire the
    same jobs at the same slots, which is how a re-declaration from code is recognised."""

    expression: str
    zone: str
    payload: str
    """The job's payload object as canonical JSON text (it names the task)."""
    task: str
    queue: str
    priority: int
    max_retries: int
    missed: str = DEFAULT_MISSED
    catch_up_max: int = DEFAULT_CATCH_UP_MAX

    def __attrs_post_init__(self) -> None:
        cron.check_expression(self.expression)
        cron.zone(self.zone)
        check_queue(self.queue)
        if self.priority not in PRIORITY_NAMES:
            raise InvalidInput(f"invalid priority {self.priority!r}: expected 0, 1 or 2")
        check_max_retries(self.max_retries)
        check_missed(self.missed)
        check_catch_up_max(self.catch_up_max)

    def fields(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return cron.zone(self.zone)


def define(
    *,
    expression: str,
    zone: str,
    payload: str,
    task: str,
    queue: str,
    priority: int,
    max_retries: int,
    missed: str = DEFAULT_MISSED,
    catch_up_max: int = DEFAULT_CATCH_UP_MAX,
) -> Definition:
    """A `Definition` from checked parts: the expression normalised (spaces, alias case)."""
    return Definition(
        expression=cron.check_expression(expression),
        zone=zone,
        payload=payload,
        task=task,
        queue=queue,
        priority=priority,
        max_retries=max_retries,
        missed=missed,
        catch_up_max=catch_up_max,
    )


@attrs.frozen(kw_only=True)
class Fire:
    """One slot to fire now."""

    slot: dt.datetime
    late: bool
    """The slot was missed and is fired by the catch-up policy."""
    skipped: int
    """Missed slots between the previous fired slot and this one that were not fired
    (counted up to `COUNT_LIMIT`)."""


def due(
    expression: str,
    tz: zoneinfo.ZoneInfo,
    *,
    after: dt.datetime,
    now: dt.datetime,
    missed: str,
    catch_up_max: int = DEFAULT_CATCH_UP_MAX,
) -> list[Fire]:
    """The slots to fire at `now` for slots counted strictly after `after`, oldest first.

    Empty when no slot is due: one croniter step when nothing is, so a worker can ask on
    every look. With policy `none` and only missed slots, also empty: they are skipped,
    and the next on-time fire says how many."""
    if now <= after or cron.next_slot(expression, tz, after) > now:
        return []
    latest = cron.latest_slot(expression, tz, now)
    on_time = now - latest < ON_TIME
    if on_time and missed == "none":
        # Only the on-time slot fires; missed ones are skipped, and counted here.
        earlier = _count(expression, tz, after, latest)
        return [Fire(slot=latest, late=False, skipped=earlier)]
    if not on_time and missed == "none":
        return []
    # Missed: the slots after `after` and before `latest`, and `latest` itself if late.
    missing = _count(expression, tz, after, latest) + (0 if on_time else 1)
    wanted = 0 if (on_time and missed == "latest") else 1 if missed == "latest" else catch_up_max
    last_missed = latest if not on_time else None
    caught = cron.slots_back(expression, tz, latest, after, wanted - (last_missed is not None))
    late = sorted(caught) + ([last_missed] if last_missed is not None else [])
    fires = [Fire(slot=slot, late=True, skipped=0) for slot in late]
    if on_time:
        fires.append(Fire(slot=latest, late=False, skipped=0))
    first = fires[0]
    return [attrs.evolve(first, skipped=max(missing - len(late), 0)), *fires[1:]]


def _count(expression: str, tz: zoneinfo.ZoneInfo, after: dt.datetime, before: dt.datetime) -> int:
    """How many slots lie strictly between `after` and `before`, up to `COUNT_LIMIT`."""
    count = 0
    for slot in cron.slots_after(expression, tz, after):
        if slot >= before or count == COUNT_LIMIT:
            break
        count += 1
    return count


def upcoming(
    expression: str, tz: zoneinfo.ZoneInfo, after: dt.datetime, count: int
) -> list[dt.datetime]:
    """The next `count` slots after `after` (what `conductor cron list` shows)."""
    slots = cron.slots_after(expression, tz, after)
    return [next(slots) for _ in range(count)]
