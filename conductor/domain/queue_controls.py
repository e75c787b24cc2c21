"""Queue controls as pure rules: a queue's controls state, the limits an operator may set,
and how much room a claim has in a limited queue.

The state is the `controls` row of kind `queue` (canonical JSON), folded from the
operations stream by `projections/controls.py`; the ledger's claim reads it under its lock
and asks `room` how many jobs it may take. Nothing here does I/O or reads a clock: the
claim's `now` and the queue's running count are passed in.

A rate limit counts claims in **fixed windows** aligned to the epoch (each second, minute
or hour of UTC): simple to state, O(1) to keep in the row, and exact, because every claim
from a rate-limited queue appends a `queue_rate_spent` event that the fold adds to its
window. The price of fixed windows is the boundary: up to twice the rate can be claimed
within one period that straddles two windows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

from conductor.domain.clock import Timestamp, stamp, unstamp
from conductor.domain.control_events import OPERATIONS, QueueRateSpent
from conductor.domain.errors import InvalidInput
from conductor.domain.events import NewEvent

R = TypeVar("R")

PERIODS: Final = {"second": 1, "minute": 60, "hour": 3600}
"""Rate periods by name, in seconds."""
_UNITS: Final = {
    "s": "second",
    "sec": "second",
    "second": "second",
    "m": "minute",
    "min": "minute",
    "minute": "minute",
    "h": "hour",
    "hour": "hour",
}
_RATE: Final = re.compile(r"^\s*([0-9]+)\s*/\s*([a-z]+)\s*$")
MAX_LIMIT: Final = 1_000_000
"""The largest concurrency or rate accepted: past it a limit limits nothing."""
LIMITS: Final = ("concurrency", "rate")

RUNNING: Final = ("claimed", "in_progress")
"""The job states a concurrency limit counts: attempts claimed (waiting in a worker's
prefetch buffer, lease held) or running."""


def check_limit(value: int, what: str) -> int:
    """A concurrency or rate count: a whole number from 1 to `MAX_LIMIT`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(
            f"invalid {what} {value!r}: expected a whole number from 1 to {MAX_LIMIT}"
        )
    return value


def parse_rate(text: str) -> tuple[int, str]:
    """`100/m`, `5/second`, `3600/h` -> (count, period name)."""
    match = _RATE.match(text.lower())
    unit = None if match is None else _UNITS.get(match.group(2))
    if match is None or unit is None:
        raise InvalidInput(
            f"invalid rate {text!r}: expected N/s, N/m or N/h (per second, minute or hour), "
            "e.g. 100/m"
        )
    count = _whole(match.group(1))
    if not 1 <= count <= MAX_LIMIT:
        raise InvalidInput(
            f"invalid rate {text!r}: expected a count from 1 to {MAX_LIMIT} per second, "
            "minute or hour"
        )
    return count, unit


CLEAR: Final = "none"
"""What an operator types to clear a limit (`--rate none`, the dashboard's form)."""


def parse_concurrency_setting(text: str) -> int | None:
    """A concurrency limit as an operator types it (the CLI's `--concurrency`, the
    dashboard's form): `N`, or `none` for None (clear it)."""
    value = text.strip()
    if value.lower() == CLEAR:
        return None
    if value.isascii() and value.isdigit() and 1 <= _whole(value) <= MAX_LIMIT:
        return int(value)
    raise InvalidInput(
        f"invalid concurrency {text!r}: expected a whole number from 1 to {MAX_LIMIT}, "
        f"or {CLEAR} to clear it"
    )


def parse_rate_setting(text: str) -> tuple[int, str] | None:
    """A rate limit as an operator types it (the CLI's `--rate`, the dashboard's form):
    `N/s|m|h` (`parse_rate`), or `none` for None (clear it)."""
    if text.strip().lower() == CLEAR:
        return None
    try:
        return parse_rate(text)
    except InvalidInput as e:
        raise InvalidInput(f"{e}, or {CLEAR} to clear it") from None


def _whole(digits: str) -> int:
    """ASCII digits as a number, a huge one as `MAX_LIMIT + 1`: past it nothing is
    accepted, and `int` refuses strings of thousands of digits outright."""
    significant = digits.lstrip("0")
    return int(digits) if len(significant) <= len(str(MAX_LIMIT)) else MAX_LIMIT + 1


def describe_rate(rate: int, per: str) -> str:
    return f"{rate}/{per}"


def initial() -> dict[str, Any]:
    """The state of a queue nobody has controlled: not paused, no limits."""
    return {
        "paused": False,
        "by": None,
        "reason": "",
        "changed_at": None,
        "concurrency": None,
        "rate": None,
        "per": None,
        "window": None,
        "spent": 0,
    }


def is_limited(state: dict[str, Any] | None) -> bool:
    """Whether a claim from the queue must count before it takes (a limit is set)."""
    return state is not None and (state["concurrency"] is not None or state["rate"] is not None)


def is_paused(state: dict[str, Any] | None) -> bool:
    return state is not None and bool(state["paused"])


def window_start(at: Timestamp, per: str) -> Timestamp:
    """The start of the fixed rate window (of `per`) that `at` falls in."""
    when = unstamp(at)
    period = PERIODS[per]
    seconds = int(when.timestamp()) // period * period
    return stamp(dt.datetime.fromtimestamp(seconds, dt.UTC))


def spent(state: dict[str, Any], at: Timestamp) -> int:
    """Claims already counted in the rate window that `at` falls in."""
    if state["rate"] is None or state["window"] is None:
        return 0
    return int(state["spent"]) if window_start(at, state["per"]) <= state["window"] else 0


def room(state: dict[str, Any] | None, running: int, at: Timestamp) -> int | None:
    """How many more jobs a claim at `at` may take from the queue (None: no limit), given
    `running`, its attempts claimed or running now. Never negative: a limit lowered below
    what runs lets nothing more start until enough finish."""
    if state is None:
        return None
    if state["paused"]:
        return 0
    allowed: int | None = None
    if state["concurrency"] is not None:
        allowed = max(0, state["concurrency"] - running)
    if state["rate"] is not None:
        left = max(0, state["rate"] - spent(state, at))
        allowed = left if allowed is None else min(allowed, left)
    return allowed


@attrs.frozen(kw_only=True)
class Admission:
    """What a claim may take, decided from its queues' controls under the claim's lock."""

    queues: tuple[str, ...]
    """The claim's queues it may take from at all (not paused, room left)."""
    room: dict[str, int]
    """How many more jobs each limited queue among them may give (unlimited: absent)."""


def admit(
    queues: Sequence[str],
    controls: Mapping[str, dict[str, Any]],
    at: Timestamp,
    running: Callable[[str], int],
) -> Admission:
    """Which of `queues` a claim at `at` may take from, and how many from each limited one.

    `controls` holds the states of the queues that have a controls row; `running(queue)`
    counts a limited queue's attempts claimed or running (asked only for limited ones, so
    a queue without limits costs nothing)."""
    open_queues: list[str] = []
    rooms: dict[str, int] = {}
    for queue in queues:
        state = controls.get(queue)
        if is_paused(state):
            continue
        if is_limited(state):
            left = room(state, running(queue), at)
            if not left:
                continue
            rooms[queue] = left
        open_queues.append(queue)
    return Admission(queues=tuple(open_queues), room=rooms)


def within(
    candidates: Iterable[R], wanted: int, rooms: dict[str, int], queue_of: Callable[[R], str]
) -> list[R]:
    """The first `wanted` of `candidates` (best first) that their queues have room for;
    takes the room it uses out of `rooms`."""
    taken: list[R] = []
    for candidate in candidates:
        if len(taken) >= wanted:
            break
        queue = queue_of(candidate)
        left = rooms.get(queue)
        if left is None:
            taken.append(candidate)
        elif left > 0:
            rooms[queue] = left - 1
            taken.append(candidate)
    return taken


def rate_spent(
    queues: Iterable[str], controls: Mapping[str, dict[str, Any]], *, worker: str, at: Timestamp
) -> list[NewEvent]:
    """The `queue_rate_spent` events a claim at `at` appends after its `claimed` events:
    one per rate-limited queue among the claimed jobs' `queues` (one entry per job)."""
    spent: dict[str, int] = {}
    for queue in queues:
        state = controls.get(queue)
        if state is not None and state["rate"] is not None:
            spent[queue] = spent.get(queue, 0) + 1
    return [
        NewEvent(job_id=OPERATIONS, at=at, event=QueueRateSpent(queue=q, by=worker, claims=n))
        for q, n in spent.items()
    ]
