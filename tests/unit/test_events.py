from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor.domain import control_events, events, schedule_events, upcasters
from conductor.domain.errors import UnreadableEvent
from conductor.domain.events import (
    EVENT_CLASSES,
    JobAttemptFailed,
    JobEnqueued,
    JobStarted,
    decode_event,
)

DEFINITION = {
    "expression": "0 3 * * *",
    "zone": "Europe/Paris",
    "payload": '{"task":"t"}',
    "task": "t",
    "queue": "q",
    "priority": 1,
    "max_retries": 3,
    "missed": "latest",
    "catch_up_max": 10,
}
SAMPLES = [
    JobEnqueued(task="t", queue="q", priority=0, max_retries=3, run_at="r", payload='{"task":"t"}'),
    JobStarted(attempt=1, worker="h:1:w", lease_expires_at="x"),
    events.JobClaimed(attempt=1, worker="h:1:w", lease_expires_at="x"),
    events.JobRunStarted(attempt=1),
    events.JobCompleted(attempt=2),
    JobAttemptFailed(attempt=1, error_type="ValueError", message="m", traceback="tb\nline"),
    events.JobRetryScheduled(attempt=1, run_at="r"),
    events.JobFailed(attempt=3, reason="exhausted"),
    events.JobCancelled(by="operator", reason="r", batch="20261207-100000-abcdef"),
    events.JobRequeued(by="operator", run_at="r", reason="r", batch="20261207-100000-abcdef"),
    events.JobRescued(attempt=1, reason="lease expired"),
    events.JobLeaseExtended(attempt=1, lease_expires_at="x"),
    events.JobReleased(attempt=1, reason="worker shutting down"),
    events.JobResultIgnored(attempt=1, outcome="completed", reason="job was rescued"),
    control_events.QueuePaused(queue="q", by="alice", reason="incident 42"),
    control_events.QueueResumed(queue="q", by="alice", reason=""),
    control_events.QueueLimitSet(
        queue="q", by="bob", reason="", limit="rate", value=100, per="minute"
    ),
    control_events.QueueLimitCleared(queue="q", by="bob", reason="", limit="concurrency"),
    control_events.QueueRateSpent(queue="q", by="h:1:w", claims=3),
    *(
        cls(schedule="nightly", by="alice", **DEFINITION)
        for cls in (schedule_events.ScheduleAdded, schedule_events.ScheduleChanged)
    ),
    schedule_events.SchedulePaused(schedule="nightly", by="alice", reason="upgrade"),
    schedule_events.ScheduleResumed(schedule="nightly", by="alice", reason=""),
    schedule_events.ScheduleRemoved(schedule="nightly", by="code", reason=""),
    schedule_events.ScheduleFired(
        schedule="nightly",
        by="h:1:w",
        slot="2026-03-29T01:00:00.000000Z",
        revision=3,
        missed="all",
        late=True,
        skipped=2,
    ),
]


def test_the_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(EVENT_CLASSES.values())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_every_event_round_trips_through_its_stored_data(event: events.Event) -> None:
    data = event.encode()
    assert decode_event(event.TYPE, event.VERSION, data) == event
    assert isinstance(json.loads(data), dict)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_events_are_frozen(event: events.Event) -> None:
    with pytest.raises(AttributeError):
        event.TYPE_ = 1  # type: ignore[union-attr]


def test_the_stored_type_names_are_the_ones_users_filter_on() -> None:
    assert set(EVENT_CLASSES) == {
        "enqueued",
        "started",
        "claimed",
        "run_started",
        "completed",
        "attempt_failed",
        "retry_scheduled",
        "failed",
        "cancelled",
        "requeued",
        "rescued",
        "lease_extended",
        "released",
        "result_ignored",
        "queue_paused",
        "queue_resumed",
        "queue_limit_set",
        "queue_limit_cleared",
        "queue_rate_spent",
        "schedule_added",
        "schedule_changed",
        "schedule_paused",
        "schedule_resumed",
        "schedule_removed",
        "schedule_fired",
    }


def test_job_event_types_are_every_type_but_the_operations_streams() -> None:
    assert set(events.JOB_EVENT_TYPES) == set(EVENT_CLASSES) - {
        cls.TYPE
        for cls in (
            *control_events.CONTROL_EVENT_CLASSES,
            *schedule_events.SCHEDULE_EVENT_CLASSES,
        )
    }


payload_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    task=st.text(min_size=1),
    queue=st.text(min_size=1),
    extra=st.dictionaries(st.text(max_size=8), payload_values, max_size=4),
    key=st.none() | st.text(min_size=1),
    period=st.none() | st.integers(min_value=1, max_value=10**9),
)
def test_an_enqueued_payload_survives_the_splice_whatever_its_strings_hold(
    task: str, queue: str, extra: dict[str, object], key: str | None, period: int | None
) -> None:
    payload = json.dumps({**extra, "task": task, "evil": ',"payload":{'}, sort_keys=True)
    event = JobEnqueued(
        task=task,
        queue=queue,
        priority=1,
        max_retries=0,
        run_at="r",
        payload=payload,
        unique_key=key,
        unique_for=period,
    )
    data = event.encode()
    assert json.loads(data)["payload"] == json.loads(payload)
    assert json.loads(data).get("unique_key") == key
    assert decode_event("enqueued", JobEnqueued.VERSION, data) == event


def test_an_enqueued_event_of_version_1_reads_as_a_job_without_a_unique_key() -> None:
    stored = (
        '{"max_retries":3,"priority":1,"queue":"default","run_at":"2026-11-28T09:30:00.000000Z",'
        '"task":"send_email","payload":{"email":"a@b.c","task":"send_email"}}'
    )
    event = decode_event("enqueued", 1, stored)
    assert event == JobEnqueued(
        task="send_email",
        queue="default",
        priority=1,
        max_retries=3,
        run_at="2026-11-28T09:30:00.000000Z",
        payload='{"email":"a@b.c","task":"send_email"}',
        unique_key=None,
        unique_for=None,
    )
    # A job without a key is stored as version 1 stored it: only the version differs.
    assert event.encode() == stored


def test_an_enqueued_event_without_a_key_stores_no_unique_fields() -> None:
    event = JobEnqueued(
        task="t", queue="q", priority=0, max_retries=0, run_at="r", payload='{"task":"t"}'
    )
    assert "unique" not in event.encode()


def test_older_versions_are_upcast_on_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events.JobCompleted, "VERSION", 2)
    monkeypatch.setitem(upcasters.UPCASTERS, ("completed", 1), lambda d: {"attempt": d["n"]})
    assert decode_event("completed", 1, '{"n": 4}') == events.JobCompleted(attempt=4)


def test_a_newer_stored_version_is_refused_rather_than_misread() -> None:
    with pytest.raises(UnreadableEvent, match="newer"):
        decode_event("completed", 99, '{"attempt": 1}')
    with pytest.raises(UnreadableEvent, match="unknown"):
        decode_event("teleported", 1, "{}")
