"""The Writer: the process's single ledger writer.

It owns the process's write connection and turns everything the engine learns into
events: attempt outcomes, claims, heartbeats, rescues and releases. Outcomes and claim
demand accumulate until the Writer's inbox is drained (it tells itself `Flush`, which
queues behind whatever already arrived), then go out in one transaction: one fsync for
many jobs (group commit), and finished attempts are settled and new ones claimed in the
same commit. Every decision is a pure function from `conductor.domain.decisions`, made inside the
transaction, so fencing is exact.

A write that fails for a passing reason (a long lock, a full disk, a server away) is kept
and retried however long it takes, while leases keep the claimed jobs safe; an unreachable
database is logged once per outage (`outage.py`), and writes in doubt are checked
(`doubt.py`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pykka

from conductor.domain import decisions as decide
from conductor.domain.clock import Clock
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.errors import (
    DatabaseBusy,
    DatabaseUnavailable,
    DiskFull,
    LedgerError,
)
from conductor.domain.events import NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.domain.states import HELD_STATES
from conductor.engine import doubt, identity, spans, upkeep
from conductor.engine.core import CoreActor
from conductor.engine.messages import (
    Began,
    Claimed,
    Demand,
    Dispatch,
    Flush,
    InjectFault,
    Maintain,
    Release,
    ReleaseAll,
    Released,
    Report,
    RescueAttempt,
    StopClaiming,
)
from conductor.engine.upkeep import CHECKPOINT_WAIT, LASTING, Held
from conductor.ledger import wakeup
from conductor.ledger.base import ClaimedJob, ClaimRequest, JobFilter, Ledger
from conductor.observe import logs
from conductor.observe.metrics import record_commit

RETRY_WRITE_AFTER = 0.5
BUSY_WARN_AFTER: Final = 6
"""Consecutive writes refused for the lock (busy timeout, 5 s by default, each) before
the Writer warns. Waiting for another process's commit is ordinary contention between
workers sharing a database, not an error: the write is kept and retried."""
_REQUEUING = frozenset({"retry_scheduled", "rescued", "released"})


class Writer(CoreActor):
    use_daemon_thread = True

    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        clock: Clock,
        queue: pykka.ActorRef[Any],
        open_ledger: Any,
        wake: Any = None,
        supervisor: pykka.ActorRef[Any] | None = None,
    ) -> None:
        super().__init__(supervisor)
        self._wake = wake
        self._settings = settings
        self._config = config
        self._clock = clock
        self._queue = queue
        self._open_ledger = open_ledger
        self._ledger: Ledger | None = None
        self._outcomes: list[decide.Outcome] = []
        self._began: list[Began] = []
        self._demand = 0
        self._flush_pending = False
        self._claiming = True
        self._held: dict[int, Held] = {}
        self._rescues: dict[int, tuple[RescueAttempt, Held | None]] = {}
        """Rescues of crashed slots' attempts not written yet (retried each maintenance)."""
        self._doubt = doubt.Doubt()
        self._round_began = float("-inf")
        self._retry_timer: threading.Timer | None = None
        self._wal = upkeep.WalLimiter()
        self._busy_in_a_row = 0
        self._last_error: str | None = None
        self._out_of_space = False

    # -- lifecycle ---------------------------------------------------------------------
    def on_start(self) -> None:
        # sqlite3 connections belong to the thread that opens them: open here, not in
        # __init__, which runs in the Supervisor's thread.
        self._ledger = self._open_ledger(self._settings)

    def on_stop(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._ledger is not None:
            self._ledger.close()

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None
        return self._ledger

    # -- messages ----------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Report):
            self._began.extend(message.began)
            self._outcomes.extend(message.outcomes)
            self._schedule_flush()
        elif isinstance(message, Demand):
            self._demand += message.count
            self._schedule_flush()
        elif isinstance(message, Flush):
            self._flush_pending = False
            self._flush()
        elif isinstance(message, Maintain):
            if message.sent >= self._round_began:
                self._round_began = time.monotonic()
                self._maintain(message.now)
        elif isinstance(message, RescueAttempt):
            self._rescue_attempt(message)
        elif isinstance(message, StopClaiming):
            self._claiming = False
        elif isinstance(message, InjectFault):
            raise RuntimeError("injected actor fault in the Writer")  # noqa: TRY004
        elif isinstance(message, Release):
            return self._release(list(message.jobs), message.reason)
        elif isinstance(message, ReleaseAll):
            self._flush()
            for held in self._held.values():
                held.cancel.set()  # cooperative handlers stop before the process exits
            released = self._release([held.job for held in self._held.values()], message.reason)
            return Released(count=released, kept=len(self._held), error=self._last_error)
        return None

    def _schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.actor_ref.tell(Flush())

    # -- group commit ------------------------------------------------------------------
    def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        began, self._began = self._began, []
        demand = self._demand if self._claiming else 0
        if not outcomes and not began and demand == 0:
            self._demand = 0 if not self._claiming else self._demand
            return
        now = self._clock.now()
        claim = (
            ClaimRequest(
                worker=identity.process_id(),
                queues=self._config.queues,
                limit=demand,
                now=now,
                lease=self._config.lease,
            )
            if demand
            else None
        )

        decided: list[dict[int, int]] = []

        def settle(rows: Mapping[int, JobRow]) -> list[NewEvent]:
            decided.append({job_id: row["last_seq"] for job_id, row in rows.items()})
            return upkeep.settle_batch(began, outcomes, rows, now)

        try:
            outcomes = self._drop_landed(outcomes)
            recorded, claimed = self._transact(
                [*(start.job_id for start in began), *(outcome.job_id for outcome in outcomes)],
                settle,
                claim=claim,
            )
        except LASTING:
            raise
        except LedgerError as e:
            # Keep everything and try again shortly: a full disk, a long lock or a server
            # away must not lose an outcome or a claim.
            if isinstance(e, DatabaseUnavailable):
                self._doubt.failed(decided[-1] if decided else None, claimed=claim is not None)
            self._write_failed(e, f"write failed, retrying in {RETRY_WRITE_AFTER}s")
            self._outcomes[:0] = outcomes
            self._began[:0] = began
            self._retry_later()
            return
        self._busy_in_a_row = 0
        self._demand -= demand
        # Metrics before settled attempts leave `_held`, which places their jobs.
        record_commit(
            recorded, self._held, self.ledger, outcomes=outcomes, claimed=claimed, now=now
        )
        durations = {outcome.job_id: outcome.duration for outcome in outcomes}
        # Outcomes name their task: a released or rescued attempt has left `_held`.
        tasks = {outcome.job_id: outcome.task for outcome in outcomes if outcome.task}
        tasks.update((job_id, held.job.task) for job_id, held in self._held.items())
        for outcome in outcomes:
            self._held.pop(outcome.job_id, None)
        dispatches = []
        for job in claimed:
            held = Held(job=job, cancel=threading.Event())
            self._held[job.id] = held
            tasks[job.id] = job.task
            dispatches.append(Dispatch(job=job, cancel=held.cancel))
        for rec in recorded:
            duration = None if rec.type == "run_started" else durations.get(rec.job_id)
            logs.transition(rec, tasks.get(rec.job_id), duration)
        self._wake_if_rescheduled(recorded)
        spans.end_spans(outcomes, recorded)
        if claim is not None:
            self._queue.tell(Claimed(tuple(dispatches), demand))
        if self._config.burst and outcomes and not self._held:
            # Burst mode: this process's last attempt is settled, so the exit test can run
            # now rather than at the next poll - here (the Claimed above reaches the Queue
            # first) and in the other burst workers of this database, whose test failed
            # while this process still held a job. No commit of settled outcomes notifies
            # on PostgreSQL: this one asks for a notification of its own.
            wakeup.notify(self._settings.db, by_commit=False)

    def _drop_landed(self, outcomes: list[decide.Outcome]) -> list[decide.Outcome]:
        """`outcomes` minus those a write in doubt recorded after all (`doubt.py`)."""
        if not self._doubt.seen:
            return outcomes
        histories = {job_id: self.ledger.history(job_id) for job_id in self._doubt.seen}
        found = doubt.landed(outcomes, self._doubt.seen, histories)
        self._doubt.seen.clear()
        for job_id in found:
            self._held.pop(job_id, None)
        return [outcome for outcome in outcomes if outcome.job_id not in found]

    def _transact(
        self, job_ids: Sequence[int], decide_fn: Any, *, claim: ClaimRequest | None = None
    ) -> tuple[list[RecordedEvent], list[ClaimedJob]]:
        """`Ledger.transact`, once more after a full disk if truncating the WAL freed space.

        A WAL is only ever truncated by a checkpoint, and SQLite's automatic one (at 4 MiB)
        never truncates: on a small or nearly full filesystem the -wal takes whatever
        space there is, including space an operator just freed. Its frames are already
        in the log, so copying them into the database and truncating the file gives that
        space back without losing a commit."""
        if self._out_of_space:
            # The checkpoint may need a few pages more of database file, so it can fail on
            # a disk still full; once space is freed it succeeds, before the retry's own
            # frames land in the -wal.
            self._out_of_space = not self._truncate_wal()
        try:
            return self.ledger.transact(job_ids, decide_fn, claim=claim)
        except DiskFull:
            self._out_of_space = not self._truncate_wal()
            if self._out_of_space:
                raise
        return self.ledger.transact(job_ids, decide_fn, claim=claim)

    def _truncate_wal(self) -> bool:
        try:
            return self.ledger.checkpoint_wal(wait=CHECKPOINT_WAIT)
        except LASTING:
            raise
        except LedgerError:
            return False

    def _write_failed(self, error: LedgerError, what: str) -> None:
        """Log a failed write; lock waits only once per streak, at the BUSY_WARN_AFTER-th."""
        self._last_error = str(error)
        if isinstance(error, DatabaseUnavailable):
            return  # the outage has its own two lines (outage.py)
        if isinstance(error, DatabaseBusy):
            self._busy_in_a_row += 1
            if self._busy_in_a_row != BUSY_WARN_AFTER:
                return
        logs.note(f"{what}: {error}", warning=True)

    def _wake_if_rescheduled(self, recorded: Sequence[Any]) -> None:
        # A retry (or a job given back) may fall due before the Scheduler's next look.
        if self._wake is not None and any(rec.event.TYPE in _REQUEUING for rec in recorded):
            self._wake()

    def _retry_later(self) -> None:
        if self._retry_timer is not None and self._retry_timer.is_alive():
            return
        ref = self.actor_ref
        self._retry_timer = threading.Timer(RETRY_WRITE_AFTER, lambda: ref.tell(Flush()))
        self._retry_timer.daemon = True
        self._retry_timer.start()

    # -- maintenance -------------------------------------------------------------------
    def _maintain(self, now: dt.datetime) -> None:
        """Cancellation checks, heartbeats and rescues: one read, at most one commit."""
        for rescue, held in list(self._rescues.values()):
            self._rescue_attempt(rescue, held)
        try:
            self._wal.limit(self.ledger)
            live = {
                row["id"]: row
                for status in HELD_STATES
                for row in self.ledger.jobs(JobFilter(status=status))
            }
        except LASTING:
            raise
        except LedgerError as e:
            if not isinstance(e, DatabaseUnavailable):  # that one is the outage's line
                logs.note(f"maintenance read failed: {e}", warning=True)
            return
        if self._doubt.claims:
            self._doubt.claims = not self._give_back(
                doubt.strays(live, identity.process_id(), {*self._held, *self._rescues}), now
            )
        lease = self._config.lease
        found = upkeep.survey(self._held, live, now, lease)
        if not found.heartbeats and not found.rescues:
            return
        self._commit(
            [*found.heartbeats, *found.rescues],
            lambda rows: upkeep.decide_survey(found, live, rows, now, lease),
            {job_id: live[job_id]["task"] for job_id in found.rescues},
            {job_id: (live[job_id]["queue"], live[job_id]["trace"]) for job_id in found.rescues},
        )

    def _commit(
        self,
        job_ids: Sequence[int],
        decide_fn: Any,
        tasks: Mapping[int, str] | None = None,
        traces: Mapping[int, tuple[str, str | None]] | None = None,
        *,
        quiet: bool = False,
    ) -> int | None:
        """Record what `decide_fn` decides; the number of events, or None if the write
        failed (logged unless `quiet`: the caller reports it)."""
        try:
            recorded, _ = self._transact(job_ids, decide_fn)
        except LASTING:
            raise
        except LedgerError as e:
            if quiet:
                self._last_error = str(e)
            else:
                self._write_failed(e, "write failed")
            return None
        self._busy_in_a_row = 0
        spans.mark(recorded, traces)
        record_commit(recorded, self._held, self.ledger)
        self._wake_if_rescheduled(recorded)
        known = {job_id: held.job.task for job_id, held in self._held.items()}
        known.update(tasks or {})
        for rec in recorded:
            if rec.event.TYPE != "lease_extended":
                logs.transition(rec, known.get(rec.job_id))
        return len(recorded)

    def _rescue_attempt(self, message: RescueAttempt, held: Held | None = None) -> None:
        # Out of `_held` at once, written or not, so no heartbeat keeps a crashed slot's
        # job; a failed write is tried again each maintenance round.
        held = self._held.pop(message.job_id, held)
        self._rescues[message.job_id] = (message, held)
        now = self._clock.now()
        done = self._commit(
            [message.job_id],
            lambda rows: decide.rescue(
                rows.get(message.job_id), reason=message.reason, now=now, attempt=message.attempt
            ),
            {message.job_id: held.job.task} if held else None,
            {message.job_id: (held.job.queue, held.job.trace)} if held else None,
        )
        if done is not None:
            del self._rescues[message.job_id]

    def _give_back(self, strays: Mapping[int, int], now: dt.datetime) -> bool:
        """Release jobs claimed by a write in doubt; whether that is done."""
        if not strays:
            return True
        done = self._commit(list(strays), lambda rows: doubt.give_back(strays, rows, now))
        return done is not None

    def _release(self, jobs: list[ClaimedJob], reason: str) -> int:
        """Give `jobs` back; the number of `released` events. Jobs whose release could not
        be written stay held (a later `ReleaseAll` tries them again, and reports them)."""
        if not jobs:
            return 0
        now = self._clock.now()
        released = self._commit(
            [job.id for job in jobs],
            lambda rows: [
                event
                for job in jobs
                for event in decide.release(rows.get(job.id), job.attempt, reason=reason, now=now)
            ],
            {job.id: job.task for job in jobs},
            quiet=True,
        )
        if released is None:
            return 0
        for job in jobs:
            self._held.pop(job.id, None)
        return released
