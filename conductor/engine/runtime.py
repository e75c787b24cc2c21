"""Starting, running and stopping the engine in one process.

The main thread sleeps on the wake-up socket for as long as the Scheduler asks, and turns
SIGINT/SIGTERM into a graceful shutdown: stop claiming, hand back prefetched jobs, let
in-flight attempts finish within the grace period, release the rest (`released` events,
so another worker takes them at once) and exit 0 (1, with one line, if a release could
not be written: those leases expire and another worker rescues the jobs). A second
signal skips the wait.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any, Final, cast

import pykka

from conductor import examples
from conductor.domain.clock import Clock, SystemClock
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.errors import LedgerError
from conductor.domain.registry import REGISTRY, Registry
from conductor.engine import cron, signals
from conductor.engine.messages import (
    Drain,
    Flush,
    Maintain,
    QueueState,
    Release,
    ReleaseAll,
    Released,
    StopClaiming,
    Tick,
    TickResult,
    Wake,
)
from conductor.engine.outage import Outage, watching
from conductor.engine.supervisor import Actors, GetActors, Supervisor
from conductor.engine.upkeep import LASTING
from conductor.ledger import wakeup
from conductor.ledger.base import ClaimedJob, Ledger
from conductor.observe import logs

_ = examples  # the example tasks are always registered

SETTLE_AFTER_RELEASE: Final = 1.0
"""Seconds a stopping worker waits, after giving back attempts still running, for their
(cancelled) handlers to return and their outcomes to be recorded."""


LOOK_AFTER_WAKE: Final = 0.01
"""Seconds the Scheduler's look waits after a wake-up (the Queue was woken at once). Its
reads beside a claim slowed the claim (on two cores the server runs both); a claim takes
1-2 ms on an idle machine, a few on a loaded one. A job due in less than this after a
wake-up is claimed up to this much late; maintenance, brought forward by wake-ups at most
every `WOKEN_MAINTENANCE_GAP`, waits as long."""


def open_writable(settings: Settings) -> Ledger:
    from conductor.ledger.open import open_ledger

    return open_ledger(settings, create=True)


class Engine:
    """The actor system of one worker process."""

    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        *,
        registry: Registry = REGISTRY,
        clock: Clock | None = None,
        open_ledger: Callable[[Settings], Ledger] = open_writable,
    ) -> None:
        self.settings = settings
        self.config = config
        self.registry = registry
        self.clock = clock or SystemClock()
        self._open_ledger = open_ledger
        self.stop_requested = threading.Event()
        self.force_requested = threading.Event()
        self.fatal: str | None = None
        """Why the engine had to stop (a core actor failed); the exit code is then 1."""
        self.lasting: LedgerError | None = None
        """The database cannot be written (read-only, corrupt, not conductor's): `run`
        raises it, and the command exits 1 with its one line."""
        self.outage = Outage()
        """Whether the database answers, as the actors' ledgers find it (one log line
        when it stops, one when it is back)."""
        self._prepared = False
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._listener: wakeup.Waiter | None = None

    def prepare(self) -> None:
        """Create the database (and its schema) before actors open their connections,
        refuse one this process cannot write (read-only is not transient), and declare
        the registry's schedules (`@task(cron=...)`, `periodic`)."""
        ledger = self._open_ledger(self.settings)
        try:
            ledger.check_writable()
            # The schedules declared in code reach the ledger before any slot is fired.
            cron.declare(ledger, self.registry.schedules(), self.clock.now())
        finally:
            ledger.close()
        self._prepared = True

    def start(self) -> Actors:
        if not self._prepared:
            self.prepare()
        self._listener = wakeup.listener(self.settings.db)
        self._supervisor = Supervisor.start(
            self.settings,
            self.config,
            self.registry,
            self.clock,
            watching(self._open_ledger, self.outage),
            self.wake,
            self._fail,
        )
        return self.actors()

    def actors(self) -> Actors:
        assert self._supervisor is not None
        actors = self._supervisor.ask(GetActors())
        assert isinstance(actors, Actors)
        return actors

    def wake(self) -> None:
        if self._listener is not None:
            self._listener.wake()

    def _fail(self, reason: str, cause: BaseException | None = None) -> None:
        if isinstance(cause, LASTING):
            self.lasting = cause
        self.fatal = reason
        self.request_stop(force=True)

    def request_stop(self, *, force: bool = False) -> None:
        (self.force_requested if force else self.stop_requested).set()
        self.wake()

    def run(self) -> int:
        """Run until stopped (or, in burst mode, until the work runs out); returns 0, or 1
        after a core actor failed; raises the `LedgerError` that made the database
        unwritable (`lasting`)."""
        assert self._listener is not None
        woken = False  # the Queue asks for work as it starts; the first look is at once
        # The Scheduler and the Queue are core actors: never replaced while the engine runs
        # (a failed core actor stops the process), so their refs are looked up once.
        actors = self.actors()
        scheduler, queue = actors.scheduler, actors.queue
        while not self._stopping():
            queue_woken_at = self._wake_queue(queue) if woken else None
            if self._stopping():
                break
            try:
                result = scheduler.ask(Tick(self.clock.now(), woken, queue_woken_at))
            except Exception as e:  # noqa: BLE001 - any failure of a core actor is fatal
                self._fail(f"scheduler failed: {e!r}", e)
                break
            assert isinstance(result, TickResult)
            if result.drained:
                horizon = self.config.horizon
                within = "" if horizon is None else f" within {horizon.total_seconds():g}s"
                logs.note(f"burst: nothing due{within}, in flight or leased; stopping")
                break
            woken = self._listener.wait(result.sleep)
        if self.fatal is not None:
            return self._stop_after_failure()
        return self.shutdown()

    def _stopping(self) -> bool:
        return self.stop_requested.is_set() or self.force_requested.is_set()

    def _wake_queue(self, queue: pykka.ActorRef[Any]) -> dt.datetime:
        """A wake-up says work may be due (a commit's notification, a retry given back, a
        cancel): the Queue asks the Writer for it at once, and the Scheduler's look - its
        reads of the queue controls, the next due time and the intake - waits
        `LOOK_AFTER_WAKE`, so that it runs after the claim rather than beside it, and
        the wake-ups of a stream of enqueues share one look. Returns when the Queue was last
        woken (`Tick.queue_woken_at`)."""
        woken_at = self.clock.now()
        queue.tell(Wake())
        deadline = time.monotonic() + LOOK_AFTER_WAKE
        while not self._stopping() and (remaining := deadline - time.monotonic()) > 0:
            if self._listener is not None and self._listener.wait(remaining):
                woken_at = self.clock.now()
                queue.tell(Wake())
        return woken_at

    def _stop_after_failure(self) -> int:
        if self.lasting is not None:
            # Nothing can be recorded, releases included: the attempts this process holds
            # keep their leases, which expire, and another worker rescues them.
            self.close()
            raise self.lasting
        logs.note(f"worker stopping after an internal failure: {self.fatal}", warning=True)
        with contextlib.suppress(Exception):
            self.actors().writer.ask(
                ReleaseAll("worker stopped after an internal failure"), timeout=10
            )
        self.close()
        return 1

    def shutdown(self) -> int:
        actors = self.actors()
        actors.writer.tell(StopClaiming())
        unstarted, idle = cast(
            tuple[tuple[ClaimedJob, ...], threading.Event], actors.queue.ask(Drain())
        )
        actors.writer.ask(Release(unstarted, "worker shutting down; never started"))
        # While in-flight attempts finish, keep their leases alive (heartbeats) and keep
        # delivering cancellations: a grace period longer than the lease must not get a
        # still-running job rescued and started twice.
        deadline = time.monotonic() + self.config.grace.total_seconds()
        interval = self.config.maintenance_interval
        while not idle.is_set() and not self.force_requested.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            actors.writer.tell(Maintain(self.clock.now()))
            idle.wait(min(interval, remaining))
        released = actors.writer.ask(ReleaseAll("worker shut down before the attempt finished"))
        assert isinstance(released, Released)
        if released.count:
            logs.note(f"released {released.count} unfinished attempts", warning=True)
            # Their handlers were told (cancellation flags). Cooperative ones return at once:
            # wait a moment for them, so that what they did is on record (`result_ignored`,
            # outcome `interrupted`) rather than lost with the process.
            if idle.wait(SETTLE_AFTER_RELEASE):
                actors.queue.ask(QueueState())  # behind the Forward of their outcomes
                actors.writer.ask(Flush())  # behind the Report, which it commits
        self.close()
        if released.kept:
            logs.note(
                f"could not record the release of {released.kept} attempts "
                f"({released.error}); their leases expire and another worker rescues them",
                warning=True,
            )
            return 1
        return 0

    def close(self) -> None:
        if self._supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self._supervisor.stop(block=True, timeout=15)
            self._supervisor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None


def run_worker(
    settings: Settings,
    config: WorkerConfig,
    *,
    registry: Registry = REGISTRY,
    metrics_address: tuple[str, int] | None = None,
) -> int:
    """`conductor worker`: run an engine in this process until signalled; with
    `metrics_address` (host, port), serve Prometheus `/metrics` there meanwhile.

    A stop signal that arrived before this (the `worker` command catches them from its
    first moment: `conductor.engine.signals`) is handled here: the worker exits 0 at once,
    having claimed nothing."""
    from conductor.observe import metrics

    engine = Engine(settings, config, registry=registry)

    def on_signal(signum: int) -> None:
        if engine.stop_requested.is_set():
            logs.note("second signal: releasing in-flight jobs and exiting now", warning=True)
            engine.request_stop(force=True)
        else:
            logs.note(
                f"{signals.name(signum)}: stopping; in-flight jobs get "
                f"{config.grace.total_seconds():g}s to finish (signal again to force)",
                warning=True,
            )
            engine.request_stop()

    installed_here = signals.WORKER.install()
    signals.WORKER.attach(on_signal)
    close_metrics: Callable[[], None] = lambda: None  # noqa: E731
    try:
        if engine.stop_requested.is_set():
            logs.note("worker stopped before it started: nothing was claimed")
            return 0
        # Bound before anything else: a taken port fails the command, not a running
        # worker, and leaves no database behind.
        close_metrics = metrics.start(settings, metrics_address)
        engine.prepare()  # a database it cannot use fails the command before it starts
        logs.note(
            f"worker starting: db={settings.db} queues={','.join(config.queues)} "
            f"concurrency={config.concurrency}"
        )
        engine.start()
        return engine.run()
    finally:
        engine.close()
        close_metrics()
        signals.WORKER.detach()
        if installed_here:
            signals.WORKER.uninstall()
