"""`conductor migrate`: show the schema's migrations, apply them, grant a role its
privileges (PostgreSQL)."""

from __future__ import annotations

import json

import click

from conductor.cli.options import db_option, echo, json_option, utf8
from conductor.domain.config import Settings
from conductor.ledger import migrations


@click.command()
@click.option("--apply", "apply_", is_flag=True, help="Apply the pending migrations.")
@click.option(
    "--grant",
    "grant_to",
    metavar="ROLE",
    callback=utf8,
    help="Give an existing PostgreSQL role what workers and producers need, and no more "
    "(events: SELECT and INSERT only).",
)
@click.option(
    "--print-grants",
    "print_for",
    metavar="ROLE",
    callback=utf8,
    help="Print the SQL --grant would run, for a DBA to review and run.",
)
@json_option
@db_option
def migrate(
    apply_: bool, grant_to: str | None, print_for: str | None, as_json: bool, db: str | None
) -> None:
    """Show the database's schema version and the migrations this conductor would apply.

    Workers and `enqueue` migrate a database themselves when they open it (many starting
    at once migrate it once); this shows first, changing nothing, and --apply applies them
    as a deployment step. A schema newer than this conductor is refused.
    """
    settings = Settings.from_env(db)
    if print_for is not None:
        for statement in migrations.grant_statements(settings, print_for):
            echo(f"{statement};")
        return
    if grant_to is not None:
        migrations.check_role(settings, grant_to)  # a bad role changes nothing
    applied = migrations.apply(settings) if apply_ else []
    if grant_to is not None:
        migrations.grant(settings, grant_to)
    state = migrations.inspect(settings)
    if as_json:
        echo(
            json.dumps(
                {
                    "database": state.location,
                    "version": state.version,
                    "latest": state.latest,
                    "applied_now": applied,
                    "migrations": [
                        {
                            "number": m.number,
                            "description": m.description,
                            "applied": m.applied,
                            "applied_at": m.applied_at,
                        }
                        for m in state.migrations
                    ],
                }
            )
        )
        return
    echo(f"database: {state.location}")
    echo(f"schema version: {state.version} (this conductor: {state.latest})")
    for m in state.migrations:
        status = "pending" if not m.applied else f"applied {m.applied_at or ''}".rstrip()
        echo(f"  {m.number}  {status}  {m.description}")
    if applied:
        echo(f"applied {_migrations(len(applied))}: {', '.join(map(str, applied))}")
    if grant_to is not None:
        echo(f"granted role {grant_to} what workers and producers need")
    if state.pending:
        echo(f"{_migrations(len(state.pending))} pending: run `conductor migrate --apply`")
    elif not applied:
        echo("up to date")


def _migrations(n: int) -> str:
    return f"{n} migration" if n == 1 else f"{n} migrations"
