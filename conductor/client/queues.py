"""Queue controls in the Python API: pause, resume, limits, and the per-queue report.

A mixin that `Conductor` inherits. Every change is an operations-stream event (job id 0,
`conductor.domain.control_events`) appended through the ledger, whose fold
(`projections/controls.py`) decides under the ledger's lock whether it changes anything;
the claims of every worker, on every host, read the result (`docs/operations.md`).
"""

from __future__ import annotations

import datetime as dt
import enum
import getpass
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import attrs

from conductor.domain import queue_controls as rules
from conductor.domain.clock import Clock, seconds_between, stamp, unstamp
from conductor.domain.config import Settings, check_queue
from conductor.domain.control_events import (
    OPERATIONS,
    QueueLimitCleared,
    QueueLimitSet,
    QueuePaused,
    QueueResumed,
)
from conductor.domain.errors import ControlUnchanged, InvalidInput
from conductor.domain.events import NewEvent
from conductor.ledger.base import Ledger

QueueEvent = QueuePaused | QueueResumed | QueueLimitSet | QueueLimitCleared
LimitEvent = QueueLimitSet | QueueLimitCleared


class Keep(enum.Enum):
    """A limit left as it is (`limit_queue`'s default for each limit)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP
_TRIES: Final = 3
"""How often `limit_queue` reads the queue's state and appends again when a concurrent
change made part of its request already hold."""


def operator(by: str | None) -> str:
    """Who an operator action is recorded as: `by`, else the OS user."""
    if by is not None:
        if not by.strip():
            raise InvalidInput("invalid --by '': expected a name (the OS user by default)")
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return "operator"


@attrs.frozen(kw_only=True)
class QueueSummary:
    """One queue as `conductor queues` shows it."""

    name: str
    counts: dict[str, int]
    """Jobs by status (only non-zero statuses)."""
    running: int
    """Attempts claimed or running: what a concurrency limit counts."""
    oldest_due_age: float | None
    """Seconds the oldest due pending job has waited since it fell due; None if none."""
    paused: bool
    by: str | None
    """Who made the last change to its controls, and why (`reason`)."""
    reason: str
    concurrency: int | None
    rate: int | None
    per: str | None
    spent: int
    """Claims counted in the current rate window."""

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


class Queues:
    """Queue controls: what `Conductor` gains from this module."""

    ledger: Ledger
    clock: Clock
    settings: Settings

    def pause_queue(self, name: str, *, by: str | None = None, reason: str = "") -> bool:
        """Stop every worker claiming from queue `name` (within one poll); attempts
        already claimed or running finish. True if it was not paused already. The queue
        need not have any jobs yet."""
        event = QueuePaused(queue=check_queue(name), by=operator(by), reason=reason)
        return self._control([event])

    def resume_queue(self, name: str, *, by: str | None = None, reason: str = "") -> bool:
        """Let workers claim from queue `name` again. True if it was paused."""
        event = QueueResumed(queue=check_queue(name), by=operator(by), reason=reason)
        changed = self._control([event])
        if changed:
            self._wake()
        return changed

    def limit_queue(
        self,
        name: str,
        *,
        concurrency: int | Keep | None = KEEP,
        rate: str | tuple[int, str] | Keep | None = KEEP,
        by: str | None = None,
        reason: str = "",
    ) -> list[str]:
        """Set or clear (None) queue `name`'s limits, across every worker and host:
        `concurrency` caps its attempts claimed or running at once; `rate` (`"100/m"`, or
        `(100, "minute")`) caps claims per second, minute or hour. A limit left out stays
        as it is. Both changes are one append. Returns the limits changed (empty when both
        already held)."""
        check_queue(name)
        if concurrency is KEEP and rate is KEEP:
            raise InvalidInput("nothing to change: expected a concurrency or a rate (or none)")
        wanted_concurrency = (
            concurrency
            if concurrency is KEEP or concurrency is None
            else rules.check_limit(concurrency, "concurrency")
        )
        wanted_rate = _rate(rate)
        who = operator(by)
        for _ in range(_TRIES):
            state = self.ledger.controls("queue").get(name) or rules.initial()
            events: list[LimitEvent] = []
            if wanted_concurrency is not KEEP and wanted_concurrency != state["concurrency"]:
                events.append(_limit(name, who, reason, "concurrency", wanted_concurrency, None))
            if wanted_rate is not KEEP:
                value, per = (None, None) if wanted_rate is None else wanted_rate
                if (value, per) != (state["rate"], state["per"]):
                    events.append(_limit(name, who, reason, "rate", value, per))
            try:
                changed = self._control(events, unchanged_is_refusal=True)
            except ControlUnchanged:
                continue  # another operator changed it meanwhile: look again
            if changed:
                self._wake()
            return [event.limit for event in events]
        raise ControlUnchanged(f"queue {name!r} kept changing; try again")

    def queues(self) -> list[QueueSummary]:
        """Every queue that has jobs or controls: counts, running, oldest due age, paused,
        limits, ordered by name."""
        now = self.clock.now()
        counts: dict[str, Counter[str]] = {}
        for queue, _, status, n in self.ledger.counts():
            counts.setdefault(queue, Counter())[status] += n
        controls = self.ledger.controls("queue")
        found = []
        for name in sorted(counts.keys() | controls.keys()):
            by_status = counts.get(name, Counter())
            state = controls.get(name) or rules.initial()
            due = self.ledger.next_due([name]) if by_status["pending"] else None
            found.append(
                QueueSummary(
                    name=name,
                    counts={status: n for status, n in sorted(by_status.items()) if n},
                    running=sum(by_status[status] for status in rules.RUNNING),
                    oldest_due_age=_age(due, now),
                    paused=bool(state["paused"]),
                    by=state["by"],
                    reason=state["reason"],
                    concurrency=state["concurrency"],
                    rate=state["rate"],
                    per=state["per"],
                    spent=rules.spent(state, stamp(now)),
                )
            )
        return found

    def _control(self, events: Sequence[QueueEvent], *, unchanged_is_refusal: bool = False) -> bool:
        """Append operations events in one append; False when the fold found that the
        (single) change already holds."""
        if not events:
            return False
        at = stamp(self.clock.now())
        try:
            self.ledger.append([NewEvent(job_id=OPERATIONS, at=at, event=e) for e in events])
        except ControlUnchanged:
            if unchanged_is_refusal:
                raise
            return False
        return True

    def _wake(self) -> None:
        """Wake this database's workers on this host: a resumed or loosened queue may
        have work due now (other hosts hear of it from PostgreSQL's NOTIFY)."""
        from conductor.ledger import wakeup

        wakeup.notify(self.settings.db)


def _limit(
    queue: str, by: str, reason: str, limit: str, value: int | None, per: str | None
) -> LimitEvent:
    if value is None:
        return QueueLimitCleared(queue=queue, by=by, reason=reason, limit=limit)
    return QueueLimitSet(queue=queue, by=by, reason=reason, limit=limit, value=value, per=per)


def _rate(rate: str | tuple[int, str] | Keep | None) -> tuple[int, str] | Keep | None:
    if rate is KEEP or rate is None:
        return rate
    if isinstance(rate, str):
        return rules.parse_rate(rate)
    value, per = rate
    if per not in rules.PERIODS:
        raise InvalidInput(f"invalid rate period {per!r}: expected {', '.join(rules.PERIODS)}")
    return rules.check_limit(value, "rate"), per


def _age(due: str | None, now: dt.datetime) -> float | None:
    if due is None or unstamp(due) > now:
        return None
    return max(0.0, seconds_between(due, stamp(now)))
