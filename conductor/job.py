"""Pure decide-functions: (job state, command, now) -> events.

No I/O and no clock: callers pass `now`. The ledger re-checks every event against the
transition table inside its transaction, so a decision made on a stale read fails cleanly
with `InvalidTransition` instead of corrupting a job.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs

from conductor.clock import stamp
from conductor.config import check_max_retries, check_queue
from conductor.errors import InvalidInput
from conductor.events import JobCancelled, JobEnqueued, JobRequeued, JobStarted, NewEvent
from conductor.states import JobState, next_state
from projections.job_status import JobRow


@attrs.frozen(kw_only=True)
class Payload:
    """A validated payload: its task name and its canonical JSON text."""

    task: str
    text: str


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"invalid payload: {name} is not JSON; expected finite numbers")


def parse_payload(raw: str | bytes | dict[str, Any], max_bytes: int) -> Payload:
    """Validate a payload given as JSON text or a dict, and normalise it.

    It must be a JSON object no larger than `max_bytes` whose `task` is a non-empty
    string. The task is a name looked up in the worker's registry, never imported.
    """
    if isinstance(raw, dict):
        value: Any = raw
    else:
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > max_bytes:
            raise InvalidInput(
                f"invalid payload: {size} bytes is over the {max_bytes}-byte limit; "
                "expected a smaller JSON object (store large data elsewhere and pass a reference)"
            )
        try:
            value = json.loads(raw, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise InvalidInput(
                f"invalid payload JSON: {e.msg} at line {e.lineno} column {e.colno}; "
                "expected a JSON object"
            ) from None
        except RecursionError:
            raise InvalidInput(
                "invalid payload: JSON nests too deeply; expected a flatter object"
            ) from None
        except UnicodeDecodeError:
            raise InvalidInput("invalid payload: not UTF-8; expected UTF-8 JSON text") from None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"invalid payload: got a JSON {type(value).__name__}, expected an object "
            'like {"task": "send_email", ...}'
        )
    task = value.get("task")
    if not isinstance(task, str) or not task.strip():
        raise InvalidInput(
            'invalid payload: no "task" string; expected an object naming its task, '
            'like {"task": "send_email", ...}'
        )
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        text.encode()
    except RecursionError:
        raise InvalidInput(
            "invalid payload: JSON nests too deeply; expected a flatter object"
        ) from None
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"invalid payload: {e}; expected plain JSON values") from None
    if len(text.encode()) > max_bytes:
        raise InvalidInput(
            f"invalid payload: over the {max_bytes}-byte limit; expected a smaller JSON object"
        )
    return Payload(task=task, text=text)


def enqueue(
    payload: Payload,
    *,
    queue: str,
    priority: int,
    max_retries: int,
    run_at: dt.datetime | None,
    now: dt.datetime,
    trace: str | None = None,
) -> NewEvent:
    """The `enqueued` event for a new job; `run_at` None (or past) means due now."""
    at = stamp(now)
    return NewEvent(
        job_id=None,
        at=at,
        trace=trace,
        event=JobEnqueued(
            task=payload.task,
            queue=check_queue(queue),
            priority=priority,
            max_retries=check_max_retries(max_retries),
            run_at=at if run_at is None or run_at <= now else stamp(run_at),
            payload=payload.text,
        ),
    )


def start(row: JobRow, *, worker: str, now: dt.datetime, lease: dt.timedelta) -> NewEvent:
    """Claim one attempt of a due pending job for `worker` until `now + lease`."""
    next_state(row["id"], JobState(row["status"]), JobStarted.TYPE)
    return NewEvent(
        job_id=row["id"],
        at=stamp(now),
        event=JobStarted(
            attempt=row["attempts"] + 1,
            worker=worker,
            lease_expires_at=stamp(now + lease),
        ),
    )


def cancel(row: JobRow, *, by: str, reason: str, now: dt.datetime) -> NewEvent:
    """Cancel a pending or in-progress job."""
    next_state(row["id"], JobState(row["status"]), JobCancelled.TYPE)
    return NewEvent(job_id=row["id"], at=stamp(now), event=JobCancelled(by=by, reason=reason))


def requeue(row: JobRow, *, by: str, now: dt.datetime) -> NewEvent:
    """Send a failed or cancelled job back to pending, due now, with a fresh retry budget."""
    next_state(row["id"], JobState(row["status"]), JobRequeued.TYPE)
    at = stamp(now)
    return NewEvent(job_id=row["id"], at=at, event=JobRequeued(by=by, run_at=at))
