"""Writes in doubt: a commit whose connection was lost may have happened anyway.

When the server goes away (or the network drops) between COMMIT and its answer, the
Writer is told the write failed, but it may be in the ledger. Most of what the Writer
writes is safe to write twice, because every decision is made again on the current rows:
a second heartbeat, start, release or rescue of the same attempt decides nothing. Two
writes are not:

* an attempt's outcome: written again, fencing would record the attempt's own result as
  stale (`result_ignored`), an audit entry saying the attempt lost a job it never lost;
* a claim: if it happened, the jobs are held by this process, which does not know it,
  so nobody runs them until their leases expire and a rescue spends one of their retries.

So the Writer notes what such a write decided on (`Doubt`), and after reconnecting looks:
an outcome whose events are in the job's history after the rows it decided on has
landed and is dropped (`landed`), and jobs the ledger says this process holds but the
Writer does not know are given back at once (`strays`, released, not rescued).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Final

import attrs

from conductor.domain import decisions as decide
from conductor.domain.decisions import Outcome
from conductor.domain.events import NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow

SETTLING: Final = frozenset({"completed", "attempt_failed", "result_ignored"})
"""The events that record an attempt's outcome (`decide.settle`); only the attempt's own
process records them, so one after the decided-on row is the write in doubt."""


@attrs.define
class Doubt:
    """What writes in doubt decided on, until the Writer has looked."""

    seen: dict[int, int] = attrs.field(factory=dict)
    """Job id -> the `last_seq` of its row when an outcome write in doubt decided."""
    claims: bool = False
    """A claim was part of a write in doubt: look for jobs held unknowingly."""

    def failed(self, decided: Mapping[int, int] | None, *, claimed: bool) -> None:
        """A write lost its connection; `decided` is what its decision saw (None if it
        failed before deciding, so nothing of it can have been committed)."""
        if decided is None:
            return
        for job_id, seq in decided.items():
            self.seen.setdefault(job_id, seq)
        self.claims = self.claims or claimed


def landed(
    outcomes: Sequence[Outcome],
    seen: Mapping[int, int],
    histories: Mapping[int, Sequence[RecordedEvent]],
) -> set[int]:
    """Ids of the jobs whose kept outcome is already recorded: their history holds a
    settling event for the outcome's attempt after the row the write in doubt saw."""
    found = set()
    for outcome in outcomes:
        since = seen.get(outcome.job_id)
        if since is None:
            continue
        if any(
            rec.seq > since
            and rec.type in SETTLING
            and getattr(rec.event, "attempt", None) == outcome.attempt
            for rec in histories.get(outcome.job_id, ())
        ):
            found.add(outcome.job_id)
    return found


def strays(live: Mapping[int, JobRow], me: str, known: Collection[int]) -> dict[int, int]:
    """Job id -> attempt of the live jobs the ledger says `me` holds but are not `known`
    to the Writer (held, or waiting for a rescue): claims of a write in doubt."""
    return {
        job_id: row["attempts"]
        for job_id, row in live.items()
        if row["worker"] == me and job_id not in known
    }


def give_back(
    strays: Mapping[int, int], rows: Mapping[int, JobRow], now: dt.datetime
) -> list[NewEvent]:
    """The `released` events for `strays` (job id -> attempt), decided on `rows`."""
    reason = "claimed by a write whose answer was lost with the connection; given back"
    return [
        event
        for job_id, attempt in strays.items()
        for event in decide.release(rows.get(job_id), attempt, reason=reason, now=now)
    ]
