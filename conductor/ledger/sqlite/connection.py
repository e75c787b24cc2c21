"""One open conductor SQLite file: opening and refusing files, PRAGMAs, the WAL switch,
identity checks, migrations, and the write lock with its busy retries.

WAL mode, explicit `BEGIN IMMEDIATE` for every write (so writers queue on the database
lock up front instead of failing on upgrade), and a busy timeout. The ledger runs its
statements on `raw`, the sqlite3 connection itself: the append and claim paths go through
no wrapper.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from conductor.domain.config import Settings
from conductor.domain.errors import (
    DatabaseBusy,
    DatabaseNotFound,
    LedgerError,
    NotAConductorDatabase,
    SchemaTooNew,
)
from conductor.ledger.sqlite.errors import translated, translating
from conductor.ledger.sqlite.faults import FaultAt
from conductor.ledger.sqlite.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from projections import base as projections_base

LOCK_RETRY_FIRST: Final = 0.0002
"""Seconds before the first retry for a write lock another connection holds."""
LOCK_RETRY_MAX: Final = 0.002
"""The longest pause between retries (a commit holds the lock about a millisecond)."""
_pause = time.sleep  # between tries for the write lock (a test watches it)
AUTOCHECKPOINT_PAGES: Final = 1000
"""SQLite's default `wal_autocheckpoint`: 4 MiB of 4 KiB pages."""


class SqliteConnection:
    """A checked, prepared connection to `settings.db`. One per thread (sqlite3's rule)."""

    def __init__(self, settings: Settings, *, create: bool) -> None:
        self.location = settings.db
        self.settings = settings
        self.raw = self._connect(settings.db, create=create)

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
                raise self.translated(e) from e
            try:
                conn = self._sqlite_connect(
                    f"{Path(location).resolve().as_uri()}?immutable=1", uri=True
                )
                conn.execute("PRAGMA application_id").fetchone()
            except sqlite3.Error:
                raise self.translated(e) from e
        except sqlite3.Error as e:
            raise self.translated(e) from e
        return conn

    def _sqlite_connect(self, location: str, *, uri: bool) -> sqlite3.Connection:
        return sqlite3.connect(
            location,
            timeout=self.settings.busy_timeout,
            isolation_level=None,
            uri=uri,
            check_same_thread=False,
            factory=FaultAt if "CONDUCTOR_FAULT_AT" in os.environ else sqlite3.Connection,
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
            _create_private_file(path)
        elif not stat.S_ISREG(path.stat().st_mode):
            raise NotAConductorDatabase(
                f"{location} is not a regular file; expected a database file"
            )

    def _fit_autocheckpoint(self) -> None:
        """Checkpoint at a quarter of the filesystem's free space when that is less than
        SQLite's 4 MiB. Its automatic checkpoint (after a commit, without truncating) lets
        the -wal start over instead of growing; at 4 MiB, on a small or nearly full
        filesystem, the -wal would fill the disk before the first one."""
        if self.location.startswith("file:"):
            return
        try:
            disk = os.statvfs(Path(self.location).resolve().parent)
        except OSError:
            return
        page = int(self.raw.execute("PRAGMA page_size").fetchone()[0])
        pages = disk.f_bavail * disk.f_frsize // 4 // page
        if pages < AUTOCHECKPOINT_PAGES:
            self.raw.execute(f"PRAGMA wal_autocheckpoint = {max(pages, 16)}")

    def enable_wal(self) -> None:
        """Switch to WAL unless already there. The switch needs the file to itself and
        SQLite does not wait for that (no busy handler), so retry within the busy timeout:
        several processes may open a new database at once."""

        def switch() -> None:
            if self.raw.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.raw.execute("PRAGMA journal_mode = WAL")

        self.retry_while_busy(switch)

    # -- identity and schema -----------------------------------------------------------
    def _identify(self) -> tuple[int, int, int]:
        """(application_id, user_version, number of schema objects) of the open file."""
        # One statement, so one snapshot: read separately, a schema another process commits
        # in between would look like a foreign database.
        app_id, version, objects = self.raw.execute(
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

    def inspect(self) -> int:
        """The file's schema version (0 for an empty file), checked to be conductor's and
        not newer than this conductor; changes nothing."""
        app_id, version, objects = self._identify()
        self._check_identity(app_id, version, objects, create=True)
        return version

    def prepare(self, *, create: bool) -> bool:
        """Check the file is conductor's, set PRAGMAs, migrate; True when the read models
        were built by another conductor version and must be rebuilt from the log."""
        app_id, version, objects = self._identify()
        self._check_identity(app_id, version, objects, create=create)
        self.raw.execute(f"PRAGMA synchronous = {self.settings.synchronous}")
        self._fit_autocheckpoint()
        if version < SCHEMA_VERSION:
            self._migrate()
        elif create:
            # e.g. a file restored with `.dump`: the journal mode is not part of a dump.
            self.enable_wal()
        # Read models from another conductor version are rebuilt from the log rather
        # than migrated; that writes derived tables only, never events.
        return self.meta("projections_version") != str(projections_base.VERSION)

    def _migrate(self) -> None:
        self.enable_wal()
        with self.transaction():
            # Look again under the write lock: another process (two workers starting on a
            # new file) may have created or upgraded the schema since the first look.
            app_id, version, objects = self._identify()
            self._check_identity(app_id, version, objects, create=True)
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    self.raw.execute(statement)
            if version < SCHEMA_VERSION:
                self.raw.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if version == 0:
                self.set_meta("projections_version", str(projections_base.VERSION))
                self.set_meta("projected_seq", "0")

    def meta(self, key: str) -> str | None:
        row = self.raw.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.raw.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- errors, transactions, the write lock ------------------------------------------
    def translate(self) -> contextlib.AbstractContextManager[None]:
        """A block whose sqlite3 errors become conductor errors naming this file."""
        return translating(self.location, self.settings.busy_timeout)

    def translated(self, e: sqlite3.Error) -> LedgerError:
        return translated(e, self.location, self.settings.busy_timeout)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        self._begin_write()
        try:
            yield
        except BaseException:
            if self.raw.in_transaction:
                self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def _begin_write(self) -> None:
        """Take the write lock (`BEGIN IMMEDIATE`), waiting up to the busy timeout.

        Not with SQLite's own busy handler: it sleeps 1, 2, 5, 10, 15, 20, 25 ms... between
        tries, so a writer that just missed another process's commit (about a millisecond
        of fsync) waits 10 to 100 ms, which is most of the engine's pickup tail latency."""
        with self.busy_timeout(0):
            self.retry_while_busy(lambda: self.raw.execute("BEGIN IMMEDIATE"))

    def retry_while_busy(self, step: Callable[[], object]) -> None:
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
                    deadline = now + self.settings.busy_timeout
                elif now >= deadline:
                    raise
                _pause(pause)
                pause = min(pause * 2, LOCK_RETRY_MAX)

    @contextlib.contextmanager
    def busy_timeout(self, seconds: float) -> Iterator[None]:
        """SQLite's busy handler set to `seconds` for the block, then the setting again."""
        self.raw.execute(f"PRAGMA busy_timeout = {max(int(seconds * 1000), 0)}")
        try:
            yield
        finally:
            self.raw.execute(f"PRAGMA busy_timeout = {int(self.settings.busy_timeout * 1000)}")

    def checkpoint_wal(self, *, wait: float) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes; False when a
        reader or writer kept it from finishing within `wait` seconds."""
        # Never inside a transaction of our own; the busy handler is shortened for the
        # checkpoint only, so the write path keeps its full timeout.
        with self.translate(), self.busy_timeout(wait):
            row = self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return row is None or row[0] == 0

    def check_writable(self) -> None:
        """A write that is rolled back: SQLite opens a file it may not write (permissions,
        a read-only mount) read-only without a word, and only a write statement finds out.
        A write lock held past the busy timeout says nothing either way: that is
        contention, which a worker waits out, so it passes."""
        try:
            with self.translate():
                self._begin_write()
                try:
                    self.raw.execute("UPDATE meta SET value = value WHERE key = 'projected_seq'")
                finally:
                    self.raw.execute("ROLLBACK")
        except DatabaseBusy:
            return

    def close(self) -> None:
        self.raw.close()


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
