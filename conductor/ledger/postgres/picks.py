"""A claim's picks on PostgreSQL: due pending jobs, locked with `FOR UPDATE SKIP LOCKED`.

Sent before the chain lock in the claim's transaction (`PostgresLedger.transact`), so a
claimer never waits for another's picks: rows one claimer holds, the others skip.

Every (queue, priority) present is one range seek on `jobs_due` (SQLite's loop of seeks),
the priorities found by a loose index scan (`statements.QUEUE_LEVELS`), joined laterally
into one statement: a claim's picks are one statement to prepare, send and read
back, whatever the number of queues and levels (they were one each, three for one queue,
most of a claim's client-side cost in psycopg).
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from conductor.domain import queue_controls as rules
from conductor.domain.clock import stamp
from conductor.domain.job_row import JobRow
from conductor.ledger import statements as sql
from conductor.ledger.base import ClaimRequest

Conn = psycopg.Connection[Any]

_PICK_DUE: Final = (
    sql.QUEUE_LEVELS + "SELECT picked.* FROM level AS p "
    f"CROSS JOIN LATERAL (SELECT {sql.JOB_COLUMNS} FROM jobs WHERE status = 'pending' "
    "AND queue = p.queue AND priority = p.priority AND run_at <= %s "
    "ORDER BY run_at, id LIMIT %s FOR UPDATE SKIP LOCKED) AS picked "
    "WHERE p.priority IS NOT NULL"
)
"""`statements.pick_due` for every (queue, priority) at once. Parameters: the queues (an
array), now (a stamp), the limit."""


def send(conn: Conn, request: ClaimRequest) -> psycopg.Cursor[Any] | None:
    """Queue the picks of every (queue, priority), each up to the whole limit, as one
    statement."""
    if request.limit <= 0 or not request.queues:
        return None
    return conn.execute(_PICK_DUE, (list(request.queues), stamp(request.now), request.limit))


def take(
    picks: psycopg.Cursor[Any] | None,
    request: ClaimRequest,
    admission: rules.Admission | None = None,
) -> list[JobRow]:
    """The due pending jobs a claim takes, best first: priority, then run_at, then
    id. Rows another claimer holds were skipped, not waited for; rows picked beyond
    the limit stay locked until the commit, a few milliseconds, and stay pending.

    With `admission` (queue controls, `gate.py`), only from its queues and within each
    limited queue's room, which is taken out of it."""
    picked: list[JobRow] = []
    if picks is None:
        return picked
    levels: dict[int, list[JobRow]] = {}
    for values in picks:
        row = sql.job_row(values)
        levels.setdefault(row["priority"], []).append(row)
    for _, level in sorted(levels.items()):
        candidates = level
        if len(request.queues) > 1:
            candidates.sort(key=lambda row: (row["run_at"], row["id"]))
        wanted = request.limit - len(picked)
        if admission is not None:
            allowed = admission.queues
            candidates = [row for row in candidates if row["queue"] in allowed]
            if admission.room:
                candidates = rules.within(candidates, wanted, admission.room, _queue)
        picked.extend(candidates[:wanted])
    return picked


def _queue(row: JobRow) -> str:
    return row["queue"]
