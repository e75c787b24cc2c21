"""Unique keys on PostgreSQL: who holds each key an enqueue asks about, found under the
keys' advisory locks (`Ledger.enqueue`, docs/architecture.md "PostgreSQL: one chain,
many hosts").

Each key has an advisory transaction lock of its own (`Target.key_lock`), so enqueues of
one key from any number of hosts take turns, while enqueues of other keys, and every
other append, do not wait for them; the chain lock, which orders all appends, is taken
only afterwards and so is never held while waiting for a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from conductor.domain.unique import Look
from conductor.ledger import statements as sql
from conductor.ledger.postgres.connection import Target


def holders(
    conn: psycopg.Connection[Any], target: Target, looks: Sequence[Look]
) -> dict[Look, int | None]:
    """Lock every key of `looks` until the transaction ends (in sorted order, so two
    batches never wait for each other in a cycle), then run each look-up: it starts
    after the locks are held and, in READ COMMITTED, with a snapshot of its own, so it
    sees every job an earlier holder of the lock committed. One round trip."""
    for lock in sorted({target.key_lock(key) for key, _ in looks}):
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", lock)
    found = [(look, conn.execute(*sql.unique_holder("%s", look))) for look in looks]
    answers: dict[Look, int | None] = {}
    for look, cursor in found:
        row = cursor.fetchone()
        answers[look] = None if row is None else int(row[0])
    return answers
