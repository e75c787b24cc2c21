"""Retry delays: exponential with jitter, pure.

`delay(retry) = min(cap, base * 2**retry)`, then jittered into its upper half
(`[d/2, d]`, "equal jitter"): retries of jobs that failed together spread out instead of
stampeding, yet never come sooner than half the nominal delay. The random draw is an
argument, so tests fix it.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import attrs

from conductor.domain.errors import InvalidInput

DEFAULT_BASE: Final = 2.0
DEFAULT_CAP: Final = 3600.0


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff with jitter; `base` and `cap` in seconds."""

    base: float = DEFAULT_BASE
    cap: float = DEFAULT_CAP

    def __attrs_post_init__(self) -> None:
        if not (0 <= self.base <= self.cap):
            raise InvalidInput(
                f"invalid backoff base={self.base} cap={self.cap}: expected 0 <= base <= cap"
            )

    def delay(self, retry: int, jitter: float) -> dt.timedelta:
        """The wait before retry number `retry` (0 for the first retry); `jitter` in [0, 1)."""
        nominal = min(self.cap, self.base * 2.0 ** min(retry, 64))
        return dt.timedelta(seconds=nominal * (0.5 + 0.5 * jitter))


def coerce(value: Backoff | float | None) -> Backoff:
    """A task's `backoff=` option: a Backoff, a base in seconds, or None for the default."""
    if value is None:
        return Backoff()
    if isinstance(value, Backoff):
        return value
    return Backoff(base=float(value), cap=max(DEFAULT_CAP, float(value)))
