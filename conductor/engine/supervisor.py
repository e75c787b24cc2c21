"""The Supervisor: starts the engine's actors and replaces workers that crash.

Pykka has no supervision tree and a stopped actor cannot restart, so a worker's
`on_failure` tells the Supervisor, which starts a fresh actor for the same slot, gives it
to the Queue, and has the Writer rescue the attempt the crashed actor held (a `rescued`
event whose reason names the crash and the restart), so the job runs again.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any

import attrs
import pykka

from conductor.domain.clock import Clock
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.registry import Registry
from conductor.engine.inbox import ThreadActor
from conductor.engine.messages import (
    CoreCrashed,
    Dispatch,
    RescueAttempt,
    WorkerCrashed,
    WorkerReplaced,
)
from conductor.engine.queue import Queue
from conductor.engine.scheduler import Scheduler
from conductor.engine.upkeep import LASTING
from conductor.engine.worker import Worker
from conductor.engine.writer import Writer
from conductor.observe import logs


@attrs.frozen(kw_only=True)
class Actors:
    """References to the running actors (for the runtime and tests)."""

    queue: pykka.ActorRef[Any]
    writer: pykka.ActorRef[Any]
    scheduler: pykka.ActorRef[Any]
    workers: dict[str, pykka.ActorRef[Any]]


@attrs.frozen
class GetActors:
    """Ask for the current `Actors`."""


class Supervisor(ThreadActor):
    use_daemon_thread = True

    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        registry: Registry,
        clock: Clock,
        open_ledger: Any,
        wake: Any = None,
        on_fatal: Any = None,
    ) -> None:
        super().__init__()
        self._wake = wake
        self._on_fatal = on_fatal
        self._settings = settings
        self._config = config
        self._registry = registry
        self._clock = clock
        self._open_ledger = open_ledger
        self._workers: dict[str, pykka.ActorRef[Any]] = {}
        self._waiting: deque[Dispatch] = deque()

    def on_start(self) -> None:
        self._queue = Queue.start(self._config.prefetch, self.actor_ref, waiting=self._waiting)
        self._writer = Writer.start(
            self._settings,
            self._config,
            self._clock,
            self._queue,
            self._open_ledger,
            self._wake,
            self.actor_ref,
        )
        for number in range(1, self._config.concurrency + 1):
            slot = f"w{number}"
            self._workers[slot] = self._start_worker(slot)
        self._scheduler = Scheduler.start(
            self._settings,
            self._config,
            self._queue,
            self._writer,
            self._open_ledger,
            self.actor_ref,
        )
        self._queue.proxy().connect(self._writer, self._workers).get()

    def _start_worker(self, slot: str) -> pykka.ActorRef[Any]:
        return Worker.start(
            slot,
            self._queue,
            self.actor_ref,
            self._registry,
            self._waiting,
            self._clock,
            self._settings.max_result_bytes,
        )

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, WorkerCrashed):
            fresh = self._start_worker(message.slot)
            self._workers[message.slot] = fresh
            logs.note(
                f"worker {message.slot} crashed ({message.error}); started a fresh one",
                warning=True,
                slot=message.slot,
                error=message.error,
            )
            if message.job is not None:
                self._writer.tell(
                    RescueAttempt(
                        job_id=message.job.id,
                        attempt=message.job.attempt,
                        reason=(
                            f"worker actor {message.slot} crashed ({message.error}); "
                            "the supervisor restarted it"
                        ),
                    )
                )
            self._queue.tell(WorkerReplaced(slot=message.slot, ref=fresh))
        elif isinstance(message, CoreCrashed):
            # Only worker actors can be replaced safely: the Writer, Queue and Scheduler
            # hold the process's view of its claims. Stop the process instead; its leases
            # are rescued by any other worker (at once on this host) or on restart.
            if not isinstance(message.cause, LASTING):  # that one is the exit's own line
                logs.note(
                    f"engine actor {message.actor} crashed ({message.error}); stopping this worker",
                    warning=True,
                )
            if self._on_fatal is not None:
                self._on_fatal(f"{message.actor} crashed: {message.error}", message.cause)
        elif isinstance(message, GetActors):
            return Actors(
                queue=self._queue,
                writer=self._writer,
                scheduler=self._scheduler,
                workers=dict(self._workers),
            )
        return None

    def on_stop(self) -> None:
        for ref in [self._scheduler, *self._workers.values(), self._queue]:
            ref.stop(block=False)
        with contextlib.suppress(pykka.ActorDeadError):
            self._writer.stop(block=True, timeout=10)
