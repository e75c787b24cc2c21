"""Projection rebuild and diff on SQLite: fold the whole log into the read models again,
or into scratch tables to compare with the live ones (`conductor admin replay`)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

from conductor.ledger import control_statements as csql
from conductor.ledger import statements as sql
from conductor.ledger.base import RowDifference
from conductor.ledger.sqlite.connection import SqliteConnection
from projections import base as projections_base
from projections import runner
from projections.controls import ControlRow
from projections.controls import Key as ControlKey
from projections.counters import Bucket, from_rows
from projections.job_status import COLUMNS

_FILL_BATCH: Final = 5_000
"""Rebuilt rows written per `executemany` in a replay."""
_ROWS_PER_INSERT: Final = 50
"""Rows per INSERT statement in a replay: 850 bound values, under SQLite's historical limit
of 999, and a sixth cheaper than one statement per row."""


def rebuild(link: SqliteConnection) -> int:
    """Replace `jobs`, `counters` and `controls` with a fold of the whole log; returns
    events folded."""
    conn = link.raw
    with link.translate(), link.transaction():
        # A bulk load, shaped by measurement (docs/performance.md): the secondary
        # indexes are dropped and then rebuilt from their stored definitions, each in
        # one sorted pass, which is cheaper than keeping four indexes current through
        # every insert; and rows are overwritten by id where they are instead of being
        # deleted first, which saves freeing and reallocating every page of `jobs`.
        # All in this transaction: a failed rebuild rolls back to the old tables.
        indexes = _secondary_indexes(link, "jobs")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("DELETE FROM counters")
        conn.execute("DELETE FROM controls")
        controls: dict[ControlKey, ControlRow] = {}
        folded, written = _fill(link, "jobs", "counters", controls)
        conn.executemany(
            csql.control_upsert("?"), [csql.control_values(row) for row in controls.values()]
        )
        if conn.execute("SELECT count(*) FROM jobs").fetchone()[0] != written:
            # Rows for jobs the log does not have (added behind conductor's back).
            conn.execute(
                "DELETE FROM jobs WHERE NOT EXISTS "
                "(SELECT 1 FROM events WHERE events.job_id = jobs.id)"
            )
        for _, create in indexes:
            conn.execute(create)
        link.set_meta("projections_version", str(projections_base.VERSION))
        last = conn.execute(sql.LAST_SEQ).fetchone()[0]
        link.set_meta("projected_seq", str(last or 0))
    return folded


def diff(link: SqliteConnection) -> list[RowDifference]:
    """How the live read models differ from a fold of the log (nothing is written)."""
    conn = link.raw
    with link.translate():
        conn.execute("DROP TABLE IF EXISTS temp.rebuilt_jobs")
        conn.execute("DROP TABLE IF EXISTS temp.rebuilt_counters")
        conn.execute("CREATE TEMP TABLE rebuilt_jobs AS SELECT * FROM main.jobs WHERE 0")
        conn.execute("CREATE TEMP TABLE rebuilt_counters AS SELECT * FROM main.counters WHERE 0")
        conn.execute("BEGIN")
        try:
            controls: dict[ControlKey, ControlRow] = {}
            _fill(link, "temp.rebuilt_jobs", "temp.rebuilt_counters", controls)
            differences = _differences(link)
            live = [csql.control_row(values) for values in conn.execute(csql.CONTROLS)]
            differences += csql.control_differences(
                {(row["kind"], row["name"]): row for row in live}, controls
            )
        finally:
            conn.execute("ROLLBACK")
        conn.execute("DROP TABLE temp.rebuilt_jobs")
        conn.execute("DROP TABLE temp.rebuilt_counters")
    return differences


def _events_by_job(link: SqliteConnection) -> Iterator[runner.StoredEvent]:
    """Every event's stored columns that a fold reads, in (job_id, seq) order.

    A walk of the `events_by_job` index, a thousand rows at a time: memory stays flat
    however long the log is.
    """
    cursor = link.raw.execute(sql.BY_JOB)
    while batch := cursor.fetchmany(1_000):
        yield from batch


def _fill(
    link: SqliteConnection,
    jobs_table: str,
    counters_table: str,
    controls: dict[ControlKey, ControlRow],
) -> tuple[int, int]:
    """Fold the whole log into `jobs_table` (overwriting rows by id), the empty
    `counters_table` and `controls` (the operations stream's rows, for the caller to
    write); returns (events folded, job rows written)."""
    upsert = sql.job_insert("?", jobs_table, verb="INSERT OR REPLACE")
    many = sql.job_insert("?", jobs_table, rows=_ROWS_PER_INSERT, verb="INSERT OR REPLACE")
    counts: Counter[Bucket] = Counter()
    written = 0
    batch: list[Any] = []
    for row in runner.rebuild_rows_stored(_events_by_job(link), controls):
        batch.append(row)
        if len(batch) == _FILL_BATCH:
            _write_rows(link, (many, upsert), batch)
            counts.update(from_rows(batch))
            written += len(batch)
            batch = []
    _write_rows(link, (many, upsert), batch)
    counts.update(from_rows(batch))
    written += len(batch)
    link.raw.executemany(
        sql.counter_insert("?", counters_table),
        [(*key, n) for key, n in counts.items() if n],
    )
    folded: int = link.raw.execute(sql.COUNT_EVENTS).fetchone()[0]
    return folded, written


def _write_rows(link: SqliteConnection, inserts: tuple[str, str], rows: list[Any]) -> None:
    """Write `rows` in order with `inserts` (for `_ROWS_PER_INSERT` rows, for one)."""
    # Rows are built in COLUMNS order (and only ever updated in place), so their values
    # line up with the insert's columns.
    values: list[Any] = list(itertools.chain.from_iterable(row.values() for row in rows))
    many, one = inserts
    width = len(COLUMNS)
    step = width * _ROWS_PER_INSERT
    whole = len(rows) // _ROWS_PER_INSERT * step
    link.raw.executemany(many, [values[i : i + step] for i in range(0, whole, step)])
    link.raw.executemany(one, [values[i : i + width] for i in range(whole, len(values), width)])


def _secondary_indexes(link: SqliteConnection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the indexes declared on `table`."""
    return link.raw.execute(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
        (table,),
    ).fetchall()


def _differences(link: SqliteConnection) -> list[RowDifference]:
    conn = link.raw
    differences: list[RowDifference] = []
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM (SELECT * FROM main.jobs EXCEPT SELECT * FROM temp.rebuilt_jobs) "
            "UNION SELECT id FROM "
            "(SELECT * FROM temp.rebuilt_jobs EXCEPT SELECT * FROM main.jobs) ORDER BY id"
        )
    ]
    if ids:
        # The scratch table has no key (CREATE TABLE AS): without an index each lookup
        # below would scan it, and a replay that changed every row would take hours.
        conn.execute("CREATE INDEX temp.rebuilt_jobs_by_id ON rebuilt_jobs (id)")
    db = _utils(link)
    for job_id in ids:
        live = _one(db, f"SELECT {sql.JOB_COLUMNS} FROM main.jobs WHERE id = ?", job_id)
        rebuilt = _one(db, f"SELECT {sql.JOB_COLUMNS} FROM temp.rebuilt_jobs WHERE id = ?", job_id)
        differences.append(RowDifference(table="jobs", key=str(job_id), live=live, rebuilt=rebuilt))
    differences += sql.counter_differences(
        _counter_rows(link, "main.counters"), _counter_rows(link, "temp.rebuilt_counters")
    )
    return differences


def _utils(link: SqliteConnection) -> Any:
    """sqlite-utils over the same connection, for row-shaped reads.

    Imported here, on first use: it costs ~60 ms to import (it pulls in numpy when
    present), which every short CLI command would otherwise pay."""
    import sqlite_utils

    return sqlite_utils.Database(link.raw)


def _one(db: Any, query: str, key: int) -> dict[str, object] | None:
    rows = list(db.query(query, [key]))
    return dict(rows[0]) if rows else None


def _counter_rows(link: SqliteConnection, table: str) -> dict[Bucket, int]:
    return {
        (queue, task, status): n
        for queue, task, status, n in link.raw.execute(
            f"SELECT {sql.COUNTER_COLUMNS} FROM {table} WHERE n != 0"
        )
    }
