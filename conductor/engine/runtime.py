"""Starting, running and stopping the engine in one process.

The main thread sleeps on the wake-up socket for as long as the Scheduler asks, and turns
SIGINT/SIGTERM into a graceful shutdown: stop claiming, hand back prefetched jobs, let
in-flight attempts finish within the grace period, release the rest (`released` events,
so another worker takes them at once) and exit 0. A second signal skips the wait.
"""

from __future__ import annotations

import signal
import threading
import types
from collections.abc import Callable
from typing import Any, cast

import pykka

from conductor import examples, wakeup
from conductor.clock import Clock, SystemClock
from conductor.config import Settings, WorkerConfig
from conductor.engine import logs
from conductor.engine.messages import Drain, Release, ReleaseAll, StopClaiming, Tick, TickResult
from conductor.engine.supervisor import Actors, GetActors, Supervisor
from conductor.ledger.base import ClaimedJob, Ledger
from conductor.registry import REGISTRY, Registry

_ = examples  # the example tasks are always registered


def open_writable(settings: Settings) -> Ledger:
    from conductor.client import open_ledger

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
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._listener: wakeup.Listener | None = None

    def start(self) -> Actors:
        # Create the database (and its schema) before actors open their connections.
        self._open_ledger(self.settings).close()
        self._listener = wakeup.Listener(self.settings.db)
        self._supervisor = Supervisor.start(
            self.settings, self.config, self.registry, self.clock, self._open_ledger, self.wake
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

    def request_stop(self, *, force: bool = False) -> None:
        (self.force_requested if force else self.stop_requested).set()
        self.wake()

    def run(self) -> int:
        """Run until stopped (or, in burst mode, until the work runs out); returns 0."""
        assert self._listener is not None
        woken = True
        while not self.stop_requested.is_set():
            result = self.actors().scheduler.ask(Tick(self.clock.now(), woken))
            assert isinstance(result, TickResult)
            if result.drained:
                logs.note("burst: nothing due, in flight or leased; stopping")
                break
            woken = self._listener.wait(result.sleep)
        return self.shutdown()

    def shutdown(self) -> int:
        actors = self.actors()
        actors.writer.tell(StopClaiming())
        unstarted, idle = cast(
            tuple[tuple[ClaimedJob, ...], threading.Event], actors.queue.ask(Drain())
        )
        actors.writer.ask(Release(unstarted, "worker shutting down; never started"))
        grace = self.config.grace.total_seconds()
        waited = 0.0
        while not idle.is_set() and waited < grace and not self.force_requested.is_set():
            idle.wait(min(0.1, grace - waited))
            waited += 0.1
        released = actors.writer.ask(ReleaseAll("worker shut down before the attempt finished"))
        if released:
            logs.note(f"released {released} unfinished attempts", warning=True)
        self.close()
        return 0

    def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop(block=True, timeout=15)
            self._supervisor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None


def run_worker(settings: Settings, config: WorkerConfig, *, registry: Registry = REGISTRY) -> int:
    """`conductor worker`: run an engine in this process until signalled."""
    engine = Engine(settings, config, registry=registry)

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        if engine.stop_requested.is_set():
            logs.note("second signal: releasing in-flight jobs and exiting now", warning=True)
            engine.request_stop(force=True)
        else:
            logs.note(
                f"{signal.Signals(signum).name}: stopping; in-flight jobs get "
                f"{config.grace.total_seconds():g}s to finish (signal again to force)",
                warning=True,
            )
            engine.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        engine.start()
        logs.note(
            f"worker started: db={settings.db} queues={','.join(config.queues)} "
            f"concurrency={config.concurrency}"
        )
        return engine.run()
    finally:
        engine.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
