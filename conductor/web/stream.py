"""Live updates: one watcher per process, told of new events, fanned out to every browser.

The `Watcher` thread owns one ledger handle. It sleeps on the ledger's wake-ups for
finished jobs (`conductor.ledger.wakeup.finished_listener`: a datagram socket on SQLite,
LISTEN on PostgreSQL) with a short timeout, so every other event (an enqueue, a claim, an
operator's pause) is found by the poll of `last_seq` that follows: a new event is seen
within `POLL` seconds, at once for finished jobs. When the log moved it reads the status
counts (the small `counters` table) and publishes `{"seq", "counts"}` to each subscribed
stream. Each read is one statement in autocommit, so no read transaction stays open to pin
SQLite's WAL, and however many browsers watch, the database sees one reader.

The thread starts with the first subscriber and stops after the last one leaves.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from conductor.domain.config import Settings
from conductor.domain.errors import ConductorError
from conductor.domain.reports import Stats
from conductor.ledger.base import Ledger
from conductor.ledger.open import open_ledger

POLL: Final = 0.5
"""Seconds between looks at `last_seq` when no wake-up comes."""
MIN_GAP: Final = 0.25
"""The least time between two reads, however many wake-ups arrive (a busy worker pool
finishes jobs in hundreds of commits a second): at most four looks a second."""
HEARTBEAT: Final = 15.0
"""Seconds between keep-alive comments on an idle stream (proxies drop silent ones)."""

Message = dict[str, Any]


class Watcher:
    """Publishes a `changed` message whenever the ledger's last seq moves."""

    def __init__(self, settings: Settings, *, poll: float = POLL) -> None:
        self.settings = settings
        self.poll = poll
        self._lock = threading.Lock()
        self._subscribers: dict[asyncio.Queue[Message], asyncio.AbstractEventLoop] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.latest: Message | None = None
        self.reads = 0
        """How many times the watcher read the ledger (what the database paid)."""

    def subscribe(self) -> asyncio.Queue[Message]:
        """A queue of this event loop that receives every message from now on, starting
        with the latest one if there is one (taken under the lock `_publish` holds, so a
        message is never missed between the two)."""
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=16)
        with self._lock:
            self._subscribers[queue] = asyncio.get_running_loop()
            if self.latest is not None:
                queue.put_nowait(self.latest)
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._stop,),
                    name="conductor-dashboard-watcher",
                    daemon=True,
                )
                self._thread.start()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Message]) -> None:
        with self._lock:
            self._subscribers.pop(queue, None)
            if not self._subscribers:
                self._stop.set()
                self._thread = None
                self.latest = None

    def close(self) -> None:
        with self._lock:
            self._subscribers.clear()
            self._stop.set()
            self._thread = None

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _run(self, stop: threading.Event) -> None:
        ledger: Ledger | None = None
        waiter = _waiter(self.settings.db)
        seen = -1
        try:
            while not stop.is_set():
                begun = time.monotonic()
                try:
                    if ledger is None:
                        ledger = open_ledger(self.settings, create=False)
                    seq = ledger.last_seq()
                    self.reads += 1
                    if seq != seen:
                        counts = Stats.from_counts(ledger.counts()).overall.as_dict()
                        seen = seq
                        self._publish({"seq": seq, "counts": counts})
                except ConductorError:
                    pass  # the database is away: look again at the next poll
                rest = self.poll - (time.monotonic() - begun)
                if waiter is None:
                    stop.wait(max(rest, 0.0))
                elif rest > 0:
                    waiter.wait(rest)
                    gap = MIN_GAP - (time.monotonic() - begun)
                    if gap > 0:
                        stop.wait(gap)
        finally:
            if waiter is not None:
                waiter.close()
            if ledger is not None:
                ledger.close()

    def _publish(self, message: Message) -> None:
        with self._lock:
            self.latest = message
            targets = list(self._subscribers.items())
        for queue, loop in targets:
            try:
                loop.call_soon_threadsafe(_offer, queue, message)
            except RuntimeError:  # its event loop is closed: the stream is gone
                self.unsubscribe(queue)


def _offer(queue: asyncio.Queue[Message], message: Message) -> None:
    """Put `message` on a stream's queue; a stream that is far behind keeps only the
    newest (each message carries the whole state, so older ones are worth nothing)."""
    if queue.full():
        while not queue.empty():
            queue.get_nowait()
    queue.put_nowait(message)


def _waiter(db: str) -> Any:
    from conductor.ledger import wakeup

    try:
        return wakeup.finished_listener(db)
    except (OSError, ConductorError):
        return None  # no socket here: polling alone still finds every event


async def events(watcher: Watcher) -> AsyncIterator[str]:
    """A server-sent event stream of `changed` messages (the current state first)."""
    queue = watcher.subscribe()
    try:
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), HEARTBEAT)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            yield _frame(message)
    finally:
        watcher.unsubscribe(queue)


def _frame(message: Message) -> str:
    return f"event: changed\nid: {message['seq']}\ndata: {json.dumps(message)}\n\n"
