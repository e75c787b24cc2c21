"""`canonical_json` writes exactly what `json.dumps` with the canonical settings writes:
event data is hash-chained, so one byte of difference would break verification of every
log written before the change."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor.domain.codec import canonical_json

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def reference(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


@given(values)
def test_the_same_text_as_json_dumps_for_every_json_value(value: Any) -> None:
    assert canonical_json(value) == reference(value)


@given(st.dictionaries(st.integers() | st.text(), scalars, max_size=5))
def test_keys_that_are_not_strings_fail_or_convert_the_same_way(value: dict[Any, Any]) -> None:
    try:
        expected = reference(value)
    except TypeError:
        with pytest.raises(TypeError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": [bad]})


def test_a_value_json_cannot_hold_is_refused_with_its_type() -> None:
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        canonical_json({"x": {1, 2}})
