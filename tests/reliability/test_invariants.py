"""The shared invariant check itself: it must catch what it claims to."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.events import (
    Event,
    JobCancelled,
    JobCompleted,
    JobRescued,
    JobResultIgnored,
    JobStarted,
    RecordedEvent,
)
from tests.reliability import invariants

AT = "2026-06-01T12:00:00.000000Z"


def records(*events: Event) -> list[RecordedEvent]:
    return [
        RecordedEvent(seq=n, job_id=1, at=AT, event=event, trace=None, hash="")
        for n, event in enumerate(events, start=1)
    ]


def started(attempt: int) -> JobStarted:
    return JobStarted(attempt=attempt, worker="h:1:w", lease_expires_at=AT)


def test_an_attempt_with_two_outcomes_is_caught() -> None:
    log = records(started(1), JobCompleted(attempt=1), JobCompleted(attempt=1))
    assert invariants._attempt_problems(log, {1: "completed"}) != []
    assert invariants._terminal_problems(log) != []


def test_an_attempt_without_an_outcome_is_caught_unless_it_is_still_running() -> None:
    log = records(started(1))
    assert invariants._attempt_problems(log, {1: "pending"}) != []
    assert invariants._attempt_problems(log, {1: "in_progress"}) == []


def test_a_cancel_ends_the_running_attempt_and_a_stale_result_needs_a_lost_attempt() -> None:
    cancelled = records(
        started(1),
        JobCancelled(by="operator", reason="x", batch="20261207-100000-abcdef"),
        JobResultIgnored(attempt=1, outcome="completed", reason="stale"),
    )
    assert invariants._attempt_problems(cancelled, {1: "cancelled"}) == []
    stale_without_loss = records(
        started(1), JobResultIgnored(attempt=1, outcome="completed", reason="stale")
    )
    assert invariants._attempt_problems(stale_without_loss, {1: "in_progress"}) != []
    rescued_then_done = records(
        started(1),
        JobRescued(attempt=1, reason="lease expired"),
        started(2),
        JobCompleted(attempt=2),
    )
    assert invariants._attempt_problems(rescued_then_done, {1: "completed"}) == []


@pytest.mark.breaks_ledger("edits a projection row to be caught")
def test_a_hand_edited_read_model_and_a_non_ledger_file(db_path: Path, tmp_path: Path) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        app.enqueue({"task": "noop"})
    assert invariants.is_ledger(db_path)
    assert invariants.ledger_problems(db_path) == []
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE jobs SET status = 'completed'")
    assert any("replay --verify" in p for p in invariants.ledger_problems(db_path))
    not_sqlite = tmp_path / "other.db"
    not_sqlite.write_text("hello")
    assert not invariants.is_ledger(not_sqlite)


@pytest.mark.breaks_ledger("edits a projection row to be caught")
def test_a_hand_edited_read_model_in_a_postgresql_schema_and_an_unused_schema(
    pg_url: str, pg_database: str
) -> None:
    import psycopg

    assert not invariants.holds_ledger(pg_url)  # nothing created it yet
    with Conductor(settings=Settings(db=pg_url)) as app:
        app.enqueue({"task": "noop"})
    assert invariants.holds_ledger(pg_url)
    assert invariants.ledger_problems(pg_url) == []
    schema = pg_url.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{schema}\".jobs SET status = 'completed'")
    assert any("replay --verify" in p for p in invariants.ledger_problems(pg_url))
