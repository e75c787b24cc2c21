"""The operations stream's events: facts about things that are not jobs (queues, later
cron schedules), stored in the same log and hash chain as job events, with job id 0.

No job ever has id 0 (ids start at 1), so the events table and the chain need no change;
`OPERATIONS` names that id. Each event names its subject - the field named by its class's
`KIND` (`queue`, `schedule`) - and `by`, who caused it: an operator's name, `code` for a
definition in code, or a worker's id for what the engine records. The read model they fold
into is the generic `controls` table (`projections/controls.py`); docs/events.md describes
each type for operators.
"""

from __future__ import annotations

from typing import ClassVar, Final

import attrs

from conductor.domain.event_base import EventBase

OPERATIONS: Final = 0
"""The job id the operations stream's events are stored under."""


class ControlEvent(EventBase):
    """An event of the operations stream: about the subject its `KIND` field names."""

    KIND: ClassVar[str]
    """The kind of subject (`queue`, `schedule`), which is also the field naming it."""

    def subject(self) -> tuple[str, str]:
        """(kind, name) of the controls row this event folds into."""
        return self.KIND, str(getattr(self, self.KIND))


@attrs.frozen(kw_only=True)
class QueuePaused(ControlEvent):
    """An operator paused the queue: no worker claims from it until it is resumed; jobs
    already claimed or running finish."""

    TYPE: ClassVar[str] = "queue_paused"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "queue"

    queue: str
    by: str
    reason: str
    """Why, in the operator's words; empty when none was given."""


@attrs.frozen(kw_only=True)
class QueueResumed(ControlEvent):
    """An operator resumed a paused queue: workers claim from it again."""

    TYPE: ClassVar[str] = "queue_resumed"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "queue"

    queue: str
    by: str
    reason: str


@attrs.frozen(kw_only=True)
class QueueLimitSet(ControlEvent):
    """An operator set one of the queue's limits, replacing its previous value.

    `limit` is `concurrency` (at most `value` of the queue's attempts claimed or running at
    once, across every worker) or `rate` (at most `value` claims per `per`: `second`,
    `minute` or `hour`; `per` is None for concurrency)."""

    TYPE: ClassVar[str] = "queue_limit_set"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "queue"

    queue: str
    by: str
    reason: str
    limit: str
    value: int
    per: str | None


@attrs.frozen(kw_only=True)
class QueueLimitCleared(ControlEvent):
    """An operator removed one of the queue's limits (`concurrency` or `rate`)."""

    TYPE: ClassVar[str] = "queue_limit_cleared"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "queue"

    queue: str
    by: str
    reason: str
    limit: str


@attrs.frozen(kw_only=True)
class QueueRateSpent(ControlEvent):
    """A claim took `claims` jobs from a rate-limited queue; they count against the rate
    window the event's `at` falls in. Appended by the claim itself, in its transaction,
    so the window's count is part of the ledger and exact however many workers claim."""

    TYPE: ClassVar[str] = "queue_rate_spent"
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "queue"

    queue: str
    by: str
    """The claiming worker's id."""
    claims: int


CONTROL_EVENT_CLASSES: Final[tuple[type[ControlEvent], ...]] = (
    QueuePaused,
    QueueResumed,
    QueueLimitSet,
    QueueLimitCleared,
    QueueRateSpent,
)
