"""A ledger written before unique jobs (schema without the unique columns, `enqueued`
events of version 1) is migrated on open, on every backend: its rows need no rebuild,
its chain still verifies, its old events read as jobs without a key, and unique
enqueues work from then on."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.events import JobEnqueued, RecordedEvent, decode_event
from conductor.ledger import chain
from conductor.ledger.open import is_postgres
from conductor.ledger.postgres import schema as pg_schema
from conductor.ledger.postgres.connection import parse
from conductor.ledger.sqlite import schema as sqlite_schema
from conductor.ledger.statements import CHAIN_COLUMNS
from projections import base as projections_base
from projections import runner

AT = "2026-11-28T09:30:00.000000Z"
OLD_ENQUEUED = [
    f'{{"max_retries":3,"priority":1,"queue":"default","run_at":"{AT}","task":"{task}",'
    f'"payload":{{"task":"{task}"}}}}'
    for task in ("a", "b", "c")
]
OLD_JOB_COLUMNS = (
    "id, task, queue, priority, status, attempts, retries, max_retries, run_at, payload, "
    "last_error, worker, lease_expires_at, created_at, updated_at, trace, last_seq"
)


def _before_unique(migrations: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The migrations a conductor without unique jobs had applied (however the ones after
    it are numbered)."""
    cut = next(n for n, m in enumerate(migrations) if any("unique_key" in s for s in m))
    return list(migrations[:cut])


def _old_ledger() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(events, job rows, counters) as a conductor before unique jobs stored them: three
    version-1 `enqueued` events, chained."""
    events, recorded, prev = [], [], chain.GENESIS
    for seq, data in enumerate(OLD_ENQUEUED, start=1):
        digest = chain.event_hash(prev, seq, seq, "enqueued", 1, AT, data, None)
        events.append((seq, seq, "enqueued", 1, AT, data, None, prev, digest))
        recorded.append(
            RecordedEvent(
                seq=seq,
                job_id=seq,
                at=AT,
                event=decode_event("enqueued", 1, data),
                trace=None,
                hash=digest,
            )
        )
        prev = digest
    effect = runner.apply_batch({}, recorded)
    rows = [
        tuple(value for key, value in row.items() if not key.startswith("unique_"))
        for row in effect.rows.values()
    ]
    counters = [(*bucket, n) for bucket, n in effect.counter_deltas.items()]
    return events, rows, counters


def _write_old_sqlite(path: str) -> None:
    events, rows, counters = _old_ledger()
    old = _before_unique(sqlite_schema.MIGRATIONS)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in (s for migration in old for s in migration):
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {sqlite_schema.APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {len(old)}")
        conn.execute("PRAGMA journal_mode = WAL")
        _fill(conn, "?", events, rows, counters)
    finally:
        conn.close()


def _write_old_postgres(url: str) -> None:
    events, rows, counters = _old_ledger()
    target = parse(url)
    old = _before_unique(pg_schema.MIGRATIONS)
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{target.schema}"')
        conn.execute(f'SET search_path = "{target.schema}"')
        for statement in (s for migration in old for s in migration):
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', %s)", (str(len(old)),))
        conn.execute("SELECT setval('job_ids', %s)", (len(rows),))
        _fill(conn, "%s", events, rows, counters)


def _fill(conn: Any, mark: str, events: Any, rows: Any, counters: Any) -> None:
    def marks(n: int) -> str:
        return ", ".join([mark] * n)

    for event in events:
        conn.execute(f"INSERT INTO events ({CHAIN_COLUMNS}) VALUES ({marks(9)})", event)
    for row in rows:
        conn.execute(f"INSERT INTO jobs ({OLD_JOB_COLUMNS}) VALUES ({marks(17)})", row)
    for counter in counters:
        conn.execute(f"INSERT INTO counters VALUES ({marks(4)})", counter)
    for key, value in (
        ("projections_version", str(projections_base.VERSION)),
        ("projected_seq", str(len(events))),
    ):
        conn.execute(f"INSERT INTO meta (key, value) VALUES ({marks(2)})", (key, value))


def test_a_ledger_from_before_unique_jobs_migrates_verifies_and_takes_unique_keys(
    db: str,
) -> None:
    if is_postgres(db):
        _write_old_postgres(db)
    else:
        _write_old_sqlite(db)
    with Conductor(settings=Settings(db=db)) as app:
        # Migrated on open; the old rows gained NULL keys, which is what a rebuild folds.
        assert app.verify_projections() == []
        assert app.audit().ok
        assert [(row["id"], row["unique_key"], row["unique_for"]) for row in app.jobs()] == [
            (1, None, None),
            (2, None, None),
            (3, None, None),
        ]
        old = app.ledger.history(1)[0].event
        assert isinstance(old, JobEnqueued)
        assert old.unique_key is None
        first = app.enqueue({"task": "d"}, unique_key="k")
        assert first == 4
        assert app.enqueue({"task": "d"}, unique_key="k") == first
        app.replay()
        assert app.verify_projections() == []
        assert app.audit().ok
