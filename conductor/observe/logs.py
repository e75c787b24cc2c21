"""One log line per transition, on stderr: human text by default, JSON for machines.

`-q` shows only failures and warnings; `--log-format json` prints one JSON object a line
with the same fields (`job`, `task`, `event`, `status`, `attempt`, `duration_ms`, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping
from typing import Final, Literal

from conductor.domain.clock import stamp
from conductor.domain.events import (
    JobAttemptFailed,
    JobFailed,
    JobReleased,
    JobRescued,
    JobResultIgnored,
    JobRetryScheduled,
    RecordedEvent,
)
from conductor.domain.states import TRANSITIONS

LOGGER: Final = logging.getLogger("conductor")

LogFormat = Literal["text", "json"]

STATUS_AFTER: Final = {
    event_type: str(to)
    for (_, event_type), to in TRANSITIONS.items()
    if event_type != "result_ignored"
}
_LOUD: Final = (JobAttemptFailed, JobFailed, JobRescued, JobResultIgnored)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {"message": record.getMessage()}
        when = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return json.dumps({"time": stamp(when), "level": record.levelname.lower(), **fields})


def configure(log_format: LogFormat = "text", *, quiet: bool = False) -> None:
    """Send conductor's log lines to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)
    LOGGER.propagate = False


def transition(rec: RecordedEvent, task: str | None, duration: float | None = None) -> None:
    """Log one stored event."""
    ev = rec.event
    level = logging.WARNING if isinstance(ev, _LOUD) else logging.INFO
    if not LOGGER.isEnabledFor(level):
        return
    fields: dict[str, object] = {
        "job": rec.job_id,
        "task": task,
        "event": ev.TYPE,
        "status": STATUS_AFTER.get(ev.TYPE, "unchanged"),
        "attempt": getattr(ev, "attempt", None),
    }
    if duration is not None:
        fields["duration_ms"] = round(duration * 1000, 1)
    if isinstance(ev, JobAttemptFailed):
        fields["error"] = f"{ev.error_type}: {ev.message}"
    elif isinstance(ev, JobRetryScheduled):
        fields["run_at"] = ev.run_at
    elif isinstance(ev, JobFailed | JobRescued | JobReleased | JobResultIgnored):
        fields["reason"] = ev.reason
    LOGGER.log(level, _text(fields), extra={"fields": fields})


def verbose() -> bool:
    """Whether every transition is logged (not `-q`)."""
    return LOGGER.isEnabledFor(logging.INFO)


def _text(fields: Mapping[str, object]) -> str:
    head = f"job {fields['job']} {fields['task'] or '?'} {fields['event']} -> {fields['status']}"
    rest = " ".join(
        f"{key}={value}"
        for key, value in fields.items()
        if key not in ("job", "task", "event", "status") and value is not None
    )
    return f"{head} {rest}".rstrip()


def note(message: str, *, warning: bool = False, **fields: object) -> None:
    """A line about the engine itself (start, stop, restarts)."""
    level = logging.WARNING if warning else logging.INFO
    LOGGER.log(level, message, extra={"fields": {"message": message, **fields}})
