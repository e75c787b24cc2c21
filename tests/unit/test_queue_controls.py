"""Queue controls as pure rules: parsing limits, fixed rate windows, a claim's room, and
the folds of the operations stream over a queue's state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor.domain import queue_controls as rules
from conductor.domain.clock import stamp
from conductor.domain.errors import ControlRefused, InvalidInput
from projections import controls

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/m", (100, "minute")),
        ("5/s", (5, "second")),
        ("3600/h", (3600, "hour")),
        (" 7 / Minute ", (7, "minute")),
        ("1/sec", (1, "second")),
    ],
)
def test_a_rate_is_a_count_per_second_minute_or_hour(text: str, expected: tuple[int, str]) -> None:
    assert rules.parse_rate(text) == expected


@pytest.mark.parametrize(
    "text", ["", "100", "/m", "0/m", "-1/s", "1.5/s", "10/d", "10/ms", "1000001/s", "x/m"]
)
def test_a_malformed_rate_names_what_is_expected(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"invalid rate .*expected"):
        rules.parse_rate(text)


def outcome(parse: Callable[[str], object], text: str) -> object:
    try:
        return parse(text)
    except InvalidInput as e:
        return e


@given(st.text())
def test_a_typed_limit_is_a_valid_limit_none_or_a_refusal_never_another_error(
    text: str,
) -> None:
    for parse in (rules.parse_concurrency_setting, rules.parse_rate_setting):
        parsed = outcome(parse, text)
        if isinstance(parsed, InvalidInput):
            assert "or none to clear it" in str(parsed)
        elif parsed is None:
            assert text.strip().lower() == "none"
        elif isinstance(parsed, int):
            assert 1 <= parsed <= rules.MAX_LIMIT
        else:
            assert 1 <= parsed[0] <= rules.MAX_LIMIT
            assert parsed[1] in rules.PERIODS


@given(st.integers(1, rules.MAX_LIMIT), st.sampled_from(["s", "m", "h"]), st.booleans())
def test_every_limit_in_range_reads_back_as_typed(count: int, unit: str, padded: bool) -> None:
    typed = f" {count} " if padded else str(count)
    assert rules.parse_concurrency_setting(typed) == count
    per = {"s": "second", "m": "minute", "h": "hour"}[unit]
    assert rules.parse_rate_setting(f"{typed}/{unit}") == (count, per)


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "1000001", "9" * 5000, "٣", "", "fast"])
def test_a_concurrency_out_of_range_or_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"invalid concurrency .*from 1 to 1000000"):
        rules.parse_concurrency_setting(text)
    with pytest.raises(InvalidInput, match=r"invalid rate"):
        rules.parse_rate_setting(f"{text}/s")


@given(st.integers(0, 10**9), st.sampled_from(sorted(rules.PERIODS)))
def test_a_window_starts_on_its_period_and_holds_its_instant(seconds: int, per: str) -> None:
    at = stamp(dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=1))
    start = dt.datetime.fromisoformat(rules.window_start(at, per).replace("Z", "+00:00"))
    assert start.timestamp() % rules.PERIODS[per] == 0
    assert start.timestamp() <= seconds < start.timestamp() + rules.PERIODS[per]


def state(**changes: object) -> dict[str, object]:
    return {**rules.initial(), **changes}


def test_room_is_none_without_limits_and_zero_when_paused() -> None:
    assert rules.room(None, 5, stamp(T0)) is None
    assert rules.room(state(), 5, stamp(T0)) is None
    assert rules.room(state(paused=True), 0, stamp(T0)) == 0


@given(
    concurrency=st.none() | st.integers(1, 20),
    rate=st.none() | st.integers(1, 20),
    running=st.integers(0, 30),
    spent=st.integers(0, 30),
    wanted=st.integers(0, 40),
    queues=st.lists(st.sampled_from(["a", "b"]), max_size=40),
)
def test_a_claim_never_takes_more_than_the_room_of_either_limit(
    concurrency: int | None,
    rate: int | None,
    running: int,
    spent: int,
    wanted: int,
    queues: list[str],
) -> None:
    window = rules.window_start(stamp(T0), "minute")
    limited = state(
        concurrency=concurrency,
        rate=rate,
        per=None if rate is None else "minute",
        window=None if rate is None else window,
        spent=0 if rate is None else min(spent, rate),
    )
    admission = rules.admit(["a", "b"], {"a": limited}, stamp(T0), lambda q: running)
    room = dict(admission.room)
    # As the ledger does: candidates only from the admitted queues, then within the room.
    candidates = [q for q in queues if q in admission.queues]
    taken = rules.within(candidates, wanted, dict(room), lambda q: q)
    assert len(taken) <= wanted
    took_a = taken.count("a")
    if concurrency is not None:
        assert took_a <= max(0, concurrency - running)
    if rate is not None:
        assert took_a <= rate - min(spent, rate)
    if concurrency is None and rate is None:
        assert "a" not in room
    # The unlimited queue is never held back by the limited one.
    assert "b" in admission.queues
    if len(taken) < wanted:
        assert taken.count("b") == queues.count("b")


def test_the_folds_refuse_what_already_holds_and_name_the_queue() -> None:
    fields = {"queue": "mail", "by": "a", "reason": ""}
    _, _, paused = controls.FOLDS["queue_paused"](None, fields, stamp(T0))
    with pytest.raises(ControlRefused, match="'mail' is already paused"):
        controls.FOLDS["queue_paused"](paused, fields, stamp(T0))
    with pytest.raises(InvalidInput, match="concurrency"):
        controls.FOLDS["queue_limit_set"](
            None, {**fields, "limit": "concurrency", "value": 0, "per": None}, stamp(T0)
        )
    with pytest.raises(ControlRefused, match="rate period"):
        controls.FOLDS["queue_limit_set"](
            None, {**fields, "limit": "rate", "value": 3, "per": "day"}, stamp(T0)
        )


def test_every_operations_event_type_has_a_fold() -> None:
    from conductor.domain.control_events import CONTROL_EVENT_CLASSES
    from conductor.domain.schedule_events import SCHEDULE_EVENT_CLASSES

    operations = (*CONTROL_EVENT_CLASSES, *SCHEDULE_EVENT_CLASSES)
    assert {cls.TYPE for cls in operations} == set(controls.FOLDS)
