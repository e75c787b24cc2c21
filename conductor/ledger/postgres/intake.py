"""Transactional enqueue: jobs written in the caller's own transaction, then moved into
the log once that transaction has committed.

Appending to the log takes the chain lock, which orders every append to the schema; held
for the length of a caller's business transaction it would stop every worker. So an
enqueue on the caller's connection appends nothing: it takes the job's id from the
`job_ids` sequence and writes a row into `intake` (plus a NOTIFY, delivered only on
commit). A rollback leaves nothing behind, not even an event; a commit leaves a row that
a conductor process later turns into the job's `enqueued` event, under that same id, and
deletes, in one transaction (`take`). Workers do it in every claim (claiming them in the
same transaction when the claim has room) and at every scheduler tick; reads through
`Conductor` do it first, so the job is there once committed, as in Oban or River.

The statements on the caller's connection name the schema: its search_path is the
caller's, not conductor's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg import errors as pg
from psycopg.pq import TransactionStatus

from conductor.domain.clock import stamp
from conductor.domain.errors import InvalidInput, LedgerError
from conductor.domain.events import JobEnqueued, NewEvent
from conductor.ledger.postgres.errors import translating

COLUMNS: Final = "job_id, task, queue, priority, max_retries, run_at, payload, trace"
BATCH: Final = 1_000
"""Rows moved into the log per transaction: a backlog is taken in bounded steps."""
_TAKE: Final = (
    "DELETE FROM intake WHERE job_id IN "
    "(SELECT job_id FROM intake ORDER BY job_id LIMIT %s FOR UPDATE SKIP LOCKED) "
    f"RETURNING {COLUMNS}"
)
_ANY: Final = "SELECT 1 FROM intake LIMIT 1"


def put(
    connection: object,
    *,
    schema: str,
    channel: str,
    events: Sequence[NewEvent],
    location: str,
) -> list[int]:
    """Write `events` (new jobs' `enqueued` events, decided by the caller) into `intake`
    on the caller's connection, inside whatever transaction it has open; returns the ids
    the jobs will have."""
    if not isinstance(connection, psycopg.Connection):
        raise InvalidInput(
            f"cannot enqueue on a {type(connection).__name__}: expected a psycopg 3 "
            "connection (psycopg.Connection) to the ledger's database"
        )
    if not events:
        return []
    conn: psycopg.Connection[Any] = connection
    qualified = f'"{schema}"'
    try:
        with translating(location), _block(conn), conn.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(%s) FROM generate_series(1, %s)",
                (f"{qualified}.job_ids", len(events)),
            )
            ids = [int(row[0]) for row in cursor.fetchall()]
            cursor.executemany(
                f"INSERT INTO {qualified}.intake ({COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [_row(job_id, new) for job_id, new in zip(ids, events, strict=True)],
            )
            cursor.execute("SELECT pg_notify(%s, %s)", (channel, schema))
    except LedgerError as e:
        if isinstance(e.__cause__, pg.UndefinedTable | pg.UndefinedObject | pg.InvalidSchemaName):
            raise LedgerError(
                f"the connection's database has no conductor schema {schema} at version 2 "
                f"or later ({e.__cause__}); expected a connection to the database of "
                f"{location}, migrated with `conductor migrate --apply`"
            ) from e.__cause__
        raise
    return ids


def _block(conn: psycopg.Connection[Any]) -> contextlib.AbstractContextManager[Any]:
    """Where the statements run: inside the caller's open transaction, as a savepoint (a
    refused row leaves the caller's transaction usable); in a transaction of their own
    on an autocommit connection with none open (all the jobs or none); and on a
    connection that is not autocommit with nothing open yet, in the transaction the
    first statement begins, which the caller commits or rolls back."""
    if conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit:
        return contextlib.nullcontext()
    return conn.transaction()


def _row(job_id: int, new: NewEvent) -> tuple[Any, ...]:
    event = new.event
    if not isinstance(event, JobEnqueued) or new.job_id is not None:
        raise ValueError("intake takes new jobs' enqueued events only")
    if event.unique_key is not None:
        # Checked only under the log's write serialisation (`Ledger.enqueue`); the client
        # refuses such a job before this, in words of its own.
        raise InvalidInput(
            f"cannot enqueue a job with unique key {event.unique_key!r} on your own "
            "connection; expected a plain enqueue for a unique job"
        )
    # Due now (run_at is the enqueue stamp) is stored as NULL: due when it enters the
    # log, since that is when a worker can first see it.
    run_at = None if event.run_at == new.at else event.run_at
    return (
        job_id,
        event.task,
        event.queue,
        event.priority,
        event.max_retries,
        run_at,
        event.payload,
        new.trace,
    )


def waiting(conn: psycopg.Connection[Any]) -> bool:
    """Whether any committed row waits in `intake` (one index probe)."""
    return conn.execute(_ANY).fetchone() is not None


def take(conn: psycopg.Connection[Any], now: dt.datetime) -> list[NewEvent]:
    """Delete up to `BATCH` committed intake rows and return their `enqueued` events, by
    job id, stamped `now`; the caller appends them in the same transaction. Rows another
    transaction is taking are skipped, so no row enters the log twice."""
    return taken(send_take(conn), now)


def send_take(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """Queue `take`'s delete in the caller's pipeline (read it with `taken`): sent with a
    claim's picks, before the chain lock, it costs no round trip of its own."""
    return conn.execute(_TAKE, (BATCH,))


def taken(cursor: psycopg.Cursor[Any], now: dt.datetime) -> list[NewEvent]:
    """The `enqueued` events of the rows a `send_take` deleted."""
    rows = sorted(cursor.fetchall())
    at = stamp(now)
    # The event is stamped when the job enters the log, not when the caller wrote it:
    # stamps rise with seq (what `Ledger.recent` relies on), however long the caller's
    # transaction stayed open, and its queue wait starts when a worker could see it.
    return [
        NewEvent(
            job_id=job_id,
            at=at,
            trace=trace,
            event=JobEnqueued(
                task=task,
                queue=queue,
                priority=priority,
                max_retries=max_retries,
                run_at=at if run_at is None or run_at <= at else run_at,
                payload=payload,
            ),
        )
        for job_id, task, queue, priority, max_retries, run_at, payload, trace in rows
    ]
