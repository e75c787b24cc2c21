"""The Python API: enqueue and inspect jobs, run operator actions, audit the log.

A thin layer: it parses and validates input, asks `conductor.domain.decisions` for the events, and
hands them to the ledger. The CLI is a shell over this class, so everything the CLI can
do a program can do too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Final

from conductor.client.enqueuing import Enqueuing, PayloadInput
from conductor.domain import decisions as decide
from conductor.domain.clock import Clock, SystemClock, stamp
from conductor.domain.config import Settings
from conductor.domain.errors import ConductorError, InvalidInput, ReadOnlyDatabase, UnknownJob
from conductor.domain.events import EVENT_TYPES, JobAttemptFailed, NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.domain.reports import ActionReport, Stats
from conductor.domain.states import JobState
from conductor.ledger.base import EventFilter, JobFilter, Ledger, RowDifference
from conductor.ledger.chain import ChainReport
from conductor.ledger.open import open_ledger
from conductor.observe import observed

if TYPE_CHECKING:
    from projections.history import HistoryEntry
    from projections.throughput import Activity

# The registry, the history and activity folds and their readers are imported where they
# are used: a read command pays at start-up for every module it imports.

STATUSES: Final = tuple(state.value for state in JobState)
MAX_ID: Final = 2**63 - 1
"""SQLite's largest integer: no id or limit beyond it can exist."""

__all__ = ["Conductor", "PayloadInput"]


class Conductor(Enqueuing):
    """A handle on one ledger. Use as a context manager, or call `close()`.

    Enqueueing (`enqueue`, `enqueue_many`, `enqueue_each`) is `conductor.client.enqueuing`.

    `create=False` opens an existing database only (read commands never create one).
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

    # -- operator actions --------------------------------------------------------------
    def cancel(self, job_id: int, *, by: str = "operator", reason: str = "cancelled") -> None:
        """Cancel a pending or in-progress job (a running handler sees it at its next check).

        Raises `UnknownJob`, or `InvalidTransition` naming the job's state when it cannot
        be cancelled."""
        _raise_refused(self.cancel_many((job_id,), by=by, reason=reason))

    def retry(self, job_id: int, *, by: str = "operator") -> None:
        """Send a failed or cancelled job back to pending, due now, with a fresh retry budget.

        Raises `UnknownJob`, or `InvalidTransition` naming the job's state when it cannot
        be retried."""
        _raise_refused(self.retry_many((job_id,), by=by))

    def cancel_many(
        self, job_ids: Iterable[int], *, by: str = "operator", reason: str = "cancelled"
    ) -> ActionReport:
        """Cancel each job, as `kill 3 4 5` or `docker rm` do: a job that cannot be
        cancelled (unknown, or already finished) is reported and the others still are."""
        now = self.clock.now()
        report, recorded, rows = self._act(
            job_ids, lambda row: decide.cancel(row, by=by, reason=reason, now=now)
        )
        if not recorded:
            return report
        observed.count_appended(
            recorded,
            {rec.job_id: (rows[rec.job_id]["queue"], rows[rec.job_id]["task"]) for rec in recorded},
        )
        if observed.may_be("trace"):
            from conductor.observe import tracing

            for rec in recorded:
                row = rows[rec.job_id]
                tracing.marker(
                    "cancelled",
                    queue=row["queue"],
                    job_id=rec.job_id,
                    traceparent=row["trace"],
                    attributes=tracing.event_attributes(rec),
                )
        return report

    def retry_many(self, job_ids: Iterable[int], *, by: str = "operator") -> ActionReport:
        """Retry each job; one that cannot be retried is reported, the others are."""
        now = self.clock.now()
        return self._act(job_ids, lambda row: decide.requeue(row, by=by, now=now))[0]

    def _act(
        self, job_ids: Iterable[int], decide_one: Callable[[JobRow], NewEvent]
    ) -> tuple[ActionReport, list[RecordedEvent], dict[int, JobRow]]:
        """Decide each job's event on its current row under the write lock
        (`Ledger.transact`) and append those that can move in one commit, with one
        wake-up: ids that cannot are refused with the reason, each id once, in the order
        given. Returns the report, what was recorded and the rows it was decided on."""
        wanted = list(dict.fromkeys(job_ids))
        errors: dict[int, ConductorError] = {
            job_id: UnknownJob(job_id) for job_id in wanted if not 1 <= job_id <= MAX_ID
        }
        acted: dict[int, JobRow] = {}

        def decide_all(rows: Mapping[int, JobRow]) -> list[NewEvent]:
            events, moved, refused = decide.on_each(rows, candidates, decide_one)
            acted.update(moved)
            errors.update(refused)
            return events

        recorded: list[RecordedEvent] = []
        candidates = [job_id for job_id in wanted if job_id not in errors]
        if candidates:
            recorded, _ = self.ledger.transact(candidates, decide_all)
        if recorded:
            self._notify()
        report = ActionReport(
            done=tuple(job_id for job_id in wanted if job_id in acted),
            refused={job_id: errors[job_id] for job_id in wanted if job_id in errors},
        )
        return report, recorded, acted

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
        from conductor.observe.activity import ActivityReader
        from projections import throughput

        reader = ActivityReader(self.ledger, throughput.SPANS if spans is None else spans)
        return reader.read(self.clock.now())

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
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Audit-trail query over the log; with `limit`, the newest `limit` matches."""
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


def _raise_refused(report: ActionReport) -> None:
    """The single-job actions raise what the many-job ones report."""
    for error in report.refused.values():
        raise error
