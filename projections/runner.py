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

from conductor.events import RecordedEvent
from projections import counters, job_status
from projections.counters import Bucket
from projections.job_status import JobRow


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
    for rec in events:
        job_id = rec.job_id
        before = rows.get(job_id) or current.get(job_id)
        after = job_status.apply(before, rec)
        counters.accumulate(deltas, before, after)
        rows[job_id] = after
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
