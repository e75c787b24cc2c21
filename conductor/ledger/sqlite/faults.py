"""Test-only crash injection for the SQLite connection (tests/reliability/
test_crash_at_every_write.py); never for production use."""

from __future__ import annotations

import os
import sqlite3
from typing import Any


class FaultAt(sqlite3.Connection):
    """With `CONDUCTOR_FAULT_AT=N:before` (or `N:after`) set when a ledger is opened, its
    connection counts every statement run inside a write transaction, from `BEGIN IMMEDIATE`
    to `COMMIT`/`ROLLBACK` inclusive, and ends the process with `os._exit(97)` just before
    (or after) the Nth. Unset, the ledger uses a plain `sqlite3.Connection` and pays
    nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        n, _, mode = os.environ["CONDUCTOR_FAULT_AT"].partition(":")
        self._fault_at, self._fault_after = int(n), mode == "after"
        self._count, self._writing = 0, False

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self._step(sql, lambda: super(FaultAt, self).execute(sql, parameters))

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self._step(sql, lambda: super(FaultAt, self).executemany(sql, parameters))

    def _step(self, sql: str, run: Any) -> sqlite3.Cursor:
        self._writing = self._writing or sql == "BEGIN IMMEDIATE"
        if not self._writing:
            return run()  # type: ignore[no-any-return]
        self._count += 1
        hit = self._count == self._fault_at
        if hit and not self._fault_after:
            os._exit(97)
        cursor: sqlite3.Cursor = run()
        if hit:
            os._exit(97)
        self._writing = sql not in ("COMMIT", "ROLLBACK")
        return cursor
