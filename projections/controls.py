"""The `controls` read model: one row per controlled thing (a queue, a cron schedule),
the fold of its operations-stream events (job id 0, `conductor.domain.control_events`).

One generic table serves every kind: `(kind, name) -> state`, the state a JSON object
whose shape belongs to the kind. A fold is registered per event type and is pure:
`(state | None, fields, at) -> (kind, name, new state)`. It may refuse an event by raising
a `ConductorError` (a resume of a queue that is not paused, a rate window overspent): the
append it belongs to is then refused as a whole and nothing is stored, which is how the
ledger refuses what must not happen twice.

Rows are folded in seq order on the append path and on rebuild alike (on rebuild the
operations stream is the first group of the by-job walk, job id 0, read in seq order), so
a rebuild equals incremental application.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypedDict

from conductor.domain import queue_controls as rules
from conductor.domain.control_events import (
    CONTROL_EVENT_CLASSES,
    ControlEvent,
    QueueLimitCleared,
    QueueLimitSet,
    QueuePaused,
    QueueRateSpent,
    QueueResumed,
)
from conductor.domain.errors import ControlRefused, ControlUnchanged
from conductor.domain.schedule_events import SCHEDULE_EVENT_CLASSES
from projections.schedule_folds import SCHEDULE_FOLDS

name: Final = "controls"

State = dict[str, Any]
Key = tuple[str, str]
"""(kind, name)"""
Fold = Callable[[State | None, Mapping[str, Any], str], tuple[str, str, State]]


class ControlRow(TypedDict):
    """One `controls` row as the fold keeps it (the state decoded)."""

    kind: str
    name: str
    state: State
    updated_at: str
    last_seq: int


FOLDS: Final[dict[str, Fold]] = {}
"""Event type -> its fold. Every operations-stream type has one."""
_KINDS: Final[dict[str, str]] = {
    cls.TYPE: cls.KIND for cls in (*CONTROL_EVENT_CLASSES, *SCHEDULE_EVENT_CLASSES)
}


def folds(cls: type[ControlEvent]) -> Callable[[Fold], Fold]:
    """Register the decorated function as the fold of `cls`'s events."""

    def register(fold: Fold) -> Fold:
        FOLDS[cls.TYPE] = fold
        return fold

    return register


def is_control(event_type: str) -> bool:
    return event_type in _KINDS


def subject(event_type: str, fields: Mapping[str, Any]) -> Key:
    """(kind, name) of the row an event of `event_type` with `fields` folds into."""
    kind = _KINDS[event_type]
    return kind, str(fields[kind])


def advance(
    rows: dict[Key, ControlRow], seq: int, at: str, event_type: str, fields: Mapping[str, Any]
) -> Key:
    """Fold one event into `rows` (in place: the caller's own copy); returns its key."""
    key = subject(event_type, fields)
    row = rows.get(key)
    kind, title, state = FOLDS[event_type](None if row is None else row["state"], fields, at)
    rows[(kind, title)] = {
        "kind": kind,
        "name": title,
        "state": state,
        "updated_at": at,
        "last_seq": seq,
    }
    return key


def fold_all(events: Iterable[tuple[int, str, str, Mapping[str, Any]]]) -> dict[Key, ControlRow]:
    """The rows folded from (seq, at, type, fields) of the whole operations stream, in seq
    order: what a rebuild writes."""
    rows: dict[Key, ControlRow] = {}
    for seq, at, event_type, fields in events:
        advance(rows, seq, at, event_type, fields)
    return rows


# -- queues ---------------------------------------------------------------------------------


def _queue(state: State | None) -> State:
    return rules.initial() if state is None else dict(state)


def _operator(state: State, fields: Mapping[str, Any], at: str) -> None:
    state["by"] = fields["by"]
    state["reason"] = fields["reason"]
    state["changed_at"] = at


@folds(QueuePaused)
def _paused(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    queue = fields["queue"]
    new = _queue(state)
    if new["paused"]:
        raise ControlUnchanged(
            f"queue {queue!r} is already paused (by {new['by']}); nothing changed"
        )
    new["paused"] = True
    _operator(new, fields, at)
    return "queue", queue, new


@folds(QueueResumed)
def _resumed(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    queue = fields["queue"]
    new = _queue(state)
    if not new["paused"]:
        raise ControlUnchanged(f"queue {queue!r} is not paused; nothing changed")
    new["paused"] = False
    _operator(new, fields, at)
    return "queue", queue, new


@folds(QueueLimitSet)
def _limit_set(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    queue, limit, value, per = fields["queue"], fields["limit"], fields["value"], fields["per"]
    new = _queue(state)
    rules.check_limit(value, limit)
    if limit == "concurrency":
        if per is not None:
            raise ControlRefused(f"a concurrency limit has no period; got per={per!r}")
        if new["concurrency"] == value:
            raise ControlUnchanged(
                f"queue {queue!r} already has concurrency {value}; nothing changed"
            )
        new["concurrency"] = value
    elif limit == "rate":
        if per not in rules.PERIODS:
            raise ControlRefused(
                f"invalid rate period {per!r}: expected {', '.join(rules.PERIODS)}"
            )
        if (new["rate"], new["per"]) == (value, per):
            raise ControlUnchanged(
                f"queue {queue!r} already has rate {value}/{per}; nothing changed"
            )
        if new["per"] != per:  # a window of another length: start counting afresh
            new["window"], new["spent"] = None, 0
        new["rate"], new["per"] = value, per
    else:
        raise ControlRefused(f"invalid limit {limit!r}: expected {' or '.join(rules.LIMITS)}")
    _operator(new, fields, at)
    return "queue", queue, new


@folds(QueueLimitCleared)
def _limit_cleared(
    state: State | None, fields: Mapping[str, Any], at: str
) -> tuple[str, str, State]:
    queue, limit = fields["queue"], fields["limit"]
    new = _queue(state)
    if limit not in rules.LIMITS:
        raise ControlRefused(f"invalid limit {limit!r}: expected {' or '.join(rules.LIMITS)}")
    if new[limit] is None:
        raise ControlUnchanged(f"queue {queue!r} has no {limit} limit; nothing changed")
    new[limit] = None
    if limit == "rate":
        new["per"], new["window"], new["spent"] = None, None, 0
    _operator(new, fields, at)
    return "queue", queue, new


@folds(QueueRateSpent)
def _rate_spent(state: State | None, fields: Mapping[str, Any], at: str) -> tuple[str, str, State]:
    queue, claims = fields["queue"], fields["claims"]
    if state is None or state["rate"] is None:
        raise ControlRefused(f"queue {queue!r} has no rate limit to count claims against")
    new = dict(state)
    window = rules.window_start(at, new["per"])
    # A claimer whose clock is behind may stamp a window that already ended: it counts in
    # the current one, never reopens an old one.
    if new["window"] is None or window > new["window"]:
        new["window"], new["spent"] = window, 0
    if claims < 1 or new["spent"] + claims > new["rate"]:
        raise ControlRefused(
            f"queue {queue!r}: {claims} claims would exceed its rate of {new['rate']}/"
            f"{new['per']} ({new['spent']} spent in the window from {new['window']})"
        )
    new["spent"] += claims
    return "queue", queue, new


FOLDS.update(SCHEDULE_FOLDS)  # the schedules' folds live beside: projections/schedule_folds.py
