"""How many claimed jobs the Queue keeps waiting beyond its free slots.

A claim is a round trip through the Writer's commit (an fsync). While it is under way the
slots live off the buffer: if they finish the buffer before the claim returns, they idle,
and every group commit carries only the few jobs that finished meanwhile. So the buffer
should hold what the slots get through in one round trip:

    depth = slots x claim round trip / job duration

which is deep for jobs much shorter than a commit (no-op jobs: the ceiling) and the floor
for jobs longer than one (a 10 ms job against a 1 ms commit: 0.8 of a job per slot, so 2).
A prefetched job is claimed (its attempt has begun in the ledger), so depth is not free:
it holds jobs back from idle processes and, on a crash, each of them is rescued and uses a
retry. That is why it is adaptive rather than always deep, and capped.

Pure arithmetic over what the Queue observes; the Queue owns the timing.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

FLOOR: Final = 2
"""Depth while nothing is known, and for jobs longer than a commit."""
CEILING_PER_SLOT: Final = 4
"""The deepest buffer is 4 jobs per slot, as Celery's default prefetch multiplier."""
_WEIGHT: Final = 0.2
"""How much one new observation moves the running average."""


@attrs.define
class Prefetch:
    """The prefetch depth: fixed (`floor == ceiling`) or adaptive between the two."""

    floor: int
    ceiling: int
    job_seconds: float | None = None
    claim_seconds: float | None = None

    @classmethod
    def fixed(cls, depth: int) -> Prefetch:
        return cls(floor=depth, ceiling=depth)

    @classmethod
    def adaptive(cls, slots: int) -> Prefetch:
        return cls(floor=FLOOR, ceiling=max(FLOOR, CEILING_PER_SLOT * slots))

    @property
    def adapts(self) -> bool:
        return self.floor != self.ceiling

    def observe_job(self, seconds: float) -> None:
        """An attempt ran for `seconds` (its handler's time)."""
        self.job_seconds = _average(self.job_seconds, seconds)

    def observe_claim(self, seconds: float) -> None:
        """A claim came back `seconds` after it was asked for."""
        self.claim_seconds = _average(self.claim_seconds, seconds)

    def depth(self, slots: int) -> int:
        if not self.adapts or self.job_seconds is None or self.claim_seconds is None:
            return self.floor
        # A job that takes no measurable time is as short as jobs get.
        wanted = slots * self.claim_seconds / max(self.job_seconds, 1e-6)
        return max(self.floor, min(self.ceiling, math.ceil(wanted)))


def _average(current: float | None, seen: float) -> float:
    return seen if current is None else current + _WEIGHT * (seen - current)
