"""Finished-job wake-ups brought into an event loop, for every awaiting result at once.

`Conductor.result` sleeps on a wake-up listener of its own (`results.listen_finished`:
LISTEN `conductor_finished` on PostgreSQL, a datagram socket on SQLite). A coroutine must
not sleep in the loop's thread, and a thread per awaiting result would cost a thread and,
on PostgreSQL, a listening connection per waiter. So one `FinishedWatch` per async facade
owns the one listener, in one thread, and turns each wake-up into a new *generation* in
the loop; an awaiting result notes the generation, looks at its job, and sleeps until the
generation moves on (or its fallback poll is due). A waiter that is cancelled leaves
nothing behind: it was only awaiting an `asyncio.Event`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from conductor.client.results import POLL_FALLBACK, listen_finished

if TYPE_CHECKING:
    from conductor.ledger.wakeup import Waiter


class FinishedWatch:
    """One listening thread for the finished jobs of `db`, reporting to `loop`."""

    def __init__(self, db: str, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._db = db
        self.generation = 0
        """How many wake-ups the loop has seen; it moves on after a commit that finished
        jobs (on SQLite: on this host)."""
        self._changed = asyncio.Event()
        self._listening = asyncio.Event()
        self._closed = threading.Event()
        self._listener: Waiter | None = None
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._watch, name="conductor-results", daemon=True)
        self._thread.start()

    async def listening(self) -> None:
        """Return once wake-ups are being listened for: a job that finishes after this
        moves the generation on."""
        await self._listening.wait()

    async def wait(self, seen: int, timeout: float) -> None:
        """Sleep until the generation is past `seen`, or `timeout` seconds."""
        if self.generation != seen:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _watch(self) -> None:
        try:
            try:
                listener = listen_finished(self._db)
            except Exception:  # noqa: BLE001 - without wake-ups, waiters poll
                listener = None
            self._listener = listener
            self._tell(self._listening.set)
            while not self._closed.is_set():
                woken = listener.wait(POLL_FALLBACK) if listener else self._closed.wait(1.0)
                if woken and not self._closed.is_set():
                    self._tell(self._next)
        finally:
            if self._listener is not None:
                self._listener.close()
            self._stopped.set_result(None)

    def _tell(self, callback: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            self.loop.call_soon_threadsafe(callback)

    def _next(self) -> None:
        """In the loop: a new generation, and every sleeping waiter woken."""
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def close(self) -> concurrent.futures.Future[None]:
        """Stop listening; the future is done once the listener is closed."""
        self._closed.set()
        listener = self._listener
        if listener is not None:
            listener.wake()
        return self._stopped
