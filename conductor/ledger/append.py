"""What every backend does to append: number, chain and fold a batch of events.

The SQL of storing the result differs per backend (placeholders, how job ids are handed
out, bulk-write APIs); the numbering, hashing and folding must not, or the two backends
would disagree about what a ledger is. A backend calls `number` with the head of its log,
folds the result with `projections.runner.apply_batch`, and stores what `row_writes`
splits into inserts and updates, all in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conductor.domain.control_events import OPERATIONS
from conductor.domain.errors import LedgerError
from conductor.domain.events import JobEnqueued, NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.ledger import chain
from conductor.ledger.base import StoredEvent
from projections.job_status import MUTABLE_COLUMNS


def number(
    events: Sequence[NewEvent],
    head: tuple[int, str] | None,
    new_job_ids: Callable[[int], Sequence[int]],
    *,
    admitted: bool = False,
) -> tuple[list[StoredEvent], list[RecordedEvent], set[int]]:
    """Give `events` the seqs after `head` (the newest stored (seq, hash), None for an
    empty log), ids to new jobs (`new_job_ids(n)` hands out n of them, asked at most once),
    and chain each to the one before.

    A new job with a unique key is refused (`LedgerError`) unless `admitted`: its key was
    checked in this transaction (`Ledger.enqueue`). No other path may append one, or two
    jobs could hold a key.

    Returns the rows to insert, the recorded events and the ids of existing jobs touched
    (the operations stream's job id 0 is not a job: its events fold into `controls`).
    """
    seq, prev_hash = head if head is not None else (0, chain.GENESIS)
    fresh: list[int] = []
    wanted = sum(1 for new in events if new.job_id is None)
    if wanted:
        fresh = list(reversed(new_job_ids(wanted)))
    stored: list[StoredEvent] = []
    recorded: list[RecordedEvent] = []
    touched: set[int] = set()
    event_hash = chain.event_hash
    for new in events:
        event = new.event
        job_id = new.job_id
        if job_id is None:
            if not isinstance(event, JobEnqueued):
                raise ValueError(f"{event.TYPE} event needs a job_id")
            if event.unique_key is not None and not admitted:
                raise LedgerError(
                    f"cannot append a job with unique key {event.unique_key!r} unchecked; "
                    "expected it enqueued through Ledger.enqueue, which checks the key"
                )
            job_id = fresh.pop()
        elif job_id != OPERATIONS:
            touched.add(job_id)
        seq += 1
        data = event.encode()
        digest = event_hash(
            prev_hash, seq, job_id, event.TYPE, event.VERSION, new.at, data, new.trace
        )
        stored.append(
            (seq, job_id, event.TYPE, event.VERSION, new.at, data, new.trace, prev_hash, digest)
        )
        recorded.append(
            RecordedEvent(
                seq=seq, job_id=job_id, at=new.at, event=event, trace=new.trace, hash=digest
            )
        )
        prev_hash = digest
    return stored, recorded, touched


def row_writes(
    rows: Mapping[int, JobRow], current: Mapping[int, JobRow]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Split folded `rows` into whole rows to insert (new jobs, in `COLUMNS` order) and
    updates of the mutable columns (values ending with the id) for jobs in `current`."""
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for job_id, row in rows.items():
        if job_id in current:
            updates.append((*[row[c] for c in MUTABLE_COLUMNS], job_id))
        else:
            inserts.append(tuple(row.values()))
    return inserts, updates


def check_continues(head: tuple[int, str] | None, first: StoredEvent, location: str) -> None:
    """Refuse stored events to import (`Ledger.import_events`) that do not continue the
    log at `location` from its head: a gap or a fork would make a chain that does not
    verify, so nothing is written."""
    seq, prev_hash = head if head is not None else (0, chain.GENESIS)
    if first[0] != seq + 1 or first[7] != prev_hash:
        raise LedgerError(
            f"cannot import events into {location}: seq {first[0]} does not follow its "
            f"head (seq {seq}); expected the next events of the same chain"
        )
