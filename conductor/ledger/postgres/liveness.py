"""Noticing and surviving a lost server: the keepalives and timeouts every session asks
for, which pooled connections a restart may have cut, how long a checkout waits while the
server is away, and how often the pool tries to reconnect.

A restart or failover cuts every connection. psycopg_pool discards a broken connection
when it is handed back, but an idle one looks fine until it is used, so after an outage
each would fail one call; `Freshness` has the pool check (one empty query) only the
connections made before the server was last found unreachable. While the server is away,
checkouts wait briefly (`OUTAGE_WAIT`) and the pool keeps reconnecting every few seconds
(`RECONNECT_WITHIN`), so a worker notices the server's return within seconds, and its
calls (its shutdown's included) are not held for the pool timeout each.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any, Final

import psycopg
from psycopg_pool import ConnectionPool

SERVER_TIMEOUTS: Final = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
"""What each session asks the server for, unless the URL's `options` say otherwise: end
a session whose host has gone silent (a network partition, a powered-off machine) within
about ten seconds. A cut-off host can hold the chain lock mid-append; with the kernel's
defaults the server would keep its session, and the lock, for two hours, and every other
host would wait. A pipelined transaction's backend counts as active, so
`idle_in_transaction_session_timeout` would not end it either."""
CLIENT_TIMEOUTS: Final = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
"""The same on the client's side (libpq parameters, unless the URL sets them): a worker
notices a vanished server in seconds rather than hours, and reconnects."""


def connect_timeout() -> int:
    """Seconds to wait for the server at open (libpq's PGCONNECT_TIMEOUT, else 5)."""
    text = os.environ.get("PGCONNECT_TIMEOUT", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else 5


RECONNECT_WITHIN: Final = 5.0
"""Seconds the pool keeps retrying one lost connection (after 1, 2 and 4 s) before it
gives up; the next checkout starts a new attempt. psycopg_pool's default, 5 minutes of
doubling delays, would leave a worker waiting for up to twice as long as its outage."""

OUTAGE_WAIT: Final = 0.5
"""Seconds a checkout waits for a connection while the server is known to be away."""

_POOL_LOG = logging.getLogger("psycopg.pool")
if _POOL_LOG.level == logging.NOTSET:
    # The pool warns of every failed reconnection and every connection a restart cut: one
    # outage would print hundreds of lines. A worker reports it once (engine/outage.py).
    _POOL_LOG.setLevel(logging.ERROR)


def _not_a_second_report(record: logging.LogRecord) -> bool:
    # A pipeline or transaction cut by a lost server warns that ending or rolling it back
    # failed too, beside the error that is raised (and reported once per outage): the
    # same loss, said again.
    return not str(record.msg).startswith("error ignored ")


logging.getLogger("psycopg").addFilter(_not_a_second_report)


class Freshness:
    """Which pooled connections may have been cut: those made (or last checked) before
    the last time this process found the server unreachable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lost_at = float("-inf")
        self._made_at = float("-inf")
        self._known_good: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    def lost(self) -> None:
        """The server was just found unreachable."""
        with self._lock:
            self._lost_at = time.monotonic()

    def made(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's `configure`: a new connection is good as of now."""
        with self._lock:
            self._known_good[conn] = self._made_at = time.monotonic()

    @property
    def away(self) -> bool:
        """Whether the server was lost and no connection has been made or checked since."""
        return self._lost_at > self._made_at

    def check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's `check` on checkout: free unless the server was lost since the
        connection was last known good; then one empty query, whose failure makes the
        pool discard the connection and hand out another."""
        with self._lock:
            fresh = self._known_good.get(conn, float("-inf")) > self._lost_at
        if fresh:
            return
        ConnectionPool.check_connection(conn)
        self.made(conn)
