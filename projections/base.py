"""The projection contract.

A projection is a pure fold: `apply(state, event) -> new state`, where the state is the
read-model row (or small aggregate) the event touches and `None` means "nothing yet".
Everything it needs is in the event and its envelope (`seq`, `job_id`, `at`): no I/O, no
clock, no randomness, so folding the same events always gives the same rows, and a
rebuild from the log equals incremental application (a property test proves it).

A projection never decides legality on its own: it asks `conductor.domain.states`, so a fold over
an illegal sequence raises the same `InvalidTransition` the append would.

`VERSION` covers the shape and rules of all read models together. When it changes, the
ledger rebuilds them from the log on the next writable open instead of migrating rows.
"""

from __future__ import annotations

from typing import Final, Generic, Protocol, TypeVar

from conductor.domain.events import RecordedEvent

VERSION: Final = 1

S = TypeVar("S")


class Projection(Protocol, Generic[S]):
    """What every read model provides."""

    name: str

    def apply(self, state: S | None, event: RecordedEvent) -> S:
        """Fold one event into the state; must not mutate `state`."""
        ...
