"""The SQLite ledger: append, transact, claim, read and query one conductor file.

The append and claim paths use the sqlite3 connection's own cursor with `executemany` and
statements built once at import (`conductor.ledger.statements`), which measurement showed
to matter there. Every sqlite3 error leaves as a `conductor.domain.errors` exception naming
the file (`connection.translate`).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from conductor.domain import decisions as decide
from conductor.domain import queue_controls as rules
from conductor.domain import unique
from conductor.domain.bulk import Selection
from conductor.domain.clock import stamp
from conductor.domain.codec import loads
from conductor.domain.config import Settings
from conductor.domain.errors import InvalidInput
from conductor.domain.events import NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.ledger import append, chain, sockets
from conductor.ledger import control_statements as csql
from conductor.ledger import statements as sql
from conductor.ledger.base import (
    Admitted,
    ClaimedJob,
    ClaimRequest,
    Decide,
    EventFilter,
    JobFilter,
    RowDifference,
    StoredEvent,
    admissions,
    claim_alone,
    history_alone,
)
from conductor.ledger.sqlite import rebuild
from conductor.ledger.sqlite.connection import SqliteConnection
from projections import runner
from projections.controls import ControlRow
from projections.controls import Key as ControlKey
from projections.counters import Bucket
from projections.job_status import COLUMNS

_JOB_INSERT: Final = sql.job_insert("?")
_JOB_UPDATE: Final = sql.job_update("?")
_EVENT_INSERT: Final = sql.event_insert("?")
_COUNTER_UPSERT: Final = sql.counter_upsert("?")
_PROJECTED_SEQ: Final = sql.projected_seq("?")
_PICK_DUE: Final = sql.pick_due("?")
_NEXT_DUE: Final = sql.next_due("?")
_LEVELS: Final = sql.levels("?")
_CONTROL_UPSERT: Final = csql.control_upsert("?")
_CONTROLS_OF: Final = csql.controls_of("?")
_RUNNING_IN: Final = csql.running_in("?")
_STORED_PAGE: Final = f"SELECT {sql.CHAIN_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
_RECENT_BATCH: Final = 1_000
"""Rows fetched at a time while `recent` walks back from the newest event."""


class SqliteLedger:
    """A ledger in one SQLite file. One instance per thread (sqlite3's rule)."""

    def __init__(self, settings: Settings, *, create: bool) -> None:
        self.location = settings.db
        self._link = SqliteConnection(settings, create=create)
        self._conn = self._link.raw
        with self._link.translate():
            if self._link.prepare(create=create):
                self.rebuild_projections()

    def _rows(self, ids: Sequence[int]) -> dict[int, JobRow]:
        found: dict[int, JobRow] = {}
        for start in range(0, len(ids), sql.CHUNK):
            chunk = ids[start : start + sql.CHUNK]
            for values in self._conn.execute(sql.rows_by_id("?", len(chunk)), chunk):
                row: JobRow = dict(zip(COLUMNS, values, strict=True))  # type: ignore[assignment]
                found[row["id"]] = row
        return found

    # -- append ------------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        if not events:
            return []
        with self._link.translate(), self._link.transaction():
            recorded = self._append(events, known={})
        self._announce(recorded)
        return recorded

    def _announce(self, recorded: Sequence[RecordedEvent]) -> None:
        """After a commit that finished jobs, wake this host's result waiters (what the
        commit's NOTIFY does on PostgreSQL)."""
        if sql.finishes(recorded):
            sockets.announce_finished(self.location)

    def enqueue(self, events: Sequence[NewEvent]) -> list[Admitted]:
        looks = unique.checks(events)
        if not looks:
            return [Admitted(job_id=rec.job_id, recorded=rec) for rec in self.append(events)]
        with self._link.translate(), self._link.transaction():
            # Under the write lock (BEGIN IMMEDIATE): no other process can enqueue the key,
            # or finish its holder, between these look-ups and the append.
            holders = {look: self._holder(look) for look in looks}
            admission = unique.admit(events, holders)
            accepted = admission.accepted
            recorded = self._append(accepted, known={}, admitted=True) if accepted else []
        return admissions(admission, recorded)

    def _holder(self, look: unique.Look) -> int | None:
        row = self._conn.execute(*sql.unique_holder("?", look)).fetchone()
        return None if row is None else int(row[0])

    def _append(
        self, events: Sequence[NewEvent], *, known: Mapping[int, JobRow], admitted: bool = False
    ) -> list[RecordedEvent]:
        """Number, chain, fold and store `events`; the caller holds the transaction."""
        conn = self._conn
        stored, recorded, touched = append.number(
            events, conn.execute(sql.HEAD).fetchone(), self._new_job_ids, admitted=admitted
        )
        missing = [job_id for job_id in touched if job_id not in known]
        current = {**known, **self._rows(missing)} if missing else known
        keys = runner.control_keys(recorded)
        effect = runner.apply_batch(current, recorded, self._control_rows(keys))
        conn.executemany(_EVENT_INSERT, stored)
        inserts, updates = append.row_writes(effect.rows, current)
        if inserts:
            conn.executemany(_JOB_INSERT, inserts)
        if updates:
            conn.executemany(_JOB_UPDATE, updates)
        self._write_counters(effect.counter_deltas)
        if effect.controls:
            conn.executemany(
                _CONTROL_UPSERT, [csql.control_values(row) for row in effect.controls.values()]
            )
        conn.execute(_PROJECTED_SEQ, (str(recorded[-1].seq),))
        return recorded

    def _control_rows(self, keys: Collection[ControlKey]) -> dict[ControlKey, ControlRow]:
        """The stored `controls` rows of `keys` (the write lock is held)."""
        if not keys:
            return {}
        params = [part for key in sorted(keys) for part in key]
        found = self._conn.execute(csql.control_rows("?", len(keys)), params)
        rows = [csql.control_row(values) for values in found]
        return {(row["kind"], row["name"]): row for row in rows}

    def _new_job_ids(self, count: int) -> range:
        """The next `count` job ids: after the highest in the log (the write lock is held)."""
        top = self._conn.execute(sql.TOP_JOB).fetchone()[0]
        return range((top or 0) + 1, (top or 0) + 1 + count)

    def _write_counters(self, deltas: Counter[Bucket]) -> None:
        if not deltas:
            return
        self._conn.executemany(_COUNTER_UPSERT, [(*key, n) for key, n in deltas.items()])
        if any(n < 0 for n in deltas.values()):
            self._conn.execute(sql.DROP_ZERO_COUNTERS)

    # -- claim -------------------------------------------------------------------------
    def transact(
        self,
        job_ids: Sequence[int],
        decide: Decide,
        *,
        claim: ClaimRequest | None = None,
    ) -> tuple[list[RecordedEvent], list[ClaimedJob]]:
        with self._link.translate(), self._link.transaction():
            rows = self._rows(list(job_ids)) if job_ids else {}
            events = decide(rows)
            # The claim picks among pending jobs, which the decided events (outcomes of
            # in-progress attempts) do not touch: pick first, then number, fold and store
            # both in one append (one head read, one upsert of rows and counters).
            picked, spent = self._pick(claim) if claim is not None else ([], [])
            starts = [self._start(row, claim) for row in picked] if claim is not None else []
            known = {**rows, **{row["id"]: row for row in picked}}
            batch = [*events, *starts, *spent]
            stored = self._append(batch, known=known) if batch else []
            recorded = stored[: len(events)]
            claimed = sql.claimed(picked, stored[len(events) : len(events) + len(starts)])
        self._announce(recorded)
        return recorded, claimed

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

    def _pick(self, request: ClaimRequest) -> tuple[list[JobRow], list[NewEvent]]:
        """The due pending jobs a claim takes, best first: priority, then run_at, then id;
        and the `queue_rate_spent` events of the rate-limited queues it takes from.

        The queues' controls are read under the write lock: a paused queue gives nothing,
        a limited one no more than its room (`queue_controls.admit`), exactly, however
        many processes claim."""
        limit, queues = request.limit, request.queues
        if limit <= 0 or not queues:
            return [], []
        due = stamp(request.now)
        controls = {
            name: loads(state)
            for name, state in self._conn.execute(csql.queue_controls("?", len(queues)), queues)
        }
        if controls:
            admission = rules.admit(queues, controls, due, self._running)
            queues, room = admission.queues, admission.room
        else:
            room = {}
        picked: list[JobRow] = []
        levels = {queue: self._levels(queue) for queue in queues}
        for priority in sorted(set().union(*levels.values())):
            wanted = limit - len(picked)
            if wanted <= 0:
                break
            candidates: list[JobRow] = []
            for queue in queues:
                if priority not in levels[queue]:
                    continue
                # One range seek on jobs_due per (queue, priority): cost is independent
                # of how many jobs wait, and future-scheduled ones are never scanned.
                seek = min(wanted, room.get(queue, wanted))
                for values in self._conn.execute(_PICK_DUE, (queue, priority, due, seek)):
                    candidates.append(dict(zip(COLUMNS, values, strict=True)))  # type: ignore[arg-type]
            if len(queues) > 1:
                candidates.sort(key=lambda row: (row["run_at"], row["id"]))
            if room:
                candidates = rules.within(candidates, wanted, room, lambda row: row["queue"])
            picked.extend(candidates[:wanted])
        if not controls:
            return picked, []
        queues_taken = (row["queue"] for row in picked)
        return picked, rules.rate_spent(queues_taken, controls, worker=request.worker, at=due)

    def _levels(self, queue: str) -> list[int]:
        return [row[0] for row in self._conn.execute(_LEVELS, (queue, queue))]

    def _running(self, queue: str) -> int:
        return int(self._conn.execute(_RUNNING_IN, (queue,)).fetchone()[0])

    # -- read --------------------------------------------------------------------------
    def read(self, where: EventFilter, *, limit: int | None = None) -> list[RecordedEvent]:
        query, params, newest_first = sql.read_events("?", where, limit=limit)
        with self._link.translate():
            rows = self._conn.execute(query, params).fetchall()
        if newest_first:
            rows.reverse()
        return [sql.recorded(row) for row in rows]

    def history(self, job_id: int) -> list[RecordedEvent]:
        return history_alone(self.read, job_id)

    def recent(self, since: str, *, limit: int | None = None) -> list[RecordedEvent]:
        # A walk down the primary key from the newest row, stopped in Python (`window`)
        # at the first row stamped before the window's margin: SQLite reads rows lazily,
        # so nothing older is touched, and only rows inside the window are decoded. (An
        # index on `at` would make every append pay for a read this walk does at the
        # cost of the window itself.)
        with self._link.translate():
            cursor = self._conn.execute(sql.RECENT)
            try:
                return sql.window(
                    itertools.chain.from_iterable(
                        iter(lambda: cursor.fetchmany(_RECENT_BATCH), [])
                    ),
                    since,
                    limit=limit,
                )
            finally:
                cursor.close()

    def preceding(
        self, before: Mapping[int, int], *, types: Sequence[str]
    ) -> dict[int, RecordedEvent]:
        if not before or not types:
            return {}
        query = sql.preceding("?", len(types))
        found: dict[int, RecordedEvent] = {}
        with self._link.translate():
            for job_id, seq in before.items():
                row = self._conn.execute(query, (job_id, seq, *types)).fetchone()
                if row is not None:
                    found[job_id] = sql.recorded(row)
        return found

    # -- query -------------------------------------------------------------------------
    def job(self, job_id: int) -> JobRow | None:
        with self._link.translate():
            return self._rows([job_id]).get(job_id)

    def jobs(self, where: JobFilter, *, limit: int | None = None) -> list[JobRow]:
        query, params, newest_first = sql.list_jobs("?", where, limit=limit)
        with self._link.translate():
            found = self._conn.execute(query, params).fetchall()
        if newest_first:
            found.reverse()
        return [sql.job_row(values) for values in found]

    def select(self, where: Selection, *, after: int, limit: int) -> list[JobRow]:
        query, params = sql.select_jobs("?", where, after=after, limit=limit)
        with self._link.translate():
            return [sql.job_row(values) for values in self._conn.execute(query, params)]

    def page(self, where: Selection, *, before: int | None, limit: int) -> list[JobRow]:
        query, params = sql.page_jobs("?", where, before=before, limit=limit)
        with self._link.translate():
            return [sql.job_row(values) for values in self._conn.execute(query, params)]

    def next_due(self, queues: Sequence[str], *, after: str | None = None) -> str | None:
        earliest: str | None = None
        floor = "" if after is None else after
        with self._link.translate():
            for queue in queues:
                for priority in self._levels(queue):
                    row = self._conn.execute(_NEXT_DUE, (queue, priority, floor)).fetchone()
                    if row is not None and (earliest is None or row[0] < earliest):
                        earliest = row[0]
        return earliest

    def counts(self) -> list[tuple[str, str, str, int]]:
        with self._link.translate():
            return [
                (queue, task, status, n)
                for queue, task, status, n in self._conn.execute(sql.COUNTS)
            ]

    def event_counts(self, types: Sequence[str]) -> list[tuple[str, str, str, int]]:
        if not types:
            return []
        with self._link.translate():
            return [
                (queue, task, event_type, n)
                for queue, task, event_type, n in self._conn.execute(
                    sql.event_counts("?", len(types)), list(types)
                )
            ]

    def controls(self, kind: str) -> dict[str, dict[str, Any]]:
        with self._link.translate():
            found = self._conn.execute(_CONTROLS_OF, (kind,)).fetchall()
        return {row["name"]: row["state"] for row in map(csql.control_row, found)}

    def last_seq(self) -> int:
        with self._link.translate():
            row = self._conn.execute(sql.LAST_SEQ).fetchone()
        return int(row[0] or 0)

    # -- transactional enqueue ---------------------------------------------------------
    def enqueue_within(self, connection: object, events: Sequence[NewEvent]) -> list[int]:
        raise InvalidInput(
            f"cannot enqueue on your own connection with {self.location}: transactional "
            "enqueue needs a PostgreSQL ledger (a postgresql:// URL)"
        )

    def ingest(self, now: dt.datetime) -> int:
        return 0  # every enqueue here is an append: nothing waits outside the log

    # -- copying -----------------------------------------------------------------------
    def stored_events(self, *, after: int, limit: int) -> list[StoredEvent]:
        with self._link.translate():
            return self._conn.execute(_STORED_PAGE, (after, limit)).fetchall()

    def import_events(self, rows: Sequence[StoredEvent]) -> None:
        if not rows:
            return
        with self._link.translate(), self._link.transaction():
            append.check_continues(self._conn.execute(sql.HEAD).fetchone(), rows[0], self.location)
            self._conn.executemany(_EVENT_INSERT, rows)

    # -- maintenance -------------------------------------------------------------------
    def rebuild_projections(self) -> int:
        return rebuild.rebuild(self._link)

    def diff_projections(self) -> list[RowDifference]:
        return rebuild.diff(self._link)

    def verify_chain(self) -> chain.ChainReport:
        with self._link.translate():
            cursor = self._conn.execute(sql.CHAIN)
            return chain.verify(
                row for batch in iter(lambda: cursor.fetchmany(10_000), []) for row in batch
            )

    def checkpoint_wal(self, *, wait: float) -> bool:
        return self._link.checkpoint_wal(wait=wait)

    def check_writable(self) -> None:
        self._link.check_writable()

    def close(self) -> None:
        self._link.close()
