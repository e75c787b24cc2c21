"""The operations stream and its `controls` read model (ledger contract), on every backend:
events about queues are stored with job id 0 in the one hash chain, folded into
`controls`, rebuilt and verified with the rest, and never shown as a job."""

from __future__ import annotations

import datetime as dt

import pytest

from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.control_events import (
    OPERATIONS,
    QueueLimitCleared,
    QueueLimitSet,
    QueuePaused,
    QueueRateSpent,
    QueueResumed,
)
from conductor.domain.errors import ControlRefused, ControlUnchanged
from conductor.domain.events import Event, JobCompleted, JobRunStarted, NewEvent
from conductor.domain.payloads import parse_payload
from conductor.ledger.base import EventFilter, JobFilter, Ledger

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)


def at(seconds: float) -> str:
    return stamp(T0 + dt.timedelta(seconds=seconds))


def op(event: Event, seconds: float = 0) -> NewEvent:
    return NewEvent(job_id=OPERATIONS, at=at(seconds), event=event)


def enqueue(ledger: Ledger, count: int = 1, queue: str = "default") -> list[int]:
    payload = parse_payload({"task": "t"}, 1 << 20)
    events = [
        decide.enqueue(payload, queue=queue, priority=1, max_retries=0, run_at=None, now=T0)
        for _ in range(count)
    ]
    return [rec.job_id for rec in ledger.append(events)]


def pause(queue: str = "mail", by: str = "alice", reason: str = "") -> QueuePaused:
    return QueuePaused(queue=queue, by=by, reason=reason)


def resume(queue: str = "mail") -> QueueResumed:
    return QueueResumed(queue=queue, by="alice", reason="")


def rate(queue: str, value: int, per: str = "minute") -> QueueLimitSet:
    return QueueLimitSet(queue=queue, by="bob", reason="", limit="rate", value=value, per=per)


def test_an_operations_event_is_stored_with_job_id_0_and_folded_into_controls(
    ledger: Ledger,
) -> None:
    recorded = ledger.append([op(pause(reason="incident 42"), 1)])
    assert [(rec.job_id, rec.type) for rec in recorded] == [(OPERATIONS, "queue_paused")]
    state = ledger.controls("queue")["mail"]
    assert state["paused"] is True
    assert (state["by"], state["reason"], state["changed_at"]) == ("alice", "incident 42", at(1))
    assert ledger.controls("schedule") == {}
    assert ledger.read(EventFilter())[-1].event == pause(reason="incident 42")


def test_operations_events_never_show_as_a_job(ledger: Ledger) -> None:
    enqueue(ledger, 2)
    ledger.append([op(pause()), op(rate("mail", 5))])
    assert [row["id"] for row in ledger.jobs(JobFilter())] == [1, 2]
    assert ledger.job(OPERATIONS) is None
    assert ledger.history(OPERATIONS) == []
    assert ledger.counts() == [("default", "t", "pending", 2)]
    assert ledger.event_counts(["queue_paused", "enqueued"]) == [("default", "t", "enqueued", 2)]
    # A new job after them still gets the next job id: job 0 is not a job.
    assert enqueue(ledger) == [3]


def test_a_refused_control_event_stores_nothing_and_takes_its_batch_with_it(
    ledger: Ledger,
) -> None:
    (job,) = enqueue(ledger)
    ledger.claim(worker="w", queues=["default"], limit=1, now=T0, lease=LEASE)
    head = ledger.last_seq()
    before = (ledger.controls("queue"), ledger.jobs(JobFilter()), ledger.counts())
    with pytest.raises(ControlUnchanged, match="'mail' is not paused"):
        ledger.append([op(resume())])
    with pytest.raises(ControlUnchanged, match="already paused"):
        ledger.append([op(pause()), op(pause())])
    with pytest.raises(ControlRefused, match="no rate limit"):
        # A job's event and a refused control event: neither is stored.
        ledger.append(
            [
                NewEvent(job_id=job, at=at(1), event=JobRunStarted(attempt=1)),
                op(QueueRateSpent(queue="default", by="w", claims=1), 1),
            ]
        )
    assert ledger.last_seq() == head
    assert (ledger.controls("queue"), ledger.jobs(JobFilter()), ledger.counts()) == before
    assert ledger.verify_chain().ok


def test_limits_are_set_replaced_and_cleared_one_at_a_time(ledger: Ledger) -> None:
    ledger.append(
        [
            op(QueueLimitSet(queue="q", by="b", reason="", limit="concurrency", value=2, per=None)),
            op(rate("q", 100, "minute")),
            op(rate("q", 50, "second")),
        ]
    )
    state = ledger.controls("queue")["q"]
    assert (state["concurrency"], state["rate"], state["per"]) == (2, 50, "second")
    ledger.append([op(QueueLimitCleared(queue="q", by="b", reason="", limit="concurrency"))])
    state = ledger.controls("queue")["q"]
    assert (state["concurrency"], state["rate"]) == (None, 50)
    with pytest.raises(ControlUnchanged, match="no concurrency limit"):
        ledger.append([op(QueueLimitCleared(queue="q", by="b", reason="", limit="concurrency"))])
    with pytest.raises(ControlUnchanged, match="already has rate 50/second"):
        ledger.append([op(rate("q", 50, "second"))])


def test_the_ledger_refuses_claims_that_would_overspend_a_rate_window(ledger: Ledger) -> None:
    ledger.append([op(rate("q", 3, "minute"))])
    spend = QueueRateSpent(queue="q", by="w", claims=2)
    ledger.append([op(spend, 1)])
    with pytest.raises(ControlRefused, match="exceed its rate of 3/minute"):
        ledger.append([op(spend, 2)])
    ledger.append([op(QueueRateSpent(queue="q", by="w", claims=1), 3)])
    assert ledger.controls("queue")["q"]["spent"] == 3
    # The next minute's window starts afresh; a stamp from the window before (a claimer
    # whose clock is behind) counts in the newest one.
    ledger.append([op(spend, 60)])
    ledger.append([op(QueueRateSpent(queue="q", by="w", claims=1), 59)])
    state = ledger.controls("queue")["q"]
    assert (state["window"], state["spent"]) == (at(60), 3)


def test_rebuild_and_verify_cover_the_operations_stream(ledger: Ledger) -> None:
    enqueue(ledger, 3, queue="mail")
    ledger.append([op(pause(), 1)])
    assert ledger.claim(worker="w", queues=["mail"], limit=2, now=T0, lease=LEASE) == []
    ledger.append([op(resume(), 2), op(rate("mail", 10), 2)])
    ledger.claim(worker="w", queues=["mail"], limit=2, now=T0, lease=LEASE)
    ledger.append([NewEvent(job_id=1, at=at(3), event=JobRunStarted(attempt=1))])
    ledger.append([NewEvent(job_id=1, at=at(4), event=JobCompleted(attempt=1))])
    ledger.append([op(QueueRateSpent(queue="mail", by="w", claims=2), 5)])
    live = (ledger.controls("queue"), ledger.jobs(JobFilter()), ledger.counts())
    assert ledger.diff_projections() == []
    assert ledger.rebuild_projections() == ledger.last_seq()
    assert (ledger.controls("queue"), ledger.jobs(JobFilter()), ledger.counts()) == live
    report = ledger.verify_chain()
    assert report.ok
    assert report.events == ledger.last_seq()
