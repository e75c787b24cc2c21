"""Operator actions on jobs, one or thousands at a time: cancel and retry by id or by filter.

Every call is one *batch*: its events all carry one batch id, the operator (`by`) and the
reason, so the audit trail answers "who retried these 4,000 jobs, and why"
(`Conductor.batch_events`, `conductor batch ID`).

A filtered action first takes a snapshot of the matching job ids, then acts on them in
chunks, one transaction each (`Ledger.transact`): each job is decided on its current row
under the write lock, so one that changed since the snapshot (a worker finished it,
another operator retried it) is refused with the reason rather than acted on, and a
worker is never held off for the whole action. The CLI (`conductor cancel`, `retry`) and
any dashboard call these same methods.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from conductor.domain import decisions as decide
from conductor.domain.bulk import Selection, check_batch, new_batch
from conductor.domain.clock import Clock, stamp
from conductor.domain.config import Settings
from conductor.domain.errors import ConductorError, InvalidInput, NotSelected, UnknownJob
from conductor.domain.events import JobCancelled, JobRequeued, NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.domain.reports import ActionReport, Target
from conductor.ledger.base import EventFilter, Ledger
from conductor.observe import observed

CHUNK: Final = 500
"""Jobs decided and appended per transaction: big enough that 4,000 jobs take a handful
of commits, small enough that workers wait milliseconds, not seconds, for the lock."""
PAGE: Final = 5_000
"""Ids read per query while taking a filtered action's snapshot."""
MAX_ID: Final = 2**63 - 1
"""SQLite's largest integer: no id beyond it can exist."""

Progress = Callable[[int, int], None]
"""Told (jobs decided so far, jobs in the action) after each chunk."""

_DEFAULT_REASONS: Final = {"cancel": "cancelled", "retry": "requeued"}


class BulkActions:
    """The operator actions of `Conductor` (a mixin: `Conductor` inherits it)."""

    ledger: Ledger
    clock: Clock
    settings: Settings

    # -- one job -----------------------------------------------------------------------
    def cancel(self, job_id: int, *, by: str = "operator", reason: str = "cancelled") -> None:
        """Cancel a pending or in-progress job (a running handler sees it at its next check).

        Raises `UnknownJob`, or `InvalidTransition` naming the job's state when it cannot
        be cancelled."""
        _raise_refused(self.cancel_many((job_id,), by=by, reason=reason))

    def retry(self, job_id: int, *, by: str = "operator", reason: str = "requeued") -> None:
        """Send a failed or cancelled job back to pending, due now, with a fresh retry budget.

        Raises `UnknownJob`, or `InvalidTransition` naming the job's state when it cannot
        be retried."""
        _raise_refused(self.retry_many((job_id,), by=by, reason=reason))

    # -- several jobs by id ------------------------------------------------------------
    def cancel_many(
        self, job_ids: Iterable[int], *, by: str = "operator", reason: str = "cancelled"
    ) -> ActionReport:
        """Cancel each job, as `kill 3 4 5` or `docker rm` do: a job that cannot be
        cancelled (unknown, or already finished) is reported and the others still are."""
        return self._act("cancel", list(job_ids), None, by=by, reason=reason)

    def retry_many(
        self, job_ids: Iterable[int], *, by: str = "operator", reason: str = "requeued"
    ) -> ActionReport:
        """Retry each job; one that cannot be retried is reported, the others are."""
        return self._act("retry", list(job_ids), None, by=by, reason=reason)

    # -- by filter ---------------------------------------------------------------------
    def cancel_where(
        self,
        *,
        by: str,
        ids: Iterable[int] = (),
        statuses: Iterable[str] = (),
        tasks: Iterable[str] = (),
        queues: Iterable[str] = (),
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        reason: str = "cancelled",
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ActionReport:
        """Cancel the jobs the filters choose (see `retry_where`); without `statuses`,
        every pending, claimed and in-progress job they match."""
        selection = _selection(statuses, tasks, queues, since, until)
        return self._where("cancel", list(ids), selection, by, reason, dry_run, progress)

    def retry_where(
        self,
        *,
        by: str,
        ids: Iterable[int] = (),
        statuses: Iterable[str] = (),
        tasks: Iterable[str] = (),
        queues: Iterable[str] = (),
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        reason: str = "requeued",
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ActionReport:
        """Retry the jobs the filters choose, in chunked transactions, as one batch.

        Filters combine with AND (within one, any of its values); `since`/`until` bound
        when the job last changed (`updated_at`: for a failed job, when it failed).
        Without `statuses`, every failed and cancelled job they match. With `ids`, the
        action is on those jobs only, and the filters are a guard: a named job they do
        not choose is refused. At least one filter or id is required (`InvalidInput`):
        an action on every job is never the result of forgetting a filter. With
        `dry_run`, the report lists what would be retried and nothing is appended.
        """
        selection = _selection(statuses, tasks, queues, since, until)
        return self._where("retry", list(ids), selection, by, reason, dry_run, progress)

    def _where(
        self,
        action: str,
        ids: list[int],
        selection: Selection,
        by: str,
        reason: str,
        dry_run: bool,
        progress: Progress | None,
    ) -> ActionReport:
        if not ids and selection.empty:
            raise InvalidInput(
                f"nothing chosen to {action}: expected job ids or at least one filter "
                "(status, task, queue, since, until)"
            )
        if not by.strip():
            raise InvalidInput("invalid operator name '': expected who is acting, e.g. alice")
        narrowed = None if selection.empty else selection.for_action(action)
        if not ids and narrowed is not None:
            ids = self._snapshot(narrowed)
        return self._act(
            action, ids, narrowed, by=by, reason=reason, dry_run=dry_run, progress=progress
        )

    def _snapshot(self, selection: Selection) -> list[int]:
        """The ids of every job `selection` chooses now, in id order, read a page at a
        time (keyset paging, so a page costs the same however far in it is)."""
        ids: list[int] = []
        after = 0
        while True:
            page = self.ledger.select(selection, after=after, limit=PAGE)
            ids.extend(row["id"] for row in page)
            if len(page) < PAGE:
                return ids
            after = page[-1]["id"]

    # -- the audit trail ---------------------------------------------------------------
    def batch_events(self, batch: str) -> list[RecordedEvent]:
        """Every event of one operator action, in seq order (empty if there is no such
        batch). `batch` is an id as printed by `conductor cancel`/`retry`."""
        wanted = check_batch(batch)
        found = self.ledger.read(EventFilter(batch=wanted))
        return [
            rec
            for rec in found
            if isinstance(rec.event, JobCancelled | JobRequeued) and rec.event.batch == wanted
        ]

    # -- the one path every action takes -----------------------------------------------
    def _act(
        self,
        action: str,
        job_ids: Sequence[int],
        selection: Selection | None,
        *,
        by: str,
        reason: str,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ActionReport:
        """Decide each job's event on its current row under the write lock
        (`Ledger.transact`), a chunk per transaction, and append those that can move:
        the others are refused with the reason, each id once, in the order given."""
        now = self.clock.now()
        batch = new_batch(now, secrets.token_hex(3))
        wanted = list(dict.fromkeys(job_ids))
        errors: dict[int, ConductorError] = {
            job_id: UnknownJob(job_id) for job_id in wanted if not 1 <= job_id <= MAX_ID
        }
        moved: dict[int, Target] = {}
        candidates = [job_id for job_id in wanted if job_id not in errors]
        # When the chunk being decided was: each chunk's events carry its own time, so a
        # long action's stamps keep rising with the log (see `ledger.base.RECENT_MARGIN`).
        stamped = [now]

        def one(row: JobRow) -> NewEvent:
            # The action's own refusal first: it names the statuses the action needs.
            if action == "cancel":
                new = decide.cancel(row, by=by, reason=reason, batch=batch, now=stamped[0])
            else:
                new = decide.requeue(row, by=by, reason=reason, batch=batch, now=stamped[0])
            why = None if selection is None else selection.mismatch(row)
            if why is not None:
                raise NotSelected(row["id"], why)
            return new

        for start in range(0, len(candidates), CHUNK):
            chunk = candidates[start : start + CHUNK]
            stamped[0] = self.clock.now()
            decided: list[tuple[dict[int, JobRow], dict[int, ConductorError]]] = []

            def decide_chunk(
                rows: Mapping[int, JobRow],
                chunk: list[int] = chunk,
                decided: list[tuple[dict[int, JobRow], dict[int, ConductorError]]] = decided,
            ) -> list[NewEvent]:
                # A backend may run this again when it retries the transaction: only the
                # last run's decisions are the ones committed.
                events, acted, refused = decide.on_each(rows, chunk, one)
                decided[:] = [(acted, refused)]
                return [] if dry_run else events

            recorded, _ = self.ledger.transact(chunk, decide_chunk)
            acted, refused = decided[-1]
            errors.update(refused)
            for job_id, row in acted.items():
                moved[job_id] = Target(
                    id=job_id, task=row["task"], queue=row["queue"], status=row["status"]
                )
            if recorded:
                self._after(action, recorded, acted)
            if progress is not None:
                progress(min(start + CHUNK, len(candidates)), len(candidates))
        return ActionReport(
            done=tuple(job_id for job_id in wanted if job_id in moved),
            refused={job_id: errors[job_id] for job_id in wanted if job_id in errors},
            batch=batch,
            by=by,
            reason=reason,
            dry_run=dry_run,
            targets={job_id: moved[job_id] for job_id in wanted if job_id in moved},
        )

    def _after(
        self, action: str, recorded: list[RecordedEvent], rows: Mapping[int, JobRow]
    ) -> None:
        """What follows a committed chunk: wake this host's workers, count the appends
        and, for cancels, mark each job's trace."""
        from conductor.ledger import wakeup

        wakeup.notify(self.settings.db)
        if action != "cancel":
            return
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


def _selection(
    statuses: Iterable[str],
    tasks: Iterable[str],
    queues: Iterable[str],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> Selection:
    return Selection(
        statuses=tuple(dict.fromkeys(statuses)),
        tasks=tuple(dict.fromkeys(tasks)),
        queues=tuple(dict.fromkeys(queues)),
        since=None if since is None else stamp(_aware(since)),
        until=None if until is None else stamp(_aware(until)),
    )


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _raise_refused(report: ActionReport) -> None:
    """The single-job actions raise what the many-job ones report."""
    for error in report.refused.values():
        raise error
