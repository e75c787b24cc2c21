"""The Python API: enqueue and inspect jobs, run operator actions, audit the log.

A thin layer: it parses and validates input, asks `conductor.domain.decisions` for the events, and
hands them to the ledger. The CLI is a shell over this class, so everything the CLI can
do a program can do too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Final

from conductor.client.bulk import MAX_ID, BulkActions
from conductor.client.enqueuing import Enqueuing, PayloadInput
from conductor.client.listing import Listing
from conductor.client.queues import Queues
from conductor.client.results import Results
from conductor.client.schedules import Schedules
from conductor.domain.bulk import check_batch
from conductor.domain.clock import Clock, SystemClock, stamp
from conductor.domain.config import Settings
from conductor.domain.errors import InvalidInput, ReadOnlyDatabase, UnknownJob
from conductor.domain.events import EVENT_TYPES, JobAttemptFailed, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.domain.reports import Stats
from conductor.domain.states import JobState
from conductor.ledger.base import EventFilter, JobFilter, Ledger, RowDifference
from conductor.ledger.chain import ChainReport
from conductor.ledger.open import open_ledger

if TYPE_CHECKING:
    from conductor.observe.activity import ActivityReader
    from projections.history import HistoryEntry
    from projections.throughput import Activity

# The registry, the history and activity folds and their readers are imported where they
# are used: a read command pays at start-up for every module it imports.

STATUSES: Final = tuple(state.value for state in JobState)

__all__ = ["Conductor", "PayloadInput"]


class Conductor(Enqueuing, BulkActions, Results, Schedules, Queues, Listing):
    """A handle on one ledger. Use as a context manager, or call `close()`.

    Enqueueing (`enqueue`, `enqueue_many`, `enqueue_each`) is `conductor.client.enqueuing`;
    operator actions (cancel, retry, by id or filter, and their audit trail) are
    `BulkActions` (conductor/client/bulk.py).

    `create=False` opens an existing database only (read commands never create one).
    Capabilities past enqueue, operator actions and queries come from the mixins it
    inherits: `Results` (`result`, `outcome`).
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        create: bool = True,
    ) -> None:
        self.settings = settings or Settings.from_env(db)
        self.clock: Clock = clock or SystemClock()
        self.ledger: Ledger = open_ledger(self.settings, create=create)

    def __enter__(self) -> Conductor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.ledger.close()

    def _notify(self) -> None:
        """Wake this database's workers on this host (see `conductor.ledger.wakeup`)."""
        from conductor.ledger import wakeup

        wakeup.notify(self.settings.db)

    # -- queries -----------------------------------------------------------------------
    def job(self, job_id: int) -> JobRow:
        if not 1 <= job_id <= MAX_ID:
            raise UnknownJob(job_id)
        row = self.ledger.job(job_id)
        if row is None and self._settle():
            row = self.ledger.job(job_id)
        if row is None:
            raise UnknownJob(job_id)
        return row

    def _settle(self) -> bool:
        """Take committed transactional enqueues into the log before a read, so a job
        exists once its transaction has committed (`enqueue`); True when there were any."""
        try:
            return self.ledger.ingest(self.clock.now()) > 0
        except ReadOnlyDatabase:
            return False  # a reader that cannot write sees them once a worker takes them

    def jobs(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
    ) -> list[JobRow]:
        """Jobs in id order; with `limit`, the newest `limit` of them."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"invalid status {status!r}: expected one of {', '.join(STATUSES)}")
        self._settle()
        return self.ledger.jobs(JobFilter(status=status, task=task, queue=queue), limit=limit)

    def stats(self) -> Stats:
        self._settle()
        return Stats.from_counts(self.ledger.counts())

    def history(self, job_id: int) -> tuple[HistoryEntry, ...]:
        if not 1 <= job_id <= MAX_ID:
            raise UnknownJob(job_id)
        events = self.ledger.history(job_id)
        if not events and self._settle():
            events = self.ledger.history(job_id)
        if not events:
            raise UnknownJob(job_id)
        from projections import history as history_projection

        return history_projection.timeline(events)

    def activity(self, spans: tuple[tuple[str, int], ...] | None = None) -> Activity:
        """Throughput and p50/p95 wait and run times over windows ending now (by default
        the last minute and hour, `projections.throughput.SPANS`), read from the log's tail."""
        return self.activity_reader(spans).read(self.clock.now())

    def activity_reader(self, spans: tuple[tuple[str, int], ...] | None = None) -> ActivityReader:
        """A reader of `activity` (and its per-slice `series`) that a live view keeps: each
        read after the first costs only the events appended since. It uses this handle's
        ledger: keep both to one thread at a time."""
        from conductor.observe.activity import ActivityReader
        from projections import throughput

        return ActivityReader(self.ledger, throughput.SPANS if spans is None else spans)

    def failures(self, job_id: int) -> list[tuple[RecordedEvent, JobAttemptFailed]]:
        """Every failed attempt of a job, with its traceback, oldest first."""
        events = self.ledger.read(EventFilter(job_id=job_id, types=(JobAttemptFailed.TYPE,)))
        return [(rec, rec.event) for rec in events if isinstance(rec.event, JobAttemptFailed)]

    def events(
        self,
        *,
        job_id: int | None = None,
        types: Iterable[str] = (),
        task: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        batch: str | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Audit-trail query over the log; with `limit`, the newest `limit` matches. With
        `batch`, only the events of that operator action (`conductor cancel`/`retry`)."""
        wanted = tuple(types)
        for name in wanted:
            if name not in EVENT_TYPES:
                raise InvalidInput(
                    f"invalid event type {name!r}: expected one of {', '.join(EVENT_TYPES)}"
                )
        return self.ledger.read(
            EventFilter(
                job_id=job_id,
                types=wanted,
                task=task,
                since=None if since is None else stamp(since),
                until=None if until is None else stamp(until),
                batch=None if batch is None else check_batch(batch),
            ),
            limit=limit,
        )

    # -- maintenance -------------------------------------------------------------------
    def replay(self) -> int:
        """Rebuild every read model from seq 1; returns the number of events folded."""
        return self.ledger.rebuild_projections()

    def verify_projections(self) -> list[RowDifference]:
        """Rows where the live read models differ from a rebuild (empty means they agree)."""
        return self.ledger.diff_projections()

    def audit(self) -> ChainReport:
        """Walk the hash chain; the report names the first bad seq, if any."""
        return self.ledger.verify_chain()
