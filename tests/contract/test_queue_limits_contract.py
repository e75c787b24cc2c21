"""Queue controls enforced by the ledger's claim, on every backend: a paused queue gives
nothing, a concurrency limit caps attempts claimed or running, a rate limit caps claims
per fixed window; exact however many claimers, and changeable between claims."""

from __future__ import annotations

import datetime as dt

from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.control_events import (
    OPERATIONS,
    QueueLimitCleared,
    QueueLimitSet,
    QueuePaused,
    QueueResumed,
)
from conductor.domain.events import Event, JobCompleted, JobRunStarted, NewEvent
from conductor.domain.payloads import parse_payload
from conductor.ledger.base import EventFilter, JobFilter, Ledger
from tests.contract.conftest import LedgerFactory

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)


def control(ledger: Ledger, event: Event, seconds: float = 0) -> None:
    at = stamp(T0 + dt.timedelta(seconds=seconds))
    ledger.append([NewEvent(job_id=OPERATIONS, at=at, event=event)])


def enqueue(ledger: Ledger, queue: str, count: int) -> list[int]:
    payload = parse_payload({"task": "t"}, 1 << 20)
    events = [
        decide.enqueue(payload, queue=queue, priority=1, max_retries=0, run_at=None, now=T0)
        for _ in range(count)
    ]
    return [rec.job_id for rec in ledger.append(events)]


def claim(ledger: Ledger, *queues: str, limit: int = 10, seconds: float = 0) -> list[int]:
    now = T0 + dt.timedelta(seconds=seconds)
    return [
        job.id
        for job in ledger.claim(worker="w", queues=list(queues), limit=limit, now=now, lease=LEASE)
    ]


def finish(ledger: Ledger, *job_ids: int) -> None:
    at = stamp(T0 + dt.timedelta(seconds=1))
    for job_id in job_ids:
        ledger.append(
            [
                NewEvent(job_id=job_id, at=at, event=JobRunStarted(attempt=1)),
                NewEvent(job_id=job_id, at=at, event=JobCompleted(attempt=1)),
            ]
        )


def concurrency(queue: str, value: int | None) -> Event:
    if value is None:
        return QueueLimitCleared(queue=queue, by="op", reason="", limit="concurrency")
    return QueueLimitSet(
        queue=queue, by="op", reason="", limit="concurrency", value=value, per=None
    )


def test_a_paused_queue_gives_nothing_and_the_others_carry_on(ledger: Ledger) -> None:
    mail = enqueue(ledger, "mail", 2)
    other = enqueue(ledger, "other", 2)
    control(ledger, QueuePaused(queue="mail", by="op", reason=""))
    assert claim(ledger, "mail", "other") == other
    assert [row["status"] for row in map(ledger.job, mail)] == ["pending", "pending"]  # type: ignore[index]
    control(ledger, QueueResumed(queue="mail", by="op", reason=""))
    assert claim(ledger, "mail", "other") == mail


def test_a_queue_can_be_paused_before_it_has_jobs(ledger: Ledger) -> None:
    control(ledger, QueuePaused(queue="later", by="op", reason=""))
    enqueue(ledger, "later", 1)
    assert claim(ledger, "later") == []


def test_a_concurrency_limit_counts_claimed_and_running_attempts(ledger: Ledger) -> None:
    jobs = enqueue(ledger, "q", 5)
    control(ledger, concurrency("q", 2))
    assert claim(ledger, "q") == jobs[:2]
    assert claim(ledger, "q") == []
    ledger.append(
        [NewEvent(job_id=jobs[0], at=stamp(T0), event=JobRunStarted(attempt=1))]
    )  # claimed -> in_progress: still counted
    assert claim(ledger, "q") == []
    finish(ledger, jobs[1])
    assert claim(ledger, "q") == [jobs[2]]


def test_a_limit_holds_across_claimers_and_a_change_applies_to_the_next_claim(
    make_ledger: LedgerFactory,
) -> None:
    first, second = make_ledger(), make_ledger()
    jobs = enqueue(first, "q", 6)
    # Both claimers have looked once (with no controls), then an operator limits the
    # queue: the next claims, whatever they assumed, respect it.
    assert claim(first, "q", limit=1) == jobs[:1]
    assert claim(second, "q", limit=1) == jobs[1:2]
    control(second, concurrency("q", 3))
    assert claim(first, "q") == jobs[2:3]
    assert claim(second, "q") == []
    control(first, concurrency("q", 4))
    assert claim(second, "q") == jobs[3:4]
    control(first, concurrency("q", None))
    assert claim(second, "q") == jobs[4:]
    assert len(first.jobs(JobFilter(status="claimed"))) == 6


def test_a_rate_limit_caps_claims_per_fixed_window_and_records_them(ledger: Ledger) -> None:
    jobs = enqueue(ledger, "q", 10)
    control(
        ledger, QueueLimitSet(queue="q", by="op", reason="", limit="rate", value=3, per="minute")
    )
    assert claim(ledger, "q", limit=2) == jobs[:2]
    assert claim(ledger, "q", seconds=30) == jobs[2:3]
    assert claim(ledger, "q", seconds=59) == []
    assert claim(ledger, "q", seconds=60) == jobs[3:6]
    spent = ledger.read(EventFilter(types=("queue_rate_spent",)))
    assert [(rec.job_id, rec.event.fields()["claims"]) for rec in spent] == [
        (OPERATIONS, 2),
        (OPERATIONS, 1),
        (OPERATIONS, 3),
    ]
    assert ledger.diff_projections() == []


def test_both_limits_together_give_the_smaller_room(ledger: Ledger) -> None:
    jobs = enqueue(ledger, "q", 10)
    control(ledger, concurrency("q", 4))
    control(
        ledger, QueueLimitSet(queue="q", by="op", reason="", limit="rate", value=2, per="second")
    )
    assert claim(ledger, "q") == jobs[:2]
    assert claim(ledger, "q", seconds=1) == jobs[2:4]
    assert claim(ledger, "q", seconds=2) == []  # concurrency: 4 claimed
    finish(ledger, *jobs[:3])
    assert claim(ledger, "q", seconds=2) == jobs[4:6]


def test_a_limit_on_one_queue_does_not_hold_back_another_in_the_same_claim(
    ledger: Ledger,
) -> None:
    limited = enqueue(ledger, "slow", 3)
    free = enqueue(ledger, "fast", 3)
    control(ledger, concurrency("slow", 1))
    taken = claim(ledger, "slow", "fast", limit=10)
    assert sorted(taken) == sorted([limited[0], *free])
