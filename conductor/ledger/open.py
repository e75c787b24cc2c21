"""Which backend serves a database location: the one place that maps `--db` to a ledger."""

from __future__ import annotations

from conductor.domain.config import Settings
from conductor.domain.errors import LedgerError
from conductor.ledger.base import Ledger


def is_postgres(location: str) -> bool:
    """A `postgresql://` (or `postgres://`) URL rather than a SQLite path."""
    return location.startswith(("postgresql://", "postgres://"))


def open_ledger(settings: Settings, *, create: bool) -> Ledger:
    """The backend for `settings.db`: PostgreSQL for `postgresql://` URLs, SQLite for
    paths and `file:` URIs."""
    if is_postgres(settings.db):
        try:
            from conductor.ledger.postgres import PostgresLedger
        except ImportError as e:
            raise LedgerError(
                f"PostgreSQL ledgers need psycopg ({e.name} is not installed); expected "
                "`pip install 'conductor[postgres]'`"
            ) from None
        return PostgresLedger(settings, create=create)
    from conductor.ledger.sqlite import SqliteLedger

    return SqliteLedger(settings, create=create)
