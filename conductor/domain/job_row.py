"""The shape of one job's current state: the row the `jobs` projection keeps and the
decisions read. It lives in the domain so decisions need no projection module.
"""

from __future__ import annotations

from typing import TypedDict


class JobRow(TypedDict):
    """One row of the `jobs` table."""

    id: int
    task: str
    queue: str
    priority: int
    status: str
    attempts: int
    """Attempts started so far; the current/last attempt's number."""
    retries: int
    """Retries used since enqueue or the last operator requeue (the `Retries` column)."""
    max_retries: int
    run_at: str
    payload: str
    last_error: str | None
    worker: str | None
    """Holder of the live lease while in_progress, else None."""
    lease_expires_at: str | None
    created_at: str
    updated_at: str
    trace: str | None
    """The traceparent stored with `enqueued`, carried to every attempt."""
    last_seq: int
    """The seq of the last event folded into this row."""
    unique_key: str | None
    """The unique key the job was enqueued with (`enqueued`'s, version 2), or None."""
    unique_for: int | None
    """That key's scope in seconds, None for "while pending or running"."""
