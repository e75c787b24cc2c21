"""Which backend serves a database location: the one place that maps `--db` to a ledger."""

from __future__ import annotations

from conductor.domain.config import Settings
from conductor.domain.errors import LedgerError
from conductor.ledger.base import Ledger


def open_ledger(settings: Settings, *, create: bool) -> Ledger:
    """The backend for `settings.db`: SQLite for paths and `file:` URIs."""
    if settings.db.startswith(("postgresql://", "postgres://")):
        raise LedgerError(
            "PostgreSQL ledgers are not available in this version; expected a SQLite file path"
        )
    from conductor.ledger.sqlite import SqliteLedger

    return SqliteLedger(settings, create=create)
