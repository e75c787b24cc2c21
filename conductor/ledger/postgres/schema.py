"""The PostgreSQL schema, as versioned migrations.

conductor's tables live in one schema of their own (`conductor` unless the URL's `schema=`
names another), so they never meet an application's tables of the same names. The `meta`
table marks the schema as conductor's (`application = conductor`) and holds its version
(`schema_version`); a schema newer than `SCHEMA_VERSION` is refused rather than misread.
Each entry of `MIGRATIONS` takes the schema from version N-1 to N and runs inside one
transaction, under an advisory lock, so many workers starting at once migrate it once.

Column types mirror SQLite's: timestamps stay text in the stored format, so an event's
hash is computed from the same bytes on both backends and a ledger copied between them
still verifies.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1

_V1: Final = (
    """
    CREATE TABLE events (
        seq       bigint  PRIMARY KEY,
        job_id    bigint  NOT NULL,
        type      text    NOT NULL,
        version   integer NOT NULL,
        at        text    NOT NULL,
        data      text    NOT NULL,
        trace     text,
        prev_hash text    NOT NULL,
        hash      text    NOT NULL
    )
    """,
    "CREATE INDEX events_by_job ON events (job_id, seq)",
    # Append-only, enforced by the server for every role but a superuser who drops the
    # triggers; the documented `conductor_app` role cannot do that either (not the owner).
    """
    CREATE FUNCTION refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events are append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER events_refuse_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_event_change()
    """,
    """
    CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change()
    """,
    """
    CREATE TABLE jobs (
        id               bigint  PRIMARY KEY,
        task             text    NOT NULL,
        queue            text    NOT NULL,
        priority         integer NOT NULL,
        status           text    NOT NULL,
        attempts         integer NOT NULL,
        retries          integer NOT NULL,
        max_retries      integer NOT NULL,
        run_at           text    NOT NULL,
        payload          text    NOT NULL,
        last_error       text,
        worker           text,
        lease_expires_at text,
        created_at       text    NOT NULL,
        updated_at       text    NOT NULL,
        trace            text,
        last_seq         bigint  NOT NULL
    )
    """,
    # The claim query: a range seek per (queue, priority) over due pending jobs.
    "CREATE INDEX jobs_due ON jobs (queue, priority, run_at, id) WHERE status = 'pending'",
    "CREATE INDEX jobs_by_status ON jobs (status, id)",
    "CREATE INDEX jobs_by_task ON jobs (task, id)",
    "CREATE INDEX jobs_by_queue ON jobs (queue, id)",
    """
    CREATE TABLE counters (
        queue  text   NOT NULL,
        task   text   NOT NULL,
        status text   NOT NULL,
        n      bigint NOT NULL,
        PRIMARY KEY (queue, task, status)
    )
    """,
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    # Job ids are handed out by a sequence, outside the chain lock: an enqueue in the
    # caller's own transaction (transactional enqueue) takes one without waiting for it.
    "CREATE SEQUENCE job_ids AS bigint",
    "INSERT INTO meta (key, value) VALUES ('application', 'conductor')",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1,)
"""MIGRATIONS[N-1] takes the schema to version N."""

DESCRIPTIONS: Final[tuple[str, ...]] = (
    "events (append-only, hash-chained), jobs, counters, meta, job id sequence",
)
"""One line per migration, for `conductor migrate`."""
