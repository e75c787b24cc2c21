"""Applies the projections: to a batch on the append path, and to the whole log on rebuild.

Both paths use the same folds, so "rebuild equals incremental application" holds by
construction and is checked by a property test. The runner is pure; the ledger backend
loads the rows it needs, calls in here, and writes what comes back in its transaction.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

import attrs

from conductor.errors import InvalidTransition
from conductor.events import RecordedEvent, decode_event
from projections import counters, job_status
from projections.counters import Bucket
from projections.job_status import JobRow

StoredEvent = tuple[int, int, str, int, str, str, str | None]
"""(job_id, seq, type, version, at, data, trace): the stored columns a fold reads."""


@attrs.frozen(kw_only=True)
class BatchEffect:
    """What one append changes in the read models."""

    rows: dict[int, JobRow]
    """The final row of every job the batch touched."""
    counter_deltas: Counter[Bucket]
    """How each (queue, task, status) count moves; zero entries are dropped."""


def apply_batch(current: Mapping[int, JobRow], events: Sequence[RecordedEvent]) -> BatchEffect:
    """Fold `events` (seq order) over the current rows of the jobs they touch.

    Jobs absent from `current` are new. Raises `InvalidTransition` on an illegal event,
    before anything is written.
    """
    rows: dict[int, JobRow] = {}
    deltas: Counter[Bucket] = Counter()
    last_type: dict[int, str] = {}
    for rec in events:
        job_id = rec.job_id
        before = rows.get(job_id) or current.get(job_id)
        after = job_status.apply(before, rec)
        counters.accumulate(deltas, before, after)
        rows[job_id] = after
        last_type[job_id] = rec.type
    for job_id, event_type in last_type.items():
        if event_type == "attempt_failed":
            # states.py: an attempt failure is always followed, in the same append, by the
            # decision (retry_scheduled or failed); alone it would leave the job stranded.
            raise InvalidTransition(
                job_id,
                "in_progress",
                "attempt_failed without retry_scheduled or failed after it",
                expected="it appended together with its retry_scheduled or failed",
            )
    return BatchEffect(rows=rows, counter_deltas=Counter({k: n for k, n in deltas.items() if n}))


def rebuild_rows(events_by_job: Iterable[RecordedEvent]) -> Iterator[JobRow]:
    """Rows folded from the whole log, given its events ordered by (job_id, seq).

    Streaming by job keeps memory to one job's events, so a replay of millions of events
    runs in constant space.
    """
    for _, events in itertools.groupby(events_by_job, key=lambda rec: rec.job_id):
        row = job_status.fold(events)
        if row is not None:
            yield row


def rebuild_rows_stored(stored: Iterable[StoredEvent]) -> Iterator[JobRow]:
    """`rebuild_rows` over stored columns, as a replay reads them: the same rows, faster.

    Equal by construction. `rebuild_rows` folds each job's group of `RecordedEvent`s with
    `job_status.fold`, i.e. `apply` event by event, and `apply` is `job_status.advance` on
    a copy of the row. Here each job's events go through the same `advance`, with the
    same arguments `apply` would pass it (`decode_event` of the stored columns, as the
    ledger's `_recorded` does, and the envelope fields), into one dict that nothing else
    can see, so skipping the copies changes nothing. What it saves is building a
    `RecordedEvent` (and hashing nothing: the hash is not part of any row) and a copy of
    the row per event.
    """
    advance = job_status.advance
    row: JobRow | None = None
    current: int | None = None
    for job_id, seq, event_type, version, at, data, trace in stored:
        if job_id != current:
            if row is not None:
                yield row
            row = None
            current = job_id
        row = advance(row, job_id, seq, at, trace, decode_event(event_type, version, data))
    if row is not None:
        yield row
