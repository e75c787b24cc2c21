"""The Scheduler: decides when the engine next needs to look, and wakes the Queue.

It never sleeps itself: the runtime's loop sleeps on the wake-up socket for as long as
`Tick` says and sends a `Tick` when the time is up or a wake-up arrives. Each `Tick` is
`run_once(now)`: wake the Queue when a job is due, ask the Writer for maintenance when its
interval has passed (or something woke us, e.g. a `conductor cancel`, at most every
`WOKEN_MAINTENANCE_GAP`), fire the due slots of cron schedules once per maintenance
interval (`conductor.engine.cron`), and in burst mode say whether the work has run out.
Tests step it by sending `Tick`s with a chosen `now`. While the database is unreachable a
`Tick` looks again after the poll interval (the outage is logged once, by `outage.py`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import pykka

from conductor.domain.clock import stamp, unstamp
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.errors import DatabaseUnavailable, LedgerError
from conductor.domain.queue_controls import is_paused
from conductor.domain.states import HELD_STATES
from conductor.engine import identity
from conductor.engine.core import CoreActor
from conductor.engine.cron import Cron
from conductor.engine.messages import Maintain, QueueState, QueueStatus, Tick, TickResult, Wake
from conductor.ledger import wakeup
from conductor.ledger.base import JobFilter, Ledger
from conductor.observe import logs

WOKEN_MAINTENANCE_GAP: Final = dt.timedelta(seconds=0.1)
"""A wake-up may be a cancel, which maintenance passes on to the running handler, so a
wake-up brings maintenance forward - but to no sooner than this after the last round:
every enqueue also wakes the workers, and a maintenance read on each of them (200 a
second in a steady stream) sat in the Writer's inbox ahead of the claim for the job."""


_NOW: Final = dt.timedelta(0)


class Scheduler(CoreActor):
    use_daemon_thread = True

    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        queue: pykka.ActorRef[Any],
        writer: pykka.ActorRef[Any],
        open_ledger: Any,
        supervisor: pykka.ActorRef[Any] | None = None,
    ) -> None:
        super().__init__(supervisor)
        self._settings = settings
        self._config = config
        self._queue = queue
        self._writer = writer
        self._open_ledger = open_ledger
        self._ledger: Ledger | None = None
        self._next_maintenance: dt.datetime | None = None
        self._last_maintenance: dt.datetime | None = None
        self._cron: Cron | None = None
        self._next_cron: dt.datetime | None = None

    def on_start(self) -> None:
        self._ledger = self._open_ledger(self._settings)
        self._cron = Cron(self._ledger, by=identity.process_id())

    def on_stop(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            return self.run_once(
                message.now, woken=message.woken, queue_woken_at=message.queue_woken_at
            )
        return None

    def run_once(
        self,
        now: dt.datetime,
        *,
        woken: bool = False,
        queue_woken_at: dt.datetime | None = None,
    ) -> TickResult:
        try:
            return self._look(now, woken=woken, queue_woken_at=queue_woken_at)
        except DatabaseUnavailable:
            # Nothing to decide without the database: the Writer keeps what it holds and
            # retries, and the next tick looks again.
            return TickResult(sleep=self._config.poll_interval, drained=False)

    def _look(
        self, now: dt.datetime, *, woken: bool, queue_woken_at: dt.datetime | None
    ) -> TickResult:
        assert self._ledger is not None
        queues = self._open_queues()
        earliest = self._ledger.next_due(queues)
        due_at = None if earliest is None else unstamp(earliest)
        due_now = due_at is not None and due_at <= now
        # A job due by the time the runtime last woke the Queue has been looked for by a
        # claim since: waking the Queue again would only cost an empty claim.
        if due_at is not None and due_now and (queue_woken_at is None or due_at > queue_woken_at):
            self._queue.tell(Wake())
        # Jobs committed through transactional enqueue enter the log here when no claim
        # has taken them in (an idle worker claims only once something is due): one
        # cheap statement per tick on PostgreSQL, nothing on SQLite. After the wake-up,
        # so a woken worker's claim does not wait for it (a claim takes them in too).
        if self._ledger.ingest(now) and not due_now:
            earliest = self._ledger.next_due(queues)
            due_now = earliest is not None and unstamp(earliest) <= now
            if due_now:
                self._queue.tell(Wake())
        # Sleep until the first job that is not due yet, not until the next poll.
        upcoming = self._ledger.next_due(queues, after=stamp(now)) if due_now else earliest
        interval = dt.timedelta(seconds=self._config.maintenance_interval)
        if woken and self._last_maintenance is not None and self._next_maintenance is not None:
            self._next_maintenance = min(
                self._next_maintenance, self._last_maintenance + WOKEN_MAINTENANCE_GAP
            )
        if self._next_maintenance is None or now >= self._next_maintenance:
            self._writer.tell(Maintain(now))
            self._last_maintenance = now
            self._next_maintenance = now + interval
        if self._next_cron is None or not self._next_cron - interval <= now < self._next_cron:
            # Each maintenance interval, not brought forward by wake-ups (every enqueue
            # wakes the workers); at once after the clock went back.
            self._next_cron = now + interval
            self._fire(now)
        waits = [self._config.poll_interval, (self._next_maintenance - now).total_seconds()]
        if upcoming is not None:
            waits.append((unstamp(upcoming) - now).total_seconds())
        return TickResult(sleep=max(min(waits), 0.0), drained=self._drained(due_now, now, queues))

    def _fire(self, now: dt.datetime) -> None:
        """Fire the due slots of cron schedules (`conductor.engine.cron`), and wake the
        workers of this database for the jobs they made."""
        assert self._cron is not None
        try:
            done = self._cron.run_once(now)
        except DatabaseUnavailable:
            raise
        except LedgerError as e:
            logs.note(f"cron: firing schedules failed, trying again next round: {e}", warning=True)
            return
        if done.fired:
            self._queue.tell(Wake())
            wakeup.notify(self._settings.db)

    def _open_queues(self) -> tuple[str, ...]:
        """The worker's queues less the paused ones: a paused queue's due jobs neither
        wake the Queue (its claims would take nothing) nor keep burst mode running."""
        assert self._ledger is not None
        controls = self._ledger.controls("queue")
        if not controls:
            return self._config.queues
        return tuple(q for q in self._config.queues if not is_paused(controls.get(q)))

    def _drained(self, due_now: bool, now: dt.datetime, queues: tuple[str, ...]) -> bool:
        """Burst mode's exit test: nothing due (within the horizon, if there is one), in
        flight here, or held by any lease."""
        if not self._config.burst or due_now:
            return False
        status = self._queue.ask(QueueState())
        assert isinstance(status, QueueStatus)
        if status.busy or status.buffered or status.asked or not status.exhausted:
            return False
        assert self._ledger is not None
        held = [
            row
            for status in HELD_STATES
            for row in self._ledger.jobs(JobFilter(status=status))
            if row["queue"] in self._config.queues
        ]
        if held:
            return False
        # Looked at again: a rescue or release since `due_now` (the Maintain above may
        # have rescued a dead process's jobs) leaves jobs due and no longer held.
        earliest = self._ledger.next_due(queues)
        return earliest is None or unstamp(earliest) > now + (self._config.horizon or _NOW)
