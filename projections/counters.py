"""Counters: how many jobs sit in each (queue, task, status).

`conductor stats` reads these few rows instead of scanning `jobs`, so it stays instant at
a million jobs. A counter changes exactly when a job row changes bucket, so this fold
takes the job row before and after an event rather than the event itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Final

from conductor.domain.job_row import JobRow

name: Final = "counters"

Bucket = tuple[str, str, str]
"""(queue, task, status)"""


def bucket(row: JobRow) -> Bucket:
    return (row["queue"], row["task"], row["status"])


def move(before: JobRow | None, after: JobRow) -> tuple[Bucket | None, Bucket] | None:
    """The bucket a job leaves (None when it is new) and the one it enters; None if the
    event left it where it was."""
    to = bucket(after)
    if before is None:
        return (None, to)
    frm = bucket(before)
    return None if frm == to else (frm, to)


def shift(counts: Counter[Bucket], after: JobRow, status_before: str | None) -> None:
    """Add one row change to a batch's running deltas (the append path's fold step), for a
    row folded in place: only its status can have moved, since a job's queue and task
    never change after `enqueued` (job_status.MUTABLE_COLUMNS)."""
    status = after["status"]
    if status != status_before:
        if status_before is not None:
            counts[(after["queue"], after["task"], status_before)] -= 1
        counts[(after["queue"], after["task"], status)] += 1


def from_rows(rows: Iterable[JobRow]) -> Counter[Bucket]:
    """The counters implied by a set of job rows (what a rebuild produces)."""
    return Counter(bucket(row) for row in rows)
