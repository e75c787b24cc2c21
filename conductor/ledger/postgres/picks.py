"""A claim's picks on PostgreSQL: due pending jobs, locked with `FOR UPDATE SKIP LOCKED`.

Sent before the chain lock in the claim's transaction (`PostgresLedger.transact`), so a
claimer never waits for another's picks: rows one claimer holds, the others skip.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

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


def take(picks: list[list[psycopg.Cursor[Any]]], request: ClaimRequest) -> list[JobRow]:
    """The due pending jobs a claim takes, best first: priority, then run_at, then
    id. Rows another claimer holds were skipped, not waited for; rows picked beyond
    the limit stay locked until the commit, a few milliseconds, and stay pending."""
    picked: list[JobRow] = []
    for level in picks:
        candidates = [sql.job_row(values) for cursor in level for values in cursor]
        if len(level) > 1:
            candidates.sort(key=lambda row: (row["run_at"], row["id"]))
        picked.extend(candidates[: request.limit - len(picked)])
    return picked
