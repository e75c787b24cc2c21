"""Text is stored byte for byte on every backend, whatever characters it holds.

PostgreSQL's writes carry rows as JSON text (conductor/ledger/postgres/bulk.py): escapes,
quotes, backslashes, control characters and characters beyond ASCII must come back as
written, in the events (whose hashes are over that text) and in the read models."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conductor.domain import decisions as decide
from conductor.domain.events import JobAttemptFailed, JobFailed, JobRunStarted, NewEvent
from conductor.domain.payloads import parse_payload
from conductor.ledger.base import EventFilter, JobFilter, Ledger

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
"""Any text PostgreSQL's `text` can hold: no NUL, no lone surrogate (not UTF-8)."""


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argument=TEXT, message=TEXT)
def test_any_text_in_a_payload_and_an_error_reads_back_as_written_and_verifies(
    ledger: Ledger, argument: str, message: str
) -> None:
    payload = parse_payload({"task": "t", "args": [argument, "\\u0041"]}, 1 << 20)
    event = decide.enqueue(payload, queue="default", priority=1, max_retries=2, run_at=None, now=T0)
    [enqueued] = ledger.append([event])
    job_id = enqueued.job_id
    [claimed] = ledger.claim(worker="w", queues=["default"], limit=1, now=T0, lease=LEASE)
    assert claimed.id == job_id
    assert claimed.payload == event.event.payload
    at = claimed.run_at
    attempt = claimed.attempt
    appended = ledger.append(
        [
            NewEvent(job_id=job_id, at=at, event=JobRunStarted(attempt=attempt)),
            NewEvent(
                job_id=job_id,
                at=at,
                event=JobAttemptFailed(
                    attempt=attempt, error_type="E", message=message, traceback=message
                ),
            ),
            NewEvent(job_id=job_id, at=at, event=JobFailed(attempt=attempt, reason=message)),
        ]
    )
    stored = ledger.read(EventFilter(after_seq=enqueued.seq - 1))
    assert stored[0] == enqueued
    assert stored[-len(appended) :] == appended
    [row] = [row for row in ledger.jobs(JobFilter()) if row["id"] == job_id]
    assert row["payload"] == event.event.payload
    assert row["last_error"] is not None
    assert message in row["last_error"]
    assert ledger.verify_chain().ok
    assert ledger.diff_projections() == []
