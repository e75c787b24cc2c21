"""`conductor queues` and `conductor queue pause|resume|limit`: queues as operators see
and control them.

Every change is an event on the operations stream, recorded with who made it (`--by`,
the OS user by default) and why (`--reason`). Asking for what already holds (pausing a
paused queue) changes nothing, says so and exits 0, so scripts can repeat themselves.
Bad input is a usage error (exit 2) before anything is appended.
"""

from __future__ import annotations

import json
from typing import Any

import click

from conductor.cli.options import db_option, echo, json_option, open_app, utf8
from conductor.cli.render import elapsed, table
from conductor.client.queues import KEEP, Keep, QueueSummary
from conductor.domain import queue_controls as rules
from conductor.domain.config import check_queue
from conductor.domain.errors import InvalidInput


class _Concurrency(click.ParamType[Any]):
    name = "N|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value is KEEP or isinstance(value, int):
            return value
        try:
            return rules.parse_concurrency_setting(str(value))
        except InvalidInput as e:
            self.fail(str(e), param, ctx)


class _Rate(click.ParamType[Any]):
    name = "N/UNIT|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value is KEEP or isinstance(value, tuple):
            return value
        try:
            return rules.parse_rate_setting(str(value))
        except InvalidInput as e:
            self.fail(str(e), param, ctx)


def _queue_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    utf8(ctx, param, value)
    try:
        return check_queue(value)
    except InvalidInput as e:
        raise click.BadParameter(str(e)) from None


def _operator(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    utf8(ctx, param, value)
    if value is not None and not value.strip():
        raise click.BadParameter("expected a name (the OS user when left out)")
    return value


def _who(function: Any) -> Any:
    function = click.option(
        "--reason", default="", callback=utf8, help="Why, recorded with the event."
    )(function)
    return click.option(
        "--by",
        metavar="NAME",
        callback=_operator,
        help="Who to record as making the change (default: the OS user).",
    )(function)


_NAME = click.argument("name", callback=_queue_name)


@click.command()
@json_option
@db_option
def queues(as_json: bool, db: str | None) -> None:
    """Every queue with jobs or controls: jobs by status, running (claimed or in
    progress), how long the oldest due job has waited, whether it is paused, its limits.
    """
    with open_app(db, create=False) as app:
        found = app.queues()
    if as_json:
        echo(json.dumps([summary.as_json() for summary in found], indent=2))
        return
    echo(
        table(
            (
                "Queue",
                "Pending",
                "Running",
                "Completed",
                "Failed",
                "Cancelled",
                "Oldest due",
                "Paused",
                "Concurrency",
                "Rate",
            ),
            [_row(summary) for summary in found],
        )
    )


def _row(summary: QueueSummary) -> tuple[object, ...]:
    counts = summary.counts
    rate = "-"
    if summary.rate is not None and summary.per is not None:
        rate = f"{rules.describe_rate(summary.rate, summary.per)} ({summary.spent} used)"
    return (
        summary.name,
        counts.get("pending", 0),
        summary.running,
        counts.get("completed", 0),
        counts.get("failed", 0),
        counts.get("cancelled", 0),
        elapsed(summary.oldest_due_age) or "-",
        "yes" if summary.paused else "no",
        "-" if summary.concurrency is None else summary.concurrency,
        rate,
    )


@click.group()
def queue() -> None:
    """Pause, resume and limit one queue, for every worker on every host."""


@queue.command()
@_NAME
@_who
@db_option
def pause(name: str, by: str | None, reason: str, db: str | None) -> None:
    """Stop workers claiming from queue NAME (within one poll); running jobs finish.

    Jobs are still accepted into it and wait. A queue that has no jobs yet can be paused.
    """
    with open_app(db, create=False) as app:
        changed = app.pause_queue(name, by=by, reason=reason)
    echo(f"queue {name} paused" if changed else f"queue {name} was already paused; nothing changed")


@queue.command()
@_NAME
@_who
@db_option
def resume(name: str, by: str | None, reason: str, db: str | None) -> None:
    """Let workers claim from queue NAME again."""
    with open_app(db, create=False) as app:
        changed = app.resume_queue(name, by=by, reason=reason)
    echo(f"queue {name} resumed" if changed else f"queue {name} was not paused; nothing changed")


@queue.command()
@_NAME
@click.option(
    "--concurrency",
    type=_Concurrency(),
    default=KEEP,
    show_default=False,
    help="At most N of the queue's jobs claimed or running at once, across every worker; "
    "none clears the limit.",
)
@click.option(
    "--rate",
    type=_Rate(),
    default=KEEP,
    show_default=False,
    help="At most N claims per second, minute or hour (100/m, 5/s, 3600/h), in fixed "
    "windows of UTC; none clears the limit.",
)
@_who
@db_option
def limit(
    name: str,
    concurrency: int | Keep | None,
    rate: tuple[int, str] | Keep | None,
    by: str | None,
    reason: str,
    db: str | None,
) -> None:
    """Set or clear queue NAME's concurrency and rate limits; one left out stays as it is.

    Takes effect at the next claim of every worker, running or not; jobs already running
    finish even when a lowered limit is below their number.
    """
    if concurrency is KEEP and rate is KEEP:
        raise click.UsageError("expected --concurrency N|none or --rate N/UNIT|none (or both)")
    with open_app(db, create=False) as app:
        changed = app.limit_queue(name, concurrency=concurrency, rate=rate, by=by, reason=reason)
        state = next(s for s in app.queues() if s.name == name)
    held = f"concurrency {'none' if state.concurrency is None else state.concurrency}, rate " + (
        "none" if state.rate is None or state.per is None else f"{state.rate}/{state.per}"
    )
    echo(f"queue {name}: {held}" + ("" if changed else " (unchanged)"))
