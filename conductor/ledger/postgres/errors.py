"""psycopg errors as `conductor.domain.errors`: the one place that reads PostgreSQL's codes.

Each message names the database (its URL without credentials) and says what was expected,
so the CLI can print it as the one line a user sees. Which class an error becomes decides
what the engine does with it: `DatabaseUnavailable` and `DatabaseBusy` are waited out and
retried; the others stop a worker, since no retry clears them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Final

import psycopg
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from conductor.domain.errors import (
    DatabaseBusy,
    DatabaseNotFound,
    DatabaseUnavailable,
    DiskFull,
    LedgerError,
    ReadOnlyDatabase,
)

_NO_DATABASE: Final = re.compile(r'^database ".*" does not exist$')
_LOGIN: Final = re.compile(
    r'^(role ".*" does not exist|password authentication failed|no pg_hba.conf entry)'
)
RETRYABLE: Final = (pg.DeadlockDetected, pg.SerializationFailure, pg.LockNotAvailable)
"""Errors a transaction meets from others' locks: running it again succeeds."""


def translated(e: Exception, where: str) -> LedgerError:
    """The conductor error for `e`, raised while using the database at `where`."""
    first = _reason(e)
    state = getattr(e, "sqlstate", None)
    if isinstance(e, PoolTimeout):
        return DatabaseUnavailable(
            f"cannot reach PostgreSQL at {where} (no connection within the pool timeout); "
            "expected a running server that accepts connections"
        )
    # A refused connection carries no SQLSTATE in libpq's message: read the reason.
    if isinstance(e, pg.InvalidCatalogName) or state == "3D000" or _NO_DATABASE.search(first):
        return DatabaseNotFound(
            f"no PostgreSQL database at {where} ({first}); expected an existing database "
            "(create it with `createdb`)"
        )
    if (
        isinstance(e, pg.InvalidAuthorizationSpecification | pg.InvalidPassword)
        or state
        in (
            "28000",
            "28P01",
        )
        or _LOGIN.search(first)
    ):
        return LedgerError(
            f"PostgreSQL refused the login at {where} ({first}); expected valid credentials"
        )
    if isinstance(e, RETRYABLE):
        return DatabaseBusy(f"{where}: {first}; expected it to clear - retry")
    if isinstance(e, pg.ReadOnlySqlTransaction):
        return ReadOnlyDatabase(
            f"{where} is read-only ({first}); expected a writable primary for this command"
        )
    if isinstance(e, pg.InsufficientPrivilege):
        return ReadOnlyDatabase(
            f"{where}: {first}; expected a role with conductor's privileges "
            "(docs/operations.md, Running on PostgreSQL)"
        )
    if isinstance(e, pg.DiskFull | pg.OutOfMemory | pg.ConfigurationLimitExceeded):
        return DiskFull(f"PostgreSQL at {where} is out of room ({first}); expected free space")
    if isinstance(
        e,
        pg.AdminShutdown | pg.CrashShutdown | pg.CannotConnectNow | pg.TooManyConnections,
    ) or (isinstance(e, psycopg.OperationalError) and not isinstance(e, pg.QueryCanceled)):
        return DatabaseUnavailable(
            f"cannot reach PostgreSQL at {where} ({first}); expected a running server"
        )
    if isinstance(e, pg.QueryCanceled):
        return DatabaseBusy(f"{where}: {first}; expected the statement to finish - retry")
    return LedgerError(f"{where}: {first}")


def _reason(e: Exception) -> str:
    """The server's or libpq's reason in one line, without libpq's "connection to server
    at ... failed:" preamble (the message names the database already)."""
    text = str(e).strip()
    if not text:
        return type(e).__name__
    line = text.splitlines()[0]
    if "FATAL:" in line:
        line = line.split("FATAL:", 1)[1]
    elif " failed: " in line:
        line = line.rsplit(" failed: ", 1)[1]
    return line.strip()


@contextlib.contextmanager
def translating(where: str) -> Iterator[None]:
    """Re-raise any psycopg error inside the block as its conductor error (`from e`)."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as e:
        raise translated(e, where) from e
