"""What the Python API hands back for counts and for operator actions on several jobs.

Plain frozen values (no I/O), so any layer can hold one and `conductor.client` stays a
facade; `conductor` exports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from conductor.domain.errors import ConductorError


@attrs.frozen(kw_only=True)
class Enqueued:
    """What one enqueue did (`Conductor.enqueue_each`): made a new job, or found that a
    job already held its unique key and appended nothing."""

    id: int
    """The new job's id; for a duplicate, the id of the job holding the key."""
    duplicate: bool
    unique_key: str | None
    """The key the job was enqueued with, if any."""


@attrs.frozen(kw_only=True)
class StatusCounts:
    """How many jobs are in each status, and in all."""

    pending: int = 0
    claimed: int = 0
    """Claimed by a worker (holding a lease) and waiting for a free slot: prefetched."""
    in_progress: int = 0
    """Their handler is running."""
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return (
            self.pending
            + self.claimed
            + self.in_progress
            + self.completed
            + self.failed
            + self.cancelled
        )

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, **attrs.asdict(self)}


@attrs.frozen(kw_only=True)
class Target:
    """A job an operator action moved (or, in a dry run, would move), as it was then."""

    id: int
    task: str
    queue: str
    status: str
    """Its status when the action was decided, before the move."""


@attrs.frozen(kw_only=True)
class ActionReport:
    """What an operator action did (`cancel_many`, `retry_where`, ...): the jobs acted on,
    in the order given (or in id order for filters), and each refused job with the error
    saying why (`UnknownJob`, `InvalidTransition` or `NotSelected`)."""

    done: tuple[int, ...]
    refused: dict[int, ConductorError]
    batch: str = ""
    """The batch id every event of this action carries (one per call)."""
    by: str = ""
    reason: str = ""
    dry_run: bool = False
    """Nothing was appended: `done` is what the action would have moved."""
    targets: dict[int, Target] = attrs.field(factory=dict)
    """Each job of `done`, as it was when the action was decided on it."""

    @property
    def ok(self) -> bool:
        return not self.refused


@attrs.frozen(kw_only=True)
class Stats:
    overall: StatusCounts
    queues: dict[str, StatusCounts]
    tasks: dict[str, StatusCounts]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.overall.as_dict(),
            "queues": {name: counts.as_dict() for name, counts in self.queues.items()},
            "tasks": {name: counts.as_dict() for name, counts in self.tasks.items()},
        }

    @classmethod
    def from_counts(cls, counts: Iterable[tuple[str, str, str, int]]) -> Stats:
        """The totals of (queue, task, status, count) rows: overall, per queue, per task."""
        overall: dict[str, int] = {}
        queues: dict[str, dict[str, int]] = {}
        tasks: dict[str, dict[str, int]] = {}
        for queue, task, status, n in counts:
            overall[status] = overall.get(status, 0) + n
            bucket = queues.setdefault(queue, {})
            bucket[status] = bucket.get(status, 0) + n
            bucket = tasks.setdefault(task, {})
            bucket[status] = bucket.get(status, 0) + n
        return cls(
            overall=StatusCounts(**overall),
            queues={name: StatusCounts(**found) for name, found in queues.items()},
            tasks={name: StatusCounts(**found) for name, found in tasks.items()},
        )
