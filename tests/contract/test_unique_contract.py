"""Unique jobs in the storage contract (`Ledger.enqueue`), against every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.errors import LedgerError
from conductor.domain.events import (
    JobCompleted,
    JobEnqueued,
    JobFailed,
    JobRunStarted,
    NewEvent,
)
from conductor.domain.payloads import parse_payload
from conductor.ledger.base import JobFilter, Ledger

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)


def new(
    key: str | None,
    *,
    period: int | None = None,
    now: dt.datetime = T0,
    task: str = "t",
) -> NewEvent:
    return decide.enqueue(
        parse_payload({"task": task}, 1 << 20),
        queue="default",
        priority=1,
        max_retries=0,
        run_at=None,
        now=now,
        unique_key=key,
        unique_for=period,
    )


def enqueue(ledger: Ledger, *events: NewEvent) -> list[tuple[int, bool]]:
    return [(one.job_id, one.duplicate) for one in ledger.enqueue(events)]


def test_a_second_enqueue_of_a_held_key_is_the_first_jobs_duplicate_and_appends_nothing(
    ledger: Ledger,
) -> None:
    assert enqueue(ledger, new("k")) == [(1, False)]
    head = ledger.last_seq()
    assert enqueue(ledger, new("k", now=T0 + dt.timedelta(hours=5))) == [(1, True)]
    assert ledger.last_seq() == head
    assert [row["id"] for row in ledger.jobs(JobFilter())] == [1]


def test_other_keys_and_jobs_without_a_key_are_not_blocked(ledger: Ledger) -> None:
    assert enqueue(ledger, new("k"), new("other"), new(None), new(None)) == [
        (1, False),
        (2, False),
        (3, False),
        (4, False),
    ]


def test_a_key_given_twice_in_one_batch_makes_one_job_and_the_other_events_still_append(
    ledger: Ledger,
) -> None:
    answer = enqueue(ledger, new("k", task="a"), new(None), new("k", task="b"), new("j"))
    assert answer == [(1, False), (2, False), (1, True), (3, False)]
    rows = ledger.jobs(JobFilter())
    assert [(row["id"], row["task"], row["unique_key"]) for row in rows] == [
        (1, "a", "k"),
        (2, "t", None),
        (3, "t", "j"),
    ]


def test_the_job_row_and_the_event_carry_the_key_and_its_scope(ledger: Ledger) -> None:
    enqueue(ledger, new("k", period=600))
    row = ledger.job(1)
    assert row is not None
    assert (row["unique_key"], row["unique_for"]) == ("k", 600)
    event = ledger.history(1)[0].event
    assert isinstance(event, JobEnqueued)
    assert (event.unique_key, event.unique_for) == ("k", 600)


def _claim(ledger: Ledger, now: dt.datetime = T0) -> None:
    assert ledger.claim(worker="w", queues=["default"], limit=1, now=now, lease=LEASE)


def _finish(ledger: Ledger, how: str) -> None:
    at = stamp(T0)
    if how == "cancelled":
        ledger.append(
            [
                decide.cancel(
                    _row(ledger), by="test", reason="r", batch="20261207-100000-abcdef", now=T0
                )
            ]
        )
        return
    _claim(ledger)
    ledger.append([NewEvent(job_id=1, at=at, event=JobRunStarted(attempt=1))])
    ending = JobCompleted(attempt=1) if how == "completed" else JobFailed(attempt=1, reason="x")
    ledger.append([NewEvent(job_id=1, at=at, event=ending)])


def _row(ledger: Ledger) -> dict[str, object]:
    row = ledger.job(1)
    assert row is not None
    return dict(row)


@pytest.mark.parametrize("how", ["completed", "failed", "cancelled"])
def test_the_key_is_free_again_once_its_job_completes_fails_or_is_cancelled(
    ledger: Ledger, how: str
) -> None:
    enqueue(ledger, new("k"))
    _finish(ledger, how)
    assert _row(ledger)["status"] == how
    assert enqueue(ledger, new("k")) == [(2, False)]


def test_the_key_is_held_while_the_job_is_claimed_and_while_it_runs(ledger: Ledger) -> None:
    enqueue(ledger, new("k"))
    _claim(ledger)
    assert enqueue(ledger, new("k")) == [(1, True)]
    ledger.append([NewEvent(job_id=1, at=stamp(T0), event=JobRunStarted(attempt=1))])
    assert _row(ledger)["status"] == "in_progress"
    assert enqueue(ledger, new("k")) == [(1, True)]


def test_a_period_blocks_whatever_the_state_until_it_has_passed(ledger: Ledger) -> None:
    enqueue(ledger, new("k"))
    _finish(ledger, "completed")
    ten_minutes = 600
    # Enqueued exactly ten minutes before: still within the period (the bound is inclusive).
    for later in (dt.timedelta(minutes=9), dt.timedelta(minutes=10)):
        assert enqueue(ledger, new("k", period=ten_minutes, now=T0 + later)) == [(1, True)]
    after = T0 + dt.timedelta(minutes=10, microseconds=1)
    assert enqueue(ledger, new("k", period=ten_minutes, now=after)) == [(2, False)]


def test_a_period_ignores_an_unfinished_job_enqueued_before_it(ledger: Ledger) -> None:
    enqueue(ledger, new("k"))
    later = T0 + dt.timedelta(minutes=11)
    assert enqueue(ledger, new("k", period=600, now=later)) == [(2, False)]
    # Now two unfinished jobs hold the key: a duplicate names the newest.
    assert enqueue(ledger, new("k", now=later)) == [(2, True)]


def test_append_refuses_a_job_with_a_key_it_would_not_check(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="unique key 'k'"):
        ledger.append([new(None), new("k")])
    assert ledger.last_seq() == 0


def test_a_rebuild_reproduces_the_unique_columns(ledger: Ledger) -> None:
    enqueue(ledger, new("k", period=60), new(None), new("j"))
    _finish(ledger, "completed")
    live = ledger.jobs(JobFilter())
    ledger.rebuild_projections()
    assert ledger.jobs(JobFilter()) == live
    assert ledger.diff_projections() == []
    assert [(row["unique_key"], row["unique_for"]) for row in live] == [
        ("k", 60),
        (None, None),
        ("j", None),
    ]
