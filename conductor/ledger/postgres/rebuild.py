"""Projection rebuild and diff on PostgreSQL: fold the whole log into the read models
again, or into temporary tables to compare with the live ones (`conductor admin replay`).

A rebuild holds the chain lock, so no append lands between the fold and its result, and
runs in one transaction: a failed rebuild leaves the old tables. Rows go in with COPY.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

import psycopg

from conductor.ledger import control_statements as csql
from conductor.ledger import statements as sql
from conductor.ledger.base import RowDifference
from conductor.ledger.postgres.connection import PostgresConnection, set_meta
from projections import base as projections_base
from projections import runner
from projections.controls import ControlRow
from projections.controls import Key as ControlKey
from projections.counters import Bucket, from_rows
from projections.job_status import COLUMNS

Conn = psycopg.Connection[Any]
_PAGE: Final = 5_000
"""Events read, and rebuilt rows written, at a time: memory stays flat."""


def rebuild(link: PostgresConnection) -> int:
    """Replace `jobs`, `counters` and `controls` with a fold of the whole log; returns
    events folded."""
    with link.translate(), link.pool.connection() as conn, conn.transaction():
        link.lock_chain(conn)
        conn.execute("TRUNCATE jobs")
        conn.execute("DELETE FROM counters")
        conn.execute("DELETE FROM controls")
        controls: dict[ControlKey, ControlRow] = {}
        folded = _fill(conn, "jobs", "counters", controls)
        with conn.cursor() as cursor:
            cursor.executemany(
                csql.control_upsert("%s"), [csql.control_values(row) for row in controls.values()]
            )
        last = conn.execute(sql.LAST_SEQ).fetchone()
        top = conn.execute(sql.TOP_JOB).fetchone()
        # The next job id follows the highest in the log (a ledger copied in, say).
        if top and top[0]:
            conn.execute(
                "SELECT setval('job_ids', greatest(%s, last_value)) FROM job_ids", (top[0],)
            )
        set_meta(conn, "projections_version", str(projections_base.VERSION))
        set_meta(conn, "projected_seq", str(last[0] if last and last[0] else 0))
    return folded


def diff(link: PostgresConnection) -> list[RowDifference]:
    """How the live read models differ from a fold of the log (nothing is written)."""
    with (
        link.translate(),
        link.pool.connection() as conn,
        conn.transaction(force_rollback=True),
    ):
        conn.execute("CREATE TEMP TABLE rebuilt_jobs (LIKE jobs) ON COMMIT DROP")
        conn.execute("CREATE TEMP TABLE rebuilt_counters (LIKE counters) ON COMMIT DROP")
        conn.execute("CREATE INDEX ON rebuilt_jobs (id)")
        controls: dict[ControlKey, ControlRow] = {}
        _fill(conn, "rebuilt_jobs", "rebuilt_counters", controls)
        live = [csql.control_row(values) for values in conn.execute(csql.CONTROLS).fetchall()]
        return _differences(conn) + csql.control_differences(
            {(row["kind"], row["name"]): row for row in live}, controls
        )


def _events_by_job(conn: Conn) -> Iterator[runner.StoredEvent]:
    """Every event's stored columns a fold reads, in (job_id, seq) order, a page at a time
    (keyset paging on `events_by_job`)."""
    query = (
        f"SELECT {sql.STORED_COLUMNS} FROM events WHERE (job_id, seq) > (%s, %s) "
        "ORDER BY job_id, seq LIMIT %s"
    )
    after = (-1, 0)
    while page := conn.execute(query, (*after, _PAGE)).fetchall():
        yield from page
        after = (page[-1][0], page[-1][1])


def _fill(
    conn: Conn, jobs_table: str, counters_table: str, controls: dict[ControlKey, ControlRow]
) -> int:
    """Fold the whole log into the empty `jobs_table` and `counters_table`, and the
    operations stream into `controls` (for the caller to write); returns the number of
    events folded."""
    counts: Counter[Bucket] = Counter()
    # The fold is read completely before the first COPY: a COPY in progress would
    # block the paging reads on this connection.
    batch: list[Any] = []
    for row in runner.rebuild_rows_stored(_events_by_job(conn), controls):
        batch.append(row)
        if len(batch) == _PAGE:
            _copy(conn, jobs_table, batch)
            counts.update(from_rows(batch))
            batch = []
    _copy(conn, jobs_table, batch)
    counts.update(from_rows(batch))
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.counter_insert("%s", counters_table),
            [(*key, n) for key, n in counts.items() if n],
        )
    total = conn.execute(sql.COUNT_EVENTS).fetchone()
    return int(total[0]) if total else 0


def _copy(conn: Conn, table: str, rows: list[Any]) -> None:
    if not rows:
        return
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY {table} ({sql.JOB_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(tuple(row.values()))


def _differences(conn: Conn) -> list[RowDifference]:
    differences: list[RowDifference] = []
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM (SELECT * FROM jobs EXCEPT SELECT * FROM rebuilt_jobs) AS live "
            "UNION SELECT id FROM (SELECT * FROM rebuilt_jobs EXCEPT SELECT * FROM jobs) "
            "AS rebuilt ORDER BY id"
        )
    ]
    for job_id in ids:
        live = _one(conn, "jobs", job_id)
        rebuilt = _one(conn, "rebuilt_jobs", job_id)
        differences.append(RowDifference(table="jobs", key=str(job_id), live=live, rebuilt=rebuilt))
    differences += sql.counter_differences(
        _counter_rows(conn, "counters"), _counter_rows(conn, "rebuilt_counters")
    )
    return differences


def _one(conn: Conn, table: str, job_id: int) -> dict[str, object] | None:
    row = conn.execute(f"SELECT {sql.JOB_COLUMNS} FROM {table} WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else dict(zip(COLUMNS, row, strict=True))


def _counter_rows(conn: Conn, table: str) -> dict[Bucket, int]:
    return {
        (queue, task, status): int(n)
        for queue, task, status, n in conn.execute(
            f"SELECT {sql.COUNTER_COLUMNS} FROM {table} WHERE n != 0"
        )
    }
