"""`conductor copy`: move a whole ledger, events and chain, to another database."""

from __future__ import annotations

import datetime as dt

import click

from conductor.cli import progress
from conductor.cli.options import echo, utf8
from conductor.domain.config import Settings
from conductor.ledger import transfer
from conductor.ledger.open import open_ledger


@click.command()
@click.option(
    "--from",
    "source",
    required=True,
    metavar="DB",
    callback=utf8,
    help="The ledger to copy: a SQLite file or a postgresql:// URL.",
)
@click.option(
    "--to",
    "destination",
    required=True,
    metavar="DB",
    callback=utf8,
    help="Where to: an empty PostgreSQL schema (created if missing) or a new SQLite file.",
)
def copy(source: str, destination: str) -> None:
    """Copy a ledger's events, with their hashes, to another database and prove the copy.

    The source's chain is verified first (a broken one is refused, nothing written);
    the events go over in seq order exactly as stored, the read models are rebuilt from
    them, and the copy must verify to the same head hash, match a fold of its log and
    hold the same counts as the source. Stop the source's workers and producers first.
    On a terminal, a log of 50,000 events or more shows progress.
    """
    if Settings.from_env(source).db == Settings.from_env(destination).db:
        raise click.BadParameter(
            "is the same database as --from; expected another", param_hint="--to"
        )
    src = open_ledger(Settings.from_env(source), create=False)
    try:
        last = src.last_seq()
        with progress.tracked(quiet=False, size=last, threshold=progress.MIN_EVENTS) as tracker:
            tracker.stage(f"verifying the chain of {last:,} events at the source")
            head = transfer.verified_source(src, dt.datetime.now(dt.UTC))
            dst = open_ledger(Settings.from_env(destination), create=True)
            try:
                transfer.check_empty(dst)
                tracker.stage(f"copying {head.head_seq:,} events", total=head.head_seq)
                transfer.copy_events(src, dst, head, advance=tracker.advance)
                tracker.stage("rebuilding the projections and verifying the copy")
                report = transfer.prove(src, dst, head)
                where = dst.location
            finally:
                dst.close()
    finally:
        src.close()
    echo(
        f"copied {report.events} events ({report.jobs} jobs) to {where}; chain verified: "
        f"head seq {report.head.head_seq} hash {report.head.head_hash}; projections match"
    )
