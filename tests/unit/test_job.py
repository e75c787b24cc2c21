from __future__ import annotations

import datetime as dt
import json

import pytest

from conductor.domain import decisions as job
from conductor.domain import payloads
from conductor.domain.clock import stamp
from conductor.domain.errors import InvalidInput, InvalidTransition
from conductor.domain.events import (
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobEnqueued,
    JobRequeued,
    JobResultIgnored,
    JobRunStarted,
)
from conductor.domain.job_row import JobRow

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
CAP = 1024 * 1024


def row(status: str, attempts: int = 0) -> JobRow:
    return {
        "id": 5,
        "task": "t",
        "queue": "default",
        "priority": 1,
        "status": status,
        "attempts": attempts,
        "retries": 0,
        "max_retries": 3,
        "run_at": stamp(NOW),
        "payload": '{"task":"t"}',
        "last_error": None,
        "worker": None,
        "lease_expires_at": None,
        "created_at": stamp(NOW),
        "updated_at": stamp(NOW),
        "trace": None,
        "last_seq": 1,
    }


def test_payloads_are_normalised_to_canonical_json() -> None:
    parsed = payloads.parse_payload('{ "task": "send_email", "email": "test@example.com" }', CAP)
    assert parsed.task == "send_email"
    assert parsed.text == '{"email":"test@example.com","task":"send_email"}'


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "invalid payload JSON"),
        ("[1, 2]", "got a JSON list"),
        ('"text"', "got a JSON str"),
        ('{"email": "a@b"}', 'no "task" string'),
        ('{"task": 5}', 'no "task" string'),
        ('{"task": ""}', '"task" name "" is empty'),
        ('{"task": "a", "task": "b"}', 'key "task" appears more than once'),
        ('{"task": "a", "o": {"k": 1, "k": 1}}', 'key "k" appears more than once'),
        ('{"task": "t", "n": ' + "9" * 5001 + "}", "more than 4300 digits"),
        ('{"task": "t", "x": NaN}', "NaN is not JSON"),
        ('{"task": "t", "x": Infinity}', "Infinity is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
        (b'{"task": "\xff"}', "not UTF-8"),
    ],
)
def test_bad_payloads_are_refused_naming_what_is_expected(raw: str | bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput, match="expected") as caught:
        payloads.parse_payload(raw, CAP)
    assert fragment in str(caught.value)


def test_a_dict_payload_with_a_5001_digit_integer_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidInput, match="more than 4300 digits; expected") as caught:
        payloads.parse_payload({"task": "t", "n": 10**5000}, CAP)
    assert "\n" not in str(caught.value)


def test_payloads_over_the_cap_are_refused() -> None:
    big = json.dumps({"task": "t", "blob": "x" * 2000})
    with pytest.raises(InvalidInput, match="limit"):
        payloads.parse_payload(big, 1000)


def test_a_payload_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidInput):
        payloads.parse_payload('{"task": "t", "x": "\\ud800"}', CAP)


def test_enqueue_makes_a_job_due_now_unless_scheduled_later() -> None:
    payload = payloads.parse_payload('{"task": "t"}', CAP)
    now_event = job.enqueue(payload, queue="q", priority=0, max_retries=1, run_at=None, now=NOW)
    assert isinstance(now_event.event, JobEnqueued)
    assert now_event.event.run_at == now_event.at == stamp(NOW)
    later = NOW + dt.timedelta(minutes=5)
    scheduled = job.enqueue(payload, queue="q", priority=0, max_retries=1, run_at=later, now=NOW)
    assert scheduled.event.run_at == stamp(later)  # type: ignore[union-attr]
    past = job.enqueue(
        payload, queue="q", priority=0, max_retries=1, run_at=NOW - dt.timedelta(1), now=NOW
    )
    assert past.event.run_at == stamp(NOW)  # type: ignore[union-attr]


def test_enqueue_refuses_bad_queue_names_and_retry_counts() -> None:
    payload = payloads.parse_payload('{"task": "t"}', CAP)
    with pytest.raises(InvalidInput, match="queue"):
        job.enqueue(payload, queue="a b", priority=0, max_retries=1, run_at=None, now=NOW)
    with pytest.raises(InvalidInput, match="max retries"):
        job.enqueue(payload, queue="q", priority=0, max_retries=-1, run_at=None, now=NOW)


def test_start_numbers_the_next_attempt_and_sets_the_lease() -> None:
    new = job.start(row("pending", attempts=2), worker="w", now=NOW, lease=dt.timedelta(seconds=30))
    assert new.event == JobClaimed(
        attempt=3, worker="w", lease_expires_at=stamp(NOW + dt.timedelta(seconds=30))
    )


def test_cancel_and_requeue_follow_the_transition_table() -> None:
    assert isinstance(
        job.cancel(
            row("pending"), by="op", reason="r", batch="20261207-100000-abcdef", now=NOW
        ).event,
        JobCancelled,
    )
    assert isinstance(
        job.cancel(
            row("in_progress"), by="op", reason="r", batch="20261207-100000-abcdef", now=NOW
        ).event,
        JobCancelled,
    )
    with pytest.raises(InvalidTransition):
        job.cancel(row("completed"), by="op", reason="r", batch="20261207-100000-abcdef", now=NOW)
    requeued = job.requeue(
        row("failed"), by="op", reason="r", batch="20261207-100000-abcdef", now=NOW
    )
    assert requeued.event == JobRequeued(
        by="op", run_at=stamp(NOW), reason="r", batch="20261207-100000-abcdef"
    )
    with pytest.raises(InvalidTransition):
        job.requeue(row("pending"), by="op", reason="r", batch="20261207-100000-abcdef", now=NOW)


def test_an_interrupted_handler_of_a_given_back_attempt_is_recorded_as_interrupted() -> None:
    released = row("pending", attempts=1)
    events = job.settle(released, job.Outcome(job_id=5, attempt=1, interrupted=True), now=NOW)
    assert [e.event for e in events] == [
        JobResultIgnored(attempt=1, outcome="interrupted", reason="the job is pending")
    ]
    finished = job.settle(released, job.Outcome(job_id=5, attempt=1), now=NOW)
    assert finished[0].event.outcome == "completed"  # type: ignore[union-attr]


def test_a_handler_told_of_its_cancellation_counts_as_interrupted() -> None:
    from conductor.domain.context import JobContext

    context = JobContext(job_id=5, attempt=1, task="t", queue="default")
    assert context.sleep(0) is False
    assert not context.interrupted
    context.cancel_event.set()
    assert not context.interrupted  # set, but not yet seen by the handler
    assert context.sleep(20) is True
    assert context.interrupted


def test_run_started_is_recorded_only_for_the_claimed_attempt_that_still_holds_the_job() -> None:
    began = NOW - dt.timedelta(seconds=3)
    [event] = job.run_started(row("claimed", attempts=2), 2, at=began)
    assert (event.event, event.at) == (JobRunStarted(attempt=2), stamp(began))
    assert job.run_started(row("claimed", attempts=3), 2, at=began) == []  # superseded
    assert job.run_started(row("cancelled", attempts=2), 2, at=began) == []
    assert job.run_started(row("pending", attempts=2), 2, at=began) == []  # released
    assert job.run_started(row("in_progress", attempts=2), 2, at=began) == []  # already


def test_an_outcome_for_a_claimed_attempt_records_its_start_first_its_duration_ago() -> None:
    outcome = job.Outcome(job_id=5, attempt=1, duration=2.5)
    events = job.settle(row("claimed", attempts=1), outcome, now=NOW)
    assert [e.event for e in events] == [JobRunStarted(attempt=1), JobCompleted(attempt=1)]
    assert events[0].at == stamp(NOW - dt.timedelta(seconds=2.5))
