"""The messages actors send each other. Frozen: a message is a fact, not a shared object."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import attrs

from conductor.domain.decisions import Outcome
from conductor.ledger.base import ClaimedJob


@attrs.frozen(kw_only=True)
class Dispatch:
    """A claimed attempt with the cancellation flag its handler will see."""

    job: ClaimedJob
    cancel: threading.Event = attrs.field(eq=False, repr=False)


# -- to the Writer -----------------------------------------------------------------------
@attrs.frozen
class Demand:
    """The Queue wants `count` more jobs claimed."""

    count: int


@attrs.frozen(kw_only=True)
class Began:
    """A worker slot began the handler of a claimed attempt at `at`."""

    job_id: int
    attempt: int
    at: dt.datetime


@attrs.frozen
class Report:
    """Workers began and finished these attempts (the Queue forwards them together)."""

    outcomes: tuple[Outcome, ...]
    began: tuple[Began, ...] = ()


@attrs.frozen
class Flush:
    """Commit what has accumulated (sent by the Writer to itself: group commit)."""


@attrs.frozen
class Maintain:
    """Heartbeats, rescues and cancellation checks, as of `now`."""

    now: dt.datetime
    sent: float = attrs.field(factory=time.monotonic, eq=False)
    """When it was sent: a round that began later covers it (a server that is away makes
    each round wait for a connection, and the requests sent meanwhile need no round each)."""


@attrs.frozen(kw_only=True)
class RescueAttempt:
    """Give back the attempt a crashed worker actor held (the Supervisor's request)."""

    job_id: int
    attempt: int
    reason: str


@attrs.frozen
class ReleaseAll:
    """Shutdown: give every attempt still held back to the queue (ask; returns `Released`)."""

    reason: str


@attrs.frozen(kw_only=True)
class Released:
    """The Writer's answer to `ReleaseAll`."""

    count: int
    """`released` events written."""
    kept: int
    """Attempts still held whose release could not be written: their leases expire and
    another worker rescues them."""
    error: str | None
    """The last write failure, to say why."""


@attrs.frozen
class Release:
    """Give back claimed attempts that never started (ask; returns a count)."""

    jobs: tuple[ClaimedJob, ...]
    reason: str


@attrs.frozen
class StopClaiming:
    """Shutdown has begun: claim nothing more."""


# -- to the Queue ------------------------------------------------------------------------
@attrs.frozen
class Claimed:
    """What the Writer claimed for an earlier Demand of `asked` jobs."""

    jobs: tuple[Dispatch, ...]
    asked: int


@attrs.frozen
class Finished:
    """Worker `slot` ran an attempt. It is free again unless it took the next waiting job
    itself (`took`), which it then runs without a round trip through the Queue."""

    slot: str
    outcome: Outcome
    took: Dispatch | None = None


@attrs.frozen
class LateResult:
    """The outcome of an attempt that timed out, arriving after its slot was freed; the
    Queue passes it to the Writer (it is recorded as `result_ignored`)."""

    outcome: Outcome


@attrs.frozen
class Forward:
    """Send the Writer what began and finished since the last Forward (sent by the Queue to itself,
    behind the Finished messages already waiting: one Report for all of them)."""


@attrs.frozen
class Wake:
    """Something may have become due: ask for work if there are free slots."""


@attrs.frozen
class Drain:
    """Stop dispatching; hand back prefetched jobs that never started (ask)."""


@attrs.frozen
class QueueState:
    """Ask the Queue how busy it is (returns a QueueStatus)."""


@attrs.frozen(kw_only=True)
class QueueStatus:
    busy: int
    buffered: int
    asked: int
    exhausted: bool
    prefetch: int
    """The prefetch depth the Queue works to now."""


@attrs.frozen(kw_only=True)
class WorkerReplaced:
    """The Supervisor started a fresh actor for `slot`."""

    slot: str
    ref: Any


# -- to Workers --------------------------------------------------------------------------
@attrs.frozen
class Run:
    """Run one attempt."""

    dispatch: Dispatch


@attrs.frozen
class InjectFault:
    """Test hook: fail as an actor (not as a handler) when the next Run arrives."""


# -- to the Supervisor -------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class WorkerCrashed:
    slot: str
    job: ClaimedJob | None
    error: str


@attrs.frozen(kw_only=True)
class CoreCrashed:
    """The Writer, Queue or Scheduler failed: the process cannot go on safely."""

    actor: str
    error: str
    cause: BaseException | None = None
    """The exception itself: a lasting ledger error ends the process as that error."""


# -- to the Scheduler --------------------------------------------------------------------
@attrs.frozen
class Tick:
    """Wake-up or timeout: look at the clock and the queue; returns a TickResult (ask)."""

    now: dt.datetime
    woken: bool = False
    """True when a wake-up signal (not a timeout) caused this tick."""
    queue_woken_at: dt.datetime | None = None
    """When the runtime last told the Queue `Wake` before this tick, if it did: every job
    due by then was looked for by a claim since, so the Scheduler wakes the Queue only for
    a job that fell due later (another `Wake` would cost another, empty, claim)."""


@attrs.frozen(kw_only=True)
class TickResult:
    sleep: float
    """Seconds until the Scheduler next needs to look."""
    drained: bool
    """Burst mode: nothing due, in flight, or held by a lease that can still come back."""
