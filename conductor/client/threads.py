"""A small, bounded pool of threads, each holding a handle of its own (a `Conductor`).

The ledger is synchronous (sqlite3, psycopg) and one handle belongs to one thread at a
time (`conductor.ledger.base.Ledger`). The async facade (`conductor.client.aio`) runs its
calls here rather than in the event loop's default executor: that one is the
application's, shared with everything it runs in threads, and a database stalled behind
another process's lock would otherwise take its threads from unrelated work. A pool of
its own also bounds how many connections the facade opens.

Each thread opens its handle on its first call and closes it when the pool closes, in
that same thread, so a handle is never used by two threads nor closed under a call. A
call still queued when its caller gives up (`Future.cancel`) is never run.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from conductor.domain.errors import ConductorError

T = TypeVar("T")


class Closable(Protocol):
    def close(self) -> None: ...


H = TypeVar("H", bound=Closable)

_Call = tuple[Callable[[Any], Any], "concurrent.futures.Future[Any]"]


class PoolClosed(ConductorError):
    """A call was made on a handle that has been closed."""


class HandlePool(Generic[H]):
    """Up to `size` threads named `name-N`, started as calls need them."""

    def __init__(self, open_handle: Callable[[], H], size: int, name: str) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one thread")
        self._open = open_handle
        self._size = size
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._running = 0

    @property
    def threads(self) -> int:
        """How many threads the pool has started (never more than its size)."""
        return len(self._threads)

    def submit(self, call: Callable[[H], T]) -> concurrent.futures.Future[T]:
        """Run `call(handle)` in one of the pool's threads; its future has the answer."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise PoolClosed("this handle is closed; expected a call before close()")
            self._calls.put((call, future))
            if self._idle:
                self._idle -= 1  # a waiting thread takes it
            elif len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
                )
                self._threads.append(thread)
                self._running += 1
                thread.start()
        return future

    def _serve(self) -> None:
        handle: H | None = None
        try:
            while (item := self._calls.get()) is not None:
                call, future = item
                if future.set_running_or_notify_cancel():
                    try:
                        if handle is None:
                            handle = self._open()
                        future.set_result(call(handle))
                    except BaseException as e:  # noqa: BLE001 - the caller receives it
                        future.set_exception(e)
                with self._lock:
                    self._idle += 1
        finally:
            if handle is not None:
                handle.close()
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                self._stopped.set_result(None)

    def close(self) -> concurrent.futures.Future[None]:
        """Refuse new calls; the threads finish the calls already queued, close their
        handles and exit. The future is done when the last one has."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for _ in self._threads:
                    self._calls.put(None)
                if not self._threads:
                    self._stopped.set_result(None)
        return self._stopped
