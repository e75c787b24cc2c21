"""The Python API: enqueue and inspect jobs, run operator actions, audit the log.

A thin layer: it parses and validates input, asks `conductor.domain.decisions` for the events, and
hands them to the ledger. The CLI is a shell over this class, so everything the CLI can
do a program can do too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from conductor.client.queues import Queues
from conductor.domain import decisions as decide
from conductor.domain.clock import Clock, SystemClock, stamp
from conductor.domain.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    Settings,
    parse_priority,
)
from conductor.domain.errors import ConductorError, InvalidInput, ReadOnlyDatabase, UnknownJob
from conductor.domain.events import EVENT_TYPES, JobAttemptFailed, NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.domain.payloads import Payload, parse_payload
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

PayloadInput = Payload | Mapping[str, Any] | str | bytes


T = TypeVar("T")


def _first(*choices: T | None) -> T:
    """The first option that was given: explicit, then the task's, then conductor's."""
    for choice in choices:
        if choice is not None:
            return choice
    raise AssertionError("the last choice is always a default")


@contextlib.contextmanager
def _no_span() -> Iterator[None]:
    yield None


class Conductor(Queues):
    """A handle on one ledger. Use as a context manager, or call `close()`.

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

    # -- enqueue -----------------------------------------------------------------------
    def _payload(self, raw: PayloadInput) -> Payload:
        if isinstance(raw, Payload):
            return raw
        return parse_payload(
            dict(raw) if isinstance(raw, Mapping) else raw, self.settings.max_payload_bytes
        )

    def enqueue(
        self,
        payload: PayloadInput,
        *,
        queue: str | None = None,
        priority: str | None = None,
        max_retries: int | None = None,
        delay: dt.timedelta | None = None,
        at: dt.datetime | None = None,
        trace: str | None = None,
        connection: object | None = None,
    ) -> int:
        """Enqueue one job and return its id. The payload is a JSON object naming its task.

        Options left out take the registered task's defaults (`@task(queue=..., ...)`)
        when this process knows the task, else conductor's (queue `default`, priority
        `medium`, 3 retries).

        With `connection` (a psycopg 3 connection to a PostgreSQL ledger's database), the
        job is written inside that connection's open transaction and shares its fate: it
        exists once the caller commits, and a rollback leaves no job and no event
        (transactional enqueue, docs/operations.md).
        """
        return self.enqueue_many(
            [payload],
            queue=queue,
            priority=priority,
            max_retries=max_retries,
            delay=delay,
            at=at,
            trace=trace,
            connection=connection,
        )[0]

    def enqueue_many(
        self,
        payloads: Iterable[PayloadInput],
        *,
        queue: str | None = None,
        priority: str | None = None,
        max_retries: int | None = None,
        delay: dt.timedelta | None = None,
        at: dt.datetime | None = None,
        trace: str | None = None,
        connection: object | None = None,
    ) -> list[int]:
        """Enqueue many jobs in one transaction: all of them, or none if any is invalid.
        With `connection`, in that connection's transaction (see `enqueue`)."""
        if delay is not None and at is not None:
            raise InvalidInput("invalid schedule: got both a delay and a time; expected one")
        if delay is not None and delay < dt.timedelta(0):
            raise InvalidInput(f"invalid delay {delay}: expected a non-negative duration")
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        if priority is not None:
            parse_priority(priority)
        # Imported before the stamp: the `enqueued` time is when the job could first be
        # picked up, so nothing that can wait (imports, parsing) may sit between the stamp
        # and the commit, nor between the commit and the wake-up.
        from conductor.domain.registry import REGISTRY
        from conductor.ledger import wakeup

        planned = []
        for index, raw in enumerate(payloads, start=1):
            try:
                parsed = self._payload(raw)
            except InvalidInput as e:
                raise InvalidInput(f"item {index}: {e}") from None
            spec = REGISTRY.get(parsed.task)
            planned.append(
                (
                    parsed,
                    _first(queue, spec.queue if spec else None, DEFAULT_QUEUE),
                    parse_priority(
                        _first(priority, spec.priority if spec else None, DEFAULT_PRIORITY)
                    ),
                    _first(max_retries, spec.max_retries if spec else None, DEFAULT_MAX_RETRIES),
                )
            )
        if trace is None and observed.may_be("trace"):
            from conductor.observe import tracing

            producing: Any = tracing.producer(q for _, q, _, _ in planned)
        else:
            producing = _no_span()
        with producing as span:
            traceparent = trace if span is None else span.traceparent
            now = self.clock.now()
            run_at = now + delay if delay is not None else at
            events = [
                decide.enqueue(
                    parsed,
                    queue=job_queue,
                    priority=level,
                    max_retries=retries,
                    run_at=run_at,
                    now=now,
                    trace=traceparent,
                )
                for parsed, job_queue, level, retries in planned
            ]
            if connection is not None:
                # Not in the log until the caller commits: no wake-up or count yet (the
                # commit's NOTIFY wakes the workers, whose claim ingests the jobs).
                ids = self.ledger.enqueue_within(connection, events)
                recorded = []
            else:
                recorded = self.ledger.append(events)
                ids = [rec.job_id for rec in recorded]
            if span is not None:
                span.sent(ids)
        if recorded:
            wakeup.notify(self.settings.db)
            observed.count_appended(recorded)
        return ids

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
