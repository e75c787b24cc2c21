"""The SQLite schema, as versioned migrations.

`PRAGMA application_id` marks a file as conductor's; `PRAGMA user_version` is the schema
version. A database newer than `SCHEMA_VERSION` is refused rather than misread. Each
entry of `MIGRATIONS` takes the schema from version N-1 to N; a new database runs them all.
Read models are not migrated: bumping `projections.base.VERSION` rebuilds them from the log.
"""

from __future__ import annotations

from typing import Final

from conductor.ledger.statements import UNIQUE_INDEXES

APPLICATION_ID: Final = 0x434E4454  # "CNDT"
SCHEMA_VERSION: Final = 3

_V1: Final = (
    """
    CREATE TABLE events (
        seq       INTEGER PRIMARY KEY,
        job_id    INTEGER NOT NULL,
        type      TEXT    NOT NULL,
        version   INTEGER NOT NULL,
        at        TEXT    NOT NULL,
        data      TEXT    NOT NULL,
        trace     TEXT,
        prev_hash TEXT    NOT NULL,
        hash      TEXT    NOT NULL
    )
    """,
    "CREATE INDEX events_by_job ON events (job_id, seq)",
    """
    CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END
    """,
    """
    CREATE TABLE jobs (
        id               INTEGER PRIMARY KEY,
        task             TEXT    NOT NULL,
        queue            TEXT    NOT NULL,
        priority         INTEGER NOT NULL,
        status           TEXT    NOT NULL,
        attempts         INTEGER NOT NULL,
        retries          INTEGER NOT NULL,
        max_retries      INTEGER NOT NULL,
        run_at           TEXT    NOT NULL,
        payload          TEXT    NOT NULL,
        last_error       TEXT,
        worker           TEXT,
        lease_expires_at TEXT,
        created_at       TEXT    NOT NULL,
        updated_at       TEXT    NOT NULL,
        trace            TEXT,
        last_seq         INTEGER NOT NULL
    )
    """,
    # The claim query: a range seek per (queue, priority) over due pending jobs.
    "CREATE INDEX jobs_due ON jobs (queue, priority, run_at, id) WHERE status = 'pending'",
    # Listings filtered by one column, newest first.
    "CREATE INDEX jobs_by_status ON jobs (status, id)",
    "CREATE INDEX jobs_by_task ON jobs (task, id)",
    "CREATE INDEX jobs_by_queue ON jobs (queue, id)",
    """
    CREATE TABLE counters (
        queue  TEXT    NOT NULL,
        task   TEXT    NOT NULL,
        status TEXT    NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (queue, task, status)
    ) WITHOUT ROWID
    """,
    # Bookkeeping: projections version and the last seq folded into the read models.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)

_V2: Final = (
    # The operations stream's read model (projections/controls.py): one row per controlled
    # queue or schedule, its state a canonical JSON object folded from its events.
    """
    CREATE TABLE controls (
        kind       TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        state      TEXT    NOT NULL,
        updated_at TEXT    NOT NULL,
        last_seq   INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
    ) WITHOUT ROWID
    """,
)

_V3: Final = (
    # Unique jobs (`enqueue --unique-key`): the key and its scope, folded from `enqueued`
    # version 2. Rows of older jobs read NULL, which is what a rebuild folds for them.
    "ALTER TABLE jobs ADD COLUMN unique_key TEXT",
    "ALTER TABLE jobs ADD COLUMN unique_for INTEGER",
    *UNIQUE_INDEXES,
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3)
"""MIGRATIONS[N-1] takes the schema to version N."""

DESCRIPTIONS: Final[tuple[str, ...]] = (
    "events (append-only, hash-chained), jobs, counters, meta",
    "controls: the operations stream's read model (queue controls, schedules)",
    "jobs.unique_key and unique_for, indexed for the duplicate check of unique jobs",
)
"""One line per migration, for `conductor migrate`."""
