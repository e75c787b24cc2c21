"""`conductor events`: the log itself, filtered, or followed live with --follow."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
import click

from conductor.cli.options import (
    DEFAULT_LIMIT,
    Whole,
    bindable,
    db_option,
    echo,
    json_option,
    limit_or_none,
    open_app,
    truncation_note,
    utf8,
)
from conductor.cli.render import (
    aligned,
    facts,
    table,
    to_json,
    when,
    widths,
)
from conductor.client import Conductor
from conductor.domain.bulk import check_batch
from conductor.domain.clock import stamp
from conductor.domain.config import PRIORITY_NAMES, parse_time
from conductor.domain.control_events import ControlEvent
from conductor.domain.errors import InvalidInput
from conductor.domain.events import EVENT_TYPES, JobEnqueued, RecordedEvent
from conductor.ledger.base import EventFilter


def subject(rec: RecordedEvent) -> str | int:
    """What an event is about, for the Job column: the job's id, or for the operations
    stream (job id 0) its subject as `kind:name`, e.g. `queue:mail`."""
    if isinstance(rec.event, ControlEvent):
        return ":".join(rec.event.subject())
    return rec.job_id


def event_json(rec: RecordedEvent) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "job_id": rec.job_id,
        "subject": subject(rec) if isinstance(rec.event, ControlEvent) else None,
        "type": rec.type,
        "version": rec.event.VERSION,
        "at": rec.at,
        "data": json.loads(rec.event.encode()),
        "trace": rec.trace,
        "hash": rec.hash,
    }


def event_details(rec: RecordedEvent) -> str:
    """An event's fields for a person: a priority by its name, as `jobs` and `show` show it
    (`--json` prints the event as stored, where it is a number)."""
    # A field with no value (no result, no batch, no unique key) says nothing to a reader.
    data = {k: v for k, v in json.loads(rec.event.encode()).items() if v is not None}
    if isinstance(rec.event, JobEnqueued):
        data.pop("payload", None)
        data["priority"] = PRIORITY_NAMES.get(rec.event.priority, rec.event.priority)
    data.pop("traceback", None)
    return facts(data)


@click.command()
@click.option(
    "--job",
    "job_id",
    type=Whole(1, None),
    callback=bindable,
    help="Only this job's events.",
)
@click.option(
    "--type",
    "types",
    type=click.Choice(EVENT_TYPES),
    multiple=True,
    help="Only events of this type (repeatable).",
)
@click.option("--task", callback=utf8, help="Only events of jobs of this task.")
@click.option("--since", metavar="TIME", help="At or after: ISO-8601, or an age like 1h, 30m.")
@click.option("--until", metavar="TIME", help="Before: ISO-8601, or an age like 10m.")
@click.option(
    "--batch",
    metavar="ID",
    help="Only the events of this operator action (the batch id cancel or retry printed).",
)
@click.option(
    "--limit",
    type=Whole(0, None),
    callback=bindable,
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show the newest N matches (0 for all), oldest first.",
)
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Then print new matches as they are appended, like `tail -f`, until Ctrl-C; "
    "with --json, one object per line.",
)
@json_option
@db_option
def events(
    job_id: int | None,
    types: tuple[str, ...],
    task: str | None,
    since: str | None,
    until: str | None,
    batch: str | None,
    limit: int,
    follow: bool,
    as_json: bool,
    db: str | None,
) -> None:
    """Query the audit trail: the event log, filtered.

    With --follow, the newest --limit matches are printed and then every new match as it
    is appended (within 200 ms; at once for local enqueues, cancels and retries).
    """
    now = dt.datetime.now(dt.UTC)
    lower = None if since is None else parse_time(since, now, "--since")
    upper = None if until is None else parse_time(until, now, "--until")
    try:
        wanted = None if batch is None else check_batch(batch)
    except InvalidInput as e:
        raise click.BadParameter(str(e), param_hint="'--batch'") from None
    if follow:
        from conductor.observe import live

        where = EventFilter(
            job_id=job_id,
            types=types,
            task=task,
            since=None if lower is None else stamp(lower),
            until=None if upper is None else stamp(upper),
            batch=wanted,
        )
        with live.until_stopped(), open_app(db, create=False) as app:
            _follow_events(app, where, limit=limit_or_none(limit), as_json=as_json)
        return
    with open_app(db, create=False) as app:
        found = app.events(
            job_id=job_id,
            types=types,
            task=task,
            since=lower,
            until=upper,
            batch=wanted,
            limit=limit_or_none(limit),
        )
    if as_json:
        echo(to_json([event_json(rec) for rec in found]))
        return
    echo(
        table(
            ("Seq", "Time", "Job", "Event", "Details"),
            [_event_row(rec) for rec in found],
        )
    )
    truncation_note(len(found), limit_or_none(limit), "events")


_FOLLOW_HEADERS = ("Seq", "Time", "Job", "Event", "Details")
_FOLLOW_MIN_WIDTHS = (6, len("2026-11-28 00:33:23.107Z"), 5, max(map(len, EVENT_TYPES)))
"""Column widths a followed table starts with, so later, wider rows still line up."""


def _event_row(rec: RecordedEvent) -> tuple[object, ...]:
    return (rec.seq, when(rec.at), subject(rec), rec.type, event_details(rec))


def _follow_events(app: Conductor, where: EventFilter, *, limit: int | None, as_json: bool) -> None:
    from conductor.observe import live

    head = app.ledger.last_seq()  # before the first read: nothing after it is skipped
    found = app.ledger.read(where, limit=limit)
    if as_json:

        def emit(batch: list[RecordedEvent]) -> None:
            echo("\n".join(json.dumps(event_json(r), ensure_ascii=False) for r in batch))

    else:
        rows = [_event_row(rec) for rec in found]
        minimum = (max(_FOLLOW_MIN_WIDTHS[0], len(str(head)) + 2), *_FOLLOW_MIN_WIDTHS[1:])
        columns = widths(_FOLLOW_HEADERS, rows, minimum)
        echo(aligned(_FOLLOW_HEADERS, columns))

        def emit(batch: list[RecordedEvent]) -> None:
            echo("\n".join(aligned(_event_row(rec), columns) for rec in batch))

    if found:
        emit(found)
    truncation_note(len(found), limit, "events")
    after = max(head, found[-1].seq if found else 0)
    wait = live.waiter(app.settings.db)
    try:
        live.follow(app.ledger, attrs.evolve(where, after_seq=after), emit, wait)
    finally:
        wait.close()
