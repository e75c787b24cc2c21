"""Cron expressions in a time zone: which instants are a schedule's slots.

Pure: every function takes the instants it needs; nothing reads a clock. croniter walks
the expression over *wall-clock* times (naive datetimes, as a wall clock shows them) and
this module maps each wall time to the one UTC instant that is its slot. Two policies,
both stated in docs/operations.md ("Cron and the clock"):

* **A gap** (spring forward: 02:30 does not exist in Paris on the last Sunday of March).
  A wall time inside the gap fires once, at the end of the gap: the first instant that
  exists after it (03:00 CEST). Several wall times of one gap (`*/15 2 * * *`) are one
  slot, and so is the end of the gap when the expression also matches it. A daily job
  at 02:30 still runs that day, an hour late by the wall clock, rather than not at all.
* **A repeat** (fall back: 02:30 happens twice on the last Sunday of October). A wall
  time fires once, at its first occurrence; the second pass through the repeated hour
  fires nothing that already fired (a `*/5` schedule is quiet for that hour).

So each wall time the expression matches is exactly one slot, and slots are strictly
increasing instants: what the ledger keys them on ("a slot at or before the last fired
one is refused").
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

from conductor.domain.errors import InvalidInput

# croniter is imported where it is used: `conductor enqueue` imports the task registry,
# which imports this module, and pays at start-up for what it imports.

UTC: Final = dt.UTC
_TICK: Final = dt.timedelta(microseconds=1)
_FIELDS: Final = ("minute", "hour", "day of month", "month", "day of week")
_ALIASES: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_UNSTABLE: Final = re.compile(r"^[HR]", re.IGNORECASE)
"""croniter's hashed (`H`) and random (`R`) items: their slots depend on a seed or on
chance, so two workers would not agree on them. No month or day name starts with H or R."""
EXPRESSION_HELP: Final = (
    "expected 5 fields (minute hour day-of-month month day-of-week) like '*/5 * * * *' "
    "or '0 3 * * MON-FRI', or one of " + ", ".join(_ALIASES)
)


def check_expression(text: str) -> str:
    """The expression, stripped, if croniter accepts it and it has a slot; else
    `InvalidInput` naming the expression and what is expected."""
    if not isinstance(text, str):
        raise InvalidInput(f"invalid cron expression {text!r}: {EXPRESSION_HELP}")
    expression = " ".join(text.split())
    if expression.lower() in _ALIASES:
        return expression.lower()
    fields = expression.split(" ")
    if not expression or expression.startswith("@"):
        what = "it is empty" if not expression else "unknown alias"
        raise InvalidInput(f"invalid cron expression {text!r}: {what}; {EXPRESSION_HELP}")
    if len(fields) != len(_FIELDS):
        raise InvalidInput(
            f"invalid cron expression {text!r}: it has {len(fields)} fields; {EXPRESSION_HELP}"
        )
    for name, field in zip(_FIELDS, fields, strict=True):
        if any(_UNSTABLE.match(item) for item in field.split(",")):
            raise InvalidInput(
                f"invalid cron expression {text!r}: the {name} field {field!r} is hashed or "
                "random, which workers would not agree on; expected fixed values"
            )
    from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

    try:
        croniter(expression, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except CroniterBadDateError:
        raise InvalidInput(
            f"invalid cron expression {text!r}: it never matches a date; "
            "expected one that does (e.g. not the 30th of February)"
        ) from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as e:
        reason = str(e).replace(f"[{expression}] ", "").replace("is not acceptable", "")
        detail = reason.strip(" ,") or "malformed"
        raise InvalidInput(
            f"invalid cron expression {text!r} ({detail}): {EXPRESSION_HELP}"
        ) from None
    return expression


@lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone `name` (`Europe/Paris`, `UTC`); `InvalidInput` if unknown."""
    if not isinstance(name, str) or not name or name != name.strip() or "\x00" in name:
        raise InvalidInput(f"invalid time zone {name!r}: expected an IANA name like Europe/Paris")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"invalid time zone {name!r}: expected an IANA name like Europe/Paris or UTC"
        ) from None


def instant(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The slot (aware UTC) of wall-clock time `wall` in `tz`: its first occurrence, or
    the end of the gap it falls in (see the module's policies)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    return _gap_end(wall, tz)


def _gap_end(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The transition that skipped `wall`: the first instant after the gap.

    With fold=1 a missing wall time is read with the offset after the transition (an
    instant before it), with fold=0 with the offset before (an instant after it); the
    transition lies between, found to the second (offsets change on whole seconds)."""
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    before = low.astimezone(tz).utcoffset()
    while (high - low) > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            middle = low + dt.timedelta(seconds=1)
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high


def _wall(when: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The wall clock in `tz` at instant `when`, naive, without fold."""
    return when.astimezone(tz).replace(tzinfo=None, fold=0)


def slots_after(
    expression: str, tz: zoneinfo.ZoneInfo, after: dt.datetime
) -> Iterator[dt.datetime]:
    """The slots strictly after instant `after`, in order, without end (aware UTC).

    Walks wall times from the wall clock at `after`: wall times map to instants in
    non-decreasing order, and no earlier wall time maps past `after`."""
    from croniter import croniter

    walk = croniter(expression, _wall(after, tz))
    last = after
    while True:
        slot = instant(walk.get_next(dt.datetime), tz)
        if slot > last:
            last = slot
            yield slot


def next_slot(expression: str, tz: zoneinfo.ZoneInfo, after: dt.datetime) -> dt.datetime:
    """The first slot strictly after `after`."""
    return next(slots_after(expression, tz, after))


def latest_slot(expression: str, tz: zoneinfo.ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The last slot at or before `now`.

    Walks back from the latest wall time that can map to `now` or earlier: in the second
    pass of a repeated hour that is past the wall clock (every wall time of the repeated
    hour fired in the first pass, before `now`)."""
    from croniter import croniter

    local = now.astimezone(tz)
    start = local.replace(tzinfo=None, fold=0)
    if local.fold:
        shift = local.replace(fold=0).utcoffset()
        current = local.utcoffset()
        assert shift is not None
        assert current is not None
        start += shift - current
    walk = croniter(expression, start.replace(second=0, microsecond=0) + dt.timedelta(minutes=1))
    while True:
        slot = instant(walk.get_prev(dt.datetime), tz)
        if slot <= now:
            return slot


def slots_back(
    expression: str, tz: zoneinfo.ZoneInfo, before: dt.datetime, after: dt.datetime, count: int
) -> list[dt.datetime]:
    """Up to `count` slots strictly between `after` and `before`, newest first."""
    found: list[dt.datetime] = []
    if count <= 0:
        return found
    slot = before
    while len(found) < count:
        slot = latest_slot(expression, tz, slot - _TICK)
        if slot <= after:
            break
        found.append(slot)
    return found
