"""The Queue: demand-driven dispatch with a hard concurrency limit.

It knows which worker slots are free and holds a small buffer of claimed jobs, which it
shares with the workers: a worker that finishes an attempt takes the next waiting job
itself and says so in its `Finished`, so a busy slot goes from job to job without a round
trip through this actor's thread, while jobs for idle slots are sent to them (`Run`). The
buffer is a `deque`, whose `append` and `popleft` are atomic: each job is taken by exactly
one worker, or by the Queue when a shutdown gives unstarted jobs back. It asks
the Writer for exactly as many jobs as would fill the free slots plus the prefetch (fixed,
or adapted to how long jobs take against how long a claim takes: `prefetch.py`), and
never more, so jobs are claimed only when someone can run them soon, memory stays bounded
whatever the backlog, and a slow Writer slows claiming (back-pressure) instead of letting
claims pile up. After a claim comes back short it stops asking until woken.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka

from conductor.domain.decisions import Outcome
from conductor.engine.core import CoreActor
from conductor.engine.messages import (
    Began,
    Claimed,
    Demand,
    Dispatch,
    Drain,
    Finished,
    Forward,
    LateResult,
    QueueState,
    QueueStatus,
    Report,
    Run,
    Wake,
    WorkerReplaced,
)
from conductor.engine.prefetch import Prefetch
from conductor.ledger.base import ClaimedJob


class Queue(CoreActor):
    use_daemon_thread = True

    def __init__(
        self,
        prefetch: int | None,
        supervisor: pykka.ActorRef[Any] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        waiting: deque[Dispatch] | None = None,
    ) -> None:
        """`prefetch` None adapts the depth to the jobs (see `prefetch.py`), timed by
        `timer` (seconds; tests step it)."""
        super().__init__(supervisor)
        self._timer = timer
        self._fixed_prefetch = prefetch
        self._prefetch = Prefetch.fixed(prefetch if prefetch is not None else 0)
        self._depth = self._prefetch.floor
        self._writer: pykka.ActorRef[Any] | None = None
        self._workers: dict[str, pykka.ActorRef[Any]] = {}
        self._idle: deque[str] = deque()
        self._buffer: deque[Dispatch] = deque() if waiting is None else waiting
        self._asked = 0
        self._exhausted = False
        self._woken_while_asking = False
        self._draining = False
        self._idle_event = threading.Event()
        self._finished: list[Outcome] = []
        self._began: list[Began] = []
        self._sent_at: dict[str, float] = {}
        self._asked_at = 0.0

    def connect(self, writer: pykka.ActorRef[Any], workers: dict[str, pykka.ActorRef[Any]]) -> None:
        """Called once by the Supervisor through a proxy, before any other message."""
        self._writer = writer
        self._workers = dict(workers)
        self._idle.extend(workers)
        if self._fixed_prefetch is None:
            self._prefetch = Prefetch.adaptive(len(workers))
            self._depth = self._prefetch.floor
        self._want_more()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Finished):
            if self._prefetch.adapts and message.slot in self._sent_at:
                self._prefetch.observe_job(self._timer() - self._sent_at[message.slot])
                self._depth = self._prefetch.depth(len(self._workers))
            if message.took is None:
                self._idle.append(message.slot)
            else:
                self._started(message.slot)
            # Forward before dispatching, which may signal idle: whoever waits for idle
            # and then asks this actor anything finds the outcome on its way to the Writer.
            self._forward_soon(message.outcome)
            self._dispatch()
        elif isinstance(message, Forward):
            # Outcomes first, then the demand they free up: the Writer settles and claims
            # in one transaction.
            assert self._writer is not None
            self._writer.tell(Report(tuple(self._finished), tuple(self._began)))
            self._finished.clear()
            self._began.clear()
            self._want_more()
        elif isinstance(message, Began):
            # Batched with the outcomes into the Writer's next group commit.
            self._forward_later()
            self._began.append(message)
        elif isinstance(message, Claimed):
            self._asked -= message.asked
            if self._prefetch.adapts:
                self._prefetch.observe_claim(self._timer() - self._asked_at)
                self._depth = self._prefetch.depth(len(self._workers))
            if not self._draining:  # else they stay held by the Writer, which releases them
                self._buffer.extend(message.jobs)
            if len(message.jobs) < message.asked:
                # A short claim means nothing more was due when it ran, unless a wake-up
                # came in meanwhile: its job may have committed after the claim's snapshot,
                # so ask once more rather than wait for the next poll.
                self._exhausted = not self._woken_while_asking
            if self._asked == 0:
                self._woken_while_asking = False
            self._dispatch()
            self._want_more()
        elif isinstance(message, LateResult):
            self._forward_soon(message.outcome)
        elif isinstance(message, Wake):
            self._exhausted = False
            self._woken_while_asking = self._asked > 0
            self._want_more()
        elif isinstance(message, WorkerReplaced):
            self._workers[message.slot] = message.ref
            self._idle.append(message.slot)
            self._dispatch()
            self._want_more()
        elif isinstance(message, Drain):
            self._draining = True
            return self._take_unstarted(), self._idle_event
        elif isinstance(message, QueueState):
            return QueueStatus(
                busy=len(self._workers) - len(self._idle),
                buffered=len(self._buffer),
                asked=self._asked,
                exhausted=self._exhausted,
                prefetch=self._depth,
            )
        return None

    def _started(self, slot: str) -> None:
        """`slot` began a job now: its `Finished` times the job for the adaptive prefetch."""
        if self._prefetch.adapts:
            self._sent_at[slot] = self._timer()

    def _take_unstarted(self) -> tuple[ClaimedJob, ...]:
        """Empty the buffer one job at a time: a worker may be taking from it at the same
        moment, and each `popleft` hands a job to exactly one of us."""
        unstarted = []
        while True:
            try:
                unstarted.append(self._buffer.popleft().job)
            except IndexError:
                break
        self._signal_idle()
        return tuple(unstarted)

    def _forward_soon(self, outcome: Outcome) -> None:
        self._forward_later()
        self._finished.append(outcome)

    def _forward_later(self) -> None:
        """The first outcome or start of a batch asks for a `Forward`; what arrives before
        this actor reaches it joins the same Report (one Writer message, one commit)."""
        if not self._finished and not self._began:
            self.actor_ref.tell(Forward())

    def _dispatch(self) -> None:
        while self._idle and not self._draining:
            try:
                # Not `while self._buffer`: a worker may take the last job between a look
                # and the pop.
                dispatch = self._buffer.popleft()
            except IndexError:
                break
            slot = self._idle.popleft()
            self._started(slot)
            self._workers[slot].tell(Run(dispatch))
        self._signal_idle()

    def _signal_idle(self) -> None:
        if self._draining and len(self._idle) == len(self._workers):
            self._idle_event.set()

    def _want_more(self) -> None:
        if self._draining or self._exhausted or self._writer is None:
            return
        wanted = len(self._idle) + self._depth - len(self._buffer) - self._asked
        if wanted > 0:
            if self._asked == 0:
                self._asked_at = self._timer()
            self._asked += wanted
            # This demand is claimed after any wake-up received so far: it answers them,
            # and a short claim from now on means the work has run out.
            self._woken_while_asking = False
            self._writer.tell(Demand(wanted))
