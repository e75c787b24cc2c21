"""Cron slots on the days the clocks change, the missed-slot policies on named cases, and
the one-line refusals of a bad expression, zone, name or policy."""

from __future__ import annotations

import datetime as dt

import pytest

from conductor.domain import cron, schedules
from conductor.domain.errors import InvalidInput

UTC = dt.UTC
PARIS = cron.zone("Europe/Paris")


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def local(slots: list[dt.datetime]) -> list[str]:
    return [slot.astimezone(PARIS).isoformat() for slot in slots]


def test_a_daily_slot_in_the_spring_forward_gap_fires_once_at_the_end_of_the_gap() -> None:
    slots = schedules.upcoming("30 2 * * *", PARIS, utc(2026, 3, 27, 12), 3)
    assert local(slots) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_every_wall_time_of_the_gap_and_the_end_of_the_gap_are_one_slot() -> None:
    slots = schedules.upcoming("*/15 * * * *", PARIS, utc(2026, 3, 29, 0, 30), 3)
    assert local(slots) == [
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
    ]


def test_a_wall_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() -> None:
    slots = schedules.upcoming("30 2 * * *", PARIS, utc(2026, 10, 24, 12), 2)
    assert local(slots) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_the_second_pass_through_the_repeated_hour_fires_nothing() -> None:
    slots = schedules.upcoming("0,30 * * * *", PARIS, utc(2026, 10, 25, 0, 15), 3)
    assert local(slots) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]
    # Asked from inside the second pass (02:45 CET), the next slot is still 03:00 CET.
    assert local([cron.next_slot("0,30 * * * *", PARIS, utc(2026, 10, 25, 1, 45))]) == [
        "2026-10-25T03:00:00+01:00"
    ]
    assert local([cron.latest_slot("0,30 * * * *", PARIS, utc(2026, 10, 25, 1, 45))]) == [
        "2026-10-25T02:30:00+02:00"
    ]


def fire(slot: dt.datetime, *, late: bool, skipped: int = 0) -> schedules.Fire:
    return schedules.Fire(slot=slot, late=late, skipped=skipped)


HOURLY = "0 * * * *"
AFTER = utc(2026, 1, 1, 0, 0)


def test_an_on_time_slot_fires_under_every_policy() -> None:
    for policy in schedules.MISSED_POLICIES:
        assert schedules.due(
            HOURLY, cron.zone("UTC"), after=AFTER, now=utc(2026, 1, 1, 1, 0, 5), missed=policy
        ) == [fire(utc(2026, 1, 1, 1), late=False)]


def test_nothing_is_due_before_the_next_slot() -> None:
    assert (
        schedules.due(
            HOURLY, cron.zone("UTC"), after=AFTER, now=utc(2026, 1, 1, 0, 59), missed="all"
        )
        == []
    )


def test_after_downtime_none_skips_what_was_missed_and_counts_it_on_the_next_fire() -> None:
    tz = cron.zone("UTC")
    assert schedules.due(HOURLY, tz, after=AFTER, now=utc(2026, 1, 1, 5, 10), missed="none") == []
    assert schedules.due(HOURLY, tz, after=AFTER, now=utc(2026, 1, 1, 6, 0, 1), missed="none") == [
        fire(utc(2026, 1, 1, 6), late=False, skipped=5)
    ]


def test_after_downtime_latest_fires_the_most_recent_missed_slot_once() -> None:
    tz = cron.zone("UTC")
    assert schedules.due(HOURLY, tz, after=AFTER, now=utc(2026, 1, 1, 5, 10), missed="latest") == [
        fire(utc(2026, 1, 1, 5), late=True, skipped=4)
    ]


def test_after_downtime_all_fires_the_missed_slots_up_to_the_cap_oldest_first() -> None:
    tz = cron.zone("UTC")
    assert schedules.due(
        HOURLY, tz, after=AFTER, now=utc(2026, 1, 1, 5, 10), missed="all", catch_up_max=3
    ) == [
        fire(utc(2026, 1, 1, 3), late=True, skipped=2),
        fire(utc(2026, 1, 1, 4), late=True),
        fire(utc(2026, 1, 1, 5), late=True),
    ]
    assert schedules.due(
        HOURLY, tz, after=AFTER, now=utc(2026, 1, 1, 5, 0, 3), missed="all", catch_up_max=3
    ) == [
        fire(utc(2026, 1, 1, 2), late=True, skipped=1),
        fire(utc(2026, 1, 1, 3), late=True),
        fire(utc(2026, 1, 1, 4), late=True),
        fire(utc(2026, 1, 1, 5), late=False),
    ]


def test_a_clock_that_went_back_finds_nothing_due() -> None:
    assert (
        schedules.due(
            HOURLY,
            cron.zone("UTC"),
            after=utc(2026, 1, 1, 5),
            now=utc(2026, 1, 1, 3, 0, 1),
            missed="all",
        )
        == []
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("* * * *", "it has 4 fields"),
        ("* * * * * *", "it has 6 fields"),
        ("61 * * * *", "out of range"),
        ("0 0 30 2 *", "never matches a date"),
        ("H * * * *", "hashed or random"),
        ("0 R * * *", "hashed or random"),
        ("*/0 * * * *", "expected 5 fields"),
        ("", "it is empty"),
        ("@sometimes", "unknown alias"),
    ],
)
def test_a_bad_expression_is_refused_in_one_line_naming_it(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        cron.check_expression(text)
    message = str(caught.value)
    assert says in message
    assert repr(text) in message
    assert "\n" not in message


def test_expressions_are_normalised_so_equal_schedules_compare_equal() -> None:
    assert cron.check_expression("  0   3 * * *") == "0 3 * * *"
    assert cron.check_expression("@Daily") == "@daily"


@pytest.mark.parametrize("name", ["Europe/Pariss", "", " UTC", "../etc/passwd", "Mars/Base"])
def test_an_unknown_zone_is_refused_in_one_line(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"invalid time zone .*expected an IANA name"):
        cron.zone(name)


def test_bad_names_policies_and_caps_are_refused() -> None:
    with pytest.raises(InvalidInput, match="invalid schedule name"):
        schedules.check_name("has space")
    with pytest.raises(InvalidInput, match="expected none, latest, all"):
        schedules.check_missed("some")
    with pytest.raises(InvalidInput, match="from 1 to 1000"):
        schedules.check_catch_up_max(0)
