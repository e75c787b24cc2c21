"""Attribute names, one per fact, for spans, span events and metrics alike, and the one
way conductor names an exception's class.

They follow the OpenTelemetry semantic conventions where one exists: the messaging span
attributes (`messaging.*`), `error.type` and the `exception.*` attributes of an exception
event. Facts the conventions have no attribute for are namespaced `conductor.` (the job
facts under `conductor.job.`). docs/observability.md lists every name;
tests/observability/test_conventions.py checks that conductor emits exactly those.
"""

from __future__ import annotations

from typing import Final

SYSTEM: Final = "conductor"
"""The value of `messaging.system`."""

# Messaging spans (semantic conventions, messaging spans).
MESSAGING_SYSTEM: Final = "messaging.system"
OPERATION_NAME: Final = "messaging.operation.name"
OPERATION_TYPE: Final = "messaging.operation.type"
DESTINATION: Final = "messaging.destination.name"
MESSAGE_ID: Final = "messaging.message.id"
BATCH_COUNT: Final = "messaging.batch.message_count"

# Errors (semantic conventions, recording errors and exceptions).
ERROR_TYPE: Final = "error.type"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# conductor's own facts.
QUEUE: Final = "conductor.queue"
"""A metric's queue. Spans name the queue `messaging.destination.name`, as the messaging
conventions require; metrics keep the short label Prometheus users query
(`conductor_queue`)."""
TASK: Final = "conductor.task"
STATUS: Final = "conductor.job.status"
ATTEMPT: Final = "conductor.job.attempt"
RUN_AT: Final = "conductor.job.run_at"
"""When a retried job falls due again (a `retry_scheduled` span event)."""
REASON: Final = "conductor.job.reason"
"""Why a job was rescued, released, failed for good, or an attempt's result ignored."""
BY: Final = "conductor.job.by"
"""Who cancelled a job (`operator`, or the name given to `cancel`)."""
OUTCOME: Final = "conductor.job.outcome"
"""What an ignored attempt had reported (`completed` or `failed`)."""
EVENT_SEQ: Final = "conductor.event.seq"
"""The stored event's position in the ledger (on every span event conductor adds)."""


def error_type(error: BaseException | type[BaseException]) -> str:
    """The fully qualified class name of an exception: `builtins.ValueError`,
    `myapp.tasks.PaymentDeclined` (the `error.type` and `exception.type` values)."""
    cls = error if isinstance(error, type) else type(error)
    return f"{cls.__module__}.{cls.__qualname__}"
