"""The storage contract (conductor/ledger/base.py), against every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.errors import InvalidTransition
from conductor.domain.events import (
    JobAttemptFailed,
    JobClaimed,
    JobCompleted,
    JobFailed,
    JobRunStarted,
    JobStarted,
    NewEvent,
)
from conductor.domain.payloads import parse_payload
from conductor.ledger.base import EventFilter, JobFilter, Ledger

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)
CAP = 1 << 20


def enqueue(
    ledger: Ledger,
    task: str = "t",
    *,
    queue: str = "default",
    priority: int = 1,
    run_at: dt.datetime | None = None,
    now: dt.datetime = T0,
    count: int = 1,
) -> list[int]:
    payload = parse_payload({"task": task}, CAP)
    events = [
        decide.enqueue(
            payload, queue=queue, priority=priority, max_retries=2, run_at=run_at, now=now
        )
        for _ in range(count)
    ]
    return [rec.job_id for rec in ledger.append(events)]


def run(ledger: Ledger, *job_ids: int, attempt: int = 1, seconds: float = 0.5) -> None:
    """The claimed attempts' handlers began (what a worker records)."""
    ledger.append(
        [
            NewEvent(job_id=job_id, at=at(seconds), event=JobRunStarted(attempt=attempt))
            for job_id in job_ids
        ]
    )


def at(seconds: float) -> str:
    return stamp(T0 + dt.timedelta(seconds=seconds))


def test_append_numbers_events_and_jobs_consecutively(ledger: Ledger) -> None:
    assert enqueue(ledger, count=3) == [1, 2, 3]
    assert enqueue(ledger) == [4]
    events = ledger.read(EventFilter())
    assert [rec.seq for rec in events] == [1, 2, 3, 4]
    assert [rec.job_id for rec in events] == [1, 2, 3, 4]
    assert ledger.last_seq() == 4


def test_append_returns_what_read_returns(ledger: Ledger) -> None:
    enqueue(ledger)
    appended = ledger.append(
        [
            NewEvent(
                job_id=1, at=at(1), event=JobStarted(attempt=1, worker="w", lease_expires_at=at(31))
            )
        ]
    )
    assert ledger.read(EventFilter(after_seq=1)) == appended


def test_append_is_all_or_nothing_when_one_event_is_illegal(ledger: Ledger) -> None:
    enqueue(ledger, count=2)
    before = (ledger.last_seq(), ledger.jobs(JobFilter()), ledger.counts())
    with pytest.raises(InvalidTransition, match="job 2"):
        ledger.append(
            [
                NewEvent(
                    job_id=1,
                    at=at(1),
                    event=JobStarted(attempt=1, worker="w", lease_expires_at=at(2)),
                ),
                NewEvent(job_id=2, at=at(1), event=JobCompleted(attempt=1)),
            ]
        )
    assert (ledger.last_seq(), ledger.jobs(JobFilter()), ledger.counts()) == before


def test_an_event_for_a_job_that_does_not_exist_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidTransition, match="does not exist"):
        ledger.append([NewEvent(job_id=42, at=at(0), event=JobCompleted(attempt=1))])
    assert ledger.last_seq() == 0


def test_claim_takes_high_before_medium_before_low_and_fifo_within_one(ledger: Ledger) -> None:
    low = enqueue(ledger, priority=2, now=T0)
    medium_first = enqueue(ledger, priority=1, now=T0 + dt.timedelta(seconds=1))
    high = enqueue(ledger, priority=0, now=T0 + dt.timedelta(seconds=2))
    medium_second = enqueue(ledger, priority=1, now=T0 + dt.timedelta(seconds=3))
    order = []
    for _ in range(4):
        (claimed,) = ledger.claim(
            worker="w", queues=["default"], limit=1, now=T0 + dt.timedelta(seconds=10), lease=LEASE
        )
        order.append(claimed.id)
    assert order == [*high, *medium_first, *medium_second, *low]


def test_claim_orders_every_rank_of_the_priority_range_across_queues(ledger: Ledger) -> None:
    # Ranks beyond the three named ones (Django's scale, docs/django.md): each is a level
    # of its own, found by the claim's scan of the ranks present, in any queue.
    ranks = [101, -99, 50, 1, -5, 0, 2, 77, -99]
    ids = {
        job: rank
        for index, rank in enumerate(ranks)
        for job in enqueue(
            ledger,
            queue="mail" if index % 2 else "default",
            priority=rank,
            now=T0 + dt.timedelta(seconds=index),
        )
    }
    later = T0 + dt.timedelta(minutes=1)
    (future,) = enqueue(ledger, priority=-99, run_at=later + dt.timedelta(hours=1))
    taken = []
    for limit in (2, 3, 10):
        taken += ledger.claim(
            worker="w", queues=["default", "mail"], limit=limit, now=later, lease=LEASE
        )
    assert [ids[job.id] for job in taken] == sorted(ranks)
    assert [job.id for job in taken][:2] == sorted(i for i, r in ids.items() if r == -99)
    assert future not in [job.id for job in taken]
    assert ledger.next_due(["default", "mail"]) == stamp(later + dt.timedelta(hours=1))


def test_claim_never_takes_a_job_before_its_run_at(ledger: Ledger) -> None:
    (later,) = enqueue(ledger, run_at=T0 + dt.timedelta(minutes=5))
    assert (
        ledger.claim(
            worker="w",
            queues=["default"],
            limit=10,
            now=T0 + dt.timedelta(minutes=4, seconds=59),
            lease=LEASE,
        )
        == []
    )
    claimed = ledger.claim(
        worker="w", queues=["default"], limit=10, now=T0 + dt.timedelta(minutes=5), lease=LEASE
    )
    assert [job.id for job in claimed] == [later]


def test_claim_respects_the_limit_and_the_queues_asked_for(ledger: Ledger) -> None:
    enqueue(ledger, queue="default", count=3)
    mail = enqueue(ledger, queue="mail", count=2)
    enqueue(ledger, queue="other", count=2)
    first = ledger.claim(worker="w", queues=["mail"], limit=5, now=T0, lease=LEASE)
    assert [job.id for job in first] == mail
    both = ledger.claim(worker="w", queues=["default", "mail"], limit=2, now=T0, lease=LEASE)
    assert [job.id for job in both] == [1, 2]
    assert ledger.claim(worker="w", queues=[], limit=5, now=T0, lease=LEASE) == []
    assert ledger.claim(worker="w", queues=["default"], limit=0, now=T0, lease=LEASE) == []


def test_claim_merges_queues_by_run_at_within_a_priority(ledger: Ledger) -> None:
    (mail_old,) = enqueue(ledger, queue="mail", now=T0)
    (default_new,) = enqueue(ledger, queue="default", now=T0 + dt.timedelta(seconds=1))
    claimed = ledger.claim(
        worker="w",
        queues=["default", "mail"],
        limit=2,
        now=T0 + dt.timedelta(seconds=5),
        lease=LEASE,
    )
    assert [job.id for job in claimed] == [mail_old, default_new]


def test_a_claimed_job_holds_a_lease_and_is_not_claimed_again(
    ledger: Ledger,
) -> None:
    enqueue(ledger, count=2)
    (claimed,) = ledger.claim(worker="host:1:w", queues=["default"], limit=1, now=T0, lease=LEASE)
    assert (claimed.id, claimed.attempt, claimed.payload) == (1, 1, '{"task":"t"}')
    assert claimed.lease_expires_at == at(30)
    row = ledger.job(1)
    assert row is not None
    assert (row["status"], row["worker"], row["lease_expires_at"]) == (
        "claimed",
        "host:1:w",
        at(30),
    )
    again = ledger.claim(worker="x", queues=["default"], limit=5, now=T0, lease=LEASE)
    assert [job.id for job in again] == [2]
    started = ledger.read(EventFilter(types=("claimed",)))
    assert [(rec.job_id, rec.event) for rec in started] == [
        (1, JobClaimed(attempt=1, worker="host:1:w", lease_expires_at=at(30))),
        (2, JobClaimed(attempt=1, worker="x", lease_expires_at=at(30))),
    ]


def test_a_retried_job_is_claimed_with_the_next_attempt_number(ledger: Ledger) -> None:
    enqueue(ledger)
    ledger.claim(worker="w", queues=["default"], limit=1, now=T0, lease=LEASE)
    run(ledger, 1)
    from conductor.domain.events import JobRetryScheduled

    ledger.append(
        [
            NewEvent(
                job_id=1,
                at=at(1),
                event=JobAttemptFailed(attempt=1, error_type="E", message="m", traceback="tb"),
            ),
            NewEvent(job_id=1, at=at(1), event=JobRetryScheduled(attempt=1, run_at=at(5))),
        ]
    )
    assert (
        ledger.claim(
            worker="w", queues=["default"], limit=1, now=T0 + dt.timedelta(4), lease=LEASE
        )[0].attempt
        == 2
    )


def test_read_filters_by_job_type_task_and_time(ledger: Ledger) -> None:
    enqueue(ledger, "a", now=T0)
    enqueue(ledger, "b", now=T0 + dt.timedelta(minutes=1))
    ledger.claim(
        worker="w", queues=["default"], limit=2, now=T0 + dt.timedelta(minutes=2), lease=LEASE
    )
    assert [r.seq for r in ledger.read(EventFilter(job_id=2))] == [2, 4]
    assert [r.seq for r in ledger.read(EventFilter(types=("claimed",)))] == [3, 4]
    assert [r.seq for r in ledger.read(EventFilter(task="a"))] == [1, 3]
    assert [r.seq for r in ledger.read(EventFilter(since=at(60)))] == [2, 3, 4]
    assert [r.seq for r in ledger.read(EventFilter(since=at(60), until=at(120)))] == [2]
    assert [r.seq for r in ledger.read(EventFilter(types=("enqueued", "claimed"), job_id=1))] == [
        1,
        3,
    ]


def test_read_and_jobs_with_a_limit_return_the_newest_in_order(ledger: Ledger) -> None:
    enqueue(ledger, count=5)
    assert [r.seq for r in ledger.read(EventFilter(), limit=2)] == [4, 5]
    assert [row["id"] for row in ledger.jobs(JobFilter(), limit=3)] == [3, 4, 5]
    assert [row["id"] for row in ledger.jobs(JobFilter())] == [1, 2, 3, 4, 5]


def test_jobs_filters_by_status_task_and_queue(ledger: Ledger) -> None:
    enqueue(ledger, "a", queue="q1")
    enqueue(ledger, "b", queue="q2")
    enqueue(ledger, "a", queue="q2")
    ledger.claim(worker="w", queues=["q2"], limit=1, now=T0, lease=LEASE)
    assert [r["id"] for r in ledger.jobs(JobFilter(task="a"))] == [1, 3]
    assert [r["id"] for r in ledger.jobs(JobFilter(queue="q2"))] == [2, 3]
    assert [r["id"] for r in ledger.jobs(JobFilter(status="claimed"))] == [2]
    assert [r["id"] for r in ledger.jobs(JobFilter(status="pending", queue="q2"))] == [3]


def test_counts_follow_every_transition(ledger: Ledger) -> None:
    enqueue(ledger, "a", count=3)
    ledger.claim(worker="w", queues=["default"], limit=2, now=T0, lease=LEASE)
    run(ledger, 1, 2)
    ledger.append(
        [
            NewEvent(job_id=1, at=at(1), event=JobCompleted(attempt=1)),
            NewEvent(
                job_id=2,
                at=at(1),
                event=JobAttemptFailed(attempt=1, error_type="E", message="m", traceback=""),
            ),
            NewEvent(job_id=2, at=at(1), event=JobFailed(attempt=1, reason="E: m")),
        ]
    )
    assert ledger.counts() == [
        ("default", "a", "completed", 1),
        ("default", "a", "failed", 1),
        ("default", "a", "pending", 1),
    ]


def test_event_counts_total_each_type_per_queue_and_task(ledger: Ledger) -> None:
    enqueue(ledger, "a", count=3)
    enqueue(ledger, "b", queue="q2")
    ledger.claim(worker="w", queues=["default", "q2"], limit=4, now=T0, lease=LEASE)
    run(ledger, 1, 2, 4)
    ledger.append(
        [
            NewEvent(job_id=1, at=at(1), event=JobCompleted(attempt=1)),
            NewEvent(job_id=2, at=at(1), event=JobCompleted(attempt=1)),
            NewEvent(job_id=4, at=at(1), event=JobCompleted(attempt=1)),
        ]
    )
    assert ledger.event_counts(("enqueued", "completed", "rescued")) == [
        ("default", "a", "completed", 2),
        ("default", "a", "enqueued", 3),
        ("q2", "b", "completed", 1),
        ("q2", "b", "enqueued", 1),
    ]
    assert ledger.event_counts(()) == []


def test_a_claimed_job_carries_the_run_at_it_fell_due_at(ledger: Ledger) -> None:
    enqueue(ledger, run_at=T0 + dt.timedelta(seconds=5))
    later = T0 + dt.timedelta(seconds=40)
    [job] = ledger.claim(worker="w", queues=["default"], limit=1, now=later, lease=LEASE)
    assert job.run_at == at(5)


def test_history_is_every_event_of_one_job_and_empty_for_an_unknown_one(ledger: Ledger) -> None:
    enqueue(ledger, count=2)
    ledger.claim(worker="w", queues=["default"], limit=1, now=T0, lease=LEASE)
    assert [r.type for r in ledger.history(1)] == ["enqueued", "claimed"]
    assert ledger.history(99) == []
    assert ledger.job(99) is None


def test_rebuild_reproduces_the_live_read_models(ledger: Ledger) -> None:
    enqueue(ledger, count=4)
    ledger.claim(worker="w", queues=["default"], limit=3, now=T0, lease=LEASE)
    run(ledger, 1, 2)
    ledger.append([NewEvent(job_id=1, at=at(1), event=JobCompleted(attempt=1))])
    live = (ledger.jobs(JobFilter()), ledger.counts())
    assert ledger.diff_projections() == []
    assert ledger.rebuild_projections() == 10
    assert (ledger.jobs(JobFilter()), ledger.counts()) == live


def test_the_chain_verifies_and_its_head_is_the_last_event(ledger: Ledger) -> None:
    enqueue(ledger, count=3)
    report = ledger.verify_chain()
    assert report.ok
    assert report.events == 3
    assert report.head_hash == ledger.read(EventFilter())[-1].hash


def test_an_outcome_for_a_stale_attempt_is_refused_by_the_log_itself(ledger: Ledger) -> None:
    from conductor.domain.events import JobRescued

    enqueue(ledger)
    ledger.claim(worker="w1", queues=["default"], limit=1, now=T0, lease=LEASE)
    ledger.append([NewEvent(job_id=1, at=at(40), event=JobRescued(attempt=1, reason="lost"))])
    ledger.claim(worker="w2", queues=["default"], limit=1, now=T0 + LEASE * 2, lease=LEASE)
    run(ledger, 1, attempt=2, seconds=61)
    before = ledger.last_seq()
    with pytest.raises(InvalidTransition, match="attempt 1 is stale"):
        ledger.append([NewEvent(job_id=1, at=at(70), event=JobCompleted(attempt=1))])
    assert ledger.last_seq() == before
    row = ledger.job(1)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("in_progress", 2)


def test_an_attempt_failure_must_come_with_its_decision(ledger: Ledger) -> None:
    enqueue(ledger)
    ledger.claim(worker="w", queues=["default"], limit=1, now=T0, lease=LEASE)
    run(ledger, 1)
    with pytest.raises(InvalidTransition, match="without retry_scheduled or failed"):
        ledger.append(
            [
                NewEvent(
                    job_id=1,
                    at=at(1),
                    event=JobAttemptFailed(attempt=1, error_type="E", message="m", traceback=""),
                )
            ]
        )
    assert ledger.last_seq() == 3


def test_recent_returns_the_events_stamped_in_a_window_in_seq_order(ledger: Ledger) -> None:
    from conductor.ledger.base import RECENT_MARGIN

    margin = RECENT_MARGIN.total_seconds()
    window_start = 3600.0
    enqueue(ledger, now=T0)  # seq 1: long before the window
    enqueue(ledger, now=T0 + dt.timedelta(seconds=window_start + 10))  # seq 2: inside
    # seq 3 was stamped by a clock running behind: before the window, within the margin.
    enqueue(ledger, now=T0 + dt.timedelta(seconds=window_start - margin / 2))
    enqueue(ledger, now=T0 + dt.timedelta(seconds=window_start + 5))  # seq 4: inside
    recent = ledger.recent(at(window_start))
    assert [rec.seq for rec in recent] == [2, 4]
    assert recent == [rec for rec in ledger.read(EventFilter()) if rec.seq in (2, 4)]
    assert ledger.recent(at(window_start + 3600)) == []
    assert [rec.seq for rec in ledger.recent(at(0))] == [1, 2, 3, 4]
    # With a limit, the newest of them, still in seq order.
    assert [rec.seq for rec in ledger.recent(at(0), limit=2)] == [3, 4]
    assert [rec.seq for rec in ledger.recent(at(window_start), limit=1)] == [4]


def test_preceding_finds_each_jobs_newest_event_of_the_types_before_a_seq(ledger: Ledger) -> None:
    enqueue(ledger, count=2)  # seqs 1, 2
    ledger.claim(worker="w", queues=["default"], limit=2, now=T0, lease=LEASE)  # seqs 3, 4
    run(ledger, 1)  # seq 5
    ledger.append([NewEvent(job_id=1, at=at(5), event=JobCompleted(attempt=1))])  # seq 6
    found = ledger.preceding({1: 6, 2: 4, 3: 9}, types=("enqueued", "run_started"))
    assert {job: rec.seq for job, rec in found.items()} == {1: 5, 2: 2}
    assert found[1] == ledger.read(EventFilter(after_seq=4))[0]
    assert ledger.preceding({1: 6}, types=("completed",)) == {}
    assert ledger.preceding({}, types=("claimed",)) == {}


def test_a_completed_result_is_stored_as_json_in_the_event_and_read_back_as_text(
    ledger: Ledger,
) -> None:
    first, second = enqueue(ledger, count=2)
    ledger.claim(worker="w", queues=["default"], limit=2, now=T0, lease=LEASE)
    run(ledger, first, second)
    ledger.append(
        [
            NewEvent(job_id=first, at=at(5), event=JobCompleted(attempt=1, result='{"n":[1,2]}')),
            NewEvent(job_id=second, at=at(5), event=JobCompleted(attempt=1)),
        ]
    )
    stored = {
        row[1]: row for row in ledger.stored_events(after=0, limit=100) if row[2] == "completed"
    }
    assert (stored[first][3], stored[first][5]) == (2, '{"attempt":1,"result":{"n":[1,2]}}')
    assert stored[second][5] == '{"attempt":1,"result":null}'
    completed = ledger.read(EventFilter(types=("completed",)))
    assert [rec.event for rec in completed] == [
        JobCompleted(attempt=1, result='{"n":[1,2]}'),
        JobCompleted(attempt=1, result=None),
    ]
    assert ledger.verify_chain().ok
    assert ledger.diff_projections() == []


def test_a_version_1_completed_event_still_verifies_replays_and_reads_as_no_result(
    ledger: Ledger,
) -> None:
    """Ledgers written before results hold `completed` version 1 (`{"attempt":1}`): they
    are never rewritten, and are read through the upcaster."""
    from conductor.ledger.chain import event_hash

    (job_id,) = enqueue(ledger)
    ledger.claim(worker="w", queues=["default"], limit=1, now=T0, lease=LEASE)
    run(ledger, job_id)
    head = ledger.stored_events(after=0, limit=100)[-1]
    seq, prev_hash = int(head[0]) + 1, str(head[8])
    data = '{"attempt":1}'
    digest = event_hash(prev_hash, seq, job_id, "completed", 1, at(5), data, None)
    ledger.import_events([(seq, job_id, "completed", 1, at(5), data, None, prev_hash, digest)])
    assert ledger.rebuild_projections() == seq
    assert ledger.verify_chain().ok
    assert ledger.diff_projections() == []
    assert ledger.job(job_id)["status"] == "completed"  # type: ignore[index]
    (completed,) = ledger.read(EventFilter(types=("completed",)))
    assert completed.event == JobCompleted(attempt=1, result=None)
    assert ledger.stored_events(after=seq - 1, limit=1)[0][3:6] == (1, at(5), data)
