"""`conductor cancel` and `retry`: an operator's actions on jobs.

Both take several ids and act on each in turn, as `kill` and `docker rm` do: the jobs that
can be acted on are, each refused one gets an `error:` line on stderr, and the exit code
is 1 if any was refused. Ids that are not positive integers are a usage error (exit 2)
before anything is done.
"""

from __future__ import annotations

import json
import sys

import click

from conductor.cli.options import (
    Whole,
    bindable_all,
    db_option,
    echo,
    json_option,
    open_app,
)
from conductor.domain.reports import ActionReport


def _report(report: ActionReport, past: str, as_json: bool) -> None:
    if as_json:
        echo(
            json.dumps(
                {
                    past: list(report.done),
                    "refused": [
                        {"id": job_id, "error": str(error)}
                        for job_id, error in report.refused.items()
                    ],
                }
            )
        )
    else:
        for job_id in report.done:
            echo(f"job {job_id} {past}")
    for error in report.refused.values():
        sys.stderr.write(f"error: {error}\n")
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument(
    "job_ids", nargs=-1, required=True, type=Whole(1, None), callback=bindable_all, metavar="ID..."
)
@json_option
@db_option
def cancel(job_ids: tuple[int, ...], as_json: bool, db: str | None) -> None:
    """Cancel pending or in-progress jobs.

    Each job is cancelled on its own: one that cannot be (unknown, or already finished)
    gets an error line on stderr, the others are still cancelled, and the exit code is 1.
    """
    with open_app(db, create=False) as app:
        report = app.cancel_many(job_ids)
    _report(report, "cancelled", as_json)


@click.command()
@click.argument(
    "job_ids", nargs=-1, required=True, type=Whole(1, None), callback=bindable_all, metavar="ID..."
)
@json_option
@db_option
def retry(job_ids: tuple[int, ...], as_json: bool, db: str | None) -> None:
    """Send failed or cancelled jobs back to pending with a fresh retry budget.

    Each job is retried on its own: one that cannot be (unknown, pending, running or
    completed) gets an error line on stderr, the others are still retried, and the exit
    code is 1.
    """
    with open_app(db, create=False) as app:
        report = app.retry_many(job_ids)
    _report(report, "requeued", as_json)
