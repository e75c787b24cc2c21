"""What a bulk operator action chooses, and the batch id that ties its events together.

`conductor retry --status failed --task T --since 1h` is a `Selection`: the ledger turns it
into the query that snapshots the jobs to act on (`Ledger.select`), and `mismatch` checks
each job's current row against it again under the write lock, when its turn comes. A job
that changed in between (a worker finished it, another operator retried it) is refused
with the reason instead of being acted on: the filters say what the operator meant.

Every event of one action carries one batch id (`new_batch`), so the audit trail answers
"who retried these 4,000 jobs, and why" with one look-up (`conductor batch ID`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

import attrs

from conductor.domain.clock import Timestamp
from conductor.domain.errors import InvalidInput
from conductor.domain.events import JobCancelled, JobRequeued
from conductor.domain.job_row import JobRow
from conductor.domain.states import TRANSITIONS, JobState

STATUSES: Final = tuple(state.value for state in JobState)

ACTIONS: Final = {"cancel": JobCancelled.TYPE, "retry": JobRequeued.TYPE}
"""Each bulk action and the event it appends."""


def movable(action: str) -> tuple[str, ...]:
    """The statuses `action` can move a job out of, in the state table's order: what a
    filtered action chooses among (`cancel`: pending, claimed, in_progress)."""
    event_type = ACTIONS[action]
    return tuple(str(frm) for frm, typ in TRANSITIONS if typ == event_type and frm is not None)


def either(names: tuple[str, ...] | list[str]) -> str:
    """`a`, `a or b`, `a, b or c`."""
    names = list(names)
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)


@attrs.frozen(kw_only=True)
class Selection:
    """Filters over the `jobs` read model; each given one must match (and within one, any
    of its values). Times are stored timestamps compared with the job's `updated_at`: when
    it last changed status (or, while it runs, its last heartbeat)."""

    statuses: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    since: Timestamp | None = None
    """Inclusive lower bound on `updated_at`."""
    until: Timestamp | None = None
    """Exclusive upper bound on `updated_at`."""

    @property
    def empty(self) -> bool:
        """No filter at all: it would choose every job."""
        return not (self.statuses or self.tasks or self.queues) and (
            self.since is None and self.until is None
        )

    def for_action(self, action: str) -> Selection:
        """This selection checked for `action` and narrowed to the statuses it can move:
        an unknown status, or one the action can never move (`retry --status pending`),
        is `InvalidInput` naming the ones it can."""
        allowed = movable(action)
        for status in self.statuses:
            if status not in STATUSES:
                raise InvalidInput(
                    f"invalid status {status!r}: expected one of {', '.join(STATUSES)}"
                )
            if status not in allowed:
                raise InvalidInput(
                    f"invalid status {status!r} for {action}: only {either(allowed)} jobs "
                    f"can be {'cancelled' if action == 'cancel' else 'retried'}"
                )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidInput(
                f"invalid time range: since {self.since} is not before until {self.until}; "
                "expected since earlier than until"
            )
        return attrs.evolve(self, statuses=self.statuses or allowed)

    def mismatch(self, row: JobRow) -> str | None:
        """Why `row` is not chosen by this selection (None when it is), in words that
        follow `job N`: `is completed; the filter chooses failed jobs`."""
        if self.statuses and row["status"] not in self.statuses:
            return f"is {row['status']}; the filter chooses {either(self.statuses)} jobs"
        if self.tasks and row["task"] not in self.tasks:
            return f"has task {row['task']!r}; the filter chooses task {_quoted(self.tasks)}"
        if self.queues and row["queue"] not in self.queues:
            return f"is in queue {row['queue']!r}; the filter chooses queue {_quoted(self.queues)}"
        changed = row["updated_at"]
        if self.since is not None and changed < self.since:
            return f"last changed at {changed}, before the filter's since {self.since}"
        if self.until is not None and changed >= self.until:
            return f"last changed at {changed}, not before the filter's until {self.until}"
        return None


def _quoted(names: tuple[str, ...]) -> str:
    return either([repr(name) for name in names])


_BATCH: Final = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}")


def new_batch(now: dt.datetime, token: str) -> str:
    """A batch id: the action's start in UTC, then six hex digits of `token` (the caller's
    randomness), e.g. `20261207-103000-3fa2c1`. Readable, sorted by time, and made only of
    digits, lowercase hex and dashes, so a search of the stored JSON for it is exact."""
    if not re.fullmatch(r"[0-9a-f]{6}", token):
        raise ValueError(f"batch token {token!r} is not six lowercase hex digits")
    utc = now.astimezone(dt.UTC)
    # Not strftime's %Y, which leaves years before 1000 unpadded on some platforms.
    return (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}-"
        f"{utc.hour:02d}{utc.minute:02d}{utc.second:02d}-{token}"
    )


def check_batch(text: str) -> str:
    """A batch id as a user typed it, or `InvalidInput` naming the expected shape."""
    batch = text.strip().lower()
    if not _BATCH.fullmatch(batch):
        raise InvalidInput(
            f"invalid batch id {text!r}: expected one printed by cancel or retry, "
            "like 20261207-103000-3fa2c1"
        )
    return batch
