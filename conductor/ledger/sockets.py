"""Wake-ups on SQLite: Unix datagram sockets in a directory that belongs to the database.

Every listening process binds a socket in a directory named by a hash of the database's
real path, under the temp dir, mode 0700 (socket paths are limited to ~100 bytes, so they
cannot always sit beside the file). A sender writes one byte to each socket there; sockets
of dead processes refuse it and are removed. Two kinds of directory: `wake` for workers
(`conductor.ledger.wakeup.notify`) and `finished` for result waiters, which the SQLite
ledger signals after a commit that finished jobs. This module imports no backend, so the
SQLite ledger can signal without importing `wakeup` (which chooses between backends).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import tempfile
from pathlib import Path


def directory(db: str, kind: str = "wake") -> Path:
    """The wake-up directory of database `db` (a path or file: URI): `wake` for workers,
    `finished` for result waiters."""
    location = db.removeprefix("file:").split("?", 1)[0]
    # A relative path means a different file after a chdir: the working directory is
    # part of the key.
    return _directory(location, "" if os.path.isabs(location) else os.getcwd(), kind)


@functools.lru_cache(maxsize=64)
def _directory(location: str, cwd: str, kind: str) -> Path:
    """Cached: every enqueue notifies, and resolving the path (an lstat per component)
    and hashing it cost about a tenth of a millisecond on the pickup path."""
    key = hashlib.sha256(os.path.realpath(os.path.join(cwd, location)).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"conductor-{kind}-{os.getuid()}-{key}"


def send_all(folder: Path) -> int:
    """One byte to every socket in `folder`; how many were reached (dead ones are removed)."""
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


def announce_finished(location: str) -> int:
    """Wake every result waiter of SQLite database `location` on this host (the SQLite
    ledger calls it after a commit that finished jobs); returns how many were reached.
    Without waiters it costs one failed `listdir`."""
    return send_all(directory(location, "finished"))


class Listener:
    """One process's socket; `wait` returns early when a wake-up arrives."""

    def __init__(self, db: str, kind: str = "wake") -> None:
        folder = directory(db, kind)
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
