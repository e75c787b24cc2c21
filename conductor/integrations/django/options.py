"""`TASKS[alias]["OPTIONS"]` of a conductor backend, checked once when Django creates the
backend: an unknown option, a missing ledger, or a value of the wrong kind is Django's
`ImproperlyConfigured`, one line naming the setting and what it expects.

Where the ledger is:
- `DB`: a conductor ledger of its own (a SQLite file or a `postgresql://` URL), as
  `--db` takes it. A task enqueued inside `transaction.atomic()` is enqueued when the
  transaction commits (`transaction.on_commit`) and never if it rolls back.
- `DATABASE`: the alias of a Django PostgreSQL database (psycopg 3) that also holds the
  ledger, in schema `SCHEMA` (default `conductor`). A task enqueued inside
  `transaction.atomic()` is written in that very transaction (conductor's transactional
  enqueue): it commits or rolls back with the application's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, urlencode

import attrs
from django.core.exceptions import ImproperlyConfigured

KNOWN: Final = ("DB", "DATABASE", "SCHEMA", "TASK_MODULES", "MAX_RETRIES")
DEFAULT_SCHEMA: Final = "conductor"
BACKEND_PATH: Final = "conductor.integrations.django.ConductorBackend"


@attrs.frozen(kw_only=True)
class BackendOptions:
    """One conductor backend's checked options."""

    alias: str
    db: str | None
    """The ledger's own location (`DB`), or None when it shares `database`."""
    database: str | None
    """The Django database alias that holds the ledger (`DATABASE`)."""
    schema: str
    task_modules: tuple[str, ...]
    max_retries: int


def setting(alias: str, option: str | None = None) -> str:
    """How the setting is written in settings.py, for error messages."""
    where = f"TASKS[{alias!r}]"
    return where if option is None else f"{where}['OPTIONS'][{option!r}]"


def parse(alias: str, options: Mapping[str, Any]) -> BackendOptions:
    """The options of backend `alias`, or `ImproperlyConfigured` naming the bad one."""
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(
            f"{setting(alias)}['OPTIONS'] is a {type(options).__name__}: expected a dict"
        )
    for name in options:
        if name not in KNOWN:
            raise ImproperlyConfigured(
                f"{setting(alias, str(name))} is not an option of {BACKEND_PATH}: "
                f"expected one of {', '.join(KNOWN)}"
            )
    db, database = options.get("DB"), options.get("DATABASE")
    if (db is None) == (database is None):
        raise ImproperlyConfigured(
            f"{setting(alias, 'DB')} and {setting(alias, 'DATABASE')}: "
            f"{'both are' if db is not None else 'neither is'} set; expected exactly one: "
            "DB, a ledger of its own (a SQLite file or a postgresql:// URL), or DATABASE, "
            "the alias of a Django PostgreSQL database that holds it"
        )
    for name, value in (("DB", db), ("DATABASE", database), ("SCHEMA", options.get("SCHEMA"))):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ImproperlyConfigured(
                f"{setting(alias, name)} is {value!r}: expected a non-empty string"
            )
    if "SCHEMA" in options and database is None:
        raise ImproperlyConfigured(
            f"{setting(alias, 'SCHEMA')} is set without DATABASE: expected it only with "
            f"{setting(alias, 'DATABASE')} (a DB URL names its schema with ?schema=)"
        )
    retries = options.get("MAX_RETRIES", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10_000:
        raise ImproperlyConfigured(
            f"{setting(alias, 'MAX_RETRIES')} is {retries!r}: expected a whole number "
            "from 0 to 10000"
        )
    return BackendOptions(
        alias=alias,
        db=db,
        database=database,
        schema=options.get("SCHEMA", DEFAULT_SCHEMA),
        task_modules=_modules(alias, options.get("TASK_MODULES", ())),
        max_retries=retries,
    )


def _modules(alias: str, given: object) -> tuple[str, ...]:
    if isinstance(given, str) or not isinstance(given, Sequence):
        raise ImproperlyConfigured(
            f"{setting(alias, 'TASK_MODULES')} is {given!r}: expected a list of module names"
        )
    for name in given:
        if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
            raise ImproperlyConfigured(
                f"{setting(alias, 'TASK_MODULES')} holds {name!r}: expected dotted "
                "module names such as 'shop.jobs'"
            )
    return tuple(given)


def database_url(options: BackendOptions) -> str:
    """The ledger URL of a backend sharing Django's database `options.database`: that
    database's server, name and credentials, and the backend's schema."""
    from django.conf import settings

    alias = options.alias
    databases = getattr(settings, "DATABASES", {})
    if options.database not in databases:
        known = ", ".join(repr(name) for name in databases) or "none"
        raise ImproperlyConfigured(
            f"{setting(alias, 'DATABASE')} is {options.database!r}, which is not in "
            f"DATABASES: expected one of {known}"
        )
    config = databases[options.database]
    engine = str(config.get("ENGINE", ""))
    if not engine.endswith("postgresql"):
        raise ImproperlyConfigured(
            f"{setting(alias, 'DATABASE')} is {options.database!r}, a {engine or 'no'} "
            "database: expected a PostgreSQL one (django.db.backends.postgresql, with "
            f"psycopg 3); for SQLite, give {setting(alias, 'DB')} a ledger file instead"
        )
    user = quote(str(config.get("USER") or ""), safe="")
    password = quote(str(config.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = str(config.get("HOST") or "")
    port = f":{config['PORT']}" if config.get("PORT") else ""
    name = quote(str(config.get("NAME") or ""), safe="")
    query = urlencode({"schema": options.schema})
    return f"postgresql://{credentials}{host}{port}/{name}?{query}"
