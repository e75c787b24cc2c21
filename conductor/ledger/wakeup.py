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
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import tempfile
from pathlib import Path
from typing import Protocol

from conductor.ledger.open import is_postgres


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


def directory(db: str) -> Path:
    """The wake-up directory of database `db` (a path or file: URI)."""
    location = db.removeprefix("file:").split("?", 1)[0]
    # A relative path means a different file after a chdir: the working directory is
    # part of the key.
    return _directory(location, "" if os.path.isabs(location) else os.getcwd())


@functools.lru_cache(maxsize=64)
def _directory(location: str, cwd: str) -> Path:
    """Cached: every enqueue notifies, and resolving the path (an lstat per component)
    and hashing it cost about a tenth of a millisecond on the pickup path."""
    key = hashlib.sha256(os.path.realpath(os.path.join(cwd, location)).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"conductor-wake-{os.getuid()}-{key}"


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
    folder = directory(db)
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    reached = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for name in names:
            path = folder / name
            try:
                sender.sendto(b"w", str(path))
                reached += 1
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    path.unlink()  # its process is gone
            except (BlockingIOError, OSError):
                reached += 1  # a full buffer means it has wake-ups pending already
    return reached


class Listener:
    """One process's socket; `wait` returns early when a wake-up arrives."""

    def __init__(self, db: str) -> None:
        folder = directory(db)
        folder.mkdir(mode=0o700, exist_ok=True)
        self.path = folder / f"{os.getpid()}-{id(self):x}.sock"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(self.path))

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True if woken. Drains queued wake-ups."""
        self._socket.settimeout(max(timeout, 0.0))
        try:
            self._socket.recv(64)
        except (TimeoutError, BlockingIOError):
            return False
        self._socket.setblocking(False)
        with contextlib.suppress(BlockingIOError, OSError):
            while self._socket.recv(64):
                pass
        return True

    def wake(self) -> None:
        """Wake this listener from another thread of the same process."""
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender,
            contextlib.suppress(OSError),
        ):
            sender.sendto(b"w", str(self.path))

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
