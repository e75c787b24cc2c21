"""`conductor replay` and `audit verify`: rebuild the projections, check the chain."""

from __future__ import annotations

import json

import click

from conductor.cli import progress
from conductor.cli.options import (
    db_option,
    echo,
    json_option,
    open_app,
)


@click.command()
@click.option(
    "--verify",
    is_flag=True,
    help="Rebuild into scratch tables, print differences from the live ones, change nothing.",
)
@db_option
def replay(verify: bool, db: str | None) -> None:
    """Rebuild every projection from the event log (seq 1 onwards).

    On a terminal, a log of 50,000 events or more shows a spinner and the time taken.
    """
    with open_app(db, create=False) as app:
        last = app.ledger.last_seq()
        with progress.tracked(quiet=False, size=last, threshold=progress.MIN_EVENTS) as tracker:
            if not verify:
                tracker.stage(f"rebuilding projections from {last:,} events")
                count = app.replay()
            else:
                tracker.stage(f"rebuilding {last:,} events into scratch tables to compare")
                differences = app.verify_projections()
        if not verify:
            echo(f"rebuilt projections from {count} events")
            return
    if not differences:
        echo(f"projections match the log ({last} events)")
        return
    for diff in differences:
        if diff.live is None or diff.rebuilt is None:
            side = "missing from live tables" if diff.live is None else "not in the log"
            echo(f"{diff.table} {diff.key}: {side}")
            continue
        changed = [
            f"{key}: live={diff.live[key]!r} log={diff.rebuilt.get(key)!r}"
            for key in diff.live
            if diff.live[key] != diff.rebuilt.get(key)
        ]
        echo(f"{diff.table} {diff.key}: " + "; ".join(changed))
    raise click.exceptions.Exit(1)


@click.group()
def audit() -> None:
    """Check the integrity of the event log."""


@audit.command("verify")
@json_option
@db_option
def audit_verify(as_json: bool, db: str | None) -> None:
    """Walk the hash chain; name the first event altered, removed or reordered.

    On a terminal (and without --json), a log of 50,000 events or more shows a spinner
    and the time taken.
    """
    with open_app(db, create=False) as app:
        last = app.ledger.last_seq()
        with progress.tracked(quiet=as_json, size=last, threshold=progress.MIN_EVENTS) as tracker:
            tracker.stage(f"verifying the hash chain of {last:,} events")
            report = app.audit()
    if as_json:
        echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "events": report.events,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "first_bad_seq": report.first_bad_seq,
                    "problem": report.problem,
                }
            )
        )
    elif report.ok:
        echo(
            f"chain verified: {report.events} events; head seq {report.head_seq} "
            f"hash {report.head_hash}"
        )
    else:
        echo(f"chain broken at seq {report.first_bad_seq}: {report.problem}")
    if not report.ok:
        raise click.exceptions.Exit(1)
