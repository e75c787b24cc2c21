"""Wake-ups on PostgreSQL: `LISTEN conductor` on a connection of the listener's own.

Every transaction that makes work claimable runs `pg_notify('conductor', <schema>)`
(`ledger.py`), and the server delivers it, at commit, to every listening session of the
database on any host. A listener keeps one dedicated connection (a pooled one would be
handed to other work, and a LISTEN belongs to its session) and waits in `poll()` on its
socket and on a socket pair that `wake` writes to from other threads (or a signal
handler). When the socket turns readable, libpq reads what arrived and the notifications
are taken from its queue directly (`pgconn.consume_input`, `pgconn.notifies`): no
statement, no round trip and no thread hand-over between the commit's notification and
the scheduler's next tick. Notifications for other schemas of the same database are
drained and ignored.

The listening connection is a convenience, never a dependency: when it is lost (a server
restart, `pg_terminate_backend`, a network cut that the TCP keepalives notice) a thread
reconnects with backoff while `wait` sleeps its whole timeout - the scheduler's poll
interval - as it would without wake-ups. The first `wait` after reconnecting returns True,
since the notifications of the gap are gone. Nothing here raises into the scheduler.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any, Final

import psycopg
from psycopg import pq

from conductor.domain.config import Settings
from conductor.domain.errors import LedgerError
from conductor.ledger.postgres.connection import PostgresConnection, parse
from conductor.ledger.postgres.errors import translating
from conductor.ledger.postgres.ledger import FINISHED_CHANNEL, WAKE_CHANNEL

RECONNECT_FIRST: Final = 0.1
RECONNECT_MOST: Final = 5.0
"""Seconds between attempts to listen again: from the first, doubling to the most."""
CONNECT_TIMEOUT: Final = 5
"""Seconds a listening connection may take to open (libpq's `connect_timeout`); a
reconnect runs in its own thread, so this bounds nothing the scheduler waits on."""
_KEEPALIVES: Final[dict[str, Any]] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
"""An idle listening connection sends nothing: without keepalives a silently cut network
would leave it waiting for ever on a dead peer (and on the poll alone)."""
_READABLE: Final = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def application_name(schema: str) -> str:
    """The listening sessions' `application_name`, as `pg_stat_activity` shows them: how
    a benchmark (or an operator) sees that a worker of `schema` is listening."""
    return f"conductor listen {schema}"[:63]


def listening(db: str) -> int:
    """How many sessions, from any host, listen for wake-ups of `db`'s schema."""
    target = parse(db)
    with (
        translating(target.shown),
        psycopg.connect(target.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn,
    ):
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (application_name(target.schema),),
        ).fetchone()
    return 0 if row is None else int(row[0])


def announce(db: str) -> int:
    """Send one notification to every session listening for `db`'s schema, outside any
    append; 1 if sent, 0 if the server could not take it (a wake-up is never worth an
    error: the listeners' polls stand behind it)."""
    try:
        link = PostgresConnection(Settings(db=db), create=False)
    except LedgerError:
        return 0
    try:
        with link.connection() as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (WAKE_CHANNEL, link.target.schema))
    except LedgerError:
        return 0
    finally:
        link.close()
    return 1


class PostgresListener:
    """One process's listening session for one schema; `wait` returns early when a
    notification for it arrives or `wake` is called. Same interface as
    `conductor.ledger.wakeup.Listener`."""

    def __init__(self, db: str, *, waiting_for_results: bool = False) -> None:
        """`waiting_for_results`: listen for commits that finished jobs
        (`conductor_finished`) instead of for work, under an `application_name` of its
        own (`conductor result <schema>`), so a waiter never counts as a listening worker."""
        self._target = parse(db)
        self._channel = FINISHED_CHANNEL if waiting_for_results else WAKE_CHANNEL
        self._name = (
            f"conductor result {self._target.schema}"[:63]
            if waiting_for_results
            else application_name(self._target.schema)
        )
        self._payload = self._target.schema.encode()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._fresh: psycopg.Connection[Any] | None = None
        self._reconnector: threading.Thread | None = None
        self._poller = select.poll()
        try:
            self._use(self._listen())
        except (psycopg.Error, OSError):
            self._reconnect_later()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening session, None while there is none."""
        conn = self._conn
        return None if conn is None else conn.info.backend_pid

    def _listen(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._target.conninfo,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=self._name,
            **_KEEPALIVES,
        )
        try:
            conn.execute(f"LISTEN {self._channel}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _use(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._poller = select.poll()
        self._poller.register(self._wake_in, _READABLE)
        self._poller.register(conn.pgconn.socket, _READABLE)

    # -- waiting -------------------------------------------------------------------------
    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True if woken (a notification for this schema,
        `wake`, or a new listening session that may have missed some)."""
        if self._adopt():
            return True
        conn = self._conn
        if conn is None:
            return self._sleep(timeout)
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            ready = self._poller.poll(remaining * 1000.0)
            if not ready:
                return False
            if any(fd == self._wake_in.fileno() for fd, _ in ready):
                self._drain()
                return True
            try:
                if self._take(conn):
                    return True
            except psycopg.Error:
                self._lose()
                return self._sleep(deadline - time.monotonic())
            if remaining <= 0.0:
                return False

    def _take(self, conn: psycopg.Connection[Any]) -> bool:
        """Read what the socket holds and empty libpq's notification queue; True if any
        notification was for this schema. Raises `psycopg.Error` for a lost session."""
        pgconn = conn.pgconn
        pgconn.consume_input()
        if pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the listening session was closed")
        ours = False
        while (note := pgconn.notifies()) is not None:
            ours = ours or note.extra == self._payload
        return ours

    def _sleep(self, timeout: float) -> bool:
        """The fallback: wait on `wake` alone, as a plain poll interval."""
        alone = select.poll()  # not select(): a busy process may hold fds past 1024
        alone.register(self._wake_in, _READABLE)
        if alone.poll(max(timeout, 0.0) * 1000.0):
            self._drain()
            return True
        return False

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_in.recv(4096):
                pass

    def wake(self) -> None:
        """Wake the waiting thread, from another thread or a signal handler of this
        process (no lock: a handler may run while the waiter holds one)."""
        with contextlib.suppress(OSError):  # full (wake-ups pending already) or closed
            self._wake_out.send(b"w")

    # -- losing and regaining the session ------------------------------------------------
    def _lose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        self._reconnect_later()

    def _reconnect_later(self) -> None:
        if self._closed.is_set():
            return
        self._reconnector = threading.Thread(
            target=self._reconnect, name="conductor-listen-reconnect", daemon=True
        )
        self._reconnector.start()

    def _reconnect(self) -> None:
        delay = RECONNECT_FIRST
        while not self._closed.wait(delay):
            try:
                conn = self._listen()
            except (psycopg.Error, OSError):
                delay = min(delay * 2, RECONNECT_MOST)
                continue
            with self._lock:
                if self._closed.is_set():
                    conn.close()
                    return
                self._fresh = conn
            self.wake()
            return

    def _adopt(self) -> bool:
        """Take over the session a reconnect opened, if one is waiting; True if so."""
        with self._lock:
            fresh, self._fresh = self._fresh, None
        if fresh is None:
            return False
        self._use(fresh)
        self._drain()
        return True

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            conns = [self._conn, self._fresh]
            self._conn = self._fresh = None
        for conn in conns:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._wake_out.close()
        self._wake_in.close()
