"""The storage contract every ledger backend fulfils.

The ledger is the only writer of history. It stores events append-only, in one global
order (`seq`), each chained to the previous by hash, and it applies the projections
(`projections/`) to the read models in the *same transaction* as the append, so a reader
never sees an event without its effect or an effect without its event.

Four groups of operations:

* **append** - validate and store events atomically (all or nothing), updating the read
  models. Illegal transitions raise `InvalidTransition` and store nothing.
* **claim** - atomically pick due pending jobs and start them with a lease, for workers.
  Each attempt is claimed by exactly one caller, however many processes share the ledger.
* **read** - the log itself, in seq order, filtered; or its recent tail, for the
  live views.
* **query** - the read models: one job, a page of jobs, the counters.

Plus maintenance: rebuild the read models from the log, diff them against a rebuild, and
verify the hash chain. The contract tests in `tests/contract/` run against every backend.

Backends translate their driver's errors into `conductor.domain.errors` at this boundary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import attrs

from conductor.domain import unique
from conductor.domain.bulk import Selection
from conductor.domain.control_events import OPERATIONS
from conductor.domain.events import NewEvent, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.ledger.chain import ChainReport

StoredEvent = tuple[int, int, str, int, str, str, str | None, str, str]
"""An event's values as stored, in `statements.CHAIN_COLUMNS` order."""


@attrs.frozen(kw_only=True)
class ClaimedJob:
    """What a worker needs to run one attempt, as handed out by `Ledger.claim`."""

    id: int
    task: str
    queue: str
    payload: str
    """The payload object as JSON text (decode it once, in the worker)."""
    attempt: int
    """The attempt number, also the fencing token for reporting its outcome."""
    retries: int
    max_retries: int
    lease_expires_at: str
    trace: str | None
    """The traceparent stored with the job's `enqueued` event."""
    run_at: str
    """When the job fell due (its `run_at` as claimed): the start of its queue wait."""


@attrs.frozen(kw_only=True)
class ClaimRequest:
    """Ask `Ledger.transact` to claim jobs in the same transaction (see `Ledger.claim`)."""

    worker: str
    queues: tuple[str, ...]
    limit: int
    now: dt.datetime
    lease: dt.timedelta


@attrs.frozen(kw_only=True)
class Admitted:
    """What `Ledger.enqueue` did with one new job: appended it, or found it a duplicate."""

    job_id: int
    """The new job's id, or for a duplicate the id of the job holding its unique key."""
    recorded: RecordedEvent | None
    """The job's stored `enqueued` event; None for a duplicate (nothing was appended)."""

    @property
    def duplicate(self) -> bool:
        return self.recorded is None


Decide = Callable[[Mapping[int, JobRow]], Sequence[NewEvent]]
"""A pure function from the current rows of some jobs to the events to append."""

RECENT_MARGIN: Final = dt.timedelta(minutes=1)
"""How far out of time order `Ledger.recent` allows the log's stamps to be.

Each process stamps an event just before it appends it (a writer's group commit holds
stamped events for milliseconds), so `at` rises with `seq` except for the disagreement of
the appending processes' clocks. `recent` reads backwards from the newest event and stops
at the first one stamped more than this margin before the window; an event stamped inside
the window is missed only if some event appended after it carries a stamp more than this
margin older than its own (clocks that far apart, or history written with back-dated
stamps through the API)."""


@attrs.frozen(kw_only=True)
class EventFilter:
    """Which events `Ledger.read` returns; every given field must match."""

    job_id: int | None = None
    types: tuple[str, ...] = ()
    task: str | None = None
    since: str | None = None
    """Inclusive lower bound on `at` (a stored timestamp)."""
    until: str | None = None
    """Exclusive upper bound on `at`."""
    after_seq: int = 0
    batch: str | None = None
    """Only the `cancelled` and `requeued` events of this operator action (a batch id as
    `conductor.domain.bulk.new_batch` makes them). Found by scanning the log: seconds per
    few million events."""


@attrs.frozen(kw_only=True)
class JobFilter:
    """Which jobs `Ledger.jobs` returns; every given field must match."""

    status: str | None = None
    task: str | None = None
    queue: str | None = None


@attrs.frozen(kw_only=True)
class RowDifference:
    """One read-model row where the live table and a rebuild from the log disagree."""

    table: str
    key: str
    live: dict[str, object] | None
    rebuilt: dict[str, object] | None


class Ledger(Protocol):
    """An event ledger with its read models. Not thread-safe: one per thread."""

    location: str
    """Where it lives, for messages (a path, or a URL without credentials)."""

    # -- append ------------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Store `events` in order in one transaction and fold them into the read models.

        `enqueued` events with `job_id=None` get the next job ids. Returns the stored
        events with their seq, job id and hash. Raises `InvalidTransition` (nothing is
        stored) if any event is illegal for its job's state at that point, and
        `LedgerError` for an `enqueued` event with a unique key, which only `enqueue`
        checks.
        """
        ...

    def enqueue(self, events: Sequence[NewEvent]) -> list[Admitted]:
        """Append new jobs' `enqueued` events (job_id None), turning away each whose unique
        key is held (`conductor.domain.unique`): one `Admitted` per event, in order.

        The look-ups and the append are one transaction under the backend's write
        serialisation (SQLite's write lock; on PostgreSQL an advisory lock per key, taken
        before the chain lock), so however many processes and hosts enqueue one key at
        once, one job gets it. Events without a key are appended as by `append`. A job
        that comes twice in one batch is a duplicate of its first appearance.
        """
        ...

    def transact(
        self,
        job_ids: Sequence[int],
        decide: Decide,
        *,
        claim: ClaimRequest | None = None,
    ) -> tuple[list[RecordedEvent], list[ClaimedJob]]:
        """Decide and append under the write lock, then optionally claim: one transaction.

        Reads the current rows of `job_ids` (unknown ids are absent from the mapping),
        calls `decide(rows)` and appends what it returns, as `append` would. Deciding
        inside the transaction is what makes fencing exact: the rows cannot change between
        the check and the write. With `claim`, due jobs are then claimed as `claim` would,
        so a worker reports finished attempts and takes new ones with one commit.
        Returns the appended events (without the claim's `started` events) and the claims.
        """
        ...

    # -- claim -------------------------------------------------------------------------
    def claim(
        self,
        *,
        worker: str,
        queues: Sequence[str],
        limit: int,
        now: dt.datetime,
        lease: dt.timedelta,
    ) -> list[ClaimedJob]:
        """Start up to `limit` due pending jobs from `queues` for `worker`.

        Due means `run_at <= now`. Order: priority (high first), then run_at, then id, so
        jobs of one priority run first-in first-out. Appends one `started` event per job,
        with attempt = previous attempts + 1 and a lease until `now + lease`.
        """
        ...

    # -- read --------------------------------------------------------------------------
    def read(self, where: EventFilter, *, limit: int | None = None) -> list[RecordedEvent]:
        """Events matching `where` in seq order. With `limit`, the newest `limit` of them
        (still in seq order), like `tail`."""
        ...

    def history(self, job_id: int) -> list[RecordedEvent]:
        """Every event of one job in seq order; empty if there is no such job."""
        ...

    def recent(self, since: str, *, limit: int | None = None) -> list[RecordedEvent]:
        """Every event stamped at or after `since` (a stored timestamp), in seq order;
        with `limit`, only the newest `limit` of them.

        The tail of the log that a time window covers (`conductor stats`' throughput),
        read without touching older history: the backend walks back from the newest seq
        and stops at the first event stamped more than `RECENT_MARGIN` before `since`, so
        the cost is the events in the window plus the margin, however long the log is.
        See `RECENT_MARGIN` for the one assumption this makes about stamps.
        """
        ...

    def preceding(
        self, before: Mapping[int, int], *, types: Sequence[str]
    ) -> dict[int, RecordedEvent]:
        """For each `job id -> seq` of `before`, that job's newest event of one of `types`
        with a lower seq; jobs with none are absent from the result.

        What led up to a window's first event of a job (the `enqueued` before a `started`,
        the `started` before a `completed`), found through the job's own events, one
        indexed look-up per job.
        """
        ...

    # -- query -------------------------------------------------------------------------
    def job(self, job_id: int) -> JobRow | None:
        """The job's row, or None."""
        ...

    def jobs(self, where: JobFilter, *, limit: int | None = None) -> list[JobRow]:
        """Jobs matching `where` in id order; with `limit`, the newest `limit` of them."""
        ...

    def select(self, where: Selection, *, after: int, limit: int) -> list[JobRow]:
        """Up to `limit` jobs matching `where` with ids above `after`, in id order: one
        page of the snapshot a bulk operator action takes of the jobs it will act on."""
        ...

    def page(self, where: Selection, *, before: int | None, limit: int) -> list[JobRow]:
        """Up to `limit` jobs matching `where` with ids below `before` (None: from the
        newest), newest first: one page of a listing (the dashboard's jobs table). Keyset
        paging on the id indexes, so any page costs about the same at a million jobs."""
        ...

    def next_due(self, queues: Sequence[str], *, after: str | None = None) -> str | None:
        """The earliest `run_at` of a pending job in `queues`, or with `after` the earliest
        one later than that timestamp (None if there is none)."""
        ...

    def counts(self) -> list[tuple[str, str, str, int]]:
        """(queue, task, status, count) for every non-empty bucket."""
        ...

    def event_counts(self, types: Sequence[str]) -> list[tuple[str, str, str, int]]:
        """(queue, task, event type, count) of the stored events of `types`, for every
        non-empty bucket, in that order: how many times each happened, ever."""
        ...

    def controls(self, kind: str) -> dict[str, dict[str, Any]]:
        """The `controls` read model's rows of one kind (`queue`, `schedule`): each
        subject's name -> its state, the fold of its operations-stream events (job id 0)."""
        ...

    def last_seq(self) -> int:
        """The seq of the newest event (0 for an empty log)."""
        ...

    # -- transactional enqueue ---------------------------------------------------------
    def enqueue_within(self, connection: object, events: Sequence[NewEvent]) -> list[int]:
        """Write new jobs' `enqueued` events (job_id None) through the caller's own
        database connection, inside the transaction it has open; returns their job ids.

        Nothing is appended to the log yet: the jobs wait outside it (PostgreSQL's
        `intake` table) and vanish with a rollback. Once the caller commits, `ingest` (or a
        claim through `transact`) moves them into the log under those ids. Raises
        `InvalidInput` where the backend cannot do this (SQLite) or the connection is not
        one it can use.
        """
        ...

    def ingest(self, now: dt.datetime) -> int:
        """Append the committed jobs of `enqueue_within` to the log as `enqueued` events
        stamped `now`, each exactly once however many processes ingest at once; returns
        how many. A claim (`transact` with `claim`) does this too, in its transaction,
        and claims them when it has room left after the due jobs in the log."""
        ...

    # -- copying -----------------------------------------------------------------------
    def stored_events(self, *, after: int, limit: int) -> list[StoredEvent]:
        """Up to `limit` stored events with seq above `after`, in seq order, exactly as
        stored (`statements.CHAIN_COLUMNS`, with their chain hashes): what a copy reads."""
        ...

    def import_events(self, rows: Sequence[StoredEvent]) -> None:
        """Store `rows` (from another ledger's `stored_events`) as they are, without
        numbering, chaining or folding them, in one transaction: `conductor copy`. The first
        must continue this log's head (next seq, its prev_hash the head's hash), or
        `LedgerError` is raised and nothing is stored. Read models are not touched:
        `rebuild_projections` afterwards."""
        ...

    # -- maintenance -------------------------------------------------------------------
    def rebuild_projections(self) -> int:
        """Replace every read model with a fold of the whole log; returns events folded."""
        ...

    def diff_projections(self) -> list[RowDifference]:
        """Rebuild into scratch space and list every row that differs from the live
        read models (empty when they agree). Changes nothing."""
        ...

    def verify_chain(self) -> ChainReport:
        """Walk the whole log and report the first event that breaks the hash chain."""
        ...

    def checkpoint_wal(self, *, wait: float) -> bool:
        """Copy everything in the write-ahead log into the database file and truncate the
        log to zero bytes (SQLite's `wal_checkpoint(TRUNCATE)`), waiting at most `wait`
        seconds for other writers and for readers on older snapshots. Returns False,
        having changed nothing anyone can see, when one of them is still there (try again
        later); True when done, or when the backend keeps no such log."""
        ...

    def check_writable(self) -> None:
        """Raise `ReadOnlyDatabase` when this process cannot write the ledger (a read-only
        file or filesystem, a read-only role or replica), having written nothing. Workers
        ask before they start: read-only is not a condition that retrying clears. A ledger
        busy with another writer passes: contention is waited out, not refused."""
        ...

    def close(self) -> None:
        """Release the connection; the ledger is unusable afterwards."""
        ...


def admissions(admission: unique.Admission, recorded: Sequence[RecordedEvent]) -> list[Admitted]:
    """`Ledger.enqueue`'s answer, given the admission and the events the accepted jobs
    were stored as (in the same order)."""
    out = []
    for (accepted, index), duplicate in zip(admission.places, admission.duplicate, strict=True):
        rec = recorded[index] if accepted else None
        job_id = index if rec is None else rec.job_id
        out.append(Admitted(job_id=job_id, recorded=None if duplicate else rec))
    return out


def claim_alone(
    ledger: Ledger,
    *,
    worker: str,
    queues: Sequence[str],
    limit: int,
    now: dt.datetime,
    lease: dt.timedelta,
) -> list[ClaimedJob]:
    """`Ledger.claim` for every backend: the claim half of `transact`, deciding nothing."""
    if limit <= 0 or not queues:
        return []
    request = ClaimRequest(worker=worker, queues=tuple(queues), limit=limit, now=now, lease=lease)
    return ledger.transact((), lambda rows: [], claim=request)[1]


def history_alone(
    read: Callable[[EventFilter], list[RecordedEvent]], job_id: int
) -> list[RecordedEvent]:
    """`Ledger.history` for every backend, given its `read`: the job's events; the
    operations stream's id (0) is not a job, so it has no history."""
    if job_id == OPERATIONS:
        return []
    return read(EventFilter(job_id=job_id))
