"""Copying a whole ledger to another backend (`conductor copy`): SQLite to PostgreSQL,
or back, events and chain exactly as stored.

The events are the ledger; everything else is folded from them. So a copy moves the
events in seq order with their stored hashes (`Ledger.import_events`, which bypasses
numbering and chaining), rebuilds the read models at the destination, and then proves
the copy: the destination's chain verifies to the same head hash, its read models equal
a fold of its log, and its counts equal the source's. A source whose chain does not
verify is refused before anything is written, as is a destination that holds anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final

import attrs

from conductor.domain.control_events import CONTROL_EVENT_CLASSES
from conductor.domain.errors import LedgerError
from conductor.ledger.base import JobFilter, Ledger
from conductor.ledger.chain import ChainReport

PAGE: Final = 5_000
"""Events read and written at a time: memory stays flat however long the log is."""


@attrs.frozen(kw_only=True)
class CopyReport:
    events: int
    jobs: int
    head: ChainReport
    """The destination's verified chain (same head hash as the source's)."""


def verified_source(source: Ledger, now: dt.datetime) -> ChainReport:
    """Take in the source's committed transactional enqueues (they belong to the log),
    then verify its chain; refuse one that does not verify."""
    source.ingest(now)
    report = source.verify_chain()
    if not report.ok:
        raise LedgerError(
            f"cannot copy {source.location}: its chain breaks at seq {report.first_bad_seq} "
            f"({report.problem}); expected a source that passes `conductor audit verify`"
        )
    return report


def check_empty(destination: Ledger) -> None:
    if destination.last_seq() != 0 or destination.jobs(JobFilter(), limit=1):
        raise LedgerError(
            f"cannot copy into {destination.location}: it already holds a ledger; expected "
            "an empty PostgreSQL schema or a new SQLite file"
        )


def copy_events(
    source: Ledger,
    destination: Ledger,
    head: ChainReport,
    *,
    advance: Callable[[int], None] = lambda n: None,
) -> int:
    """Copy the source's events up to its verified `head`, a page at a time (each page
    one transaction); returns how many."""
    after = 0
    while after < head.head_seq:
        page = source.stored_events(after=after, limit=min(PAGE, head.head_seq - after))
        if not page:
            break
        destination.import_events(page)
        after = page[-1][0]
        advance(len(page))
    return after


def prove(source: Ledger, destination: Ledger, head: ChainReport) -> CopyReport:
    """Rebuild the destination's read models and check the copy is the source's ledger."""
    destination.rebuild_projections()
    copied = destination.verify_chain()
    where = f"the copy at {destination.location}"
    if not copied.ok or (copied.head_seq, copied.head_hash) != (head.head_seq, head.head_hash):
        raise LedgerError(
            f"{where} does not verify to the source's head (seq {head.head_seq}): "
            f"{copied.problem or f'its head is seq {copied.head_seq}'}; expected an identical chain"
        )
    differences = destination.diff_projections()
    if differences:
        raise LedgerError(
            f"{where}: {len(differences)} read-model rows differ from its log; expected none"
        )
    if source.last_seq() != head.head_seq:
        raise LedgerError(
            f"{source.location} gained events during the copy (now seq {source.last_seq()}, "
            f"copied to {head.head_seq}); expected its workers and producers stopped - "
            "copy again into an empty destination"
        )
    kinds = sorted({cls.KIND for cls in CONTROL_EVENT_CLASSES})
    if any(destination.controls(kind) != source.controls(kind) for kind in kinds):
        raise LedgerError(
            f"{where}: queue or schedule controls differ from the source's; expected the "
            "same (check the source with `conductor replay --verify`)"
        )
    if sorted(destination.counts()) != sorted(source.counts()):
        raise LedgerError(
            f"{where}: job counts differ from the source's; expected the same counts "
            "(check the source with `conductor replay --verify`)"
        )
    jobs = sum(n for _, _, _, n in destination.counts())
    return CopyReport(events=copied.events, jobs=jobs, head=copied)
