"""Listing jobs a page at a time: the `Listing` mixin of `Conductor`.

What the dashboard's jobs table (and `/api/jobs`) reads: the jobs matching a filter,
newest first, a keyset page at a time (`Ledger.page`), with the number of matches taken
from the `counters` read model when the filter allows it (status, task and queue do; a
time window does not), so neither the page nor the total ever counts a million rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from conductor.domain.bulk import STATUSES, Selection
from conductor.domain.clock import Clock, stamp
from conductor.domain.config import Settings
from conductor.domain.errors import InvalidInput
from conductor.domain.job_row import JobRow
from conductor.ledger.base import Ledger

MAX_PAGE: Final = 500


@attrs.frozen(kw_only=True)
class JobPage:
    """One page of a listing."""

    jobs: list[JobRow]
    """Newest first."""
    before: int | None
    """The id to pass as `before` for the next (older) page; None on the last page."""
    total: int | None
    """How many jobs match in all; None when the filter has a time window (counting it
    would read every matching row)."""


class Listing:
    """`Conductor.page`: jobs by filter, newest first, a keyset page at a time."""

    ledger: Ledger
    clock: Clock
    settings: Settings
    _settle: Callable[[], bool]
    """`Conductor._settle`: committed transactional enqueues taken into the log first."""

    def page(
        self,
        *,
        statuses: Iterable[str] = (),
        tasks: Iterable[str] = (),
        queues: Iterable[str] = (),
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> JobPage:
        """The newest `limit` jobs matching every given filter (any of each one's values)
        with ids below `before`. `since`/`until` bound when a job last changed, as for
        `retry_where`: the same filter lists jobs and acts on them."""
        wanted = tuple(statuses)
        for status in wanted:
            if status not in STATUSES:
                raise InvalidInput(
                    f"invalid status {status!r}: expected one of {', '.join(STATUSES)}"
                )
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"invalid limit {limit}: expected 1 to {MAX_PAGE}")
        if since is not None and until is not None and since >= until:
            raise InvalidInput("invalid time range: expected since earlier than until")
        selection = Selection(
            statuses=wanted,
            tasks=tuple(tasks),
            queues=tuple(queues),
            since=None if since is None else stamp(since),
            until=None if until is None else stamp(until),
        )
        self._settle()
        rows = self.ledger.page(selection, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(
            jobs=rows,
            before=rows[-1]["id"] if more else None,
            total=None if since is not None or until is not None else self._total(selection),
        )

    def _total(self, where: Selection) -> int:
        return sum(
            n
            for queue, task, status, n in self.ledger.counts()
            if (not where.statuses or status in where.statuses)
            and (not where.tasks or task in where.tasks)
            and (not where.queues or queue in where.queues)
        )
