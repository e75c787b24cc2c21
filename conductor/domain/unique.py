"""Unique jobs: the rules of `enqueue --unique-key`, as pure functions.

A unique enqueue is accepted only if no job holding its key blocks it; otherwise it is a
duplicate, answered with the id of the job that holds the key, and nothing is appended.
What blocks depends on the scope the new enqueue asks for:

* no period (the default): a job with the key that is still pending, claimed or running
  (`ACTIVE_STATUSES`); once it completes, fails or is cancelled the key is free again;
* a period (`--unique-for 10m`): a job with the key enqueued within that long before
  now, whatever its state.

The decision needs the state of the ledger when the enqueue happens, so it is made by
the ledger inside its write transaction (`Ledger.enqueue`) from the look-ups `checks`
names; `admit` is the decision itself. Only accepted jobs reach the log, with their key
and scope in the `enqueued` event: a replay folds them and never decides again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from conductor.domain.clock import stamp, unstamp
from conductor.domain.errors import InvalidInput
from conductor.domain.events import JobEnqueued, NewEvent
from conductor.domain.states import JobState

MAX_KEY_LENGTH: Final = 200
"""Characters in a unique key: enough for `import:<a path>`, small enough to index."""
MAX_UNIQUE_FOR: Final = dt.timedelta(days=3650)
ACTIVE_STATUSES: Final = (
    JobState.PENDING.value,
    JobState.CLAIMED.value,
    JobState.IN_PROGRESS.value,
)
"""The statuses in which a job holds its key under the default scope: not yet finished."""

Look = tuple[str, str | None]
"""One look-up for a holder of a key: (key, None) for a job with it that is not finished,
(key, since) for the newest job with it enqueued at or after `since` (a stored stamp)."""


def check_key(key: str) -> str:
    """A unique key as given, refused when empty, blank, too long or holding control
    characters (which no listing could show)."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"invalid unique key {key!r}: expected a non-blank string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"invalid unique key {key[:40]!r}...: {len(key)} characters; "
            f"expected at most {MAX_KEY_LENGTH}"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidInput(
            f"invalid unique key {key!r}: holds a control character; expected printable text"
        )
    return key


def check_period(period: dt.timedelta, shown: str | None = None) -> int:
    """A `unique_for` period as whole seconds, from 1 second to 10 years (`shown` is how
    the user wrote it, for the message)."""
    seconds = period.total_seconds()
    if not dt.timedelta(seconds=1) <= period <= MAX_UNIQUE_FOR or seconds != int(seconds):
        raise InvalidInput(
            f"invalid unique_for {shown or period!r}: expected whole seconds from 1s to 10 years"
        )
    return int(seconds)


def look_of(new: NewEvent) -> Look | None:
    """The look-up that decides whether `new` (an `enqueued` event) is a duplicate, or
    None for a job without a key."""
    event = new.event
    if not isinstance(event, JobEnqueued) or event.unique_key is None:
        return None
    if event.unique_for is None:
        return (event.unique_key, None)
    return (event.unique_key, stamp(unstamp(new.at) - dt.timedelta(seconds=event.unique_for)))


def checks(events: Sequence[NewEvent]) -> list[Look]:
    """The distinct look-ups a batch of new jobs needs (none when no job has a key)."""
    return list(dict.fromkeys(look for new in events if (look := look_of(new)) is not None))


@attrs.frozen(kw_only=True)
class Admission:
    """What a unique enqueue decided for each new job of a batch."""

    accepted: tuple[NewEvent, ...]
    """The jobs to append, in the batch's order."""
    places: tuple[tuple[bool, int], ...]
    """Per event of the batch: (True, i) for the accepted job `accepted[i]` (new, or a
    duplicate of it when its key came twice in the batch), (False, id) for a duplicate
    of the existing job `id`."""
    duplicate: tuple[bool, ...]
    """Per event of the batch: whether it was turned away."""


def admit(events: Sequence[NewEvent], holders: Mapping[Look, int | None]) -> Admission:
    """Accept each new job unless a job holding its key blocks it: one found by its look-up
    (`holders`, run under the write lock), or an earlier job of this same batch with the
    key (new, so pending, so blocking under either scope)."""
    accepted: list[NewEvent] = []
    places: list[tuple[bool, int]] = []
    duplicate: list[bool] = []
    in_batch: dict[str, int] = {}
    for new in events:
        look = look_of(new)
        holder = None if look is None else holders[look]
        if look is not None and look[0] in in_batch:
            places.append((True, in_batch[look[0]]))
            duplicate.append(True)
        elif holder is not None:
            places.append((False, holder))
            duplicate.append(True)
        else:
            if look is not None:
                in_batch[look[0]] = len(accepted)
            places.append((True, len(accepted)))
            duplicate.append(False)
            accepted.append(new)
    return Admission(accepted=tuple(accepted), places=tuple(places), duplicate=tuple(duplicate))
