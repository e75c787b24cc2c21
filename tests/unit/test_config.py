from __future__ import annotations

import datetime as dt

import pytest

from conductor.domain.config import Settings, parse_duration, parse_priority, parse_time
from conductor.domain.errors import InvalidInput

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("250ms", 0.25),
        ("12", 12),
        ("1.5s", 1.5),
        ("0s", 0),
    ],
)
def test_durations_accept_the_documented_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["-5m", "5x", "", "m", "nan", "inf", "1e400s", "5 minutes"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(InvalidInput, match="expected"):
        parse_duration(text, "delay")


def test_absurdly_long_durations_are_refused() -> None:
    with pytest.raises(InvalidInput, match="10 years"):
        parse_duration("99999999d")


def test_relative_times_count_back_from_now_and_iso_times_default_to_utc() -> None:
    assert parse_time("1h", NOW) == NOW - dt.timedelta(hours=1)
    assert parse_time("2026-11-28T10:00:00", NOW) == dt.datetime(2026, 11, 28, 10, tzinfo=dt.UTC)
    assert parse_time("2026-11-28T11:00:00+01:00", NOW) == dt.datetime(
        2026, 11, 28, 10, tzinfo=dt.UTC
    )
    with pytest.raises(InvalidInput, match="ISO-8601"):
        parse_time("yesterday", NOW)


def test_priorities_map_high_first() -> None:
    assert [parse_priority(p) for p in ("high", "MEDIUM", "low")] == [0, 1, 2]
    with pytest.raises(InvalidInput, match="high, medium or low"):
        parse_priority("urgent")


def test_settings_come_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUCTOR_DB", "env.db")
    monkeypatch.setenv("CONDUCTOR_SYNCHRONOUS", "normal")
    monkeypatch.setenv("CONDUCTOR_BUSY_TIMEOUT", "0.5")
    assert Settings.from_env().db == "env.db"
    assert Settings.from_env("arg.db").db == "arg.db"
    assert Settings.from_env().synchronous == "NORMAL"
    assert Settings.from_env().busy_timeout == 0.5
    monkeypatch.setenv("CONDUCTOR_SYNCHRONOUS", "off")
    with pytest.raises(InvalidInput, match="FULL or NORMAL"):
        Settings.from_env()


def test_the_default_durability_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDUCTOR_SYNCHRONOUS", raising=False)
    assert Settings.from_env().synchronous == "FULL"


def test_the_result_cap_defaults_to_64_kib_and_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONDUCTOR_MAX_RESULT_BYTES", raising=False)
    assert Settings.from_env().max_result_bytes == 64 * 1024
    monkeypatch.setenv("CONDUCTOR_MAX_RESULT_BYTES", "1000")
    assert Settings.from_env().max_result_bytes == 1000
    monkeypatch.setenv("CONDUCTOR_MAX_RESULT_BYTES", "lots")
    with pytest.raises(InvalidInput, match="CONDUCTOR_MAX_RESULT_BYTES 'lots'"):
        Settings.from_env()


def test_a_horizon_needs_burst_mode() -> None:
    from conductor.domain.config import WorkerConfig

    assert WorkerConfig(burst=True, horizon=dt.timedelta(minutes=1)).horizon is not None
    with pytest.raises(InvalidInput, match="only applies with burst"):
        WorkerConfig(horizon=dt.timedelta(minutes=1))
