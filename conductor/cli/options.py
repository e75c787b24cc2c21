"""What several commands share: the --db and --json options, argument types that refuse
what SQLite cannot bind, and the one way a command prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from conductor.client import Conductor
from conductor.domain.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LIMIT = 100
SQLITE_MAX_INTEGER = 2**63 - 1
"""The largest id or limit SQLite can bind; larger values are usage errors, not crashes."""


def db_option(function: F) -> F:
    return click.option(
        "--db",
        "db",
        metavar="DB",
        envvar="CONDUCTOR_DB",
        callback=_db,
        help=(
            "Database: a SQLite file (default ./conductor.db), a postgresql:// URL, or "
            "django:SETTINGS[:BACKEND] (a Django project's ledger); env CONDUCTOR_DB."
        ),
    )(function)


def _db(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--db` as given, or the ledger a `django:` value names (docs/django.md)."""
    checked = utf8(ctx, param, value)
    if checked is None or not checked.startswith("django:"):
        return checked
    from conductor.integrations.django.ledger import resolve

    return resolve(checked)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def open_app(db: str | None, *, create: bool) -> Conductor:
    return Conductor(settings=Settings.from_env(db), create=create)


def echo(text: str) -> None:
    click.echo(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def note(text: str) -> None:
    click.echo(text, err=True)


def limit_or_none(value: int) -> int | None:
    return None if value == 0 else value


class Whole(click.IntRange):
    """An integer option or argument written in ASCII digits, as ids and counts are.

    `int()` also takes full-width and other Unicode digits, spaces and underscores
    ("\\uff11", " 1 ", "1_0"); a user typing those meant something else, so they are refused."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not _ASCII_INTEGER.fullmatch(value):
            self.fail(f"{value!r} is not an integer in ASCII digits", param, ctx)
        return super().convert(value, param, ctx)


_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")


class PrefetchDepth(Whole):
    """`auto` (None: adapted to the jobs) or a fixed number of jobs."""

    name = "auto|integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == "auto":
            return None
        if isinstance(value, str) and not _ASCII_INTEGER.fullmatch(value):
            self.fail(f"{value!r} is neither auto nor an integer in ASCII digits", param, ctx)
        return super().convert(value, param, ctx)


PREFETCH = PrefetchDepth(0, 10_000)


def bindable(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Refuse integers too large for SQLite as usage errors (they would crash the query)."""
    if value is not None and value > SQLITE_MAX_INTEGER:
        raise click.BadParameter(f"{value} is too large; expected at most {SQLITE_MAX_INTEGER}")
    return value


def bindable_all(
    ctx: click.Context, param: click.Parameter, values: tuple[int, ...]
) -> tuple[int, ...]:
    """`bindable` for an argument taking several integers."""
    for value in values:
        bindable(ctx, param, value)
    return values


def utf8(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse text arguments that are not UTF-8 (Python passes such bytes on as surrogate
    escapes, which SQLite cannot bind) as usage errors instead of crashing on them."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise click.BadParameter(f"{value!r} is not valid UTF-8; expected UTF-8 text") from None
    return value


def utf8_all(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """`utf8` for an option given several times."""
    for value in values:
        utf8(ctx, param, value)
    return values


def truncation_note(shown: int, limit: int | None, what: str) -> None:
    if limit is not None and shown == limit:
        note(f"(showing the newest {limit} {what}; --limit 0 shows all)")
