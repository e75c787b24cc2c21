"""The pure rules of unique jobs (`conductor.domain.unique`) and the `@task` options that
set them, without a ledger."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor.domain import decisions as decide
from conductor.domain import unique
from conductor.domain.errors import InvalidInput
from conductor.domain.events import JobEnqueued, NewEvent
from conductor.domain.payloads import parse_payload
from conductor.domain.registry import Registry

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def new(key: str | None, period: int | None = None) -> NewEvent:
    return decide.enqueue(
        parse_payload({"task": "t"}, 1 << 20),
        queue="default",
        priority=1,
        max_retries=0,
        run_at=None,
        now=T0,
        unique_key=key,
        unique_for=period,
    )


def _key(new_job: NewEvent) -> str | None:
    assert isinstance(new_job.event, JobEnqueued)
    return new_job.event.unique_key


def test_the_look_up_of_a_period_starts_that_long_before_the_enqueue() -> None:
    assert unique.look_of(new("k")) == ("k", None)
    assert unique.look_of(new("k", 600)) == ("k", "2026-11-28T11:50:00.000000Z")
    assert unique.look_of(new(None)) is None


@given(
    keys=st.lists(st.none() | st.sampled_from(["a", "b", "c"]), max_size=12),
    held=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 99)),
)
def test_admit_accepts_one_job_per_free_key_and_every_job_without_one(
    keys: list[str | None], held: dict[str, int]
) -> None:
    events = [new(key) for key in keys]
    holders = {look: held.get(look[0]) for look in unique.checks(events)}
    admission = unique.admit(events, holders)
    accepted_keys = [_key(e) for e in admission.accepted]
    free = [k for k in dict.fromkeys(keys) if k is not None and k not in held]
    assert sorted(k for k in accepted_keys if k is not None) == sorted(free)
    assert accepted_keys.count(None) == keys.count(None)
    assert admission.duplicate.count(False) == len(admission.accepted)
    for key, (accepted, value), dup in zip(
        keys, admission.places, admission.duplicate, strict=True
    ):
        if key in held:
            assert (accepted, value, dup) == (False, held[key], True)
        elif accepted:
            assert _key(admission.accepted[value]) == key


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("", "non-blank"), ("\t", "non-blank"), ("x" * 201, "at most 200"), ("a\nb", "control")],
)
def test_bad_keys_are_refused(key: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        unique.check_key(key)


def test_a_key_of_200_printable_characters_is_accepted() -> None:
    assert unique.check_key("é" * 200) == "é" * 200


@pytest.mark.parametrize(
    "period",
    [dt.timedelta(0), dt.timedelta(milliseconds=1500), dt.timedelta(days=3651), -dt.timedelta(1)],
)
def test_bad_periods_are_refused(period: dt.timedelta) -> None:
    with pytest.raises(InvalidInput, match="whole seconds from 1s to 10 years"):
        unique.check_period(period)


def test_a_period_without_a_key_is_refused_by_the_decision_too() -> None:
    with pytest.raises(InvalidInput, match="without a unique key"):
        new(None, 60)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"unique_for": 60}, "without a unique_key"),
        ({"unique_key": ""}, "non-blank"),
        ({"unique_key": 5}, "a string or a function"),
        ({"unique_key": "k", "unique_for": 0.5}, "whole seconds"),
    ],
)
def test_task_unique_options_are_checked_when_registered(
    options: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        Registry().task("t", **options)


def test_a_task_keeps_its_key_and_its_period_in_seconds() -> None:
    registry = Registry()
    registry.task("t", unique_key="k", unique_for=dt.timedelta(minutes=2))(lambda: None)
    spec = registry.get("t")
    assert spec is not None
    assert (spec.unique_key, spec.unique_for) == ("k", 120)
