"""A group run without a command prints its help, and any text given as a payload ends in
an id or one clean error line (issue 13, items 2 and 3)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from conductor import Conductor, InvalidInput, Settings
from tests.conftest import db_snapshot, run_cli


@pytest.mark.parametrize(
    ("args", "lists"),
    [((), ["enqueue", "worker", "audit"]), (("audit",), ["verify"])],
    ids=["conductor", "conductor-audit"],
)
def test_a_group_run_without_a_command_prints_its_help_and_exits_0(
    args: tuple[str, ...], lists: list[str]
) -> None:
    result = run_cli(*args)
    assert result.code == 0, result
    assert result.stderr == ""
    assert result.stdout.startswith("Usage: conductor")
    # The help as `--help` prints it: one command per line, not squashed into one.
    assert result.stdout == run_cli(*args, "--help").stdout
    for command in lists:
        assert any(line.split()[:1] == [command] for line in result.stdout.splitlines())


# -- any text on --payload ---------------------------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@st.composite
def json_ish(draw: st.DrawFn) -> str:
    """Text that is JSON, nearly JSON, or JSON-shaped trouble: objects with and without a
    task, repeated keys, huge integers, NaN, cut-off text, odd characters."""
    task = draw(st.one_of(st.just("noop"), st.just(""), st.just(" "), st.integers(), st.none()))
    members = [f'"task": {json.dumps(task)}'] if draw(st.booleans()) else []
    for key, value in draw(st.dictionaries(st.text(max_size=4), _VALUES, max_size=3)).items():
        members.append(f"{json.dumps(key)}: {json.dumps(value)}")
    members += draw(
        st.lists(
            st.sampled_from(
                [
                    '"task": "again"',
                    '"n": ' + "7" * 4301,
                    '"n": -' + "1" * 5001,
                    '"x": NaN',
                    '"x": Infinity',
                    '"x": 1e999',
                    '"o": {"k": 1, "k": 2}',
                    '"s": "\\ud800"',
                ]
            ),
            max_size=2,
        )
    )
    draw(st.randoms()).shuffle(members)
    text = "{" + ", ".join(members) + "}"
    mangle = draw(st.sampled_from(["none", "cut", "wrap", "prefix"]))
    if mangle == "cut":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif mangle == "wrap":
        text = "[" + text + "]"
    elif mangle == "prefix":
        # Any characters an argv can hold: not NUL, which no command line can carry, nor a
        # lone surrogate, which has no UTF-8 bytes to pass (subprocess refuses '\ud800').
        chars = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
        argv_text = st.text(chars, min_size=1, max_size=3)
        text = draw(argv_text) + text
    return text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=json_ish())
def test_any_json_ish_payload_gives_an_id_or_one_error_line(text: str) -> None:
    note(repr(text[:300]))
    where = Path(tempfile.mkdtemp(prefix="payload-"))
    try:
        db = where / "conductor.db"
        result = run_cli("enqueue", "--payload", text, db=db)
        assert "Traceback" not in result.stdout + result.stderr, result
        if result.code == 0:
            assert result.stdout.strip().isdigit(), result
            assert result.stderr == ""
        else:
            assert result.code in (1, 2), result
            assert result.stdout == ""
            lines = result.stderr.splitlines()
            assert len(lines) == 1, result.stderr[:600]
            assert lines[0].startswith("error: "), lines[0][:600]
            assert db_snapshot(db) == "absent", "a refused enqueue wrote something"
    finally:
        shutil.rmtree(where, ignore_errors=True)


# -- the Python API refuses what the CLI refuses -----------------------------------------
@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ('{"task": "noop", "task": "fail"}', 'key "task" appears more than once'),
        ('{"task": ""}', '"task" name "" is empty'),
        ('{"task": "a", "n": ' + "1" * 5001 + "}", "more than 4300 digits"),
        ({"task": "a", "n": 10**5000}, "more than 4300 digits"),
    ],
    ids=["duplicate-key", "empty-task", "huge-integer-text", "huge-integer-dict"],
)
def test_the_python_api_refuses_the_same_payloads_and_writes_nothing(
    tmp_path: Path, payload: str | dict[str, object], fragment: str
) -> None:
    db = tmp_path / "conductor.db"
    with Conductor(settings=Settings(db=str(db))) as app:
        app.enqueue({"task": "first"})
        before = db_snapshot(db)
        with pytest.raises(InvalidInput, match="expected") as caught:
            app.enqueue_many([{"task": "ok"}, payload])
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)
    assert db_snapshot(db) == before
