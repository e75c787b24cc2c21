"""Properties of cron slots in time zones with daylight saving, for every expression,
zone and instant drawn: slots strictly increase, each matching wall time is exactly one
slot, a slot is a match of the expression in its zone (or the end of a gap that skipped
one), and the missed-slot policies never fire a slot twice or at/before what fired."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

from croniter import croniter
from hypothesis import given
from hypothesis import strategies as st

from conductor.domain import cron, schedules

UTC = dt.UTC
ZONES = (
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute daylight-saving shift
    "America/Santiago",  # transitions at midnight
    "Asia/Kathmandu",  # a +05:45 offset
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
)
expressions = st.builds(
    " ".join,
    st.tuples(
        st.sampled_from(["*", "*/5", "0", "30", "15,45", "*/7", "0-10/3", "59"]),
        st.sampled_from(["*", "2", "1-3", "*/2", "0", "23", "3"]),
        st.sampled_from(["*", "*", "1", "15", "L", "1-7"]),
        st.sampled_from(["*", "*", "3,10", "*/2"]),
        st.sampled_from(["*", "*", "0", "MON-FRI", "SUN"]),
    ),
)


def transitions(name: str) -> list[dt.datetime]:
    """The instants in 2026 where `name`'s offset changes (to the minute)."""
    tz = zoneinfo.ZoneInfo(name)
    found = []
    when = dt.datetime(2026, 1, 1, tzinfo=UTC)
    step = dt.timedelta(hours=1)
    while when.year == 2026:
        later = when + step
        if when.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset():
            minute = when
            while minute.astimezone(tz).utcoffset() == when.astimezone(tz).utcoffset():
                minute += dt.timedelta(minutes=1)
            found.append(minute)
        when = later
    return found


TRANSITIONS = {name: transitions(name) for name in ZONES}


@st.composite
def instants(draw: st.DrawFn, name: str) -> dt.datetime:
    """An instant in 2026, most often within hours of one of the zone's transitions."""
    near = TRANSITIONS[name]
    if near and draw(st.booleans()):
        base = draw(st.sampled_from(near))
        offset = draw(st.integers(-4 * 3600, 4 * 3600))
        return base + dt.timedelta(seconds=offset, microseconds=draw(st.integers(0, 999_999)))
    return dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(
        seconds=draw(st.integers(0, 364 * 86400))
    )


cases = st.sampled_from(ZONES).flatmap(
    lambda name: st.tuples(st.just(name), expressions, instants(name))
)


def matches(expression: str, wall: dt.datetime) -> bool:
    return bool(croniter.match(expression, wall))


def wall(when: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return when.astimezone(tz).replace(tzinfo=None, fold=0)


def is_gap_end(slot: dt.datetime, tz: zoneinfo.ZoneInfo) -> bool:
    return (slot - dt.timedelta(seconds=1)).astimezone(tz).utcoffset() != slot.astimezone(
        tz
    ).utcoffset()


def take(expression: str, tz: zoneinfo.ZoneInfo, after: dt.datetime, count: int) -> list:
    slots = cron.slots_after(expression, tz, after)
    return [next(slots) for _ in range(count)]


@given(cases)
def test_slots_strictly_increase_after_the_instant_asked_about(
    case: tuple[str, str, dt.datetime],
) -> None:
    name, expression, after = case
    slots = take(expression, cron.zone(name), after, 40)
    assert slots[0] > after
    assert all(earlier < later for earlier, later in itertools.pairwise(slots))


@given(cases)
def test_every_slot_is_a_match_in_its_zone_or_the_end_of_a_gap_that_skipped_one(
    case: tuple[str, str, dt.datetime],
) -> None:
    name, expression, after = case
    tz = cron.zone(name)
    for slot in take(expression, tz, after, 40):
        assert slot.tzinfo is UTC or slot.utcoffset() == dt.timedelta(0)
        if not matches(expression, wall(slot, tz)):
            assert is_gap_end(slot, tz), f"{slot} ({wall(slot, tz)} in {name}) is no match"


@given(cases)
def test_a_wall_time_that_happens_twice_is_one_slot(case: tuple[str, str, dt.datetime]) -> None:
    name, expression, after = case
    tz = cron.zone(name)
    walls = [wall(slot, tz) for slot in take(expression, tz, after, 60)]
    assert len(walls) == len(set(walls))


@given(cases)
def test_a_repeated_wall_time_fires_at_its_first_occurrence(
    case: tuple[str, str, dt.datetime],
) -> None:
    name, expression, after = case
    tz = cron.zone(name)
    for slot in take(expression, tz, after, 40):
        moment = wall(slot, tz)
        first = moment.replace(tzinfo=tz, fold=0).astimezone(UTC)
        assert slot == first or is_gap_end(slot, tz)


@given(cases)
def test_every_matching_wall_time_has_its_slot(case: tuple[str, str, dt.datetime]) -> None:
    name, expression, after = case
    tz = cron.zone(name)
    slots = take(expression, tz, after, 30)
    end = wall(slots[-1], tz)
    walk = croniter(expression, wall(after, tz))
    while (moment := walk.get_next(dt.datetime)) <= end:
        slot = cron.instant(moment, tz)
        if slot > after:
            assert slot in slots, f"wall time {moment} in {name} fired nowhere"


@given(cases)
def test_the_latest_slot_is_the_last_one_not_after_now(case: tuple[str, str, dt.datetime]) -> None:
    name, expression, now = case
    tz = cron.zone(name)
    latest = cron.latest_slot(expression, tz, now)
    assert latest <= now
    assert cron.next_slot(expression, tz, latest) > now


policies = st.sampled_from(schedules.MISSED_POLICIES)


@given(cases, st.integers(0, 3 * 86400), policies, st.integers(1, 5))
def test_a_due_look_fires_slots_in_order_after_the_last_one_and_accounts_for_every_slot(
    case: tuple[str, str, dt.datetime], gap: int, missed: str, cap: int
) -> None:
    name, expression, after = case
    tz = cron.zone(name)
    now = after + dt.timedelta(seconds=gap)
    fires = schedules.due(expression, tz, after=after, now=now, missed=missed, catch_up_max=cap)
    slots = [fire.slot for fire in fires]
    assert all(after < slot <= now for slot in slots)
    assert slots == sorted(set(slots))
    passed = []
    for slot in cron.slots_after(expression, tz, after):
        if slot > now:
            break
        passed.append(slot)
    assert set(slots) <= set(passed)
    if not passed:
        assert fires == []
        return
    on_time = now - passed[-1] < schedules.ON_TIME
    if missed == "none" and not on_time:
        assert fires == []
        return
    assert fires, "a due slot fires unless every one was missed under `none`"
    assert len(fires) + sum(fire.skipped for fire in fires) == len(passed)
    late = [fire.slot for fire in fires if fire.late]
    missed_slots = passed[:-1] if on_time else passed
    assert [fire.slot for fire in fires if not fire.late] == ([passed[-1]] if on_time else [])
    if missed == "none":
        assert late == []
    elif missed == "latest":
        assert late == ([] if on_time else [passed[-1]])
    else:
        assert late == missed_slots[-cap:]


@given(cases, st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=8), policies)
def test_looking_again_and_again_never_fires_a_slot_twice(
    case: tuple[str, str, dt.datetime], steps: list[int], missed: str
) -> None:
    """A worker that fires what is due and records the last slot, at ever later times (or
    after the clock went back), fires each slot at most once."""
    name, expression, start = case
    tz = cron.zone(name)
    after, now, fired = start, start, []
    for step in steps:
        now = now + dt.timedelta(seconds=step)
        for fire in schedules.due(expression, tz, after=after, now=now, missed=missed):
            fired.append(fire.slot)
            after = fire.slot
    assert fired == sorted(set(fired))
