from __future__ import annotations

from collections import Counter

import pytest

from conductor.domain.errors import InvalidTransition
from conductor.domain.events import (
    Event,
    JobAttemptFailed,
    JobCancelled,
    JobCompleted,
    JobEnqueued,
    JobFailed,
    JobReleased,
    JobRequeued,
    JobRescued,
    JobResultIgnored,
    JobRetryScheduled,
    JobStarted,
    RecordedEvent,
)
from projections import counters, history, job_status, runner


def rec(seq: int, event: Event, job_id: int = 1, at: str | None = None) -> RecordedEvent:
    return RecordedEvent(
        seq=seq,
        job_id=job_id,
        at=at or f"2026-01-01T00:00:{seq:02d}.000000Z",
        event=event,
        trace="00-abc-def-01" if seq == 1 else None,
        hash=f"h{seq}",
    )


ENQUEUED = JobEnqueued(
    task="t", queue="q", priority=2, max_retries=1, run_at="R", payload='{"task":"t"}'
)


def test_enqueued_creates_a_pending_row_with_everything_the_event_says() -> None:
    row = job_status.apply(None, rec(1, ENQUEUED, job_id=9))
    assert row["id"] == 9
    assert (row["status"], row["task"], row["queue"], row["priority"]) == ("pending", "t", "q", 2)
    assert (row["attempts"], row["retries"], row["max_retries"]) == (0, 0, 1)
    assert row["run_at"] == "R"
    assert row["trace"] == "00-abc-def-01"
    assert row["created_at"] == row["updated_at"] == "2026-01-01T00:00:01.000000Z"


def test_a_failing_job_retries_then_fails_with_its_reason() -> None:
    events = [
        ENQUEUED,
        JobStarted(attempt=1, worker="w1", lease_expires_at="L1"),
        JobAttemptFailed(attempt=1, error_type="ValueError", message="boom", traceback="tb"),
        JobRetryScheduled(attempt=1, run_at="R2"),
        JobStarted(attempt=2, worker="w2", lease_expires_at="L2"),
        JobAttemptFailed(attempt=2, error_type="KeyError", message="k", traceback="tb"),
        JobFailed(attempt=2, reason="KeyError: k (retries exhausted)"),
    ]
    states = []
    row = None
    for seq, event in enumerate(events, start=1):
        row = job_status.apply(row, rec(seq, event))
        states.append((row["status"], row["attempts"], row["retries"], row["worker"]))
    assert states == [
        ("pending", 0, 0, None),
        ("in_progress", 1, 0, "w1"),
        ("in_progress", 1, 0, "w1"),
        ("pending", 1, 1, None),
        ("in_progress", 2, 1, "w2"),
        ("in_progress", 2, 1, "w2"),
        ("failed", 2, 1, None),
    ]
    assert row is not None
    assert row["last_error"] == "KeyError: k (retries exhausted)"
    assert row["run_at"] == "R2"
    assert row["last_seq"] == 7


def test_requeue_resets_the_retry_budget_but_attempts_keep_counting() -> None:
    row = job_status.fold(
        rec(seq, event)
        for seq, event in enumerate(
            [
                ENQUEUED,
                JobStarted(attempt=1, worker="w", lease_expires_at="L"),
                JobAttemptFailed(attempt=1, error_type="E", message="m", traceback=""),
                JobRetryScheduled(attempt=1, run_at="R2"),
                JobCancelled(by="op", reason="r", batch="20261207-100000-abcdef"),
                JobRequeued(by="op", run_at="R3", reason="r", batch="20261207-100000-abcdef"),
            ],
            start=1,
        )
    )
    assert row is not None
    assert (row["status"], row["retries"], row["attempts"], row["run_at"]) == (
        "pending",
        0,
        1,
        "R3",
    )


def test_a_rescued_job_is_due_at_once_and_loses_its_lease() -> None:
    row = job_status.fold(
        [
            rec(1, ENQUEUED),
            rec(2, JobStarted(attempt=1, worker="w", lease_expires_at="L")),
            rec(3, JobRescued(attempt=1, reason="lease expired")),
        ]
    )
    assert row is not None
    assert (row["status"], row["worker"], row["lease_expires_at"]) == ("pending", None, None)
    assert row["run_at"] == "2026-01-01T00:00:03.000000Z"


def test_the_fold_refuses_illegal_sequences() -> None:
    started = job_status.apply(
        job_status.apply(None, rec(1, ENQUEUED)),
        rec(2, JobStarted(attempt=1, worker="w", lease_expires_at="L")),
    )
    done = job_status.apply(started, rec(3, JobCompleted(attempt=1)))
    with pytest.raises(InvalidTransition):
        job_status.apply(
            done, rec(4, JobCancelled(by="op", reason="r", batch="20261207-100000-abcdef"))
        )
    with pytest.raises(InvalidTransition):
        job_status.apply(None, rec(1, JobCompleted(attempt=1)))


def test_apply_never_mutates_the_row_it_is_given() -> None:
    row = job_status.apply(None, rec(1, ENQUEUED))
    snapshot = dict(row)
    job_status.apply(row, rec(2, JobStarted(attempt=1, worker="w", lease_expires_at="L")))
    assert row == snapshot


def test_counters_move_a_job_between_buckets_and_ignore_same_bucket_events() -> None:
    pending = job_status.apply(None, rec(1, ENQUEUED))
    running = job_status.apply(
        pending, rec(2, JobStarted(attempt=1, worker="w", lease_expires_at="L"))
    )
    failed_once = job_status.apply(
        running, rec(3, JobAttemptFailed(attempt=1, error_type="E", message="m", traceback=""))
    )
    assert counters.move(None, pending) == (None, ("q", "t", "pending"))
    assert counters.move(pending, running) == (("q", "t", "pending"), ("q", "t", "in_progress"))
    assert counters.move(running, failed_once) is None
    deltas: Counter[counters.Bucket] = Counter()
    counters.shift(deltas, pending, None)
    counters.shift(deltas, running, "pending")
    counters.shift(deltas, failed_once, "in_progress")  # no move: still in progress
    assert +deltas == Counter({("q", "t", "in_progress"): 1})


def test_a_batch_folds_several_events_of_one_job_and_nets_the_counters() -> None:
    effect = runner.apply_batch(
        {},
        [
            rec(1, ENQUEUED, job_id=1),
            rec(2, ENQUEUED, job_id=2),
            rec(3, JobStarted(attempt=1, worker="w", lease_expires_at="L"), job_id=1),
            rec(4, JobCompleted(attempt=1), job_id=1),
        ],
    )
    assert {i: r["status"] for i, r in effect.rows.items()} == {1: "completed", 2: "pending"}
    assert effect.counter_deltas == Counter({("q", "t", "completed"): 1, ("q", "t", "pending"): 1})


def test_a_batch_keeps_negative_counter_deltas() -> None:
    pending = job_status.apply(None, rec(1, ENQUEUED))
    effect = runner.apply_batch(
        {1: pending}, [rec(2, JobStarted(attempt=1, worker="w", lease_expires_at="L"))]
    )
    assert effect.counter_deltas == Counter(
        {("q", "t", "pending"): -1, ("q", "t", "in_progress"): 1}
    )


def test_rebuild_folds_each_job_from_its_own_events() -> None:
    events = [
        rec(1, ENQUEUED, job_id=1),
        rec(3, JobStarted(attempt=1, worker="w", lease_expires_at="L"), job_id=1),
        rec(2, ENQUEUED, job_id=2),
    ]
    rows = list(runner.rebuild_rows(events))
    assert [(r["id"], r["status"]) for r in rows] == [(1, "in_progress"), (2, "pending")]


def test_history_shows_each_event_with_the_time_since_the_previous_and_its_facts() -> None:
    entries = history.timeline(
        [
            rec(1, ENQUEUED, at="2026-01-01T00:00:00.000000Z"),
            rec(
                2,
                JobStarted(attempt=1, worker="w", lease_expires_at="L"),
                at="2026-01-01T00:00:01.500000Z",
            ),
            rec(
                3,
                JobAttemptFailed(attempt=1, error_type="E", message="m", traceback="tb"),
                at="2026-01-01T00:00:02.000000Z",
            ),
        ]
    )
    assert [e.type for e in entries] == ["enqueued", "started", "attempt_failed"]
    assert [e.since_previous for e in entries] == [None, 1.5, 0.5]
    assert entries[1].facts["worker"] == "w"
    assert entries[2].facts["error"] == "E: m"
    assert entries[0].trace == "00-abc-def-01"


def test_each_fold_step_takes_exactly_its_event_classes_fields() -> None:
    import inspect

    import attrs

    from conductor.domain.events import EVENT_CLASSES, JOB_EVENT_TYPES

    steps = {**job_status._STEPS, JobEnqueued.TYPE: job_status._new_row}
    assert set(steps) == set(JOB_EVENT_TYPES)
    for event_type, step in steps.items():
        keyword_only = {
            name
            for name, parameter in inspect.signature(step).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        }
        assert keyword_only == {f.name for f in attrs.fields(EVENT_CLASSES[event_type])}, event_type


def test_a_rescue_uses_a_retry_but_a_release_does_not() -> None:
    started = [rec(1, ENQUEUED), rec(2, JobStarted(attempt=1, worker="w", lease_expires_at="L"))]
    rescued = job_status.fold([*started, rec(3, JobRescued(attempt=1, reason="lost"))])
    released = job_status.fold([*started, rec(3, JobReleased(attempt=1, reason="shutdown"))])
    assert rescued is not None
    assert released is not None
    assert (rescued["retries"], released["retries"]) == (1, 0)
    assert rescued["status"] == released["status"] == "pending"


def test_the_fold_refuses_an_outcome_for_a_stale_attempt() -> None:
    row = job_status.fold(
        [
            rec(1, ENQUEUED),
            rec(2, JobStarted(attempt=1, worker="w", lease_expires_at="L")),
            rec(3, JobRescued(attempt=1, reason="lost")),
            rec(4, JobStarted(attempt=2, worker="w", lease_expires_at="L")),
        ]
    )
    with pytest.raises(InvalidTransition, match="attempt 1 is stale"):
        job_status.apply(row, rec(5, JobCompleted(attempt=1)))
    pending_again = job_status.apply(row, rec(5, JobRescued(attempt=2, reason="lost")))
    with pytest.raises(InvalidTransition, match="attempt 2 is stale"):
        job_status.apply(
            pending_again, rec(6, JobStarted(attempt=2, worker="w", lease_expires_at="L"))
        )
    ignored = job_status.apply(
        row, rec(5, JobResultIgnored(attempt=1, outcome="completed", reason="stale"))
    )
    assert (ignored["status"], ignored["attempts"]) == ("in_progress", 2)
