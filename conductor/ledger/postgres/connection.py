"""Reaching one conductor schema on a PostgreSQL server: the URL, the pool, the schema's
identity and migrations, and write transactions under the chain lock.

A process keeps one psycopg connection pool per (server, schema), shared by every ledger
it opens there: a web process that opens a `Conductor` per request, or a worker's writer
and scheduler threads, reuse connections instead of paying a connect each time. A
connection the server dropped (a restart, a failover) is discarded by the pool when it is
handed back, and the next checkout gets a new one, so a ledger outlives an outage; the
error of the operation that met it leaves as `DatabaseUnavailable`, which workers retry.
After such an error the connections made before it are checked before reuse, and the
pool reconnects within seconds of the server's return (`liveness.py`).

Connections run in autocommit: a read is one statement and holds no snapshot afterwards,
and every write is an explicit transaction (`transaction`).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from conductor.domain.clock import stamp
from conductor.domain.config import Settings
from conductor.domain.errors import (
    DatabaseBusy,
    DatabaseNotFound,
    DatabaseUnavailable,
    InvalidInput,
    NotAConductorDatabase,
    SchemaTooNew,
)
from conductor.ledger.postgres import liveness
from conductor.ledger.postgres.errors import RETRYABLE, translating
from conductor.ledger.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from projections import base as projections_base

DEFAULT_SCHEMA: Final = "conductor"
DEFAULT_POOL_SIZE: Final = 10
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RETRIES: Final = 5
"""Times a transaction that lost a deadlock or serialisation race is run again."""


@attrs.frozen
class Target:
    """Where a `postgresql://` location points: libpq's URL, the schema, and the URL as
    shown in messages (without a password)."""

    conninfo: str
    schema: str
    shown: str

    @property
    def chain_lock(self) -> int:
        """The advisory lock that orders appends to this schema's log (a signed bigint)."""
        return _lock_key(f"chain {self.schema}")

    @property
    def migration_lock(self) -> int:
        return _lock_key(f"migrate {self.schema}")

    def key_lock(self, key: str) -> tuple[int, int]:
        """The advisory lock (two signed 32-bit keys: the schema's, the unique key's,
        apart from the one-bigint chain and migration locks) that orders enqueues of one
        unique key. Two keys may share a lock: they then wait for each other, harmlessly."""
        return (_lock_key(f"unique {self.schema}") >> 32, _lock_key(f"key {key}") >> 32)


def _lock_key(name: str) -> int:
    digest = hashlib.sha256(f"conductor {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def parse(location: str) -> Target:
    """Split conductor's `schema=` parameter off a `postgresql://` URL; everything else
    is libpq's (host, port, user, password, dbname, sslmode, options...)."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.match(schema):
        raise InvalidInput(
            f"invalid schema {schema!r} in the database URL: expected 1-63 lowercase letters, "
            "digits or _ (not starting with a digit)"
        )
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    # By hand: urlunsplit drops the `//` of an empty host (`postgresql:///db`, the local
    # socket), which libpq then cannot read.
    conninfo = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
    # The hosts as written: libpq takes several (`h1:5432,h2:5432`, its own failover),
    # which urllib's one-host `hostname` and `port` cannot parse.
    hosts = parts.netloc.rpartition("@")[2] or "localhost"
    netloc = hosts if parts.username is None else f"{parts.username}@{hosts}"
    shown = urlunsplit(("postgresql", netloc, parts.path, f"schema={schema}", ""))
    return Target(conninfo=conninfo, schema=schema, shown=shown)


def _kwargs(target: Target) -> dict[str, Any]:
    # Every connection looks in conductor's schema first (the statements name tables
    # without a schema, as on SQLite), then in pg_catalog.
    query = dict(parse_qsl(urlsplit(target.conninfo).query))
    given = query.get("options", "")
    options = [given] if given else []
    options.append(f"-c search_path={target.schema}")
    asked = liveness.SERVER_TIMEOUTS
    options += [f"-c {name}={value}" for name, value in asked.items() if name not in given]
    kwargs: dict[str, Any] = {"autocommit": True, "options": " ".join(options)}
    kwargs.update({k: v for k, v in liveness.CLIENT_TIMEOUTS.items() if k not in query})
    if "connect_timeout" not in query:
        # An unanswered connect (a partition) gives up like a refused one, in seconds.
        kwargs["connect_timeout"] = liveness.connect_timeout()
    if "application_name" not in query and "PGAPPNAME" not in os.environ:
        kwargs["application_name"] = "conductor"  # how pg_stat_activity names them
    return kwargs


_freshness: dict[Target, liveness.Freshness] = {}
"""Per (server, schema) for the process's lifetime, whichever pool is open."""
_pools: dict[Target, tuple[ConnectionPool, int]] = {}
"""Each open pool with the number of ledgers using it."""
_pools_lock = threading.Lock()


def pool_size() -> int:
    text = os.environ.get("CONDUCTOR_PG_POOL_SIZE", "").strip()
    if not text:
        return DEFAULT_POOL_SIZE
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise InvalidInput(
            f"invalid CONDUCTOR_PG_POOL_SIZE {text!r}: expected a whole number from 1 to 1000"
        )
    return int(text)


def _fresh(target: Target) -> liveness.Freshness:
    with _pools_lock:
        return _freshness.setdefault(target, liveness.Freshness())


def _acquire(target: Target, timeout: float) -> ConnectionPool:
    """The process's pool for `target`, opened by its first user."""
    with _pools_lock:
        pool, users = _pools.get(target, (None, 0))
        if pool is None:
            freshness = _freshness.setdefault(target, liveness.Freshness())
            pool = ConnectionPool(
                target.conninfo,
                kwargs=_kwargs(target),
                min_size=1,
                max_size=pool_size(),
                timeout=timeout,
                open=False,
                name=f"conductor {target.schema}",
                configure=freshness.made,
                check=freshness.check,
                reconnect_timeout=liveness.RECONNECT_WITHIN,
            )
            pool.open(wait=False)
        _pools[target] = (pool, users + 1)
        return pool


def _in_use(target: Target) -> bool:
    with _pools_lock:
        return target in _pools


def _release(target: Target) -> None:
    """Close the pool when its last user closes: a process that opens ledgers on many
    schemas (a test run, a migration script) does not keep a connection to each."""
    with _pools_lock:
        pool, users = _pools.get(target, (None, 0))
        if pool is None:
            return
        if users > 1:
            _pools[target] = (pool, users - 1)
            return
        del _pools[target]
    with contextlib.suppress(Exception):
        pool.close(timeout=1.0)


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        pools = [pool for pool, _ in _pools.values()]
        _pools.clear()
    for pool in pools:
        with contextlib.suppress(Exception):
            pool.close(timeout=1.0)


class PostgresConnection:
    """One ledger's way to its schema: connections from the process's pool, errors
    translated, write transactions serialised on the chain lock where they append."""

    def __init__(self, settings: Settings, *, create: bool, prepare: bool = True) -> None:
        """`prepare=False` checks nothing and migrates nothing (`conductor migrate`, which
        shows the schema as it is); a ledger is always opened prepared."""
        self.settings = settings
        self.target = parse(settings.db)
        self.location = self.target.shown
        self.rebuild_needed = False
        if not _in_use(self.target):
            # The process's first ledger on this schema checks it over a direct first
            # connection, before any pool: its error (refused, unknown database, bad
            # password) is the one line a user sees, at once, instead of a pool timeout
            # after retries in the background. Later ones find it checked.
            with (
                self.translate(),
                psycopg.connect(self.target.conninfo, **_kwargs(self.target)) as conn,
            ):
                if prepare:
                    self.rebuild_needed = self._prepare(conn, create=create)
        self.pool = _acquire(self.target, max(settings.busy_timeout, 5.0))
        self._freshness = _fresh(self.target)
        self._closed = False

    # -- schema ------------------------------------------------------------------------
    def _identify(self, conn: psycopg.Connection[Any]) -> tuple[bool, int, bool]:
        """(schema holds tables, its conductor schema version or 0, marked as conductor's)."""
        schema = self.target.schema
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()
        if not tables or not tables[0]:
            return False, 0, False
        if conn.execute("SELECT to_regclass(%s)", (f"{schema}.meta",)).fetchone() == (None,):
            return True, 0, False
        rows = dict(
            conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('application', 'schema_version')"
            ).fetchall()
        )
        return True, int(rows.get("schema_version", "0")), rows.get("application") == "conductor"

    def _check(self, has_tables: bool, version: int, ours: bool, *, create: bool) -> None:
        if has_tables and not ours:
            raise NotAConductorDatabase(
                f"schema {self.target.schema} at {self.location} holds tables that are not "
                "conductor's; expected an empty or conductor schema (choose one with ?schema=)"
            )
        if not has_tables and not create:
            raise DatabaseNotFound(
                f"no conductor ledger at {self.location}; expected one created by "
                "`conductor migrate` or a first `conductor enqueue`"
            )
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.location} has schema version {version}, newer than this conductor "
                f"understands ({SCHEMA_VERSION}); expected an upgraded conductor"
            )

    def _prepare(self, conn: psycopg.Connection[Any], *, create: bool) -> bool:
        """Check the schema is conductor's and migrate it; True when the read models were
        built by another conductor version and must be rebuilt from the log."""
        has_tables, version, ours = self._identify(conn)
        self._check(has_tables, version, ours, create=create)
        if version < SCHEMA_VERSION:
            self.migrate(conn)
        row = conn.execute("SELECT value FROM meta WHERE key = 'projections_version'").fetchone()
        return row is None or row[0] != str(projections_base.VERSION)

    def schema_state(self) -> tuple[int, dict[int, str]]:
        """The schema's version and when each migration was applied (by number), changing
        nothing; refuses a schema that is not conductor's or is newer than this one."""
        with self.translate(), self._checkout() as conn:
            has_tables, version, ours = self._identify(conn)
            self._check(has_tables, version, ours, create=True)
            if not ours:
                return 0, {}
            applied = {
                int(key.split()[1]): value
                for key, value in conn.execute(
                    "SELECT key, value FROM meta WHERE key LIKE 'migration %'"
                )
            }
        return version, applied

    def apply_migrations(self) -> list[int]:
        """Bring the schema to this conductor's version (`migrate`); the numbers applied."""
        with self.translate(), self._checkout() as conn:
            return self.migrate(conn)

    def migrate(self, conn: psycopg.Connection[Any]) -> list[int]:
        """Apply every migration the schema lacks, in one transaction under the migration
        lock: workers starting together wait for the first, then find nothing to do."""
        applied: list[int] = []
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.target.migration_lock,))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.target.schema}"')
            has_tables, version, ours = self._identify(conn)
            self._check(has_tables, version, ours, create=True)
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                # A plain INSERT: a migration applied twice would fail here, not pass.
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, %s)",
                    (f"migration {number}", stamp(dt.datetime.now(dt.UTC))),
                )
                applied.append(number)
            if applied:
                set_meta(conn, "schema_version", str(SCHEMA_VERSION))
            if version == 0:
                set_meta(conn, "projections_version", str(projections_base.VERSION))
                set_meta(conn, "projected_seq", "0")
        return applied

    # -- errors, transactions ----------------------------------------------------------
    @contextlib.contextmanager
    def translate(self) -> Iterator[None]:
        """A block whose psycopg errors become conductor errors naming this database; an
        unreachable server marks the pool's connections as suspect (`Freshness`)."""
        try:
            with translating(self.location):
                yield
        except DatabaseUnavailable:
            _fresh(self.target).lost()
            raise

    def _checkout(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """A pooled connection, waited for only briefly while the server is known to be
        away (`liveness.OUTAGE_WAIT`)."""
        wait = liveness.OUTAGE_WAIT if self._freshness.away else None
        return self.pool.connection(timeout=wait)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for the block (a read, or a transaction the caller opens)."""
        with self.translate(), self._checkout() as conn:
            yield conn

    def retrying(self, attempt: Any, *, pipeline: bool = True) -> Any:
        """Run `attempt(conn)` in a transaction, again (up to `_RETRIES` times) when it
        lost a deadlock or serialisation race to another transaction.

        In pipeline mode: statements are sent as they are issued and the client waits only
        when it reads a result, so a transaction that sends its reads, then its writes and
        the commit, costs two round trips however many statements it runs. COPY cannot
        run in a pipeline: `pipeline=False` runs `attempt` in a plain transaction."""
        for tries in range(_RETRIES + 1):
            try:
                with self.translate(), self._checkout() as conn:
                    if not pipeline:
                        with conn.transaction():
                            return attempt(conn)
                    return _in_pipeline(conn, attempt)
            except DatabaseBusy as e:
                if tries == _RETRIES or not isinstance(e.__cause__, RETRYABLE):
                    raise
        raise AssertionError("unreachable")

    def lock_chain(self, conn: psycopg.Connection[Any]) -> None:
        """Take the chain lock until the transaction ends: appends to one schema's log are
        numbered and committed one transaction at a time (docs/architecture.md)."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.target.chain_lock,))

    def check_writable(self) -> None:
        """A write that is rolled back: a read-only replica, a `default_transaction_read_only`
        database or a role without conductor's privileges refuses it."""
        with self.translate(), self._checkout() as conn:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("UPDATE meta SET value = value WHERE key = 'projected_seq'")
                    conn.execute("INSERT INTO events SELECT * FROM events WHERE false")
            except psycopg.errors.LockNotAvailable:
                return

    def close(self) -> None:
        """Stop using the pool; the last ledger of the process to close it closes it.
        A long-lived application keeps one `Conductor` open, as it keeps one engine or
        pool of its own database, and its connections are reused."""
        if not self._closed:
            self._closed = True
            _release(self.target)


def _in_pipeline(conn: psycopg.Connection[Any], attempt: Any) -> Any:
    """`attempt(conn)` between BEGIN and COMMIT, all in one pipeline.

    Issued by hand rather than through `conn.transaction()`, which waits for the server
    on entry and again on exit inside a pipeline: here BEGIN goes out with the first
    reads and COMMIT with the writes, and the pipeline's end is the only other wait."""
    try:
        with conn.pipeline():
            conn.execute("BEGIN")
            result = attempt(conn)
            conn.execute("COMMIT")
    except BaseException:
        if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                # Cut mid-pipeline (a server lost): the first error is the one to raise,
                # and a connection in no state for reuse is closed, so the pool drops it.
                conn.close()
        raise
    return result


def set_meta(conn: psycopg.Connection[Any], key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
