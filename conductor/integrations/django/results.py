"""A Django `TaskResult` read from a job's row and its history in the ledger.

Nothing about a Django task's run is stored twice: the status is the job's, the times,
attempts, worker ids and errors (with tracebacks) are its events', the return value its
`completed` event's result. So `get_result` can never disagree with `conductor history`.

conductor's states map onto Django's four: pending is READY (also between a failed
attempt and its retry), claimed and in_progress are RUNNING, completed is SUCCESSFUL,
failed and cancelled are FAILED (a cancellation is an error of class
`conductor.domain.errors.JobCancelledError`, with who cancelled it and why).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Final

from conductor.domain import results
from conductor.domain.clock import unstamp
from conductor.domain.events import (
    JobAttemptFailed,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobEnqueued,
    JobFailed,
    JobRunStarted,
    JobStarted,
    RecordedEvent,
)
from conductor.domain.job_row import JobRow
from conductor.integrations.django.compat import AnyTask, TaskError, TaskResult, TaskResultStatus

STATUSES: Final = {
    "pending": TaskResultStatus.READY,
    "claimed": TaskResultStatus.RUNNING,
    "in_progress": TaskResultStatus.RUNNING,
    "completed": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}
CANCELLED_ERROR: Final = "conductor.domain.errors.JobCancelledError"


def arguments(payload: str) -> tuple[list[Any], dict[str, Any]]:
    """A Django job's positional and keyword arguments, from its payload."""
    data = json.loads(payload)
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    return (
        args if isinstance(args, list) else [],
        kwargs if isinstance(kwargs, dict) else {},
    )


def task_result(
    task: AnyTask,
    row: JobRow,
    history: Sequence[RecordedEvent],
    alias: str,
    *,
    running: tuple[int, dt.datetime] | None = None,
) -> TaskResult[Any]:
    """The Django result of job `row` (a job of `task`), as its events tell it.

    `running` (attempt, when it began) is the attempt whose handler asks, in the worker:
    it counts before the Writer has recorded that it began."""
    args, kwargs = arguments(row["payload"])
    enqueued_at = started_at = last_attempted_at = finished_at = None
    claimers: dict[int, str] = {}
    ran: dict[int, str] = {}  # each attempt that began, and its worker (unrun: no attempt)
    errors: list[TaskError] = []
    value: Any = None
    for rec in history:
        event, at = rec.event, unstamp(rec.at)
        if isinstance(event, JobEnqueued):
            enqueued_at = at
        elif isinstance(event, JobClaimed | JobStarted):
            claimers[event.attempt] = event.worker
        if isinstance(event, JobStarted | JobRunStarted):
            if event.attempt not in ran:
                ran[event.attempt] = claimers.get(event.attempt, "unknown")
                last_attempted_at = at
            started_at = started_at or at
        if isinstance(event, JobAttemptFailed):
            path = exception_path(event.error_type, event.traceback)
            errors.append(TaskError(exception_class_path=path, traceback=event.traceback))
        elif isinstance(event, JobCompleted):
            finished_at, value = at, results.decode(event.result)
        elif isinstance(event, JobFailed):
            finished_at = at
        elif isinstance(event, JobCancelled):
            finished_at = at
            errors.append(
                TaskError(
                    exception_class_path=CANCELLED_ERROR,
                    traceback=f"cancelled by {event.by}: {event.reason}",
                )
            )
    if running is not None and running[0] not in ran:
        ran[running[0]] = claimers.get(running[0], "unknown")
        started_at, last_attempted_at = started_at or running[1], running[1]
    found: TaskResult[Any] = TaskResult(
        task=task,
        id=str(row["id"]),
        status=STATUSES[row["status"]],
        enqueued_at=enqueued_at,
        started_at=started_at,
        finished_at=finished_at,
        last_attempted_at=last_attempted_at,
        args=args,
        kwargs=kwargs,
        backend=alias,
        errors=errors,
        worker_ids=[ran[attempt] for attempt in sorted(ran)],
    )
    object.__setattr__(found, "_return_value", value)
    return found


def exception_path(error_type: str, traceback: str) -> str:
    """The dotted path Django's `TaskError.exception_class` imports: the ledger keeps the
    class's short name, and the traceback's last line its qualified one (Python writes
    `module.Class` there, except for built-in exceptions)."""
    lines = [line for line in traceback.splitlines() if line.strip()]
    named = lines[-1].split(":", 1)[0].strip() if lines else ""
    if named != error_type and not named.endswith("." + error_type):
        named = error_type
    return named if "." in named else f"builtins.{named}"


def provisional(task: AnyTask, placeholder: str, args: Any, kwargs: Any, alias: str) -> Any:
    """The result of a task enqueued inside a transaction, before the commit gives it a
    job: READY, with `placeholder` for an id until then (`ConductorBackend.enqueue`)."""
    return TaskResult(
        task=task,
        id=placeholder,
        status=TaskResultStatus.READY,
        enqueued_at=None,
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=args,
        kwargs=kwargs,
        backend=alias,
        errors=[],
        worker_ids=[],
    )


def committed(result: Any, job_id: int, at: dt.datetime) -> None:
    """Give a provisional result its job, once the transaction committed."""
    object.__setattr__(result, "id", str(job_id))
    object.__setattr__(result, "enqueued_at", at)
