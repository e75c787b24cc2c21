"""Properties that hold for every sequence of operations on a real ledger file (jobs'
events interleaved with the operations stream's):
rebuilt projections equal the live ones, the chain verifies, each job's row is the fold of
its own events, counters agree with the rows, and refused operations change nothing."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conductor import Conductor, ManualClock
from conductor.domain.clock import stamp
from conductor.domain.config import Settings
from conductor.domain.control_events import (
    OPERATIONS,
    QueueLimitCleared,
    QueueLimitSet,
    QueuePaused,
    QueueRateSpent,
    QueueResumed,
)
from conductor.domain.errors import ControlRefused, InvalidTransition, UnknownJob
from conductor.domain.events import (
    Event,
    JobAttemptFailed,
    JobCompleted,
    JobFailed,
    JobRescued,
    JobRetryScheduled,
    JobRunStarted,
    NewEvent,
)
from conductor.domain.unique import ACTIVE_STATUSES
from conductor.ledger.base import JobFilter
from projections import counters, job_status

LEASE = dt.timedelta(seconds=30)

operation = st.one_of(
    st.tuples(
        st.just("enqueue"),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["q1", "q2"]),
        st.sampled_from(["high", "medium", "low"]),
        st.integers(0, 2),
        st.integers(0, 3),
    ),
    st.tuples(
        st.just("unique"),
        st.sampled_from(["k1", "k2"]),
        st.sampled_from([None, 30, 90]),
        st.integers(1, 3),
    ),
    st.tuples(
        st.just("claim"), st.integers(1, 4), st.sampled_from([("q1",), ("q2",), ("q1", "q2")])
    ),
    st.tuples(st.just("begin"), st.integers(1, 12)),
    st.tuples(st.just("complete"), st.integers(1, 12)),
    st.tuples(st.just("fail"), st.integers(1, 12)),
    st.tuples(st.just("cancel"), st.integers(1, 12)),
    st.tuples(st.just("retry"), st.integers(1, 12)),
    st.tuples(st.just("rescue"), st.integers(1, 12)),
    st.tuples(st.just("tick"), st.integers(1, 120)),
    st.tuples(st.just("pause"), st.sampled_from(["q1", "q2"])),
    st.tuples(st.just("resume"), st.sampled_from(["q1", "q2"])),
    st.tuples(
        st.just("limit"), st.sampled_from(["q1", "q2"]), st.sampled_from(["concurrency", "rate"])
    ),
    st.tuples(st.just("unlimit"), st.sampled_from(["q1", "q2"]), st.just("concurrency")),
    st.tuples(st.just("spend"), st.sampled_from(["q1", "q2"]), st.integers(1, 3)),
)


def control(op: tuple[object, ...]) -> Event:
    kind, queue = op[0], str(op[1])
    if kind == "pause":
        return QueuePaused(queue=queue, by="p", reason="")
    if kind == "resume":
        return QueueResumed(queue=queue, by="p", reason="")
    if kind == "limit":
        per = None if op[2] == "concurrency" else "minute"
        return QueueLimitSet(queue=queue, by="p", reason="", limit=str(op[2]), value=4, per=per)
    if kind == "unlimit":
        return QueueLimitCleared(queue=queue, by="p", reason="", limit=str(op[2]))
    return QueueRateSpent(queue=queue, by="w", claims=int(op[2]))  # type: ignore[call-overload]


def snapshot(app: Conductor) -> tuple[object, ...]:
    return (
        app.ledger.last_seq(),
        app.ledger.jobs(JobFilter()),
        app.ledger.counts(),
        app.ledger.controls("queue"),
    )


def run(app: Conductor, clock: ManualClock, op: tuple[object, ...]) -> None:
    kind = op[0]
    now = clock.now()
    if kind == "enqueue":
        _, task, queue, priority, retries, delay = op
        app.enqueue(
            {"task": task},
            queue=str(queue),
            priority=str(priority),
            max_retries=int(retries),  # type: ignore[call-overload]
            delay=dt.timedelta(seconds=int(delay)),
        )  # type: ignore[call-overload]
    elif kind == "unique":
        _, key, period, count = op
        enqueue_unique(app, now, str(key), period, int(count))  # type: ignore[arg-type,call-overload]
    elif kind == "claim":
        _, limit, queues = op
        app.ledger.claim(
            worker="w",
            queues=list(queues),
            limit=int(limit),  # type: ignore[call-overload]
            now=now,
            lease=LEASE,
        )
    elif kind == "tick":
        clock.advance(int(op[1]))  # type: ignore[call-overload]
    elif kind in ("pause", "resume", "limit", "unlimit", "spend"):
        before = snapshot(app)
        try:
            app.ledger.append([NewEvent(job_id=OPERATIONS, at=stamp(now), event=control(op))])
        except ControlRefused:
            assert snapshot(app) == before
    else:
        job_id = int(op[1])  # type: ignore[call-overload]
        row = app.ledger.job(job_id)
        before = snapshot(app)
        try:
            if kind == "cancel":
                app.cancel(job_id)
            elif kind == "retry":
                app.retry(job_id)
            else:
                attempt = row["attempts"] if row else 1
                app.ledger.append(outcome(kind, job_id, attempt, row, now))
        except (InvalidTransition, UnknownJob):
            assert snapshot(app) == before


def enqueue_unique(
    app: Conductor, now: dt.datetime, key: str, period: int | None, count: int
) -> None:
    """`count` jobs with one key in one batch: the first is a new job unless a job holding
    the key blocks it (the model: unfinished, or with `period` enqueued since now - period),
    and every other is a duplicate of the first's answer; a duplicate appends nothing."""
    rows = [row for row in app.ledger.jobs(JobFilter()) if row["unique_key"] == key]
    if period is None:
        holders = [row for row in rows if row["status"] in ACTIVE_STATUSES]
    else:
        since = stamp(now - dt.timedelta(seconds=period))
        holders = [row for row in rows if row["created_at"] >= since]
    before = app.ledger.last_seq()
    done = app.enqueue_each(
        [{"task": "a"}] * count,
        unique_key=key,
        unique_for=None if period is None else dt.timedelta(seconds=period),
    )
    assert len({one.id for one in done}) == 1
    assert [one.duplicate for one in done[1:]] == [True] * (count - 1)
    if holders:
        assert done[0].duplicate
        assert done[0].id in {row["id"] for row in holders}
        assert app.ledger.last_seq() == before
    else:
        assert not done[0].duplicate
        assert app.ledger.last_seq() == before + 1
        row = app.ledger.job(done[0].id)
        assert row is not None
        assert (row["unique_key"], row["unique_for"]) == (key, period)


def outcome(
    kind: object, job_id: int, attempt: int, row: object, now: dt.datetime
) -> list[NewEvent]:
    at = stamp(now)
    if kind == "begin":  # a slot begins the claimed attempt's handler
        return [NewEvent(job_id=job_id, at=at, event=JobRunStarted(attempt=attempt))]
    if kind == "complete":
        return [NewEvent(job_id=job_id, at=at, event=JobCompleted(attempt=attempt))]
    if kind == "rescue":
        return [
            NewEvent(
                job_id=job_id, at=at, event=JobRescued(attempt=attempt, reason="lease expired")
            )
        ]
    failed = NewEvent(
        job_id=job_id,
        at=at,
        event=JobAttemptFailed(
            attempt=attempt, error_type="ValueError", message="boom", traceback="tb"
        ),
    )
    retries_left = bool(row) and row["retries"] < row["max_retries"]  # type: ignore[index]
    then = (
        JobRetryScheduled(attempt=attempt, run_at=stamp(now + dt.timedelta(seconds=2**attempt)))
        if retries_left
        else JobFailed(attempt=attempt, reason="ValueError: boom")
    )
    return [failed, NewEvent(job_id=job_id, at=at, event=then)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=40))
def test_rebuild_equals_live_and_every_row_is_the_fold_of_its_events(
    operations: list[tuple[object, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        clock = ManualClock()
        with Conductor(settings=Settings(db=str(Path(folder) / "p.db")), clock=clock) as app:
            for op in operations:
                run(app, clock, op)
            rows = app.ledger.jobs(JobFilter())
            for row in rows:
                assert job_status.fold(app.ledger.history(row["id"])) == row
            expected = Counter({k: n for k, n in counters.from_rows(rows).items() if n})
            assert Counter({(q, t, s): n for q, t, s, n in app.ledger.counts()}) == expected
            assert app.verify_projections() == []
            assert app.audit().ok
            live = (rows, app.ledger.counts(), app.ledger.controls("queue"))
            app.replay()
            rebuilt = (app.ledger.jobs(JobFilter()), app.ledger.counts())
            assert (*rebuilt, app.ledger.controls("queue")) == live
