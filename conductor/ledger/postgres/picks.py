"""A claim's picks on PostgreSQL: due pending jobs, locked with `FOR UPDATE SKIP LOCKED`.

Sent before the chain lock in the claim's transaction (`PostgresLedger.transact`), so a
claimer never waits for another's picks: rows one claimer holds, the others skip.
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

_PICK_DUE: Final = sql.pick_due("%s") + " FOR UPDATE SKIP LOCKED"


def send(conn: Conn, request: ClaimRequest) -> list[list[psycopg.Cursor[Any]]]:
    """Queue the pick of every (priority, queue), each up to the whole limit: sent at
    once, they cost one round trip instead of one per priority level."""
    if request.limit <= 0 or not request.queues:
        return []
    due = stamp(request.now)
    return [
        [conn.execute(_PICK_DUE, (queue, priority, due, request.limit)) for queue in request.queues]
        for priority in sql.PRIORITY_LEVELS
    ]


def take(
    picks: list[list[psycopg.Cursor[Any]]],
    request: ClaimRequest,
    admission: rules.Admission | None = None,
) -> list[JobRow]:
    """The due pending jobs a claim takes, best first: priority, then run_at, then
    id. Rows another claimer holds were skipped, not waited for; rows picked beyond
    the limit stay locked until the commit, a few milliseconds, and stay pending.

    With `admission` (queue controls, `gate.py`), only from its queues and within each
    limited queue's room, which is taken out of it."""
    picked: list[JobRow] = []
    for level in picks:
        candidates = [sql.job_row(values) for cursor in level for values in cursor]
        if len(level) > 1:
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
