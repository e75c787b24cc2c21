"""Wake-up signals between processes on one host: a datagram instead of a poll.

Every worker process binds a Unix datagram socket in a directory that belongs to its
database (named by a hash of the database's real path, under the temp dir, mode 0700:
socket paths are limited to ~100 bytes, so they cannot always sit beside the file).
After committing an enqueue, cancel or retry, a process sends one byte to each socket
there; a worker's scheduler wakes at once instead of at its next poll. Sockets of dead
processes refuse the datagram and are removed. Losing a signal costs latency, never a
job: workers still poll every `poll_interval`.

On PostgreSQL the commit itself notifies (`NOTIFY conductor`, delivered to every host), so
`notify` does nothing there and `listener` returns a session that LISTENs
(`conductor.ledger.postgres.listen`). Callers ask `listener(db)` and `notify(db)` and never
need to know which backend serves `db`.

A second kind of wake-up tells whoever waits for a job's result (`conductor result
--wait`, `Conductor.result(timeout=...)`) that jobs finished: on SQLite the ledger sends a
datagram to each socket in the database's `finished` directory after a commit that
completed, failed or cancelled a job (`announce_finished`, nothing to do while nobody
waits); on PostgreSQL such a commit notifies channel `conductor_finished`, which only
waiters listen to, so workers are not woken by it. `finished_listener(db)` is their side.
"""

from __future__ import annotations

from typing import Protocol

from conductor.ledger import sockets
from conductor.ledger.open import is_postgres
from conductor.ledger.sockets import Listener, directory

__all__ = [
    "Listener",
    "Waiter",
    "directory",
    "finished_listener",
    "listener",
    "listening",
    "notify",
]


class Waiter(Protocol):
    """What a scheduler or live view sleeps on between polls."""

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True if woken early."""
        ...

    def wake(self) -> None:
        """Wake the waiting thread from another thread of this process."""
        ...

    def close(self) -> None: ...


def listener(db: str) -> Waiter:
    """The wake-ups of `db` for this process: LISTEN on PostgreSQL, a datagram socket on
    SQLite (which raises `OSError` where one cannot be bound)."""
    if is_postgres(db):
        from conductor.ledger.postgres.listen import PostgresListener

        return PostgresListener(db)
    return Listener(db)


def finished_listener(db: str) -> Waiter:
    """What a result waiter sleeps on: woken after commits that finished jobs (LISTEN
    `conductor_finished` on PostgreSQL, a socket in the `finished` directory on SQLite,
    which raises `OSError` where one cannot be bound)."""
    if is_postgres(db):
        from conductor.ledger.postgres.listen import PostgresListener

        return PostgresListener(db, waiting_for_results=True)
    return Listener(db, kind="finished")


def listening(db: str) -> bool:
    """Whether some process listens for wake-ups of `db` (on PostgreSQL from any host, on
    SQLite on this one): a notification sent now reaches it."""
    if is_postgres(db):
        from conductor.ledger.postgres.listen import listening as sessions

        return sessions(db) > 0
    return any(directory(db).glob("*.sock"))


def notify(db: str, *, by_commit: bool = True) -> int:
    """Wake every listening worker of `db` on this host; returns how many were reached.

    On PostgreSQL the commit of claimable work or of a cancel notified every listener
    already (`by_commit`), so there is nothing to do; a caller whose commit sent nothing
    (a burst worker that settled its last attempt, so that every burst worker's exit test
    runs again) passes `by_commit=False` and one notification is sent."""
    if is_postgres(db):
        if by_commit:
            return 0
        from conductor.ledger.postgres.listen import announce

        return announce(db)
    return sockets.send_all(directory(db))
