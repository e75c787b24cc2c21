"""Settings and the parsing of user-supplied values.

Every parser raises `InvalidInput` with a message of the form "invalid X 'value': expected
Y", which the CLI prints as its one line. Settings are frozen; they come from arguments
first, then `CONDUCTOR_*` environment variables, then defaults.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from typing import Final, Literal

import attrs

from conductor.domain.errors import InvalidInput
from conductor.domain.results import DEFAULT_MAX_RESULT_BYTES

DEFAULT_DB: Final = "conductor.db"
DEFAULT_QUEUE: Final = "default"
DEFAULT_PRIORITY: Final = "medium"
DEFAULT_MAX_RETRIES: Final = 3
MAX_RETRIES_CAP: Final = 10_000
DEFAULT_BUSY_TIMEOUT: Final = 5.0
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024

PRIORITIES: Final = {"high": 0, "medium": 1, "low": 2}
PRIORITY_NAMES: Final = {number: name for name, number in PRIORITIES.items()}
PRIORITY_RANKS: Final = range(-99, 102)
"""A job's priority is a rank, lower runs sooner; three ranks have names (above). The
range holds Django's scale, -100 to 100 with higher sooner, as `1 - p`
(`conductor.integrations.django`): Django's default 0 is medium, 1 is high, -1 is low.
Claims seek only the ranks that pending jobs have (`ledger.statements.levels`), so unused
ranks cost nothing."""

Synchronous = Literal["FULL", "NORMAL"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_MAX_DURATION: Final = dt.timedelta(days=3650)
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def parse_duration(text: str, what: str = "duration") -> dt.timedelta:
    """`30s`, `5m`, `2h`, `1d`, `250ms`, or plain seconds; never negative, at most 10 years."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInput(
            f"invalid {what} {text!r}: expected a non-negative number with an optional unit "
            "(ms, s, m, h, d, w), e.g. 30s, 5m, 2h"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds > _MAX_DURATION.total_seconds():
        raise InvalidInput(f"invalid {what} {text!r}: expected at most 10 years")
    return dt.timedelta(seconds=seconds)


def parse_time(text: str, now: dt.datetime, what: str = "time") -> dt.datetime:
    """An ISO-8601 time (naive means UTC) or a relative age such as `1h` (that long ago)."""
    if _DURATION.match(text):
        return now - parse_duration(text, what)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"invalid {what} {text!r}: expected ISO-8601 like 2026-11-28T09:30:00Z "
            "or an age like 30m, 1h"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidInput(
            f"invalid {what} {text!r}: out of range in UTC; "
            "expected a time between years 1 and 9999"
        ) from None


def parse_priority(text: str | int) -> int:
    """A priority given by name (high, medium, low) or as a rank (`PRIORITY_RANKS`)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text not in PRIORITY_RANKS:
            raise InvalidInput(
                f"invalid priority {text!r}: expected a rank from {PRIORITY_RANKS[0]} "
                f"to {PRIORITY_RANKS[-1]}, or high, medium or low"
            )
        return text
    try:
        return PRIORITIES[str(text).strip().lower()]
    except KeyError:
        raise InvalidInput(f"invalid priority {text!r}: expected high, medium or low") from None


def priority_name(rank: int) -> str:
    """How a priority is shown: its name, or the rank when it has none."""
    return PRIORITY_NAMES.get(rank, str(rank))


def check_queue(name: str) -> str:
    if not _QUEUE_NAME.match(name):
        raise InvalidInput(f"invalid queue {name!r}: expected 1-100 letters, digits or _ . : -")
    return name


def check_max_retries(value: int) -> int:
    if not 0 <= value <= MAX_RETRIES_CAP:
        raise InvalidInput(
            f"invalid max retries {value}: expected a whole number from 0 to {MAX_RETRIES_CAP}"
        )
    return value


@attrs.frozen(kw_only=True)
class Settings:
    """How to reach and treat the ledger."""

    db: str = DEFAULT_DB
    """A SQLite file path (or `file:` URI), or a `postgresql://` URL (`?schema=` picks the
    schema, `conductor` by default)."""
    synchronous: Synchronous = "FULL"
    """FULL: an acknowledged write survives power loss. NORMAL: survives a process crash;
    the last transactions before an OS crash or power cut may be lost (never corrupted)."""
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    """Seconds a writer waits for another writer's lock before giving up."""
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    """The most UTF-8 bytes of JSON a task's return value may take; a larger one fails its
    attempt (`conductor.domain.results` says why the default is 64 KiB)."""

    @classmethod
    def from_env(cls, db: str | None = None) -> Settings:
        """Settings from an explicit db (e.g. `--db`) and `CONDUCTOR_*` variables."""
        env = os.environ
        sync = env.get("CONDUCTOR_SYNCHRONOUS", "FULL").strip().upper()
        if sync not in ("FULL", "NORMAL"):
            raise InvalidInput(f"invalid CONDUCTOR_SYNCHRONOUS {sync!r}: expected FULL or NORMAL")
        busy = _positive_float(env.get("CONDUCTOR_BUSY_TIMEOUT"), "CONDUCTOR_BUSY_TIMEOUT")
        cap = _positive_float(env.get("CONDUCTOR_MAX_PAYLOAD_BYTES"), "CONDUCTOR_MAX_PAYLOAD_BYTES")
        result_cap = _positive_float(
            env.get("CONDUCTOR_MAX_RESULT_BYTES"), "CONDUCTOR_MAX_RESULT_BYTES"
        )
        location = db if db is not None else env.get("CONDUCTOR_DB") or DEFAULT_DB
        if not location.strip():
            raise InvalidInput("invalid database '': expected a file path or a postgresql:// URL")
        return cls(
            db=location,
            synchronous="FULL" if sync == "FULL" else "NORMAL",
            busy_timeout=DEFAULT_BUSY_TIMEOUT if busy is None else busy,
            max_payload_bytes=DEFAULT_MAX_PAYLOAD_BYTES if cap is None else int(cap),
            max_result_bytes=DEFAULT_MAX_RESULT_BYTES if result_cap is None else int(result_cap),
        )


def _positive_float(raw: str | None, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"invalid {name} {raw!r}: expected a non-negative number")
    return value


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """How `conductor worker` runs: see docs/operations.md for each option."""

    concurrency: int = 8
    """Worker actors, hence jobs in progress at once in this process."""
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    prefetch: int | None = None
    """Jobs claimed ahead of free slots, so a finishing worker finds its next job waiting;
    None adapts it (from 2 up to 4 per slot) to how long jobs take against a claim's commit."""
    lease: dt.timedelta = dt.timedelta(seconds=30)
    grace: dt.timedelta = dt.timedelta(seconds=30)
    burst: bool = False
    horizon: dt.timedelta | None = None
    """Burst mode only: keep going while a pending job (a retry waiting out its backoff, a
    delayed job) falls due within this long; None stops once nothing is due now."""
    poll_interval: float = 1.0
    """Fallback poll for jobs that no wake-up signal announced (seconds)."""
    maintenance_interval: float = 1.0
    """How often heartbeats, rescues and cancellations are checked (seconds)."""

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.concurrency <= 1024:
            raise InvalidInput(f"invalid concurrency {self.concurrency}: expected 1 to 1024")
        if self.prefetch is not None and not 0 <= self.prefetch <= 10_000:
            raise InvalidInput(f"invalid prefetch {self.prefetch}: expected 0 to 10000")
        if not self.queues:
            raise InvalidInput("invalid queues: expected at least one queue name")
        for queue in self.queues:
            check_queue(queue)
        if self.lease < dt.timedelta(seconds=1):
            raise InvalidInput(f"invalid lease {self.lease}: expected at least 1s")
        if self.horizon is not None and not self.burst:
            raise InvalidInput("invalid horizon: it only applies with burst; expected --burst")
