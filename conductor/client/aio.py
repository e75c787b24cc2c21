"""`AsyncConductor`: the Python API for asyncio applications (FastAPI, Starlette, ...).

Every method is a coroutine that never blocks the event loop. The ledger speaks to its
database synchronously (sqlite3, psycopg), so each call runs in a small pool of threads
of the facade's own (`conductor.client.threads`), each thread with its own `Conductor`:
not in the loop's default executor, which belongs to the application, so a database held
up by another process's lock delays conductor's calls and nothing else, and the pool
bounds the connections conductor opens. The caller's context variables (the current
trace span, for one) travel with each call, as with `asyncio.to_thread`.

Awaiting a result (`result`, `outcome`) takes no thread per waiter: one thread per facade
listens for finished jobs and wakes every waiter in the loop (`conductor.client.finished`).

Cancelling a coroutine of this class withdraws its call if no thread has started it; a
call already running finishes in its thread (an enqueue then commits), and its answer is
dropped. An `AsyncConductor` belongs to the event loop that first awaits a result on it.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from conductor.client import Conductor
from conductor.client.finished import FinishedWatch
from conductor.client.results import POLL_FALLBACK, JobOutcome, unwrap, wait_seconds
from conductor.client.threads import HandlePool
from conductor.domain.clock import Clock, SystemClock
from conductor.domain.config import Settings
from conductor.domain.errors import ConductorError, InvalidInput

if TYPE_CHECKING:
    from typing import Unpack

    from conductor.client.enqueuing import EnqueueOptions, PayloadInput
    from conductor.domain.job_row import JobRow
    from conductor.domain.reports import ActionReport, Enqueued, Stats
    from projections.history import HistoryEntry

T = TypeVar("T")

DEFAULT_THREADS: Final = 4
"""Calls that run at once (and connections held): enough for enqueues to overlap reads on
PostgreSQL; SQLite serialises writers anyway."""

__all__ = ["AsyncConductor"]


class AsyncConductor:
    """`Conductor`'s methods as coroutines. Use `async with`, or `await open()` and
    `await close()`.

    `db`, `settings`, `clock` and `create` are `Conductor`'s; `threads` bounds the calls
    that run at once. Nothing touches the database until `open()` (or the first call),
    which raises what `Conductor` would for a missing or unusable database.
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        create: bool = True,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidInput(f"invalid threads {threads!r}: expected a whole number, at least 1")
        self.settings = settings or Settings.from_env(db)
        self.clock: Clock = clock or SystemClock()
        self._create = create
        self._pool: HandlePool[Conductor] = HandlePool(self._handle, threads, "conductor-async")
        self._watch: FinishedWatch | None = None

    def _handle(self) -> Conductor:
        return Conductor(settings=self.settings, clock=self.clock, create=self._create)

    async def open(self) -> AsyncConductor:
        """Open the database now, so that a missing or unusable one fails here."""
        await self.call(lambda _: None)
        return self

    async def close(self) -> None:
        """Stop listening for results, let calls already made finish, close every
        thread's handle."""
        watch, self._watch = self._watch, None
        if watch is not None:
            await asyncio.wrap_future(watch.close())
        await asyncio.wrap_future(self._pool.close())

    async def __aenter__(self) -> AsyncConductor:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def call(self, method: Callable[[Conductor], T]) -> T:
        """`method(conductor)` in one of the facade's threads, for what has no coroutine
        here (schedules, queues, bulk actions by filter):
        `await app.call(lambda c: c.pause_queue("mail", by="ops"))`."""
        context = contextvars.copy_context()
        return await asyncio.wrap_future(
            self._pool.submit(lambda handle: context.run(method, handle))
        )

    # -- enqueue ------------------------------------------------------------------------
    # The options are `Conductor.enqueue`'s (`EnqueueOptions`), passed on as they are.
    async def enqueue(self, payload: PayloadInput, **options: Unpack[EnqueueOptions]) -> int:
        """`Conductor.enqueue`: one job; its id."""
        return (await self.enqueue_many([payload], **options))[0]

    async def enqueue_many(
        self, payloads: Iterable[PayloadInput], **options: Unpack[EnqueueOptions]
    ) -> list[int]:
        """`Conductor.enqueue_many`: many jobs in one transaction, all or none."""
        return [one.id for one in await self.enqueue_each(payloads, **options)]

    async def enqueue_each(
        self, payloads: Iterable[PayloadInput], **options: Unpack[EnqueueOptions]
    ) -> list[Enqueued]:
        """`Conductor.enqueue_each`: as `enqueue_many`, saying which were duplicates."""
        items = list(payloads)  # read here: an iterator belongs to the caller's thread
        return await self.call(lambda c: c.enqueue_each(items, **options))

    # -- reading ------------------------------------------------------------------------
    async def job(self, job_id: int) -> JobRow:
        """`Conductor.job`: one job's row; `UnknownJob` for an id no job has."""
        return await self.call(lambda c: c.job(job_id))

    async def jobs(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
    ) -> list[JobRow]:
        """`Conductor.jobs`: jobs in id order; with `limit`, the newest `limit`."""
        return await self.call(lambda c: c.jobs(status=status, task=task, queue=queue, limit=limit))

    async def stats(self) -> Stats:
        """`Conductor.stats`: jobs by status, overall and per queue and task."""
        return await self.call(lambda c: c.stats())

    async def history(self, job_id: int) -> tuple[HistoryEntry, ...]:
        """`Conductor.history`: one job's timeline from the log."""
        return await self.call(lambda c: c.history(job_id))

    # -- operator actions ---------------------------------------------------------------
    async def cancel(self, job_id: int, *, by: str = "operator", reason: str = "cancelled") -> None:
        """`Conductor.cancel`: a pending or running job (a running handler sees it)."""
        await self.call(lambda c: c.cancel(job_id, by=by, reason=reason))

    async def retry(self, job_id: int, *, by: str = "operator", reason: str = "requeued") -> None:
        """`Conductor.retry`: a failed or cancelled job back to pending."""
        await self.call(lambda c: c.retry(job_id, by=by, reason=reason))

    async def cancel_many(
        self, job_ids: Iterable[int], *, by: str = "operator", reason: str = "cancelled"
    ) -> ActionReport:
        """`Conductor.cancel_many`: each job that can be; the others are reported."""
        ids = list(job_ids)
        return await self.call(lambda c: c.cancel_many(ids, by=by, reason=reason))

    async def retry_many(
        self, job_ids: Iterable[int], *, by: str = "operator", reason: str = "requeued"
    ) -> ActionReport:
        """`Conductor.retry_many`: each job that can be; the others are reported."""
        ids = list(job_ids)
        return await self.call(lambda c: c.retry_many(ids, by=by, reason=reason))

    # -- results ------------------------------------------------------------------------
    async def result(self, job_id: int, *, timeout: float | dt.timedelta | None = 0) -> Any:
        """`Conductor.result`, awaited: the job's decoded return value, waiting up to
        `timeout` (0 looks once, None waits as long as it takes). Raises
        `JobFailedError`, `JobCancelledError`, `ResultTimeout` or `UnknownJob`."""
        return unwrap(await self.outcome(job_id, timeout=timeout), timeout)

    async def outcome(self, job_id: int, *, timeout: float | dt.timedelta | None = 0) -> JobOutcome:
        """`Conductor.outcome`, awaited: where the job stands once it has finished or
        `timeout` has passed; never raises for a failed, cancelled or unfinished job."""
        loop = asyncio.get_running_loop()
        seconds = wait_seconds(timeout)
        deadline = None if seconds is None else loop.time() + seconds
        watch: FinishedWatch | None = None
        seen = 0
        while True:
            found = await self.call(lambda c: c.outcome(job_id))
            if found.finished:
                return found
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return found
            if watch is None:
                # Listen first, then look again: a job that finishes in between is seen
                # by that look, and one that finishes later moves the generation on.
                watch = await self._watching(loop)
            else:
                pause = POLL_FALLBACK if remaining is None else min(remaining, POLL_FALLBACK)
                await watch.wait(seen, pause)
            seen = watch.generation

    async def _watching(self, loop: asyncio.AbstractEventLoop) -> FinishedWatch:
        if self._watch is None:
            self._watch = FinishedWatch(self.settings.db, loop)
        elif self._watch.loop is not loop:
            raise ConductorError(
                "this AsyncConductor waits for results in another event loop; "
                "expected one AsyncConductor per event loop"
            )
        watch = self._watch
        await watch.listening()
        return watch
