"""The PostgreSQL ledger's reads: events, jobs, counts and controls, the log's pages for
`copy`, and the chain walk of `audit verify`.

`PostgresLedger` inherits them; each takes a pooled connection for one statement (or a
walk of pages) and holds no lock, so reads never wait for the chain lock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import psycopg

from conductor.domain.bulk import Selection
from conductor.domain.events import RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.ledger import chain
from conductor.ledger import control_statements as csql
from conductor.ledger import statements as sql
from conductor.ledger.base import EventFilter, JobFilter, StoredEvent, history_alone
from conductor.ledger.postgres.connection import PostgresConnection

ROWS: Final = f"SELECT {sql.JOB_COLUMNS} FROM jobs WHERE id = ANY(%s)"
_CONTROLS_OF: Final = csql.controls_of("%s")
_NEXT_DUE_ANY: Final = (
    sql.QUEUE_LEVELS + "SELECT min(due.run_at) FROM level AS p "
    "CROSS JOIN LATERAL (SELECT run_at FROM jobs WHERE status = 'pending' "
    "AND queue = p.queue AND priority = p.priority AND run_at > %s "
    "ORDER BY run_at LIMIT 1) AS due WHERE p.priority IS NOT NULL"
)
"""`next_due` in one statement: the same range seek per (queue, priority present) on `jobs_due`
as SQLite's loop of them, joined laterally, so one round trip instead of one per seek."""
_RECENT_PAGE: Final = (
    f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE seq < %s ORDER BY seq DESC LIMIT 1000"
)
_CHAIN_PAGE: Final = (
    f"SELECT {sql.CHAIN_COLUMNS} FROM events WHERE seq > %s ORDER BY seq LIMIT 10000"
)
_STORED_PAGE: Final = f"SELECT {sql.CHAIN_COLUMNS} FROM events WHERE seq > %s ORDER BY seq LIMIT %s"


class PostgresReads:
    """The reading half of `PostgresLedger` (conductor/ledger/postgres/ledger.py)."""

    _link: PostgresConnection

    # -- read --------------------------------------------------------------------------
    def read(self, where: EventFilter, *, limit: int | None = None) -> list[RecordedEvent]:
        query, params, newest_first = sql.read_events("%s", where, limit=limit)
        with self._link.connection() as conn:
            rows = conn.execute(query, params).fetchall()
        if newest_first:
            rows.reverse()
        return [sql.recorded(row) for row in rows]

    def history(self, job_id: int) -> list[RecordedEvent]:
        return history_alone(self.read, job_id)

    def recent(self, since: str, *, limit: int | None = None) -> list[RecordedEvent]:
        # Pages down the primary key from the newest event; `window` stops asking for
        # pages at the first event stamped before its margin (see RECENT_MARGIN).
        with self._link.connection() as conn:

            def pages() -> Iterator[tuple[Any, ...]]:
                below = (1 << 63) - 1
                while page := conn.execute(_RECENT_PAGE, (below,)).fetchall():
                    yield from page
                    below = page[-1][0]

            return sql.window(pages(), since, limit=limit)

    def preceding(
        self, before: Mapping[int, int], *, types: Sequence[str]
    ) -> dict[int, RecordedEvent]:
        if not before or not types:
            return {}
        query = sql.preceding("%s", len(types))
        found: dict[int, RecordedEvent] = {}
        with self._link.connection() as conn:
            for job_id, seq in before.items():
                row = conn.execute(query, (job_id, seq, *types)).fetchone()
                if row is not None:
                    found[job_id] = sql.recorded(row)
        return found

    # -- query -------------------------------------------------------------------------
    def job(self, job_id: int) -> JobRow | None:
        with self._link.connection() as conn:
            return row_map(conn.execute(ROWS, ([job_id],))).get(job_id)

    def jobs(self, where: JobFilter, *, limit: int | None = None) -> list[JobRow]:
        query, params, newest_first = sql.list_jobs("%s", where, limit=limit)
        with self._link.connection() as conn:
            found = conn.execute(query, params).fetchall()
        if newest_first:
            found.reverse()
        return [sql.job_row(values) for values in found]

    def select(self, where: Selection, *, after: int, limit: int) -> list[JobRow]:
        query, params = sql.select_jobs("%s", where, after=after, limit=limit)
        with self._link.connection() as conn:
            return [sql.job_row(values) for values in conn.execute(query, params)]

    def page(self, where: Selection, *, before: int | None, limit: int) -> list[JobRow]:
        query, params = sql.page_jobs("%s", where, before=before, limit=limit)
        with self._link.connection() as conn:
            return [sql.job_row(values) for values in conn.execute(query, params)]

    def next_due(self, queues: Sequence[str], *, after: str | None = None) -> str | None:
        if not queues:
            return None
        floor = "" if after is None else after
        with self._link.connection() as conn:
            row = conn.execute(_NEXT_DUE_ANY, (list(queues), floor)).fetchone()
        return None if row is None else row[0]

    def counts(self) -> list[tuple[str, str, str, int]]:
        with self._link.connection() as conn:
            return [(q, t, s, int(n)) for q, t, s, n in conn.execute(sql.COUNTS)]

    def event_counts(self, types: Sequence[str]) -> list[tuple[str, str, str, int]]:
        if not types:
            return []
        with self._link.connection() as conn:
            return [
                (q, t, e, int(n))
                for q, t, e, n in conn.execute(sql.event_counts("%s", len(types)), list(types))
            ]

    def controls(self, kind: str) -> dict[str, dict[str, Any]]:
        with self._link.connection() as conn:
            found = conn.execute(_CONTROLS_OF, (kind,)).fetchall()
        return {row["name"]: row["state"] for row in map(csql.control_row, found)}

    def last_seq(self) -> int:
        with self._link.connection() as conn:
            row = conn.execute(sql.LAST_SEQ).fetchone()
        return int(row[0] or 0) if row else 0

    # -- copying and audit -------------------------------------------------------------
    def stored_events(self, *, after: int, limit: int) -> list[StoredEvent]:
        with self._link.connection() as conn:
            return conn.execute(_STORED_PAGE, (after, limit)).fetchall()

    def verify_chain(self) -> chain.ChainReport:
        def rows() -> Any:
            after = 0
            with self._link.connection() as conn:
                while page := conn.execute(_CHAIN_PAGE, (after,)).fetchall():
                    yield from page
                    after = page[-1][0]

        return chain.verify(rows())


def row_map(cursor: psycopg.Cursor[Any] | None) -> dict[int, JobRow]:
    """The job rows a cursor returns, by id (reading it syncs the pipeline)."""
    if cursor is None:
        return {}
    rows = [sql.job_row(values) for values in cursor.fetchall()]
    return {row["id"]: row for row in rows}
