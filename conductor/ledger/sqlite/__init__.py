"""The SQLite backend: one conductor database in one SQLite file.

- `connection`: opening and refusing files, PRAGMAs, the WAL switch, identity checks,
  migrations, the write lock and its busy retries.
- `schema`: the SQLite DDL, as versioned migrations.
- `errors`: sqlite3 errors as `conductor.domain.errors`.
- `ledger`: `SqliteLedger`, the `conductor.ledger.base.Ledger` contract on that connection.
- `rebuild`: projection rebuild and diff.
- `faults`: test-only crash injection.

The statements it shares with other SQL backends live in `conductor.ledger.statements`.
"""

from __future__ import annotations

from conductor.ledger.sqlite.ledger import SqliteLedger

__all__ = ["SqliteLedger"]
