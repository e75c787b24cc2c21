"""Whether the database answers: one line when it stops answering, one when it is back.

During an outage (a PostgreSQL restart, a failover, a network partition) every ledger
call of every actor fails with `DatabaseUnavailable` until the server answers again. The
actors carry on: the Writer keeps outcomes, starts and claim demand in memory and retries
them, maintenance and the Scheduler look again at their next round, and the leases keep
the claimed jobs safe meanwhile. What must not happen is a line per failed call: a worker
making a few calls a second would bury the one fact an operator needs under thousands of
lines. So every ledger of an engine reports to one `Outage`, which logs the first failure
and the first success after it (with how long the database was away), and nothing between.

A call that began before the database came back and fails afterwards (it met a connection
the restart had already cut) belongs to the outage already reported, not to a new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final, cast

from conductor.domain.config import Settings
from conductor.domain.errors import DatabaseUnavailable
from conductor.ledger.base import Ledger
from conductor.observe import logs

_LOCAL: Final = frozenset({"checkpoint_wal"})
"""Ledger methods that need not reach a server (PostgreSQL manages its own WAL): their
success says nothing about whether the database answers."""


class Outage:
    """The database's availability as this process sees it (shared by its actors)."""

    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        self._timer = timer
        self._lock = threading.Lock()
        self.down_since: float | None = None
        """When the current outage was first seen (`timer` seconds), None while it answers."""
        self._back_at = float("-inf")
        self.outages = 0
        """Outages seen so far."""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def now(self) -> float:
        return self._timer()

    def failed(self, began: float, error: DatabaseUnavailable) -> None:
        """A call that began at `began` (`now()`) found the database unreachable."""
        with self._lock:
            if self.down_since is not None or began <= self._back_at:
                return
            self.down_since = self._timer()
            self.outages += 1
        logs.note(
            f"database unreachable: {error}; claims paused, outcomes kept in memory and "
            "retried until it answers (leases keep the claimed jobs safe meanwhile)",
            warning=True,
        )

    def answered(self) -> None:
        """A call succeeded: the database is reachable."""
        if not self.down:  # the common case, without the lock
            return
        with self._lock:
            if self.down_since is None:
                return
            now = self._timer()
            away, self.down_since, self._back_at = now - self.down_since, None, now
        logs.note(
            f"database back after {away:.1f}s; writing what was kept, claims resume", warning=True
        )


class Watched:
    """A ledger whose calls report to an `Outage`; opened on first use, and opened again
    on the next use if opening failed, so an actor starting during an outage waits for
    the database like the others instead of failing.

    Every attribute of the ledger is reached through it (`__getattr__`); `watching` gives
    it to the actors as the `Ledger` it stands for."""

    def __init__(self, open_ledger: Callable[[], Ledger], outage: Outage) -> None:
        self._open = open_ledger
        self._outage = outage
        self._ledger: Ledger | None = None

    def _target(self) -> Ledger:
        if self._ledger is None:
            # Not `_call`: opening may not reach the server (a pool already open), so its
            # success does not say the database is back.
            began = self._outage.now()
            try:
                self._ledger = self._open()
            except DatabaseUnavailable as e:
                self._outage.failed(began, e)
                raise
        return self._ledger

    def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        began = self._outage.now()
        try:
            result = function(*args, **kwargs)
        except DatabaseUnavailable as e:
            self._outage.failed(began, e)
            raise
        self._outage.answered()
        return result

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target(), name)
        if not callable(attribute) or name in _LOCAL:
            return attribute

        def watched(*args: Any, **kwargs: Any) -> Any:
            return self._call(attribute, *args, **kwargs)

        return watched

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


def watching(
    open_ledger: Callable[[Settings], Ledger], outage: Outage
) -> Callable[[Settings], Ledger]:
    """`open_ledger`, giving ledgers that report to `outage`."""

    def open_watched(settings: Settings) -> Ledger:
        return cast(Ledger, Watched(lambda: open_ledger(settings), outage))

    return open_watched
