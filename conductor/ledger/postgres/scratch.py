"""Throw-away schemas: a fresh, uniquely named schema of a PostgreSQL database for one
measurement, and dropping it afterwards.

`conductor bench` on a server measures each scenario on a schema no one else uses, as it
measures each on a new file on SQLite, and leaves nothing behind: the schemas are dropped
with everything in them.
"""

from __future__ import annotations

import secrets
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from conductor.ledger.postgres.connection import parse
from conductor.ledger.postgres.errors import translating

CONNECT_TIMEOUT: Final = 5


def fresh(location: str, prefix: str) -> str:
    """`location` (a postgresql:// URL) pointed at a new schema `<prefix>_<random>`,
    whatever schema it named; the first ledger opened there creates it."""
    parts = urlsplit(location)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "schema"]
    query.append(("schema", f"{prefix}_{secrets.token_hex(6)}"))
    fresh_location = urlunsplit(parts._replace(query=urlencode(query)))
    parse(fresh_location)  # a prefix no schema name allows is refused here, not later
    return fresh_location


def drop(location: str) -> None:
    """Drop the schema of `location` and everything in it (nothing if it never existed)."""
    target = parse(location)
    with translating(target.shown), _connect(target.conninfo) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(target.schema))
        )


def describe(location: str) -> dict[str, str]:
    """The server's version and commit durability, which the figures depend on."""
    target = parse(location)
    with translating(target.shown), _connect(target.conninfo) as conn:
        return {name: _show(conn, name) for name in ("server_version", "synchronous_commit")}


def _show(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    return "unknown" if row is None else str(row[0])


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
