"""`conductor cancel` and `retry`: an operator's actions on jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from conductor.cli.options import (
    Whole,
    bindable,
    db_option,
    echo,
    open_app,
)

if TYPE_CHECKING:
    pass


@click.command()
@click.argument("job_id", type=Whole(1, None), callback=bindable, metavar="ID")
@db_option
def cancel(job_id: int, db: str | None) -> None:
    """Cancel a pending or in-progress job."""
    with open_app(db, create=False) as app:
        app.cancel(job_id)
    echo(f"job {job_id} cancelled")


@click.command()
@click.argument("job_id", type=Whole(1, None), callback=bindable, metavar="ID")
@db_option
def retry(job_id: int, db: str | None) -> None:
    """Send a failed or cancelled job back to pending with a fresh retry budget."""
    with open_app(db, create=False) as app:
        app.retry(job_id)
    echo(f"job {job_id} requeued")
