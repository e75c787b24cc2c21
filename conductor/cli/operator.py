"""`conductor cancel` and `retry`: an operator's actions on jobs, by id or by filter.

Both take ids, filters, or both, and act on each job in turn, as `kill` and `docker rm`
do: the jobs that can be acted on are, each refused one gets an `error:` line on stderr,
and the exit code is 1 if any was refused. Filters choose the jobs the action can move
(`retry --status failed --task T --since 1h`); with ids they are a guard on those ids.
Neither ids nor a filter, an unknown status, one the action cannot move, a bad time or
ids that are not positive integers are usage errors (exit 2) before anything is done.

Each command is one batch: every event it appends carries the batch id, the operator
(`--by`, default the OS user) and the reason, and the batch id is printed at the end
(`conductor batch ID` reads it back).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any, Final, TypeVar

import click

from conductor.cli import progress
from conductor.cli.options import (
    Whole,
    bindable_all,
    db_option,
    echo,
    json_option,
    open_app,
    utf8,
    utf8_all,
)
from conductor.cli.render import table
from conductor.domain.bulk import Selection
from conductor.domain.clock import stamp
from conductor.domain.config import parse_time
from conductor.domain.errors import InvalidInput
from conductor.domain.reports import ActionReport

F = TypeVar("F", bound=Callable[..., Any])

PAST: Final = {"cancel": "cancelled", "retry": "requeued"}
"""What each command prints for a job it moved (the event it appended)."""


def operator_name() -> str:
    """Who is acting when `--by` is not given: the OS user, as `getpass` finds it (or the
    numeric uid where the account has no name, as in some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _action_options(function: F) -> F:
    options = [
        click.argument(
            "job_ids",
            nargs=-1,
            type=Whole(1, None),
            callback=bindable_all,
            metavar="[ID]...",
        ),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            metavar="STATUS",
            callback=utf8_all,
            help="Only jobs in this status (repeatable); without it, every status the "
            "action can move.",
        ),
        click.option(
            "--task",
            "tasks",
            multiple=True,
            callback=utf8_all,
            help="Only jobs of this task (repeatable).",
        ),
        click.option(
            "--queue",
            "queues",
            multiple=True,
            callback=utf8_all,
            help="Only jobs in this queue (repeatable).",
        ),
        click.option(
            "--since",
            metavar="TIME",
            help="Only jobs that last changed (status, or a running job's heartbeat) at or "
            "after TIME: ISO-8601, or an age like 1h, 30m.",
        ),
        click.option("--until", metavar="TIME", help="Only jobs that last changed before TIME."),
        click.option(
            "--reason",
            callback=utf8,
            help="Why, recorded in every job's event (default: the event's name).",
        ),
        click.option(
            "--by",
            callback=utf8,
            help="Who is acting, recorded in every job's event (default: the OS user).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="List the jobs that would change (id, task, queue, status) and change nothing.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _checked(
    action: str,
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    tasks: tuple[str, ...],
    queues: tuple[str, ...],
    since: str | None,
    until: str | None,
    by: str | None,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Check the input before anything is opened: a usage error (exit 2) for each way it
    can be wrong. Returns the parsed `--since` and `--until`."""
    try:
        return _parsed(action, job_ids, statuses, tasks, queues, since, until, by)
    except InvalidInput as e:
        raise click.UsageError(str(e)) from None


def _parsed(
    action: str,
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    tasks: tuple[str, ...],
    queues: tuple[str, ...],
    since: str | None,
    until: str | None,
    by: str | None,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    now = dt.datetime.now(dt.UTC)
    lower = None if since is None else parse_time(since, now, "--since")
    upper = None if until is None else parse_time(until, now, "--until")
    chosen = Selection(
        statuses=statuses,
        tasks=tasks,
        queues=queues,
        since=None if lower is None else stamp(lower),
        until=None if upper is None else stamp(upper),
    )
    if chosen.empty and not job_ids:
        raise InvalidInput(
            f"nothing chosen to {action}: expected job ids or at least one filter "
            "(--status, --task, --queue, --since, --until)"
        )
    if not chosen.empty:
        chosen.for_action(action)
    if by is not None and not by.strip():
        raise InvalidInput("invalid --by '': expected who is acting, e.g. alice")
    return lower, upper


def _run(
    action: str,
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    tasks: tuple[str, ...],
    queues: tuple[str, ...],
    since: str | None,
    until: str | None,
    reason: str | None,
    by: str | None,
    dry_run: bool,
    as_json: bool,
    db: str | None,
) -> None:
    lower, upper = _checked(action, job_ids, statuses, tasks, queues, since, until, by)
    verb = "cancelling" if action == "cancel" else "retrying"
    with open_app(db, create=False) as app, contextlib.ExitStack() as drawn:
        shown: list[Any] = []

        def advance(done: int, total: int) -> None:
            # Drawn once the snapshot's size is known, and only if it is big enough.
            if not shown:
                tracker = drawn.enter_context(
                    progress.tracked(quiet=as_json, size=total, threshold=progress.MIN_JOBS)
                )
                tracker.stage(
                    f"{'checking' if dry_run else verb} {total:,} jobs"
                    + (" (dry run)" if dry_run else ""),
                    total,
                )
                shown[:] = [tracker, 0]
            tracker, before = shown
            tracker.advance(done - before)
            shown[1] = done

        act = app.cancel_where if action == "cancel" else app.retry_where
        report = act(
            by=operator_name() if by is None else by,
            ids=job_ids,
            statuses=statuses,
            tasks=tasks,
            queues=queues,
            since=lower,
            until=upper,
            reason=PAST[action] if reason is None else reason,
            dry_run=dry_run,
            progress=advance,
        )
    _report(report, PAST[action], as_json)


def _report(report: ActionReport, past: str, as_json: bool) -> None:
    if as_json:
        echo(
            json.dumps(
                {
                    "batch": report.batch,
                    "by": report.by,
                    "reason": report.reason,
                    "dry_run": report.dry_run,
                    past: list(report.done),
                    "jobs": [
                        {"id": t.id, "task": t.task, "queue": t.queue, "status": t.status}
                        for t in report.targets.values()
                    ],
                    "refused": [
                        {"id": job_id, "error": str(error)}
                        for job_id, error in report.refused.items()
                    ],
                },
                ensure_ascii=False,
            )
        )
    elif report.dry_run:
        rows = [(t.id, t.task, t.queue, t.status) for t in report.targets.values()]
        if rows:
            echo(table(("ID", "Task", "Queue", "Status"), rows))
        echo(
            f"dry run: {len(report.done)} job{'s' * (len(report.done) != 1)} would be {past}, "
            f"{len(report.refused)} refused; nothing changed"
        )
    elif report.done:
        for job_id in report.done:
            echo(f"job {job_id} {past}")
        echo(
            f"batch {report.batch}: {len(report.done)} {past}, {len(report.refused)} refused, "
            f"by {report.by}: {report.reason}"
        )
    elif not report.refused:
        echo("no job matched the filters; nothing changed")
    # A batch that moved nothing wrote no event to find it by: no batch line for it.
    for error in report.refused.values():
        sys.stderr.write(f"error: {error}\n")
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command()
@_action_options
@json_option
@db_option
def cancel(
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    tasks: tuple[str, ...],
    queues: tuple[str, ...],
    since: str | None,
    until: str | None,
    reason: str | None,
    by: str | None,
    dry_run: bool,
    as_json: bool,
    db: str | None,
) -> None:
    """Cancel pending or in-progress jobs, by id or by filter.

    Each job is cancelled on its own: one that cannot be (unknown, already finished, or
    changed since the filters chose it) gets an error line on stderr, the others are still
    cancelled, and the exit code is 1. Filters choose among pending, claimed and
    in-progress jobs; with ids, they only guard them. At least one id or filter is needed.
    """
    _run(
        "cancel", job_ids, statuses, tasks, queues, since, until, reason, by, dry_run,
        as_json, db,
    )  # fmt: skip


@click.command()
@_action_options
@json_option
@db_option
def retry(
    job_ids: tuple[int, ...],
    statuses: tuple[str, ...],
    tasks: tuple[str, ...],
    queues: tuple[str, ...],
    since: str | None,
    until: str | None,
    reason: str | None,
    by: str | None,
    dry_run: bool,
    as_json: bool,
    db: str | None,
) -> None:
    """Send failed or cancelled jobs back to pending with a fresh retry budget.

    Each job is retried on its own: one that cannot be (unknown, pending, running,
    completed, or changed since the filters chose it) gets an error line on stderr, the
    others are still retried, and the exit code is 1. Filters choose among failed and
    cancelled jobs; with ids, they only guard them. At least one id or filter is needed.
    """
    _run(
        "retry", job_ids, statuses, tasks, queues, since, until, reason, by, dry_run,
        as_json, db,
    )  # fmt: skip
