"""The PostgreSQL ledger: append, transact, claim, read and query one conductor schema.

The same statements as SQLite (`conductor.ledger.statements`, with `%s`), the same
numbering, chaining and folding (`conductor.ledger.append`); what differs is how writers
on many hosts are kept apart (docs/architecture.md, "PostgreSQL: one chain, many hosts"):

* A transaction first locks the rows it will change (jobs `FOR UPDATE`; a claim's picks
  `FOR UPDATE SKIP LOCKED`, so claimers on many hosts pass each other instead of queueing;
  the `controls` rows of limited queues and of operations events, `gate.py`), and only
  then takes the chain lock, an advisory lock that numbers, chains and commits appends one
  transaction at a time. It covers the head read, the fold, the inserts and the commit.
* Job ids come from a sequence, outside the lock.
* An append that makes work claimable sends `NOTIFY conductor` in its own transaction:
  PostgreSQL delivers it to every listening worker, on any host, when (and only if) the
  transaction commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import psycopg

from conductor.domain import decisions as decide
from conductor.domain import queue_controls as rules
from conductor.domain import unique
from conductor.domain.config import Settings
from conductor.domain.events import JobEnqueued, NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.ledger import append
from conductor.ledger import control_statements as csql
from conductor.ledger import statements as sql
from conductor.ledger.base import (
    Admitted,
    ClaimedJob,
    ClaimRequest,
    Decide,
    RowDifference,
    StoredEvent,
    admissions,
    claim_alone,
)
from conductor.ledger.postgres import bulk, gate, intake, keys, rebuild
from conductor.ledger.postgres.connection import PostgresConnection
from conductor.ledger.postgres.reads import ROWS, PostgresReads, row_map
from projections import runner

Conn = psycopg.Connection[Any]

_CONTROL_UPSERT: Final = csql.control_upsert("%s")
_LOCK_ROWS: Final = ROWS + " ORDER BY id FOR UPDATE"
_NEW_JOB_IDS: Final = "SELECT nextval('job_ids') FROM generate_series(1, %s)"
WAKE_CHANNEL: Final = "conductor"
"""The NOTIFY channel; the payload is the schema, so one database can hold several."""
FINISHED_CHANNEL: Final = "conductor_finished"
"""The NOTIFY channel of commits that finished jobs, for result waiters only (workers do
not listen to it, so a drain's completions wake none of them); payload the schema."""
_WAKING: Final = frozenset(
    {"enqueued", "retry_scheduled", "rescued", "released", "requeued", "cancelled"}
    | {"queue_resumed", "queue_limit_set", "queue_limit_cleared"}
)
"""Event types after which a job may be claimable (a queue resumed or its limits changed),
or a running handler must hear of a cancellation: their commit wakes the workers."""


class PostgresLedger(PostgresReads):
    """A ledger in one schema of a PostgreSQL database. One instance per thread."""

    def __init__(self, settings: Settings, *, create: bool) -> None:
        self._link = PostgresConnection(settings, create=create)
        self.location = self._link.location
        self.schema = self._link.target.schema
        self._gate = gate.Gate()
        if self._link.rebuild_needed:
            self.rebuild_projections()

    @property
    def link(self) -> PostgresConnection:
        return self._link

    # -- append ------------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        if not events:
            return []

        def attempt(conn: Conn) -> list[RecordedEvent]:
            ids = sorted({new.job_id for new in events if new.job_id})
            wanted = sum(1 for new in events if new.job_id is None)
            rows = conn.execute(_LOCK_ROWS, (ids,)) if ids else None
            gate.lock_subjects(conn, events)
            fresh = conn.execute(_NEW_JOB_IDS, (wanted,)) if wanted else None
            head = self._lock_chain(conn)
            current = row_map(rows)
            new_ids = [row[0] for row in fresh] if fresh is not None else []
            return self._store(conn, events, head.fetchone(), current, new_ids)

        result: list[RecordedEvent] = self._link.retrying(attempt)
        return result

    def enqueue(self, events: Sequence[NewEvent]) -> list[Admitted]:
        looks = unique.checks(events)
        if not looks:
            return [Admitted(job_id=rec.job_id, recorded=rec) for rec in self.append(events)]

        def attempt(conn: Conn) -> tuple[unique.Admission, list[RecordedEvent]]:
            # The keys' locks and look-ups first; their answers come back before ids are
            # drawn (a duplicate spends none), then the chain lock, the head, the writes.
            holders = keys.holders(conn, self._link.target, looks)
            admission = unique.admit(events, holders)
            wanted = len(admission.accepted)
            fresh = conn.execute(_NEW_JOB_IDS, (wanted,)) if wanted else None
            head = self._lock_chain(conn) if wanted else None
            if head is None or fresh is None:
                return admission, []
            new_ids = [row[0] for row in fresh]
            recorded = self._store(
                conn, admission.accepted, head.fetchone(), {}, new_ids, admitted=True
            )
            return admission, recorded

        admission, recorded = self._link.retrying(attempt)
        return admissions(admission, recorded)

    def _lock_chain(self, conn: Conn) -> psycopg.Cursor[Any]:
        """Queue the chain lock and the head read; returns the head's cursor. Sent after
        every row lock of the transaction, so a holder of the chain lock never waits for
        a row (no lock cycle between appenders)."""
        self._link.lock_chain(conn)
        return conn.execute(sql.HEAD)

    def _store(
        self,
        conn: Conn,
        events: Sequence[NewEvent],
        head: tuple[int, str] | None,
        current: Mapping[int, JobRow],
        new_ids: Sequence[int],
        *,
        admitted: bool = False,
    ) -> list[RecordedEvent]:
        """Number, fold and store `events` after `head`; the caller holds the chain lock
        and has locked the rows in `current`. The writes are queued in the pipeline and
        reach the server with the commit, in one round trip."""
        if not events:
            return []
        missing = {
            e.job_id
            for e in events
            if e.job_id is not None and not isinstance(e.event, JobEnqueued)
        } - current.keys()
        if missing:  # not a path the engine takes: it decides on rows it has locked
            current = {**current, **row_map(conn.execute(_LOCK_ROWS, (sorted(missing),)))}
        stored, recorded, _ = append.number(events, head, lambda n: new_ids[:n], admitted=admitted)
        controls = gate.read_rows(conn, runner.control_keys(recorded))
        effect = runner.apply_batch(current, recorded, controls)
        inserts, updates = append.row_writes(effect.rows, current)
        parts = ["events"]
        params: list[Any] = [bulk.rows(stored)]
        if inserts:
            parts.append("job_inserts")
            params.append(bulk.rows(inserts))
        if updates:
            parts.append("job_updates")
            params.append(bulk.rows(updates))
        deltas = effect.counter_deltas
        if deltas:
            # A count that reaches zero keeps its row (readers skip `n = 0`): one row per
            # (queue, task, status) ever counted, updated in place, never deleted.
            parts.append("counters")
            params.append(bulk.rows([(*k, n) for k, n in deltas.items()]))
        parts.append("projected")
        params.append(str(recorded[-1].seq))
        channels: list[str] = []
        if any(rec.event.TYPE in _WAKING for rec in recorded):
            channels.append(WAKE_CHANNEL)
        if sql.finishes(recorded):
            channels.append(FINISHED_CHANNEL)
        for channel in channels:
            params += [channel, self.schema]
        conn.execute(bulk.writes(tuple(parts), len(channels)), params)
        for row in effect.controls.values():
            conn.execute(_CONTROL_UPSERT, csql.control_values(row))
        return recorded

    # -- claim -------------------------------------------------------------------------
    def transact(
        self,
        job_ids: Sequence[int],
        decide: Decide,
        *,
        claim: ClaimRequest | None = None,
    ) -> tuple[list[RecordedEvent], list[ClaimedJob]]:
        recorded, claimed = self._link.retrying(
            lambda conn: self._attempt(conn, job_ids, decide, claim)
        )
        if claim is not None and self._gate.stale and len(claimed) < claim.limit:
            # The claim found its queues' controls other than it assumed (gate.py): claim
            # again at once with what it learnt, rather than leave the room to a poll.
            again = attrs.evolve(claim, limit=claim.limit - len(claimed))
            claimed += self._link.retrying(lambda conn: self._attempt(conn, (), _none, again))[1]
        return recorded, claimed

    def _attempt(
        self, conn: Conn, job_ids: Sequence[int], decide: Decide, claim: ClaimRequest | None
    ) -> tuple[list[RecordedEvent], list[ClaimedJob]]:
        # One round trip: the rows to decide on, the queue controls' locks and the picks
        # (gate.py), the chain lock, then the head and the controls as they hold, in one
        # statement.
        ids = sorted(set(job_ids))
        rows = conn.execute(_LOCK_ROWS, (ids,)) if ids else None
        gated = self._gate.send(conn, claim) if claim is not None else None
        # A claim also takes in committed transactional enqueues, in the same round trip
        # (the delete skips rows others are taking, never waits), and claims them below if
        # it has room; there are none on the busy path but one statement's worth of work.
        taking = intake.send_take(conn) if claim is not None else None
        if claim is not None and gated is not None:
            self._link.lock_chain(conn)
            head, gated = self._gate.head(self._gate.send_head(conn, claim), gated)
        else:
            head = self._lock_chain(conn).fetchone()
        current = row_map(rows)
        events = decide(current)
        picked: list[JobRow] = []
        spent: list[NewEvent] = []
        admission = None
        if claim is not None and gated is not None:
            picked, spent, admission = self._gate.take(claim, gated)
        room = 0 if claim is None else claim.limit - len(picked)
        taken = [] if taking is None or claim is None else intake.taken(taking, claim.now)
        starts = [self._start(row, claim) for row in picked] if claim is not None else []
        known = {**current, **{row["id"]: row for row in picked}}
        batch = [*taken, *events, *starts, *spent]
        stored = self._store(conn, batch, head, known, [])
        first, rest = len(taken), len(taken) + len(events)
        claimed = sql.claimed(picked, stored[rest : rest + len(starts)])
        if taken and claim is not None and admission is not None and room > 0:
            after = (stored[-1].seq, stored[-1].hash)
            claimed += self._claim_more(conn, attrs.evolve(claim, limit=room), after, admission)
        return stored[first:rest], claimed

    def _claim_more(
        self,
        conn: Conn,
        claim: ClaimRequest,
        head: tuple[int, str],
        admission: rules.Admission,
    ) -> list[ClaimedJob]:
        """Claim among jobs this transaction just took in, within what the queue controls
        still admit. Under the chain lock: the picks skip locked rows, never wait."""
        picked, spent = self._gate.more(conn, claim, admission)
        if not picked:
            return []
        starts = [self._start(row, claim) for row in picked]
        stored = self._store(conn, [*starts, *spent], head, {row["id"]: row for row in picked}, [])
        return sql.claimed(picked, stored[: len(starts)])

    def claim(
        self,
        *,
        worker: str,
        queues: Sequence[str],
        limit: int,
        now: dt.datetime,
        lease: dt.timedelta,
    ) -> list[ClaimedJob]:
        return claim_alone(self, worker=worker, queues=queues, limit=limit, now=now, lease=lease)

    @staticmethod
    def _start(row: JobRow, request: ClaimRequest) -> NewEvent:
        return decide.start(row, worker=request.worker, now=request.now, lease=request.lease)

    # -- transactional enqueue ---------------------------------------------------------
    def enqueue_within(self, connection: object, events: Sequence[NewEvent]) -> list[int]:
        return intake.put(
            connection,
            schema=self.schema,
            channel=WAKE_CHANNEL,
            events=events,
            location=self.location,
        )

    def ingest(self, now: dt.datetime) -> int:
        with self._link.connection() as conn:
            if not intake.waiting(conn):
                return 0

        def attempt(conn: Conn) -> int:
            taken = intake.take(conn, now)
            if taken:
                self._store(conn, taken, self._lock_chain(conn).fetchone(), {}, [])
            return len(taken)

        total = 0
        while (count := self._link.retrying(attempt)) > 0:
            total += count
            if count < intake.BATCH:
                break
        return total

    # -- copying -----------------------------------------------------------------------
    def import_events(self, rows: Sequence[StoredEvent]) -> None:
        if not rows:
            return

        def attempt(conn: Conn) -> None:
            self._link.lock_chain(conn)
            append.check_continues(conn.execute(sql.HEAD).fetchone(), rows[0], self.location)
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY events ({sql.CHAIN_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)

        self._link.retrying(attempt, pipeline=False)  # COPY cannot run in a pipeline

    # -- maintenance -------------------------------------------------------------------
    def rebuild_projections(self) -> int:
        return rebuild.rebuild(self._link)

    def diff_projections(self) -> list[RowDifference]:
        return rebuild.diff(self._link)

    def checkpoint_wal(self, *, wait: float) -> bool:
        return True  # the server manages its own write-ahead log

    def check_writable(self) -> None:
        self._link.check_writable()

    def close(self) -> None:
        self._link.close()


def _none(rows: Mapping[int, JobRow]) -> list[NewEvent]:
    return []  # a claim that decides nothing about jobs it holds
