"""The schema's versions, for `conductor migrate`: which migrations a database has had,
which this conductor would apply, applying them, and PostgreSQL role privileges.

Every ledger migrates itself when it is opened (many workers starting at once migrate a
PostgreSQL schema once, under an advisory lock; SQLite under its write lock). This module
lets an operator look first - without changing anything - and apply them as a step of
a deployment, before any worker starts. The SQL stays in the backends.
"""

from __future__ import annotations

import re

import attrs

from conductor.domain.config import Settings
from conductor.domain.errors import InvalidInput
from conductor.ledger.open import is_postgres


@attrs.frozen(kw_only=True)
class Migration:
    number: int
    description: str
    applied: bool
    applied_at: str | None
    """When it was applied, where the database recorded it (PostgreSQL)."""


@attrs.frozen(kw_only=True)
class SchemaState:
    """One database's schema as this conductor sees it."""

    location: str
    version: int
    """The database's schema version (0: nothing there yet)."""
    latest: int
    """The newest version this conductor knows."""
    migrations: tuple[Migration, ...]

    @property
    def pending(self) -> tuple[Migration, ...]:
        return tuple(m for m in self.migrations if not m.applied)


def inspect(settings: Settings) -> SchemaState:
    """The schema of `settings.db` as it is; nothing is created or changed. Raises
    `SchemaTooNew` for a newer schema, `NotAConductorDatabase` for someone else's."""
    if is_postgres(settings.db):
        from conductor.ledger.postgres import schema as pg_schema
        from conductor.ledger.postgres.connection import PostgresConnection

        link = PostgresConnection(settings, create=True, prepare=False)
        version, applied = link.schema_state()
        return _state(link.location, version, pg_schema.DESCRIPTIONS, applied)
    from conductor.ledger.sqlite import schema as lite_schema
    from conductor.ledger.sqlite.connection import SqliteConnection

    lite = SqliteConnection(settings, create=False)
    try:
        with lite.translate():
            version = lite.inspect()
    finally:
        lite.close()
    return _state(settings.db, version, lite_schema.DESCRIPTIONS, {})


def apply(settings: Settings) -> list[int]:
    """Apply every pending migration (creating the database or schema if need be);
    returns the numbers applied, none when another process got there first."""
    before = None if is_postgres(settings.db) else _sqlite_version(settings)
    if is_postgres(settings.db):
        from conductor.ledger.postgres.connection import PostgresConnection

        return PostgresConnection(settings, create=True, prepare=False).apply_migrations()
    from conductor.ledger.sqlite import SqliteLedger
    from conductor.ledger.sqlite.schema import SCHEMA_VERSION

    SqliteLedger(settings, create=True).close()  # opening a SQLite ledger migrates it
    return list(range((before or 0) + 1, SCHEMA_VERSION + 1))


def _sqlite_version(settings: Settings) -> int | None:
    from conductor.domain.errors import DatabaseNotFound

    try:
        return inspect(settings).version
    except DatabaseNotFound:
        return None


def _state(
    location: str, version: int, descriptions: tuple[str, ...], applied: dict[int, str]
) -> SchemaState:
    return SchemaState(
        location=location,
        version=version,
        latest=len(descriptions),
        migrations=tuple(
            Migration(
                number=number,
                description=text,
                applied=number <= version,
                applied_at=applied.get(number),
            )
            for number, text in enumerate(descriptions, start=1)
        ),
    )


def grant_statements(settings: Settings, role: str) -> tuple[str, ...]:
    """The SQL that gives `role` what workers and producers need on this PostgreSQL
    ledger and nothing more (`postgres.schema.grants`)."""
    from conductor.ledger.postgres import schema as pg_schema
    from conductor.ledger.postgres.connection import parse

    if not is_postgres(settings.db):
        raise InvalidInput(
            f"roles are PostgreSQL's: {settings.db} is a SQLite file; expected a "
            "postgresql:// URL (SQLite's access is the file's permissions)"
        )
    if not re.match(pg_schema.ROLE_NAME, role):
        raise InvalidInput(
            f"invalid role {role!r}: expected 1-63 lowercase letters, digits or _ "
            "(not starting with a digit)"
        )
    return pg_schema.grants(parse(settings.db).schema, role)


def check_role(settings: Settings, role: str) -> None:
    """Refuse a role name that is malformed or that the server does not have, before
    anything is changed (`conductor migrate --apply --grant ROLE` applies nothing)."""
    from conductor.ledger.postgres.connection import PostgresConnection

    grant_statements(settings, role)
    link = PostgresConnection(settings, create=True, prepare=False)
    with link.connection() as conn:
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if found is None:
        raise InvalidInput(
            f"no role {role} at {link.location}; expected an existing role "
            f"(CREATE ROLE {role} LOGIN PASSWORD '...')"
        )


def grant(settings: Settings, role: str) -> tuple[str, ...]:
    """Run `grant_statements` in one transaction, on a schema at this conductor's
    version (the grants name its newest tables); returns them."""
    from conductor.domain.errors import LedgerError
    from conductor.ledger.postgres.connection import PostgresConnection
    from conductor.ledger.postgres.schema import SCHEMA_VERSION

    statements = grant_statements(settings, role)
    link = PostgresConnection(settings, create=True, prepare=False)
    version, _ = link.schema_state()
    if version < SCHEMA_VERSION:
        raise LedgerError(
            f"{link.location} is at schema version {version}, older than this conductor's "
            f"({SCHEMA_VERSION}); expected `conductor migrate --apply` before granting"
        )
    with link.connection() as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement)
    return statements
