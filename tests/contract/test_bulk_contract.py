"""The ledger's part of bulk operator actions, against every backend: `select` (the
snapshot of a filtered action) and `read` by batch (the audit trail read back)."""

from __future__ import annotations

import datetime as dt

from conductor.domain.bulk import Selection
from conductor.domain.clock import stamp
from conductor.domain.events import JobCancelled, JobRequeued, NewEvent
from conductor.ledger.base import EventFilter, Ledger
from tests.bulk_jobs import SETUP_BATCH, make_jobs

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def ids(ledger: Ledger, where: Selection, *, after: int = 0, limit: int = 100) -> list[int]:
    return [row["id"] for row in ledger.select(where, after=after, limit=limit)]


def test_select_chooses_by_any_of_each_filters_values_and_all_filters_together(
    ledger: Ledger,
) -> None:
    make_jobs(
        ledger,
        [
            ("a", "q1", "failed", hours(0)),  # 1
            ("b", "q1", "failed", hours(1)),  # 2
            ("a", "q2", "cancelled", hours(2)),  # 3
            ("a", "q2", "completed", hours(3)),  # 4
            ("c", "q1", "pending", hours(4)),  # 5
            ("a", "q1", "in_progress", hours(5)),  # 6
        ],
    )
    assert ids(ledger, Selection(statuses=("failed",))) == [1, 2]
    assert ids(ledger, Selection(statuses=("failed", "cancelled"))) == [1, 2, 3]
    assert ids(ledger, Selection(tasks=("a",), queues=("q1",))) == [1, 6]
    assert ids(ledger, Selection(tasks=("b", "c"))) == [2, 5]
    assert ids(ledger, Selection(since=stamp(hours(1)))) == [2, 3, 4, 5, 6]
    assert ids(ledger, Selection(until=stamp(hours(1)))) == [1]
    assert ids(ledger, Selection(since=stamp(hours(1)), until=stamp(hours(4)))) == [2, 3, 4]
    assert ids(ledger, Selection(statuses=("failed",), tasks=("a",), queues=("q2",))) == []


def test_select_pages_by_id_however_far_in_the_page_is(ledger: Ledger) -> None:
    make_jobs(ledger, [("a", "q", "failed" if n % 3 else "pending", hours(0)) for n in range(20)])
    where = Selection(statuses=("failed",))
    everything = ids(ledger, where)
    pages, after = [], 0
    while page := ids(ledger, where, after=after, limit=4):
        pages.append(page)
        after = page[-1]
    assert [job_id for page in pages for job_id in page] == everything
    assert [len(page) for page in pages] == [4, 4, 4, 1]
    assert len(everything) == 13


def test_read_by_batch_finds_exactly_that_actions_events(ledger: Ledger) -> None:
    jobs = make_jobs(ledger, [("a", "q", "pending", hours(0))] * 4)
    mine, other = "20261128-120000-abc123", "20261128-120000-abc124"
    at = stamp(hours(1))
    ledger.append(
        [
            NewEvent(job_id=jobs[0], at=at, event=JobCancelled(by="alice", reason="x", batch=mine)),
            NewEvent(job_id=jobs[1], at=at, event=JobCancelled(by="bob", reason="y", batch=other)),
            # A reason quoting the batch id is not the batch.
            NewEvent(
                job_id=jobs[2],
                at=at,
                event=JobCancelled(by="eve", reason=f'"batch":"{mine}"', batch=other),
            ),
        ]
    )
    ledger.append(
        [
            NewEvent(
                job_id=jobs[0],
                at=at,
                event=JobRequeued(by="alice", run_at=at, reason="again", batch=mine),
            )
        ]
    )
    found = ledger.read(EventFilter(batch=mine))
    assert [(rec.job_id, rec.type) for rec in found] == [
        (jobs[0], "cancelled"),
        (jobs[0], "requeued"),
    ]
    assert [rec.job_id for rec in ledger.read(EventFilter(batch=other))] == [jobs[1], jobs[2]]
    assert ledger.read(EventFilter(batch=SETUP_BATCH)) == []
    assert ledger.read(EventFilter(batch=mine), limit=1)[0].type == "requeued"


def _old_log(ledger: Ledger) -> None:
    """A log as conductor wrote it before batches: version 1 `cancelled` and `requeued`."""
    from conductor.domain.events import JobEnqueued
    from conductor.ledger import chain

    enqueued = JobEnqueued(
        task="a", queue="q", priority=1, max_retries=3, run_at=stamp(T0), payload='{"task":"a"}'
    ).encode()
    rows = [
        ("enqueued", 1, enqueued),
        ("cancelled", 1, '{"by":"operator","reason":"cancelled"}'),
        ("requeued", 1, f'{{"by":"operator","run_at":"{stamp(hours(1))}"}}'),
    ]
    stored, prev = [], chain.GENESIS
    for seq, (event_type, version, data) in enumerate(rows, start=1):
        at = stamp(hours(seq - 1))
        digest = chain.event_hash(prev, seq, 1, event_type, version, at, data, None)
        stored.append((seq, 1, event_type, version, at, data, None, prev, digest))
        prev = digest
    ledger.import_events(stored)
    ledger.rebuild_projections()


def test_version_1_cancels_and_requeues_are_read_in_the_current_shape_and_still_verify(
    ledger: Ledger,
) -> None:
    _old_log(ledger)
    history = ledger.history(1)
    assert [rec.event for rec in history[1:]] == [
        JobCancelled(by="operator", reason="cancelled", batch=None),
        JobRequeued(by="operator", run_at=stamp(hours(1)), reason="requeued", batch=None),
    ]
    assert ledger.verify_chain().ok
    assert ledger.diff_projections() == []
    row = ledger.job(1)
    assert row is not None
    assert (row["status"], row["run_at"]) == ("pending", stamp(hours(1)))
    # New events go on as version 2 after the old ones; the whole log still replays.
    batch = "20261128-150000-0a0b0c"
    ledger.append(
        [
            NewEvent(
                job_id=1, at=stamp(hours(3)), event=JobCancelled(by="b", reason="r", batch=batch)
            )
        ]
    )
    assert [rec.seq for rec in ledger.read(EventFilter(batch=batch))] == [4]
    assert ledger.verify_chain().ok
    assert ledger.diff_projections() == []
