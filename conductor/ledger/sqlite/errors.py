"""sqlite3 errors as `conductor.domain.errors`: the one place that reads SQLite's codes.

Each message names the file and says what was expected, so the CLI can print it as the
one line a user sees.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from conductor.domain.errors import (
    CorruptDatabase,
    DatabaseBusy,
    DiskFull,
    LedgerError,
    NotAConductorDatabase,
    ReadOnlyDatabase,
)


def translated(e: sqlite3.Error, where: str, busy_timeout: float) -> LedgerError:
    """The conductor error for `e`, raised while using the database at `where`."""
    name = getattr(e, "sqlite_errorname", "")
    if name.startswith("SQLITE_BUSY") or "locked" in str(e):
        return DatabaseBusy(
            f"{where} is locked by another writer (waited {busy_timeout:g}s); "
            "expected it to be free - retry, or raise CONDUCTOR_BUSY_TIMEOUT"
        )
    if name.startswith("SQLITE_READONLY"):
        return ReadOnlyDatabase(
            f"{where} is read-only; expected a writable database for this command"
        )
    if name.startswith("SQLITE_FULL") or name == "SQLITE_IOERR_SHMSIZE":
        return DiskFull(f"disk full writing {where}; expected free space on its filesystem")
    if name.startswith("SQLITE_NOTADB"):
        return NotAConductorDatabase(
            f"{where} is not a SQLite database; expected a conductor database file"
        )
    if name.startswith("SQLITE_CORRUPT"):
        return CorruptDatabase(
            f"{where} is corrupt ({e}); expected an intact file - restore a backup, "
            f"or salvage it with `sqlite3 {where} .recover` (or `.dump`; "
            "see docs/operations.md)"
        )
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")):
        return LedgerError(f"cannot open or read {where} ({e}); expected an accessible file")
    return LedgerError(f"{where}: {e}")


@contextlib.contextmanager
def translating(where: str, busy_timeout: float) -> Iterator[None]:
    """Re-raise any sqlite3 error inside the block as its conductor error (`from e`)."""
    try:
        yield
    except sqlite3.Error as e:
        raise translated(e, where, busy_timeout) from e
