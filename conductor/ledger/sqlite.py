"""The SQLite ledger: the only module that speaks SQL to SQLite.

WAL mode, explicit `BEGIN IMMEDIATE` for every write (so writers queue on the database
lock up front instead of failing on upgrade), and a busy timeout. sqlite-utils serves the
schema inspection and row-shaped reads; the append and claim paths use the connection's
own cursor with `executemany`, which measurement showed to matter there.

Every sqlite3 error is translated into a `conductor.domain.errors` exception naming the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import sqlite3
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from conductor.domain import decisions as decide
from conductor.domain.clock import stamp, unstamp
from conductor.domain.config import Settings
from conductor.domain.errors import (
    CorruptDatabase,
    DatabaseBusy,
    DatabaseNotFound,
    DiskFull,
    LedgerError,
    NotAConductorDatabase,
    ReadOnlyDatabase,
    SchemaTooNew,
)
from conductor.domain.events import JobClaimed, JobEnqueued, NewEvent, RecordedEvent, decode_event
from conductor.domain.job_row import JobRow
from conductor.ledger import chain
from conductor.ledger.base import (
    RECENT_MARGIN,
    ClaimedJob,
    ClaimRequest,
    Decide,
    EventFilter,
    JobFilter,
    RowDifference,
)
from conductor.ledger.migrations import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from projections import base as projections_base
from projections import runner
from projections.counters import Bucket, from_rows
from projections.job_status import COLUMNS, MUTABLE_COLUMNS

_JOB_COLUMNS: Final = ", ".join(COLUMNS)
_JOB_PLACEHOLDERS: Final = ", ".join("?" for _ in COLUMNS)
_JOB_INSERT: Final = f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({_JOB_PLACEHOLDERS})"
_JOB_UPDATE: Final = (
    f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in MUTABLE_COLUMNS)} WHERE id = ?"
)
_EVENT_INSERT: Final = (
    "INSERT INTO events (seq, job_id, type, version, at, data, trace, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_EVENT_COLUMNS: Final = "seq, job_id, type, version, at, data, trace, hash"
_COUNTER_UPSERT: Final = (
    "INSERT INTO counters (queue, task, status, n) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (queue, task, status) DO UPDATE SET n = n + excluded.n"
)
_CHUNK: Final = 500  # bound parameters per IN (...) list
LOCK_RETRY_FIRST: Final = 0.0002
"""Seconds before the first retry for a write lock another connection holds."""
LOCK_RETRY_MAX: Final = 0.002
"""The longest pause between retries (a commit holds the lock about a millisecond)."""
_pause = time.sleep  # between tries for the write lock (a test watches it)
_STORED_COLUMNS: Final = "job_id, seq, type, version, at, data, trace"
"""What a replay reads of each event (`runner.StoredEvent`)."""
_FILL_BATCH: Final = 5_000
"""Rebuilt rows written per `executemany` in a replay."""
_ROWS_PER_INSERT: Final = 50
"""Rows per INSERT statement in a replay: 850 bound values, under SQLite's historical limit
of 999, and a sixth cheaper than one statement per row."""
_PRIORITY_LEVELS: Final = (0, 1, 2)
_RECENT_BATCH: Final = 1_000
"""Rows fetched at a time while `recent` walks back from the newest event."""


def _recorded(row: tuple[Any, ...]) -> RecordedEvent:
    seq, job_id, event_type, version, at, data, trace, hash_ = row
    return RecordedEvent(
        seq=seq,
        job_id=job_id,
        at=at,
        event=decode_event(event_type, version, data),
        trace=trace,
        hash=hash_,
    )


def _claimed(picked: Sequence[JobRow], started: Sequence[RecordedEvent]) -> list[ClaimedJob]:
    """What a claim hands the engine: each picked row with its `claimed` event's facts."""
    claimed = []
    for row, rec in zip(picked, started, strict=True):
        event = rec.event
        assert isinstance(event, JobClaimed)
        claimed.append(
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
    return claimed


class SqliteLedger:
    """A ledger in one SQLite file. One instance per thread (sqlite3's rule)."""

    def __init__(self, settings: Settings, *, create: bool) -> None:
        self.location = settings.db
        self._settings = settings
        self._conn = self._connect(settings.db, create=create)
        self._utils: Any = None
        with self._translate():
            self._prepare(create=create)

    # -- opening -----------------------------------------------------------------------
    def _connect(self, location: str, *, create: bool) -> sqlite3.Connection:
        is_uri = location.startswith("file:")
        if not is_uri:
            try:
                self._check_path(Path(location), create=create)
            except OSError as e:  # e.g. a name too long for the filesystem
                shown = location if len(location) <= 120 else location[:117] + "..."
                raise LedgerError(
                    f"cannot use database path {shown}: {e.strerror}; expected a valid file path"
                ) from None
        try:
            conn = self._sqlite_connect(location, uri=is_uri)
            conn.execute("PRAGMA application_id").fetchone()
        except sqlite3.OperationalError as e:
            # A WAL database on a read-only filesystem cannot create its -shm file. With no
            # -wal beside it (the state after a clean close) every committed transaction
            # is in the main file, so it can be read as immutable; writes then fail with
            # SQLITE_READONLY, which becomes a clear "read-only" error.
            # (Not when the -shm could not grow: that is a full disk, not a read-only one.)
            wal = Path(location + "-wal")
            shm_full = getattr(e, "sqlite_errorname", "") == "SQLITE_IOERR_SHMSIZE"
            if is_uri or shm_full or (wal.exists() and wal.stat().st_size > 0):
                raise self._translated(e) from e
            try:
                conn = self._sqlite_connect(
                    f"{Path(location).resolve().as_uri()}?immutable=1", uri=True
                )
                conn.execute("PRAGMA application_id").fetchone()
            except sqlite3.Error:
                raise self._translated(e) from e
        except sqlite3.Error as e:
            raise self._translated(e) from e
        return conn

    def _sqlite_connect(self, location: str, *, uri: bool) -> sqlite3.Connection:
        return sqlite3.connect(
            location,
            timeout=self._settings.busy_timeout,
            isolation_level=None,
            uri=uri,
            check_same_thread=False,
            factory=_FaultAt if "CONDUCTOR_FAULT_AT" in os.environ else sqlite3.Connection,
        )

    def _check_path(self, path: Path, *, create: bool) -> None:
        location = self.location
        if path.is_dir():
            raise LedgerError(f"{location} is a directory; expected a database file path")
        if not path.exists():
            if not create:
                raise DatabaseNotFound(
                    f"no conductor database at {location}; expected an existing file "
                    "(enqueue a job to create one, or pass --db / set CONDUCTOR_DB)"
                )
            self._create_private_file(path)
        elif not stat.S_ISREG(path.stat().st_mode):
            raise NotAConductorDatabase(
                f"{location} is not a regular file; expected a database file"
            )

    @staticmethod
    def _create_private_file(path: Path) -> None:
        # 0600: job payloads are nobody else's business. SQLite gives -wal and -shm the
        # database file's permissions.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        except OSError as e:
            raise LedgerError(
                f"cannot create {path}: {e.strerror}; expected a writable directory"
            ) from e
        os.close(fd)

    def _enable_wal(self) -> None:
        """Switch to WAL unless already there. The switch needs the file to itself and
        SQLite does not wait for that (no busy handler), so retry within the busy timeout:
        several processes may open a new database at once."""

        def switch() -> None:
            if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._conn.execute("PRAGMA journal_mode = WAL")

        self._retry_while_busy(switch)

    def _identify(self) -> tuple[int, int, int]:
        """(application_id, user_version, number of schema objects) of the open file."""
        # One statement, so one snapshot: read separately, a schema another process commits
        # in between would look like a foreign database.
        app_id, version, objects = self._conn.execute(
            "SELECT (SELECT application_id FROM pragma_application_id), "
            "(SELECT user_version FROM pragma_user_version), "
            "(SELECT count(*) FROM sqlite_master)"
        ).fetchone()
        return int(app_id), int(version), int(objects)

    def _check_identity(self, app_id: int, version: int, objects: int, *, create: bool) -> None:
        if app_id == 0 and version == 0:
            if objects:
                raise NotAConductorDatabase(
                    f"{self.location} is a SQLite database but not a conductor one; "
                    "expected a file created by conductor"
                )
            if not create:
                raise DatabaseNotFound(
                    f"{self.location} holds no conductor data yet; expected a database "
                    "created by `conductor enqueue`"
                )
        elif app_id != APPLICATION_ID:
            raise NotAConductorDatabase(
                f"{self.location} is a SQLite database but not a conductor one "
                f"(application_id {app_id}); expected a file created by conductor"
            )
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.location} has schema version {version}, newer than this conductor "
                f"understands ({SCHEMA_VERSION}); expected an upgraded conductor"
            )

    def _prepare(self, *, create: bool) -> None:
        conn = self._conn
        app_id, version, objects = self._identify()
        self._check_identity(app_id, version, objects, create=create)
        conn.execute(f"PRAGMA synchronous = {self._settings.synchronous}")
        if version < SCHEMA_VERSION:
            self._migrate()
        elif create:
            # e.g. a file restored with `.dump`: the journal mode is not part of a dump.
            self._enable_wal()
        if self._meta("projections_version") != str(projections_base.VERSION):
            # Read models from another conductor version are rebuilt from the log rather
            # than migrated; this writes derived tables only, never events.
            self.rebuild_projections()

    def _migrate(self) -> None:
        self._enable_wal()
        with self._transaction():
            # Look again under the write lock: another process (two workers starting on a
            # new file) may have created or upgraded the schema since the first look.
            app_id, version, objects = self._identify()
            self._check_identity(app_id, version, objects, create=True)
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    self._conn.execute(statement)
            if version < SCHEMA_VERSION:
                self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if version == 0:
                self._set_meta("projections_version", str(projections_base.VERSION))
                self._set_meta("projected_seq", "0")

    # -- plumbing ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise self._translated(e) from e

    def _translated(self, e: sqlite3.Error) -> LedgerError:
        name = getattr(e, "sqlite_errorname", "")
        where = self.location
        if name.startswith("SQLITE_BUSY") or "locked" in str(e):
            return DatabaseBusy(
                f"{where} is locked by another writer (waited {self._settings.busy_timeout:g}s); "
                "expected it to be free - retry, or raise CONDUCTOR_BUSY_TIMEOUT"
            )
        if name.startswith("SQLITE_READONLY"):
            return ReadOnlyDatabase(
                f"{where} is read-only; expected a writable database for this command"
            )
        if name.startswith("SQLITE_FULL") or name == "SQLITE_IOERR_SHMSIZE":
            return DiskFull(f"disk full writing {where}; expected free space on its filesystem")
        if name.startswith("SQLITE_NOTADB"):
            return NotAConductorDatabase(
                f"{where} is not a SQLite database; expected a conductor database file"
            )
        if name.startswith("SQLITE_CORRUPT"):
            return CorruptDatabase(
                f"{where} is corrupt ({e}); expected an intact file - restore a backup, "
                f"or salvage it with `sqlite3 {where} .recover` (or `.dump`; "
                "see docs/operations.md)"
            )
        if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")):
            return LedgerError(f"cannot open or read {where} ({e}); expected an accessible file")
        return LedgerError(f"{where}: {e}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._begin_write()
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _begin_write(self) -> None:
        """Take the write lock (`BEGIN IMMEDIATE`), waiting up to the busy timeout.

        Not with SQLite's own busy handler: it sleeps 1, 2, 5, 10, 15, 20, 25 ms... between
        tries, so a writer that just missed another process's commit (about a millisecond
        of fsync) waits 10 to 100 ms, which is most of the engine's pickup tail latency."""
        with self._busy_timeout(0):
            self._retry_while_busy(lambda: self._conn.execute("BEGIN IMMEDIATE"))

    def _retry_while_busy(self, step: Callable[[], object]) -> None:
        """Run `step` until SQLite stops refusing it as busy, within the busy timeout:
        again after `LOCK_RETRY_FIRST`, the pause doubling up to `LOCK_RETRY_MAX`."""
        deadline: float | None = None
        pause = LOCK_RETRY_FIRST
        while True:
            try:
                step()
                return
            except sqlite3.OperationalError as e:
                if getattr(e, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._settings.busy_timeout
                elif now >= deadline:
                    raise
                _pause(pause)
                pause = min(pause * 2, LOCK_RETRY_MAX)

    @contextlib.contextmanager
    def _busy_timeout(self, seconds: float) -> Iterator[None]:
        """SQLite's busy handler set to `seconds` for the block, then the setting again."""
        self._conn.execute(f"PRAGMA busy_timeout = {max(int(seconds * 1000), 0)}")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._settings.busy_timeout * 1000)}")

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _rows(self, ids: Sequence[int]) -> dict[int, JobRow]:
        found: dict[int, JobRow] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for values in self._conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", chunk
            ):
                row: JobRow = dict(zip(COLUMNS, values, strict=True))  # type: ignore[assignment]
                found[row["id"]] = row
        return found

    # -- append ------------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        if not events:
            return []
        with self._translate(), self._transaction():
            return self._append(events, known={})

    def _append(
        self, events: Sequence[NewEvent], *, known: Mapping[int, JobRow]
    ) -> list[RecordedEvent]:
        """Number, chain, fold and store `events`; the caller holds the transaction."""
        conn = self._conn
        head = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev_hash = head if head is not None else (0, chain.GENESIS)
        next_job_id: int | None = None
        stored: list[tuple[Any, ...]] = []
        recorded: list[RecordedEvent] = []
        touched: set[int] = set()
        event_hash = chain.event_hash
        for new in events:
            event = new.event
            job_id = new.job_id
            if job_id is None:
                if not isinstance(event, JobEnqueued):
                    raise ValueError(f"{event.TYPE} event needs a job_id")
                if next_job_id is None:
                    top = conn.execute("SELECT max(job_id) FROM events").fetchone()[0]
                    next_job_id = (top or 0) + 1
                job_id = next_job_id
                next_job_id += 1
            else:
                touched.add(job_id)
            seq += 1
            data = event.encode()
            digest = event_hash(
                prev_hash, seq, job_id, event.TYPE, event.VERSION, new.at, data, new.trace
            )
            stored.append(
                (seq, job_id, event.TYPE, event.VERSION, new.at, data, new.trace, prev_hash, digest)
            )
            recorded.append(
                RecordedEvent(
                    seq=seq, job_id=job_id, at=new.at, event=event, trace=new.trace, hash=digest
                )
            )
            prev_hash = digest
        missing = [job_id for job_id in touched if job_id not in known]
        current = {**known, **self._rows(missing)} if missing else known
        effect = runner.apply_batch(current, recorded)
        conn.executemany(_EVENT_INSERT, stored)
        inserts, updates = [], []
        for job_id, row in effect.rows.items():
            if job_id in current:
                updates.append((*[row[c] for c in MUTABLE_COLUMNS], job_id))
            else:
                inserts.append(tuple(row.values()))
        if inserts:
            conn.executemany(_JOB_INSERT, inserts)
        if updates:
            conn.executemany(_JOB_UPDATE, updates)
        self._write_counters(effect.counter_deltas)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'projected_seq'", (str(seq),))
        return recorded

    def _write_counters(self, deltas: Counter[Bucket]) -> None:
        if not deltas:
            return
        self._conn.executemany(_COUNTER_UPSERT, [(*key, n) for key, n in deltas.items()])
        if any(n < 0 for n in deltas.values()):
            self._conn.execute("DELETE FROM counters WHERE n = 0")

    # -- claim -------------------------------------------------------------------------
    def transact(
        self,
        job_ids: Sequence[int],
        decide: Decide,
        *,
        claim: ClaimRequest | None = None,
    ) -> tuple[list[RecordedEvent], list[ClaimedJob]]:
        with self._translate(), self._transaction():
            rows = self._rows(list(job_ids)) if job_ids else {}
            events = decide(rows)
            # The claim picks among pending jobs, which the decided events (outcomes of
            # in-progress attempts) do not touch: pick first, then number, fold and store
            # both in one append (one head read, one upsert of rows and counters).
            picked = self._pick(claim) if claim is not None else []
            starts = [self._start(row, claim) for row in picked] if claim is not None else []
            known = {**rows, **{row["id"]: row for row in picked}}
            stored = self._append([*events, *starts], known=known) if events or starts else []
            recorded = stored[: len(events)]
            claimed = _claimed(picked, stored[len(events) :])
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
        request = ClaimRequest(
            worker=worker, queues=tuple(queues), limit=limit, now=now, lease=lease
        )
        if limit <= 0 or not queues:
            return []
        return self.transact((), lambda rows: [], claim=request)[1]

    @staticmethod
    def _start(row: JobRow, request: ClaimRequest) -> NewEvent:
        return decide.start(row, worker=request.worker, now=request.now, lease=request.lease)

    def _pick(self, request: ClaimRequest) -> list[JobRow]:
        """The due pending jobs a claim takes, best first: priority, then run_at, then id."""
        limit, queues = request.limit, request.queues
        if limit <= 0 or not queues:
            return []
        due = stamp(request.now)
        picked: list[JobRow] = []
        for priority in _PRIORITY_LEVELS:
            wanted = limit - len(picked)
            if wanted <= 0:
                break
            candidates: list[JobRow] = []
            for queue in queues:
                # One range seek on jobs_due per (queue, priority): cost is independent
                # of how many jobs wait, and future-scheduled ones are never scanned.
                for values in self._conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = 'pending' "
                    "AND queue = ? AND priority = ? AND run_at <= ? "
                    "ORDER BY run_at, id LIMIT ?",
                    (queue, priority, due, wanted),
                ):
                    candidates.append(dict(zip(COLUMNS, values, strict=True)))  # type: ignore[arg-type]
            if len(queues) > 1:
                candidates.sort(key=lambda row: (row["run_at"], row["id"]))
            picked.extend(candidates[:wanted])
        return picked

    # -- read --------------------------------------------------------------------------
    def read(self, where: EventFilter, *, limit: int | None = None) -> list[RecordedEvent]:
        clauses = ["seq > ?"]
        params: list[Any] = [where.after_seq]
        if where.job_id is not None:
            clauses.append("job_id = ?")
            params.append(where.job_id)
        if where.types:
            clauses.append(f"type IN ({', '.join('?' for _ in where.types)})")
            params.extend(where.types)
        if where.task is not None:
            clauses.append("job_id IN (SELECT id FROM jobs WHERE task = ?)")
            params.append(where.task)
        if where.since is not None:
            clauses.append("at >= ?")
            params.append(where.since)
        if where.until is not None:
            clauses.append("at < ?")
            params.append(where.until)
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
        with self._translate():
            if limit is None:
                rows = self._conn.execute(sql + " ORDER BY seq", params).fetchall()
            else:
                rows = self._conn.execute(
                    sql + " ORDER BY seq DESC LIMIT ?", [*params, limit]
                ).fetchall()
                rows.reverse()
        return [_recorded(row) for row in rows]

    def history(self, job_id: int) -> list[RecordedEvent]:
        return self.read(EventFilter(job_id=job_id))

    def recent(self, since: str, *, limit: int | None = None) -> list[RecordedEvent]:
        # A walk down the primary key from the newest row, stopped in Python at the first
        # row stamped before `stop`: SQLite reads rows lazily, so nothing older is touched,
        # and only rows inside the window are decoded. (An index on `at` would make every
        # append pay for a read this walk does at the cost of the window itself.)
        stop = stamp(unstamp(since) - RECENT_MARGIN)
        found: list[tuple[Any, ...]] = []
        with self._translate():
            cursor = self._conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY seq DESC")
            try:
                for row in itertools.chain.from_iterable(
                    iter(lambda: cursor.fetchmany(_RECENT_BATCH), [])
                ):
                    at = row[4]
                    if at < stop:
                        break
                    if at >= since:
                        found.append(row)
                        if len(found) == limit:
                            break
            finally:
                cursor.close()
        found.reverse()
        return [_recorded(row) for row in found]

    def preceding(
        self, before: Mapping[int, int], *, types: Sequence[str]
    ) -> dict[int, RecordedEvent]:
        if not before or not types:
            return {}
        # A backwards range seek on events_by_job (job_id, seq) per job.
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE job_id = ? AND seq < ? "
            f"AND type IN ({', '.join('?' for _ in types)}) ORDER BY seq DESC LIMIT 1"
        )
        found: dict[int, RecordedEvent] = {}
        with self._translate():
            for job_id, seq in before.items():
                row = self._conn.execute(sql, (job_id, seq, *types)).fetchone()
                if row is not None:
                    found[job_id] = _recorded(row)
        return found

    # -- query -------------------------------------------------------------------------
    def job(self, job_id: int) -> JobRow | None:
        with self._translate():
            return self._rows([job_id]).get(job_id)

    def jobs(self, where: JobFilter, *, limit: int | None = None) -> list[JobRow]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("status", "task", "queue"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._translate():
            if limit is None:
                found = self._conn.execute(sql + " ORDER BY id", params).fetchall()
            else:
                found = self._conn.execute(
                    sql + " ORDER BY id DESC LIMIT ?", [*params, limit]
                ).fetchall()
                found.reverse()
        return [dict(zip(COLUMNS, values, strict=True)) for values in found]  # type: ignore[misc]

    def next_due(self, queues: Sequence[str], *, after: str | None = None) -> str | None:
        earliest: str | None = None
        floor = "" if after is None else after
        with self._translate():
            for queue in queues:
                for priority in _PRIORITY_LEVELS:
                    row = self._conn.execute(
                        "SELECT run_at FROM jobs WHERE status = 'pending' AND queue = ? "
                        "AND priority = ? AND run_at > ? ORDER BY run_at LIMIT 1",
                        (queue, priority, floor),
                    ).fetchone()
                    if row is not None and (earliest is None or row[0] < earliest):
                        earliest = row[0]
        return earliest

    def counts(self) -> list[tuple[str, str, str, int]]:
        with self._translate():
            return [
                (queue, task, status, n)
                for queue, task, status, n in self._conn.execute(
                    "SELECT queue, task, status, n FROM counters WHERE n != 0 "
                    "ORDER BY queue, task, status"
                )
            ]

    def event_counts(self, types: Sequence[str]) -> list[tuple[str, str, str, int]]:
        if not types:
            return []
        marks = ", ".join("?" for _ in types)
        with self._translate():
            return [
                (queue, task, event_type, n)
                for queue, task, event_type, n in self._conn.execute(
                    "SELECT jobs.queue, jobs.task, events.type, count(*) FROM events "
                    f"JOIN jobs ON jobs.id = events.job_id WHERE events.type IN ({marks}) "
                    "GROUP BY jobs.queue, jobs.task, events.type "
                    "ORDER BY jobs.queue, jobs.task, events.type",
                    list(types),
                )
            ]

    def last_seq(self) -> int:
        with self._translate():
            row = self._conn.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    # -- maintenance -------------------------------------------------------------------
    def _events_by_job(self) -> Iterator[runner.StoredEvent]:
        """Every event's stored columns that a fold reads, in (job_id, seq) order.

        A walk of the `events_by_job` index, a thousand rows at a time: memory stays flat
        however long the log is.
        """
        cursor = self._conn.execute(f"SELECT {_STORED_COLUMNS} FROM events ORDER BY job_id, seq")
        while batch := cursor.fetchmany(1_000):
            yield from batch

    def _fill(self, jobs_table: str, counters_table: str) -> tuple[int, int]:
        """Fold the whole log into `jobs_table` (overwriting rows by id) and the empty
        `counters_table`; returns (events folded, job rows written)."""
        insert = f"INSERT OR REPLACE INTO {jobs_table} ({_JOB_COLUMNS}) VALUES "
        one = f"({_JOB_PLACEHOLDERS})"
        inserts = (insert + ", ".join([one] * _ROWS_PER_INSERT), insert + one)
        counts: Counter[Bucket] = Counter()
        written = 0
        batch: list[JobRow] = []
        for row in runner.rebuild_rows_stored(self._events_by_job()):
            batch.append(row)
            if len(batch) == _FILL_BATCH:
                self._write_rows(inserts, batch)
                counts.update(from_rows(batch))
                written += len(batch)
                batch = []
        self._write_rows(inserts, batch)
        counts.update(from_rows(batch))
        written += len(batch)
        self._conn.executemany(
            f"INSERT INTO {counters_table} (queue, task, status, n) VALUES (?, ?, ?, ?)",
            [(*key, n) for key, n in counts.items() if n],
        )
        folded: int = self._conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return folded, written

    def _write_rows(self, inserts: tuple[str, str], rows: list[JobRow]) -> None:
        """Write `rows` in order with `inserts` (for `_ROWS_PER_INSERT` rows, for one)."""
        # Rows are built in COLUMNS order (and only ever updated in place), so their values
        # line up with the insert's columns.
        values: list[Any] = list(itertools.chain.from_iterable(row.values() for row in rows))
        many, one = inserts
        width = len(COLUMNS)
        step = width * _ROWS_PER_INSERT
        whole = len(rows) // _ROWS_PER_INSERT * step
        self._conn.executemany(many, [values[i : i + step] for i in range(0, whole, step)])
        self._conn.executemany(
            one, [values[i : i + width] for i in range(whole, len(values), width)]
        )

    def _secondary_indexes(self, table: str) -> list[tuple[str, str]]:
        """(name, CREATE statement) of the indexes declared on `table`."""
        return self._conn.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
            (table,),
        ).fetchall()

    def rebuild_projections(self) -> int:
        conn = self._conn
        with self._translate(), self._transaction():
            # A bulk load, shaped by measurement (docs/performance.md): the secondary
            # indexes are dropped and then rebuilt from their stored definitions, each in
            # one sorted pass, which is cheaper than keeping four indexes current through
            # every insert; and rows are overwritten by id where they are instead of being
            # deleted first, which saves freeing and reallocating every page of `jobs`.
            # All in this transaction: a failed rebuild rolls back to the old tables.
            indexes = self._secondary_indexes("jobs")
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            conn.execute("DELETE FROM counters")
            folded, written = self._fill("jobs", "counters")
            if conn.execute("SELECT count(*) FROM jobs").fetchone()[0] != written:
                # Rows for jobs the log does not have (added behind conductor's back).
                conn.execute(
                    "DELETE FROM jobs WHERE NOT EXISTS "
                    "(SELECT 1 FROM events WHERE events.job_id = jobs.id)"
                )
            for _, create in indexes:
                conn.execute(create)
            self._set_meta("projections_version", str(projections_base.VERSION))
            self._set_meta("projected_seq", str(self.last_seq()))
        return folded

    def diff_projections(self) -> list[RowDifference]:
        conn = self._conn
        with self._translate():
            conn.execute("DROP TABLE IF EXISTS temp.rebuilt_jobs")
            conn.execute("DROP TABLE IF EXISTS temp.rebuilt_counters")
            conn.execute("CREATE TEMP TABLE rebuilt_jobs AS SELECT * FROM main.jobs WHERE 0")
            conn.execute(
                "CREATE TEMP TABLE rebuilt_counters AS SELECT * FROM main.counters WHERE 0"
            )
            conn.execute("BEGIN")
            try:
                self._fill("temp.rebuilt_jobs", "temp.rebuilt_counters")
                differences = self._differences()
            finally:
                conn.execute("ROLLBACK")
            conn.execute("DROP TABLE temp.rebuilt_jobs")
            conn.execute("DROP TABLE temp.rebuilt_counters")
        return differences

    def _differences(self) -> list[RowDifference]:
        differences: list[RowDifference] = []
        ids = [
            row[0]
            for row in self._conn.execute(
                "SELECT id FROM (SELECT * FROM main.jobs EXCEPT SELECT * FROM temp.rebuilt_jobs) "
                "UNION SELECT id FROM "
                "(SELECT * FROM temp.rebuilt_jobs EXCEPT SELECT * FROM main.jobs) ORDER BY id"
            )
        ]
        if ids:
            # The scratch table has no key (CREATE TABLE AS): without an index each lookup
            # below would scan it, and a replay that changed every row would take hours.
            self._conn.execute("CREATE INDEX temp.rebuilt_jobs_by_id ON rebuilt_jobs (id)")
        for job_id in ids:
            live = self._one(f"SELECT {_JOB_COLUMNS} FROM main.jobs WHERE id = ?", job_id)
            rebuilt = self._one(
                f"SELECT {_JOB_COLUMNS} FROM temp.rebuilt_jobs WHERE id = ?", job_id
            )
            differences.append(
                RowDifference(table="jobs", key=str(job_id), live=live, rebuilt=rebuilt)
            )
        live_counts = self._counter_rows("main.counters")
        rebuilt_counts = self._counter_rows("temp.rebuilt_counters")
        for key in sorted(live_counts.keys() | rebuilt_counts.keys()):
            if live_counts.get(key) != rebuilt_counts.get(key):
                differences.append(
                    RowDifference(
                        table="counters",
                        key="/".join(key),
                        live=None if key not in live_counts else {"n": live_counts[key]},
                        rebuilt=None if key not in rebuilt_counts else {"n": rebuilt_counts[key]},
                    )
                )
        return differences

    @property
    def _db(self) -> Any:
        """sqlite-utils over the same connection, for row-shaped maintenance reads.

        Imported on first use: it costs ~60 ms to import (it pulls in numpy when present),
        which every short CLI command would otherwise pay."""
        if self._utils is None:
            import sqlite_utils

            self._utils = sqlite_utils.Database(self._conn)
        return self._utils

    def _one(self, sql: str, key: int) -> dict[str, object] | None:
        rows = list(self._db.query(sql, [key]))
        return dict(rows[0]) if rows else None

    def _counter_rows(self, table: str) -> dict[Bucket, int]:
        return {
            (queue, task, status): n
            for queue, task, status, n in self._conn.execute(
                f"SELECT queue, task, status, n FROM {table} WHERE n != 0"
            )
        }

    def verify_chain(self) -> chain.ChainReport:
        with self._translate():
            cursor = self._conn.execute(
                "SELECT seq, job_id, type, version, at, data, trace, prev_hash, hash "
                "FROM events ORDER BY seq"
            )
            return chain.verify(
                row for batch in iter(lambda: cursor.fetchmany(10_000), []) for row in batch
            )

    def checkpoint_wal(self, *, wait: float) -> bool:
        # Never inside a transaction of our own; the busy handler is shortened for the
        # checkpoint only, so the write path keeps its full timeout.
        with self._translate(), self._busy_timeout(wait):
            row = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return row is None or row[0] == 0

    def close(self) -> None:
        self._conn.close()


class _FaultAt(sqlite3.Connection):
    """Test-only crash injection, never for production use: with `CONDUCTOR_FAULT_AT=N:before`
    (or `N:after`) set when a ledger is opened, its connection counts every statement run
    inside a write transaction, from `BEGIN IMMEDIATE` to `COMMIT`/`ROLLBACK` inclusive, and
    ends the process with `os._exit(97)` just before (or after) the Nth. Unset, the ledger
    uses a plain `sqlite3.Connection` and pays nothing (tests/reliability/
    test_crash_at_every_write.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        n, _, mode = os.environ["CONDUCTOR_FAULT_AT"].partition(":")
        self._fault_at, self._fault_after = int(n), mode == "after"
        self._count, self._writing = 0, False

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self._step(sql, lambda: super(_FaultAt, self).execute(sql, parameters))

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self._step(sql, lambda: super(_FaultAt, self).executemany(sql, parameters))

    def _step(self, sql: str, run: Any) -> sqlite3.Cursor:
        self._writing = self._writing or sql == "BEGIN IMMEDIATE"
        if not self._writing:
            return run()  # type: ignore[no-any-return]
        self._count += 1
        hit = self._count == self._fault_at
        if hit and not self._fault_after:
            os._exit(97)
        cursor: sqlite3.Cursor = run()
        if hit:
            os._exit(97)
        self._writing = sql not in ("COMMIT", "ROLLBACK")
        return cursor
