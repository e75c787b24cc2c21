"""`conductor cron`: periodic jobs at run time - add, list, pause, resume, remove.

Each change is one event naming who made it (`--by`, the OS user by default). A bad
expression, zone, payload or option is a usage error (one line, exit 2) found before the
database is opened, so nothing is created or appended. Workers fire the slots.
"""

from __future__ import annotations

import os

import click

from conductor.cli.options import (
    Whole,
    db_option,
    echo,
    json_option,
    open_app,
    utf8,
)
from conductor.cli.render import table, to_json
from conductor.client.schedules import Schedule, make_definition
from conductor.domain import cron as cron_rules
from conductor.domain import schedules
from conductor.domain.clock import Timestamp, unstamp
from conductor.domain.config import MAX_RETRIES_CAP, PRIORITIES, Settings
from conductor.domain.errors import InvalidInput


def by_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--by",
        callback=utf8,
        metavar="NAME",
        help="Who is acting, recorded in the event [default: the OS user].",
    )(function)


def reason_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option("--reason", default="", callback=utf8, help="Why, recorded in the event.")(
        function
    )


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    utf8(ctx, param, value)
    try:
        return schedules.check_name(value)
    except InvalidInput as e:
        raise click.UsageError(str(e), ctx) from None


@click.group()
def cron() -> None:
    """Periodic jobs: schedules that enqueue a payload at every slot of a cron expression.

    Workers fire the slots: exactly one job per slot, however many run. Schedules can also
    be declared in code (`@task(cron=...)`, `periodic(...)`; docs/tasks.md).
    """


@cron.command()
@click.argument("name", callback=_name)
@click.option(
    "--schedule",
    "expression",
    required=True,
    callback=utf8,
    metavar="CRON",
    help="A 5-field cron expression ('0 3 * * *', '*/5 * * * MON-FRI') or @daily, @hourly...",
)
@click.option(
    "--payload", required=True, metavar="JSON", help='The jobs\' payload, naming its "task".'
)
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    callback=utf8,
    metavar="ZONE",
    help="IANA time zone of the expression's wall-clock times, e.g. Europe/Paris.",
)
@click.option("--queue", callback=utf8, help="Queue of the jobs [default: default].")
@click.option(
    "--priority",
    type=click.Choice(tuple(PRIORITIES), case_sensitive=False),
    help="high, medium or low [default: medium].",
)
@click.option(
    "--max-retries", type=Whole(0, MAX_RETRIES_CAP), help="Retries of each job [default: 3]."
)
@click.option(
    "--missed",
    type=click.Choice(schedules.MISSED_POLICIES),
    default=schedules.DEFAULT_MISSED,
    show_default=True,
    help="Slots missed while no worker ran: skip them (none), fire the latest once, or all.",
)
@click.option(
    "--catch-up-max",
    type=Whole(1, schedules.CATCH_UP_LIMIT),
    default=schedules.DEFAULT_CATCH_UP_MAX,
    show_default=True,
    help="With --missed all: fire at most this many missed slots (the most recent).",
)
@click.option("--replace", is_flag=True, help="Change the schedule of this name if it exists.")
@by_option
@json_option
@db_option
def add(
    name: str,
    expression: str,
    payload: str,
    tz: str,
    queue: str | None,
    priority: str | None,
    max_retries: int | None,
    missed: str,
    catch_up_max: int,
    replace: bool,
    by: str | None,
    as_json: bool,
    db: str | None,
) -> None:
    """Add a schedule NAME that enqueues --payload at every slot of --schedule.

    A wall-clock time skipped by a daylight-saving change fires at the end of the gap; one
    that happens twice fires once (docs/operations.md, "Cron and the clock").
    """
    settings = Settings.from_env(db)
    options = {
        "schedule": expression,
        "payload": os.fsencode(payload),
        "tz": tz,
        "queue": queue,
        "priority": priority,
        "max_retries": max_retries,
        "missed": missed,
        "catch_up_max": catch_up_max,
    }
    try:
        make_definition(settings, **options)  # type: ignore[arg-type]
    except InvalidInput as e:
        raise click.UsageError(str(e)) from None
    with open_app(db, create=True) as app:
        added = app.add_schedule(name, replace=replace, by=by, **options)  # type: ignore[arg-type]
    if as_json:
        echo(to_json(added.as_json()))
        return
    echo(
        f"schedule {added.name}: {added.expression} ({added.zone}); "
        f"next run {_local(added.next_runs[0], added.zone) if added.next_runs else 'none'}"
    )


@cron.command(name="list")
@json_option
@db_option
def list_(as_json: bool, db: str | None) -> None:
    """List the schedules with their next runs (in each schedule's time zone)."""
    with open_app(db, create=False) as app:
        found = app.schedules()
    if as_json:
        echo(to_json([schedule.as_json() for schedule in found]))
        return
    echo(
        table(
            ("Name", "Schedule", "Zone", "Task", "Queue", "State", "Next run", "Last slot", "By"),
            [_row(schedule) for schedule in found],
        )
    )


def _row(schedule: Schedule) -> tuple[object, ...]:
    return (
        schedule.name,
        schedule.expression,
        schedule.zone,
        schedule.task,
        schedule.queue,
        "paused" if schedule.paused else "active",
        _local(schedule.next_runs[0], schedule.zone) if schedule.next_runs else "",
        _local(schedule.last_slot, schedule.zone) if schedule.last_slot else "",
        schedule.by,
    )


def _local(value: Timestamp, zone: str) -> str:
    """A slot as the schedule's wall clock shows it: `2026-12-08 03:00+01:00`."""
    local = unstamp(value).astimezone(cron_rules.zone(zone))
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M") + f"{offset[:3]}:{offset[3:]}"


def _operation(action: str, past: str, summary: str) -> click.Command:
    @click.command(name=action, help=summary)
    @click.argument("name", callback=_name)
    @reason_option
    @by_option
    @db_option
    def command(name: str, reason: str, by: str | None, db: str | None) -> None:
        with open_app(db, create=False) as app:
            getattr(app, f"{action}_schedule")(name, by=by, reason=reason)
        echo(f"schedule {name} {past}")

    return command


cron.add_command(
    _operation("pause", "paused", "Pause the schedule NAME: its slots do not fire until resumed.")
)
cron.add_command(
    _operation(
        "resume",
        "resumed",
        "Resume the schedule NAME: its slots fire again from now on (paused ones never do).",
    )
)
cron.add_command(_operation("remove", "removed", "Remove the schedule NAME: it fires no more."))
