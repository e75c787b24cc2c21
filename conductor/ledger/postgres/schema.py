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

from conductor.ledger.statements import UNIQUE_INDEXES

SCHEMA_VERSION: Final = 5

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

_V2: Final = (
    # Transactional enqueue (conductor.ledger.postgres.intake): a job written in the
    # caller's own transaction waits here, outside the chain, until a conductor process
    # moves it into the log as an `enqueued` event under the id it was given. The checks
    # keep a row that could not become a valid event (a producer writing SQL by hand)
    # from ever reaching the workers' claim transactions, which ingest it.
    """
    CREATE TABLE intake (
        job_id      bigint  PRIMARY KEY,
        task        text    NOT NULL CHECK (length(btrim(task)) > 0),
        queue       text    NOT NULL CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,100}$'),
        priority    integer NOT NULL CHECK (priority IN (0, 1, 2)),
        max_retries integer NOT NULL CHECK (max_retries BETWEEN 0 AND 10000),
        run_at      text,
        payload     text    NOT NULL CHECK ((payload::json ->> 'task') = task),
        trace       text
    )
    """,
)

_V3: Final = (
    # The operations stream's read model (projections/controls.py): one row per controlled
    # queue or schedule, its state a canonical JSON object folded from its events. A claim
    # of a limited queue locks its row (FOR UPDATE) to count under it.
    """
    CREATE TABLE controls (
        kind       text   NOT NULL,
        name       text   NOT NULL,
        state      text   NOT NULL,
        updated_at text   NOT NULL,
        last_seq   bigint NOT NULL,
        PRIMARY KEY (kind, name)
    )
    """,
)

_V4: Final = (
    # Unique jobs (`enqueue --unique-key`): the key and its scope, folded from `enqueued`
    # version 2. Rows of older jobs read NULL, which is what a rebuild folds for them.
    "ALTER TABLE jobs ADD COLUMN unique_key text",
    "ALTER TABLE jobs ADD COLUMN unique_for integer",
    *UNIQUE_INDEXES,
)

_V5: Final = (
    # Priorities are ranks from -99 to 101 (conductor.domain.config.PRIORITY_RANKS), not
    # only the three named ones, so Django's scale keeps its order (docs/django.md).
    "ALTER TABLE intake DROP CONSTRAINT intake_priority_check",
    "ALTER TABLE intake ADD CONSTRAINT intake_priority_check CHECK (priority BETWEEN -99 AND 101)",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4, _V5)
"""MIGRATIONS[N-1] takes the schema to version N."""

DESCRIPTIONS: Final[tuple[str, ...]] = (
    "events (append-only, hash-chained), jobs, counters, meta, job id sequence",
    "intake: jobs enqueued in the caller's own transaction, waiting to enter the log",
    "controls: the operations stream's read model (queue controls, schedules)",
    "jobs.unique_key and unique_for, indexed for the duplicate check of unique jobs",
    "intake: priorities as ranks from -99 to 101, not only high, medium and low",
)
"""One line per migration, for `conductor migrate`."""

ROLE_NAME: Final = r"^[a-z_][a-z0-9_]{0,62}$"
"""Role names `grants` takes: PostgreSQL's unquoted identifiers, so none needs quoting
to be read back from `conductor migrate --print-grants`."""


def grants(schema: str, role: str) -> tuple[str, ...]:
    """The statements that give `role` exactly what workers and producers need in
    `schema`, and nothing more: events can be read and appended, never changed or
    removed (no UPDATE, DELETE or TRUNCATE, whatever the triggers); the read models
    (jobs, counters, controls), meta and intake are read and written; job ids are drawn
    from the sequence; nothing can be created in the schema. Owner's work (migrations,
    `replay`, which truncates the read models) stays with the owner.

    Everything the role held there is revoked first, so running them again is exact."""
    s, r = f'"{schema}"', f'"{role}"'
    return (
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
        f"REVOKE ALL ON SCHEMA {s} FROM {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"GRANT SELECT, INSERT ON {s}.events TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.jobs, {s}.counters, {s}.meta, "
        f"{s}.intake, {s}.controls TO {r}",
        f"GRANT USAGE ON SEQUENCE {s}.job_ids TO {r}",
    )
