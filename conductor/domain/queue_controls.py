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
from typing import Any, Final

from conductor.domain.clock import Timestamp, stamp, unstamp
from conductor.domain.errors import InvalidInput

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
_RATE: Final = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")
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
    count = int(match.group(1))
    if not 1 <= count <= MAX_LIMIT:
        raise InvalidInput(
            f"invalid rate {text!r}: expected a count from 1 to {MAX_LIMIT} per second, "
            "minute or hour"
        )
    return count, unit


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
