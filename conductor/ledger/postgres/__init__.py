"""The PostgreSQL backend: many hosts sharing one ledger (needs `conductor[postgres]`)."""

from conductor.ledger.postgres.ledger import PostgresLedger

__all__ = ["PostgresLedger"]
