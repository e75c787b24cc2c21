"""The SQL every backend shares: column lists, statement builders and the row mappings.

SQLite and PostgreSQL read and write the same tables with the same statements; they differ
in the placeholder (`?` for sqlite3, `%s` for psycopg), which each builder takes as `mark`.
A backend builds its fixed statements once, at import, so the append and claim paths pay
no Python per event for this sharing. The mappings turn a stored row into what the ledger
contract hands out (`RecordedEvent`, `ClaimedJob`, `JobRow`) in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from conductor.domain.bulk import Selection
from conductor.domain.clock import stamp, unstamp
from conductor.domain.codec import canonical_json
from conductor.domain.events import (
    JobCancelled,
    JobClaimed,
    JobRequeued,
    RecordedEvent,
    decode_event,
)
from conductor.domain.job_row import JobRow
from conductor.domain.unique import ACTIVE_STATUSES, Look
from conductor.ledger.base import (
    RECENT_MARGIN,
    ClaimedJob,
    EventFilter,
    JobFilter,
    RowDifference,
)
from projections.job_status import COLUMNS, MUTABLE_COLUMNS

JOB_COLUMNS: Final = ", ".join(COLUMNS)
"""The `jobs` columns in `COLUMNS` order: how rows are built, stored and read back."""
EVENT_COLUMNS: Final = "seq, job_id, type, version, at, data, trace, hash"
"""What a read of the log selects: the columns `recorded` maps."""
STORED_COLUMNS: Final = "job_id, seq, type, version, at, data, trace"
"""What a replay reads of each event (`projections.runner.StoredEvent`)."""
CHAIN_COLUMNS: Final = "seq, job_id, type, version, at, data, trace, prev_hash, hash"
"""Every stored column of an event, in the order the hash chain covers them."""
COUNTER_COLUMNS: Final = "queue, task, status, n"
"""The `controls` read model's columns (`projections.controls.ControlRow`, state as JSON)."""
CHUNK: Final = 500
"""Bound parameters per IN (...) list."""
FINISHING: Final = frozenset({"completed", "failed", "cancelled"})
"""Event types that finish a job: a commit holding one wakes result waiters
(`conductor.ledger.wakeup.finished_listener`)."""


def finishes(recorded: Sequence[RecordedEvent]) -> bool:
    """Whether a commit of `recorded` finished any job."""
    return any(rec.event.TYPE in FINISHING for rec in recorded)


_ACTIVE: Final = ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
UNIQUE_INDEXES: Final = (
    # The duplicate checks of a unique enqueue (conductor.ledger.unique), each one range
    # seek however many finished jobs share the key: a job with the key still pending,
    # claimed or running; a job with the key enqueued since a time.
    "CREATE INDEX jobs_unique_active ON jobs (unique_key, id) "
    f"WHERE unique_key IS NOT NULL AND status IN ({_ACTIVE})",
    "CREATE INDEX jobs_unique_recent ON jobs (unique_key, created_at) WHERE unique_key IS NOT NULL",
)
"""Created by both backends' migrations: the same statements serve both dialects."""

HEAD: Final = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
"""The newest event: the next seq and the hash the next event chains to."""
TOP_JOB: Final = "SELECT max(job_id) FROM events"
LAST_SEQ: Final = "SELECT max(seq) FROM events"
COUNT_EVENTS: Final = "SELECT count(*) FROM events"
DROP_ZERO_COUNTERS: Final = "DELETE FROM counters WHERE n = 0"
COUNTS: Final = f"SELECT {COUNTER_COLUMNS} FROM counters WHERE n != 0 ORDER BY queue, task, status"
RECENT: Final = f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq DESC"
BY_JOB: Final = f"SELECT {STORED_COLUMNS} FROM events ORDER BY job_id, seq"
CHAIN: Final = f"SELECT {CHAIN_COLUMNS} FROM events ORDER BY seq"


def marks(mark: str, n: int) -> str:
    """`n` placeholders for an IN (...) list or a VALUES row."""
    return ", ".join([mark] * n)


def job_insert(mark: str, table: str = "jobs", *, rows: int = 1, verb: str = "INSERT") -> str:
    """Insert `rows` whole job rows (values in `COLUMNS` order, row after row); `verb`
    lets a dialect overwrite by id (SQLite's `INSERT OR REPLACE`)."""
    one = f"({marks(mark, len(COLUMNS))})"
    return f"{verb} INTO {table} ({JOB_COLUMNS}) VALUES {', '.join([one] * rows)}"


def job_update(mark: str) -> str:
    """Overwrite a row's mutable columns; the values end with the job id."""
    assignments = ", ".join(f"{column} = {mark}" for column in MUTABLE_COLUMNS)
    return f"UPDATE jobs SET {assignments} WHERE id = {mark}"


def event_insert(mark: str) -> str:
    """Store one event with its place in the chain (values in `CHAIN_COLUMNS` order)."""
    return f"INSERT INTO events ({CHAIN_COLUMNS}) VALUES ({marks(mark, 9)})"


def counter_upsert(mark: str) -> str:
    """Add `n` to a (queue, task, status) counter, creating it at `n`."""
    return (
        f"INSERT INTO counters ({COUNTER_COLUMNS}) VALUES ({marks(mark, 4)}) "
        "ON CONFLICT (queue, task, status) DO UPDATE SET n = counters.n + excluded.n"
    )


def counter_insert(mark: str, table: str) -> str:
    return f"INSERT INTO {table} ({COUNTER_COLUMNS}) VALUES ({marks(mark, 4)})"


def projected_seq(mark: str) -> str:
    """Record the last seq folded into the read models."""
    return f"UPDATE meta SET value = {mark} WHERE key = 'projected_seq'"


def rows_by_id(mark: str, n: int) -> str:
    """Job rows for `n` ids (at most `CHUNK`)."""
    return f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks(mark, n)})"


def pick_due(mark: str) -> str:
    """Due pending jobs of one (queue, priority), oldest first: a range seek on `jobs_due`.

    Parameters: queue, priority, now (a stamp), limit."""
    return (
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' "
        f"AND queue = {mark} AND priority = {mark} AND run_at <= {mark} "
        f"ORDER BY run_at, id LIMIT {mark}"
    )


def unique_holder(mark: str, look: Look) -> tuple[str, tuple[str, ...]]:
    """(statement, parameters) finding the newest job that holds a unique key for one
    `conductor.domain.unique` look-up: a range seek on `jobs_unique_active` (the key's
    unfinished jobs) or `jobs_unique_recent` (the key's jobs enqueued since a time)."""
    key, since = look
    if since is None:
        return (
            f"SELECT id FROM jobs WHERE unique_key = {mark} AND unique_key IS NOT NULL "
            f"AND status IN ({_ACTIVE}) ORDER BY id DESC LIMIT 1",
            (key,),
        )
    return (
        f"SELECT id FROM jobs WHERE unique_key = {mark} AND unique_key IS NOT NULL "
        f"AND created_at >= {mark} ORDER BY created_at DESC LIMIT 1",
        (key, since),
    )


def levels(mark: str) -> str:
    """The distinct priorities of one queue's pending jobs, best (lowest) first: a loose
    index scan of `jobs_due`, one seek per level present, however many jobs wait at each.
    Claims and `next_due` seek once per level found, so the whole range of priorities
    (`conductor.domain.config.PRIORITY_RANKS`) costs nothing while unused.

    Parameters: queue, queue."""
    return (
        "WITH RECURSIVE level(p) AS ("
        f"SELECT (SELECT min(priority) FROM jobs WHERE status = 'pending' AND queue = {mark}) "
        "UNION ALL SELECT (SELECT min(priority) FROM jobs WHERE status = 'pending' "
        f"AND queue = {mark} AND priority > level.p) FROM level WHERE level.p IS NOT NULL"
        ") SELECT p FROM level WHERE p IS NOT NULL"
    )


QUEUE_LEVELS: Final = (
    "WITH RECURSIVE level(queue, priority) AS ("
    "SELECT q.queue, (SELECT min(priority) FROM jobs WHERE status = 'pending' "
    "AND queue = q.queue) FROM unnest(%s::text[]) AS q(queue) "
    "UNION ALL SELECT l.queue, (SELECT min(j.priority) FROM jobs j WHERE j.status = 'pending' "
    "AND j.queue = l.queue AND j.priority > l.priority) FROM level l "
    "WHERE l.priority IS NOT NULL) "
)
"""PostgreSQL's `levels` for many queues at once, as a `level(queue, priority)` table for
the statement that follows (rows whose priority is null end each queue's walk). Its one
parameter is the queues, as an array."""


def next_due(mark: str) -> str:
    """The earliest run_at of one (queue, priority) after a floor. Parameters: queue,
    priority, floor."""
    return (
        f"SELECT run_at FROM jobs WHERE status = 'pending' AND queue = {mark} "
        f"AND priority = {mark} AND run_at > {mark} ORDER BY run_at LIMIT 1"
    )


def read_events(mark: str, where: EventFilter, *, limit: int | None) -> tuple[str, list[Any], bool]:
    """(statement, parameters, newest first) for `Ledger.read`: with a limit the newest
    rows are selected, and the caller reverses them."""
    clauses = [f"seq > {mark}"]
    params: list[Any] = [where.after_seq]
    if where.job_id is not None:
        clauses.append(f"job_id = {mark}")
        params.append(where.job_id)
    if where.types:
        clauses.append(f"type IN ({marks(mark, len(where.types))})")
        params.extend(where.types)
    if where.task is not None:
        clauses.append(f"job_id IN (SELECT id FROM jobs WHERE task = {mark})")
        params.append(where.task)
    if where.since is not None:
        clauses.append(f"at >= {mark}")
        params.append(where.since)
    if where.until is not None:
        clauses.append(f"at < {mark}")
        params.append(where.until)
    if where.batch is not None:
        # The stored data is canonical JSON, so the batch is there as `"batch":"ID"`
        # exactly; batch ids hold no LIKE wildcards and no letters whose case differs.
        clauses.append(f"type IN ({mark}, {mark}) AND data LIKE {mark}")
        params.extend(
            (
                JobCancelled.TYPE,
                JobRequeued.TYPE,
                f"%{canonical_json({'batch': where.batch})[1:-1]}%",
            )
        )
    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
    if limit is None:
        return sql + " ORDER BY seq", params, False
    return sql + f" ORDER BY seq DESC LIMIT {mark}", [*params, limit], True


def list_jobs(mark: str, where: JobFilter, *, limit: int | None) -> tuple[str, list[Any], bool]:
    """(statement, parameters, newest first) for `Ledger.jobs`, as `read_events`."""
    clauses: list[str] = []
    params: list[Any] = []
    for column in ("status", "task", "queue"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    sql = f"SELECT {JOB_COLUMNS} FROM jobs"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    if limit is None:
        return sql + " ORDER BY id", params, False
    return sql + f" ORDER BY id DESC LIMIT {mark}", [*params, limit], True


def select_jobs(mark: str, where: Selection, *, after: int, limit: int) -> tuple[str, list[Any]]:
    """(statement, parameters) for `Ledger.select`: a keyset page in id order."""
    clauses, params = _chosen(mark, where)
    clauses.insert(0, f"id > {mark}")
    sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id LIMIT {mark}"
    return sql, [after, *params, limit]


def page_jobs(
    mark: str, where: Selection, *, before: int | None, limit: int
) -> tuple[str, list[Any]]:
    """(statement, parameters) for `Ledger.page`: a keyset page newest first. A single
    value per column is an equality, so the `(status, id)`, `(task, id)` or `(queue, id)`
    index is read backwards from `before` and the scan stops after `limit` rows."""
    clauses, params = _chosen(mark, where)
    if before is not None:
        clauses.insert(0, f"id < {mark}")
        params.insert(0, before)
    filters = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {JOB_COLUMNS} FROM jobs{filters} ORDER BY id DESC LIMIT {mark}"
    return sql, [*params, limit]


def _chosen(mark: str, where: Selection) -> tuple[list[str], list[Any]]:
    """The WHERE clauses and parameters of a `Selection`."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("status", where.statuses),
        ("task", where.tasks),
        ("queue", where.queues),
    ):
        if len(values) == 1:
            clauses.append(f"{column} = {mark}")
            params.append(values[0])
        elif values:
            clauses.append(f"{column} IN ({marks(mark, len(values))})")
            params.extend(values)
    if where.since is not None:
        clauses.append(f"updated_at >= {mark}")
        params.append(where.since)
    if where.until is not None:
        clauses.append(f"updated_at < {mark}")
        params.append(where.until)
    return clauses, params


def preceding(mark: str, types: int) -> str:
    """A job's newest event of one of `types` types before a seq: a backwards range seek
    on `events_by_job`. Parameters: job_id, seq, then the types."""
    return (
        f"SELECT {EVENT_COLUMNS} FROM events WHERE job_id = {mark} AND seq < {mark} "
        f"AND type IN ({marks(mark, types)}) ORDER BY seq DESC LIMIT 1"
    )


def event_counts(mark: str, types: int) -> str:
    """Events of `types` types per (queue, task, type)."""
    return (
        "SELECT jobs.queue, jobs.task, events.type, count(*) FROM events "
        f"JOIN jobs ON jobs.id = events.job_id WHERE events.type IN ({marks(mark, types)}) "
        "GROUP BY jobs.queue, jobs.task, events.type "
        "ORDER BY jobs.queue, jobs.task, events.type"
    )


def window(
    newest_first: Iterable[Sequence[Any]], since: str, *, limit: int | None
) -> list[RecordedEvent]:
    """`Ledger.recent` over stored events read newest first (as `EVENT_COLUMNS`): those
    stamped at or after `since`, in seq order. Reading stops at the first row stamped more
    than `RECENT_MARGIN` before `since`, or at `limit` rows, so a backend that fetches
    lazily reads nothing older; only rows inside the window are decoded."""
    stop = stamp(unstamp(since) - RECENT_MARGIN)
    found: list[Sequence[Any]] = []
    for row in newest_first:
        at = row[4]
        if at < stop or len(found) == limit:
            break
        if at >= since:
            found.append(row)
    found.reverse()
    return [recorded(row) for row in found]


def counter_differences(
    live: Mapping[tuple[str, str, str], int], rebuilt: Mapping[tuple[str, str, str], int]
) -> list[RowDifference]:
    """The (queue, task, status) counters where the live read model and a rebuild
    disagree, as `Ledger.diff_projections` reports them (both backends)."""
    return [
        RowDifference(
            table="counters",
            key="/".join(key),
            live=None if key not in live else {"n": live[key]},
            rebuilt=None if key not in rebuilt else {"n": rebuilt[key]},
        )
        for key in sorted(live.keys() | rebuilt.keys())
        if live.get(key) != rebuilt.get(key)
    ]


def job_row(values: Sequence[Any]) -> JobRow:
    """A stored `jobs` row (selected as `JOB_COLUMNS`) as the dict projections fold."""
    return dict(zip(COLUMNS, values, strict=True))  # type: ignore[return-value]


def recorded(row: Sequence[Any]) -> RecordedEvent:
    """A stored event (selected as `EVENT_COLUMNS`) as the contract hands it out."""
    seq, job_id, event_type, version, at, data, trace, hash_ = row
    return RecordedEvent(
        seq=seq,
        job_id=job_id,
        at=at,
        event=decode_event(event_type, version, data),
        trace=trace,
        hash=hash_,
    )


def claimed(picked: Sequence[JobRow], events: Sequence[RecordedEvent]) -> list[ClaimedJob]:
    """What a claim hands the engine: each picked row with its `claimed` event's facts."""
    jobs = []
    for row, rec in zip(picked, events, strict=True):
        event = rec.event
        assert isinstance(event, JobClaimed)
        jobs.append(
            ClaimedJob(
                id=row["id"],
                task=row["task"],
                queue=row["queue"],
                payload=row["payload"],
                attempt=event.attempt,
                retries=row["retries"],
                max_retries=row["max_retries"],
                lease_expires_at=event.lease_expires_at,
                trace=row["trace"],
                run_at=row["run_at"],
            )
        )
    return jobs
