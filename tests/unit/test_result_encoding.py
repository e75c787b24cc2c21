"""Task results as stored JSON: what encodes, what is refused, and the cap in bytes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor.domain import results
from conductor.domain.errors import ResultNotJSON, ResultTooLarge
from conductor.domain.events import JobCompleted, decode_event

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_round_trips_through_the_completed_event(value: Any) -> None:
    text = results.encode(value, 1 << 30)
    assert (text is None) == (value is None)
    event = JobCompleted(attempt=3, result=text)
    data = event.encode()
    assert json.loads(data) == {"attempt": 3, "result": value}
    assert data == json.dumps(
        {"attempt": 3, "result": value},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert decode_event("completed", 2, data) == event
    assert results.decode(text) == value


def test_the_cap_counts_utf8_bytes_and_admits_exactly_the_cap() -> None:
    assert results.encode("é" * 4, 10) == '"éééé"'  # 2 quotes + 4 x 2 bytes
    with pytest.raises(ResultTooLarge, match="11 bytes of JSON, over the result cap of 10"):
        results.encode("é" * 4 + "x", 10)
    assert results.encode("x" * 8, 10) == '"xxxxxxxx"'
    with pytest.raises(ResultTooLarge, match="CONDUCTOR_MAX_RESULT_BYTES"):
        results.encode("x" * 9, 10)
    assert results.encode(None, 0) is None  # None stores nothing, whatever the cap


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({1, 2}, "(set)"),
        (object(), "(object)"),
        ({"rows": [b"bytes"]}, "bytes is not JSON serializable"),
        (math.nan, "(float)"),
        ({"x": math.inf}, "Out of range float"),
        ("\ud800", "not valid Unicode"),
        ({1: "a", "b": 2}, "(dict)"),
    ],
    ids=["set", "object", "nested-bytes", "nan", "inf", "lone-surrogate", "mixed-keys"],
)
def test_a_value_json_cannot_hold_is_refused_naming_what_it_is(value: Any, named: str) -> None:
    with pytest.raises(ResultNotJSON, match="expected") as refused:
        results.encode(value, 1 << 20)
    assert named in str(refused.value)


def test_a_cyclic_value_is_refused_not_a_crash() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ResultNotJSON):
        results.encode(cyclic, 1 << 20)
