"""Queue controls on PostgreSQL's claim path, and the locking of `controls` rows.

A claim must not take from a paused queue, nor more than a limited queue's room, however
many hosts claim at once; and a queue without controls must not pay for that. So each
claiming ledger remembers the controls of its queues as its last claim read them
(`Gate.known`) and, in the claim's one round trip:

1. locks the `controls` rows of the queues it knows are limited (`FOR UPDATE`, before the
   chain lock, as every append of operations events does: no lock cycle) and counts their
   running attempts after the lock, so claims of one limited queue are serialised and
   count exactly; unlimited queues take no lock;
2. picks from the queues it does not know to be paused;
3. after the chain lock, reads its queues' controls again. Nothing can change them while
   it holds that lock (an operator's change is an append, which needs it), so this read is
   what holds at the commit. A queue found paused, or limited without its row locked,
   gives nothing this time (its picks stay pending) and the claim is marked stale: the
   ledger claims again at once with what it has learnt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import psycopg

from conductor.domain import queue_controls as rules
from conductor.domain.clock import stamp
from conductor.domain.codec import loads
from conductor.domain.control_events import OPERATIONS, ControlEvent
from conductor.domain.events import NewEvent
from conductor.domain.job_row import JobRow
from conductor.ledger import control_statements as csql
from conductor.ledger import statements as sql
from conductor.ledger.base import ClaimRequest
from conductor.ledger.postgres import picks
from projections.controls import ControlRow
from projections.controls import Key as ControlKey

Conn = psycopg.Connection[Any]
State = dict[str, Any]


@attrs.frozen(kw_only=True)
class Sent:
    """The gate's statements of one claim, queued in its pipeline."""

    locked: tuple[str, ...]
    """The queues whose controls rows this claim locked (known to be limited)."""
    running: dict[str, psycopg.Cursor[Any]]
    skipped: tuple[str, ...]
    """The queues not picked from (known to be paused)."""
    picks: psycopg.Cursor[Any] | None = None
    fresh: list[tuple[str, str]] | None = None
    """The claim's queues' controls rows (name, state) as read under the chain lock."""


@attrs.define
class Gate:
    """One claiming ledger's knowledge of its queues' controls, kept between claims."""

    known: dict[str, State] = attrs.Factory(dict)
    stale: bool = False
    """Whether the last claim found the controls other than it assumed."""

    def send(self, conn: Conn, request: ClaimRequest) -> Sent:
        """Steps 1 and 2: lock and count the known-limited queues, then pick from those
        not known to be paused (`picks.send`)."""
        limited = tuple(q for q in request.queues if rules.is_limited(self.known.get(q)))
        skipped = tuple(q for q in request.queues if rules.is_paused(self.known.get(q)))
        running: dict[str, psycopg.Cursor[Any]] = {}
        if limited:
            conn.execute(csql.queue_controls("%s", len(limited), lock="FOR UPDATE"), limited)
            running = {q: conn.execute(_RUNNING_IN, (q,)) for q in limited}
        pickable = attrs.evolve(
            request, queues=tuple(q for q in request.queues if q not in skipped)
        )
        return Sent(
            locked=limited, running=running, skipped=skipped, picks=picks.send(conn, pickable)
        )

    @staticmethod
    def send_head(conn: Conn, request: ClaimRequest) -> psycopg.Cursor[Any]:
        """Step 3, after the chain lock: queue the read of the log's head (as
        `statements.HEAD`) and of the claim's queues' controls, as one statement (one
        row per controls row, each with the head; one row with none). Read the cursor
        with `head`."""
        return conn.execute(_head_and_controls(len(request.queues)), request.queues)

    @staticmethod
    def head(cursor: psycopg.Cursor[Any], sent: Sent) -> tuple[tuple[int, str] | None, Sent]:
        """The head (None in an empty log) and `sent` with the controls read by `send_head`."""
        rows = cursor.fetchall()
        seq, hash_ = rows[0][0], rows[0][1]
        fresh = [(name, state) for _, _, name, state in rows if name is not None]
        return (None if seq is None else (seq, hash_)), attrs.evolve(sent, fresh=fresh)

    def take(
        self, request: ClaimRequest, sent: Sent
    ) -> tuple[list[JobRow], list[NewEvent], rules.Admission]:
        """The jobs the claim takes of its picks, the `queue_rate_spent` events it
        appends, and what the controls admit beyond them (for `more`)."""
        admission, self.stale = self._admit(request, sent)
        taken = picks.take(sent.picks, request, admission)
        return taken, self._spent(request, taken), admission

    def more(
        self, conn: Conn, request: ClaimRequest, admission: rules.Admission
    ) -> tuple[list[JobRow], list[NewEvent]]:
        """Picks and takes again within what `admission` has left (the jobs a claim took
        in from `intake`), under the locks the claim holds."""
        request = attrs.evolve(request, queues=admission.queues)
        taken = picks.take(picks.send(conn, request), request, admission)
        return taken, self._spent(request, taken)

    def _spent(self, request: ClaimRequest, taken: list[JobRow]) -> list[NewEvent]:
        if not taken or not self.known:
            return []
        queues = (row["queue"] for row in taken)
        return rules.rate_spent(queues, self.known, worker=request.worker, at=stamp(request.now))

    def _admit(self, request: ClaimRequest, sent: Sent) -> tuple[rules.Admission, bool]:
        """What the claim may take (from its fresh read), and whether what it assumed
        was stale (then it claims again once committed)."""
        assert sent.fresh is not None
        controls: State = {name: loads(state) for name, state in sent.fresh}
        counts = {q: _count(cursor) for q, cursor in sent.running.items()}
        # A queue found paused that was picked from, or limited without its row locked
        # (the limit is new to this claimer: its count was not taken under the lock),
        # gives nothing this time; one skipped as paused that is not gives nothing either.
        eligible = [
            q
            for q in request.queues
            if q not in sent.skipped and (q in sent.locked or not rules.is_limited(controls.get(q)))
        ]
        stale = any(
            (q in sent.skipped and not rules.is_paused(controls.get(q)))
            or (q not in sent.locked and rules.is_limited(controls.get(q)))
            for q in request.queues
        )
        self.known = {
            **{q: s for q, s in self.known.items() if q not in request.queues},
            **controls,
        }
        admission = rules.admit(eligible, controls, stamp(request.now), counts.__getitem__)
        return admission, stale


_RUNNING_IN = csql.running_in("%s")


def _head_and_controls(queues: int) -> str:
    return (
        "SELECT head.seq, head.hash, c.name, c.state FROM (SELECT 1) AS one "
        f"LEFT JOIN ({sql.HEAD}) AS head ON true "
        f"LEFT JOIN ({csql.queue_controls('%s', queues)}) AS c ON true"
    )


def _count(cursor: psycopg.Cursor[Any]) -> int:
    row = cursor.fetchone()
    return 0 if row is None else int(row[0])


def lock_subjects(conn: Conn, events: Sequence[NewEvent]) -> None:
    """Lock the `controls` rows that operations events among `events` fold into, before
    the chain lock, in the order claims of limited queues lock them (no lock cycle with a
    claimer holding one and waiting for the chain). `read_rows` reads them again under
    the chain lock, which also sees a row another append created meanwhile."""
    keys = sorted(
        {
            new.event.subject()
            for new in events
            if new.job_id == OPERATIONS and isinstance(new.event, ControlEvent)
        }
    )
    if keys:
        conn.execute(csql.control_rows("%s", len(keys), lock="FOR UPDATE"), _flat(keys))


def read_rows(conn: Conn, keys: set[ControlKey]) -> dict[ControlKey, ControlRow]:
    """The stored `controls` rows of `keys`, read under the chain lock: no other append
    can fold them meanwhile."""
    if not keys:
        return {}
    ordered = sorted(keys)
    found = conn.execute(csql.control_rows("%s", len(ordered)), _flat(ordered)).fetchall()
    return {(r["kind"], r["name"]): r for r in map(csql.control_row, found)}


def _flat(keys: Sequence[tuple[str, str]]) -> list[str]:
    """(kind, name) pairs as the parameters of `statements.control_rows`."""
    return [part for key in keys for part in key]
