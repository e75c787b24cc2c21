"""The `conductor` command: a thin click shell over `conductor.Conductor`.

Errors a user can cause become one line on stderr (`error: ...`) with exit code 1, or 2
for usage errors; never a traceback. Listings print aligned tables, or JSON with `--json`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

from conductor import job as decide
from conductor.client import STATUSES, Conductor, Stats
from conductor.clock import stamp
from conductor.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE,
    MAX_RETRIES_CAP,
    PRIORITIES,
    PRIORITY_NAMES,
    Settings,
    WorkerConfig,
    check_queue,
    parse_duration,
    parse_time,
)
from conductor.errors import ConductorError, InvalidInput
from conductor.events import EVENT_TYPES, JobEnqueued, RecordedEvent
from conductor.ledger.base import EventFilter
from conductor.render import aligned, duration, elapsed, facts, rate, table, to_json, when, widths
from projections.job_status import JobRow

if TYPE_CHECKING:
    from projections.throughput import Activity

# What only some commands use (live views, task modules, the engine, tracing, metrics) is
# imported in those commands: every command pays at start-up for the modules imported here.

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LIMIT = 100
SQLITE_MAX_INTEGER = 2**63 - 1
"""The largest id or limit SQLite can bind; larger values are usage errors, not crashes."""


def _one_line(message: str) -> str:
    text = " ".join(message.split("\n"))
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {_one_line(message)}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every expected failure into one stderr line."""
    try:
        if os.environ.get("OTEL_TRACES_EXPORTER"):
            from conductor import tracing

            tracing.configure_from_env()
        code = cli.main(args=argv, prog_name="conductor", standalone_mode=False)
    except ConductorError as e:
        _fail(str(e), 1)
    except click.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        _fail(e.format_message() + hint, e.exit_code)
    except click.ClickException as e:
        _fail(e.format_message(), e.exit_code)
    except click.Abort:
        _fail("aborted", 130)
    except (RecursionError, MemoryError) as e:
        _fail(f"input too large or deeply nested ({type(e).__name__}); expected smaller input", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _db_option(function: F) -> F:
    return click.option(
        "--db",
        "db",
        metavar="PATH",
        envvar="CONDUCTOR_DB",
        callback=_utf8,
        help="Database file (default ./conductor.db; env CONDUCTOR_DB).",
    )(function)


def _json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def _open(db: str | None, *, create: bool) -> Conductor:
    return Conductor(settings=Settings.from_env(db), create=create)


def _echo(text: str) -> None:
    click.echo(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _note(text: str) -> None:
    click.echo(text, err=True)


def _limit(value: int) -> int | None:
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


def _bindable(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Refuse integers too large for SQLite as usage errors (they would crash the query)."""
    if value is not None and value > SQLITE_MAX_INTEGER:
        raise click.BadParameter(f"{value} is too large; expected at most {SQLITE_MAX_INTEGER}")
    return value


def _utf8(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse text arguments that are not UTF-8 (Python passes such bytes on as surrogate
    escapes, which SQLite cannot bind) as usage errors instead of crashing on them."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise click.BadParameter(f"{value!r} is not valid UTF-8; expected UTF-8 text") from None
    return value


def _truncation_note(shown: int, limit: int | None, what: str) -> None:
    if limit is not None and shown == limit:
        _note(f"(showing the newest {limit} {what}; --limit 0 shows all)")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="conductor", prog_name="conductor")
def cli() -> None:
    """conductor: background jobs on an append-only, hash-chained event ledger."""


# -- enqueue ---------------------------------------------------------------------------
def _read_lines(path: str) -> Iterator[tuple[int, bytes]]:
    if path == "-":
        stream = sys.stdin.buffer
        yield from enumerate(stream, start=1)
        return
    file = Path(path)
    shown = path if len(path) <= 120 else path[:117] + "..."
    try:
        # Inside the try: `is_dir` raises for some names, e.g. one too long for the OS.
        if file.is_dir():
            raise InvalidInput(f"invalid --file {shown!r}: is a directory; expected a file")
        with file.open("rb") as handle:
            yield from enumerate(handle, start=1)
    except OSError as e:
        raise InvalidInput(
            f"cannot read --file {shown!r}: {e.strerror}; expected a readable file"
        ) from None


def _file_payloads(path: str, max_bytes: int) -> list[decide.Payload]:
    payloads = []
    for number, raw in _read_lines(path):
        line = raw.strip()
        if not line:
            continue
        try:
            payloads.append(decide.parse_payload(line, max_bytes))
        except InvalidInput as e:
            raise InvalidInput(f"line {number}: {e}") from None
    if not payloads:
        raise InvalidInput(f"--file {path!r} holds no payloads; expected one JSON object per line")
    return payloads


@cli.command()
@click.option("--payload", metavar="JSON", help='The job: a JSON object naming its "task".')
@click.option(
    "--file",
    "file",
    metavar="PATH",
    help="One JSON payload per line (- for stdin); all enqueued in one transaction, or none.",
)
@click.option("--delay", metavar="DURATION", help="Run no sooner than this from now: 30s, 5m, 2h.")
@click.option(
    "--at", "at", metavar="TIME", help="Run no sooner than this ISO-8601 time (UTC if no zone)."
)
@click.option(
    "--priority",
    type=click.Choice(tuple(PRIORITIES), case_sensitive=False),
    help="high, medium or low [default: the task's, else medium].",
)
@click.option(
    "--max-retries",
    type=Whole(0, MAX_RETRIES_CAP),
    help=(
        f"Retries after the first attempt fails [default: the task's, else {DEFAULT_MAX_RETRIES}]."
    ),
)
@click.option(
    "--queue",
    callback=_utf8,
    help=f"Queue name [default: the task's, else {DEFAULT_QUEUE}].",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE",
    help="Import this module so its tasks' defaults apply (repeatable).",
)
@_json_option
@_db_option
def enqueue(
    payload: str | None,
    file: str | None,
    delay: str | None,
    at: str | None,
    priority: str | None,
    max_retries: int | None,
    queue: str | None,
    apps: tuple[str, ...],
    as_json: bool,
    db: str | None,
) -> None:
    """Add a job (or a file of jobs) and print its id.

    Any task name is accepted: whether a worker knows it is decided when it runs.
    """
    if (payload is None) == (file is None):
        raise click.UsageError("give exactly one of --payload JSON or --file PATH")
    if delay is not None and at is not None:
        raise click.UsageError("give --delay or --at, not both")
    settings = Settings.from_env(db)
    # Validate everything before opening (and so creating) the database: a refused
    # enqueue must leave no file behind.
    if queue is not None:
        check_queue(queue)
    from conductor.registry import load_app

    for module in apps:
        load_app(module)
    wait = None if delay is None else parse_duration(delay, "delay")
    start = None if at is None else _parse_at(at)
    items = (
        # As the bytes given (os.fsencode undoes Python's surrogate escapes), so a payload
        # that is not UTF-8 is reported as such rather than crashing the size check.
        [decide.parse_payload(os.fsencode(payload), settings.max_payload_bytes)]
        if payload is not None
        else _file_payloads(file or "-", settings.max_payload_bytes)
    )
    with Conductor(settings=settings, create=True) as app:
        ids = app.enqueue_many(
            items, queue=queue, priority=priority, max_retries=max_retries, delay=wait, at=start
        )
    if as_json:
        _echo(json.dumps({"ids": ids}))
    elif len(ids) == 1:
        _echo(str(ids[0]))
    else:
        _echo(f"enqueued {len(ids)} jobs: {ids[0]}-{ids[-1]}")


def _parse_at(text: str) -> dt.datetime:
    try:
        when_ = dt.datetime.fromisoformat(text.strip())
        # Normalising to UTC here, not when the event is stamped, turns a time that is
        # valid locally but outside datetime's range in UTC into this error, not a crash.
        return (when_ if when_.tzinfo else when_.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"invalid --at {text!r}: expected an ISO-8601 time like 2026-11-28T09:30:00Z"
        ) from None


# -- listings --------------------------------------------------------------------------
def _job_json(row: JobRow) -> dict[str, Any]:
    return {
        **row,
        "priority": PRIORITY_NAMES[row["priority"]],
        "payload": json.loads(row["payload"]),
    }


@cli.command()
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option("--task", callback=_utf8, help="Only jobs of this task.")
@click.option("--queue", callback=_utf8, help="Only jobs in this queue.")
@click.option(
    "--limit",
    type=Whole(0, None),
    callback=_bindable,
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show the newest N (0 for all), oldest first.",
)
@_json_option
@_db_option
def jobs(
    status: str | None,
    task: str | None,
    queue: str | None,
    limit: int,
    as_json: bool,
    db: str | None,
) -> None:
    """List jobs: ID, task, status, retries used."""
    with _open(db, create=False) as app:
        rows = app.jobs(status=status, task=task, queue=queue, limit=_limit(limit))
    if as_json:
        _echo(to_json([_job_json(row) for row in rows]))
        return
    _echo(
        table(
            ("ID", "Task", "Status", "Retries", "Queue", "Priority", "Run at", "Updated"),
            [
                (
                    row["id"],
                    row["task"],
                    row["status"],
                    f"{row['retries']}/{row['max_retries']}",
                    row["queue"],
                    PRIORITY_NAMES[row["priority"]],
                    when(row["run_at"]) if row["status"] == "pending" else "",
                    when(row["updated_at"]),
                )
                for row in rows
            ],
        )
    )
    _truncation_note(len(rows), _limit(limit), "jobs")


@cli.command()
@click.argument("job_id", type=Whole(1, None), callback=_bindable, metavar="ID")
@_json_option
@_db_option
def show(job_id: int, as_json: bool, db: str | None) -> None:
    """Show one job: payload, status, attempts, and each failure with its traceback."""
    with _open(db, create=False) as app:
        row = app.job(job_id)
        failures = app.failures(job_id)
    if as_json:
        _echo(
            to_json(
                {
                    **_job_json(row),
                    "failures": [
                        {"seq": rec.seq, "at": rec.at, **json.loads(ev.encode())}
                        for rec, ev in failures
                    ],
                }
            )
        )
        return
    lines = [
        f"Job {row['id']}",
        f"  Task:        {row['task']}",
        f"  Status:      {row['status']}",
        f"  Queue:       {row['queue']}",
        f"  Priority:    {PRIORITY_NAMES[row['priority']]}",
        f"  Attempts:    {row['attempts']}",
        f"  Retries:     {row['retries']} of {row['max_retries']}",
        f"  Run at:      {when(row['run_at'])}",
        f"  Created:     {when(row['created_at'])}",
        f"  Updated:     {when(row['updated_at'])}",
    ]
    if row["worker"]:
        lines.append(
            f"  Worker:      {row['worker']} (lease until {when(row['lease_expires_at'])})"
        )
    if row["last_error"]:
        lines.append(f"  Last error:  {row['last_error']}")
    lines.append("  Payload:")
    lines.extend("    " + line for line in to_json(json.loads(row["payload"])).splitlines())
    for rec, ev in failures:
        lines.append(
            f"  Attempt {ev.attempt} failed at {when(rec.at)}: {ev.error_type}: {ev.message}"
        )
        lines.extend("    " + line for line in ev.traceback.rstrip().splitlines())
    _echo("\n".join(lines))


@cli.command()
@click.argument("job_id", type=Whole(1, None), callback=_bindable, metavar="ID")
@_json_option
@_db_option
def history(job_id: int, as_json: bool, db: str | None) -> None:
    """Every event of one job, in order, with the time between them.

    The Trace column is the trace id stored with the event (the enqueue's producer span,
    or the attempt's consumer span), to look up in a tracing backend.
    """
    with _open(db, create=False) as app:
        entries = app.history(job_id)
    if as_json:
        _echo(
            to_json(
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "type": e.type,
                        "since_previous": e.since_previous,
                        "facts": e.facts,
                        "trace": e.trace,
                        "trace_id": e.trace_id,
                    }
                    for e in entries
                ]
            )
        )
        return
    _echo(
        table(
            ("Seq", "Time", "Since prev", "Event", "Trace", "Details"),
            [
                (
                    e.seq,
                    when(e.at),
                    duration(e.since_previous),
                    e.type,
                    e.trace_id or "",
                    facts(e.facts),
                )
                for e in entries
            ],
        )
    )


def _event_json(rec: RecordedEvent) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "job_id": rec.job_id,
        "type": rec.type,
        "version": rec.event.VERSION,
        "at": rec.at,
        "data": json.loads(rec.event.encode()),
        "trace": rec.trace,
        "hash": rec.hash,
    }


def _event_details(rec: RecordedEvent) -> str:
    data = json.loads(rec.event.encode())
    if isinstance(rec.event, JobEnqueued):
        data.pop("payload")
    data.pop("traceback", None)
    return facts(data)


@cli.command()
@click.option(
    "--job",
    "job_id",
    type=Whole(1, None),
    callback=_bindable,
    help="Only this job's events.",
)
@click.option(
    "--type",
    "types",
    type=click.Choice(EVENT_TYPES),
    multiple=True,
    help="Only events of this type (repeatable).",
)
@click.option("--task", callback=_utf8, help="Only events of jobs of this task.")
@click.option("--since", metavar="TIME", help="At or after: ISO-8601, or an age like 1h, 30m.")
@click.option("--until", metavar="TIME", help="Before: ISO-8601, or an age like 10m.")
@click.option(
    "--limit",
    type=Whole(0, None),
    callback=_bindable,
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
@_json_option
@_db_option
def events(
    job_id: int | None,
    types: tuple[str, ...],
    task: str | None,
    since: str | None,
    until: str | None,
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
    if follow:
        from conductor import live

        where = EventFilter(
            job_id=job_id,
            types=types,
            task=task,
            since=None if lower is None else stamp(lower),
            until=None if upper is None else stamp(upper),
        )
        with live.until_stopped(), _open(db, create=False) as app:
            _follow_events(app, where, limit=_limit(limit), as_json=as_json)
        return
    with _open(db, create=False) as app:
        found = app.events(
            job_id=job_id, types=types, task=task, since=lower, until=upper, limit=_limit(limit)
        )
    if as_json:
        _echo(to_json([_event_json(rec) for rec in found]))
        return
    _echo(
        table(
            ("Seq", "Time", "Job", "Event", "Details"),
            [(rec.seq, when(rec.at), rec.job_id, rec.type, _event_details(rec)) for rec in found],
        )
    )
    _truncation_note(len(found), _limit(limit), "events")


_FOLLOW_HEADERS = ("Seq", "Time", "Job", "Event", "Details")
_FOLLOW_MIN_WIDTHS = (6, len("2026-11-28 00:33:23.107Z"), 5, max(map(len, EVENT_TYPES)))
"""Column widths a followed table starts with, so later, wider rows still line up."""


def _event_row(rec: RecordedEvent) -> tuple[object, ...]:
    return (rec.seq, when(rec.at), rec.job_id, rec.type, _event_details(rec))


def _follow_events(app: Conductor, where: EventFilter, *, limit: int | None, as_json: bool) -> None:
    from conductor import live

    head = app.ledger.last_seq()  # before the first read: nothing after it is skipped
    found = app.ledger.read(where, limit=limit)
    if as_json:

        def emit(batch: list[RecordedEvent]) -> None:
            _echo("\n".join(json.dumps(_event_json(r), ensure_ascii=False) for r in batch))

    else:
        rows = [_event_row(rec) for rec in found]
        minimum = (max(_FOLLOW_MIN_WIDTHS[0], len(str(head)) + 2), *_FOLLOW_MIN_WIDTHS[1:])
        columns = widths(_FOLLOW_HEADERS, rows, minimum)
        _echo(aligned(_FOLLOW_HEADERS, columns))

        def emit(batch: list[RecordedEvent]) -> None:
            _echo("\n".join(aligned(_event_row(rec), columns) for rec in batch))

    if found:
        emit(found)
    _truncation_note(len(found), limit, "events")
    after = max(head, found[-1].seq if found else 0)
    wait = live.waiter(app.settings.db)
    try:
        live.follow(app.ledger, attrs.evolve(where, after_seq=after), emit, wait)
    finally:
        wait.close()


def _interval_option(function: F) -> F:
    return click.option(
        "--interval",
        default="1s",
        show_default=True,
        metavar="DURATION",
        help="Time between refreshes (at least 100ms).",
    )(function)


@cli.command()
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C (like `top`).")
@_interval_option
@_json_option
@_db_option
def stats(watch: bool, interval: str, as_json: bool, db: str | None) -> None:
    """Job counts by status, overall and per queue, and recent throughput.

    The activity table covers the last minute and the last hour: jobs completed and
    failed (in all and per second), failed attempts, and the p50/p95 of wait time (from a
    job becoming due to its attempt starting) and run time (from an attempt starting to
    its outcome), computed from the events stamped in each window. With --watch (or
    `conductor top`) the view refreshes in place until Ctrl-C; with --json, each refresh
    is one JSON object per line.
    """
    _stats_view(db, watch=watch, interval=interval, as_json=as_json)


@cli.command()
@_interval_option
@_json_option
@_db_option
def top(interval: str, as_json: bool, db: str | None) -> None:
    """Live job counts and throughput, refreshed in place until Ctrl-C (`stats --watch`)."""
    _stats_view(db, watch=True, interval=interval, as_json=as_json)


_MIN_INTERVAL = 0.1


def _stats_view(db: str | None, *, watch: bool, interval: str, as_json: bool) -> None:
    every = parse_duration(interval, "--interval").total_seconds()
    if every < _MIN_INTERVAL:
        raise InvalidInput(f"invalid --interval {interval!r}: expected at least 100ms")
    if not watch:
        with _open(db, create=False) as app:
            result, activity = app.stats(), app.activity()
        if as_json:
            _echo(to_json({**result.as_dict(), "activity": activity.as_dict()}))
        else:
            _echo(_stats_text(result, activity))
        return
    from conductor import live
    from conductor.activity import ActivityReader

    with live.until_stopped(), _open(db, create=False) as app:
        screen = live.Screen.for_stream(sys.stdout)
        reader = ActivityReader(app.ledger)  # kept: each refresh reads only new events

        def show() -> None:
            result, activity = app.stats(), reader.read(app.clock.now())
            if as_json:
                document = {**result.as_dict(), "activity": activity.as_dict()}
                _echo(json.dumps(document, ensure_ascii=False))
                return
            heading = (
                f"conductor stats: {app.settings.db} at {when(activity.at)}, "
                f"every {interval} (Ctrl-C to stop)"
            )
            screen.show(heading + "\n\n" + _stats_text(result, activity))

        live.refresh(show, every, live.Timer())


def _stats_text(result: Stats, activity: Activity) -> str:
    rows = [("all", *result.overall.as_dict().values())]
    rows += [(name, *counts.as_dict().values()) for name, counts in sorted(result.queues.items())]
    counts = table(
        ("Queue", "Total", "Pending", "In progress", "Completed", "Failed", "Cancelled"),
        rows,
    )
    spans = activity.windows

    def spread(value: float | None) -> str:
        return "-" if value is None else elapsed(value)

    figures = table(
        ("Activity", *(w.name.replace("_", " ").capitalize() + "*" * w.sampled for w in spans)),
        [
            ("Completed", *(w.completed for w in spans)),
            ("Completed/s", *(rate(w.completed_per_second) for w in spans)),
            ("Failed", *(w.failed for w in spans)),
            ("Failed/s", *(rate(w.failed_per_second) for w in spans)),
            ("Attempts failed", *(w.attempts_failed for w in spans)),
            ("Wait p50", *(spread(w.wait.p50) for w in spans)),
            ("Wait p95", *(spread(w.wait.p95) for w in spans)),
            ("Run p50", *(spread(w.run.p50) for w in spans)),
            ("Run p95", *(spread(w.run.p95) for w in spans)),
        ],
    )
    sampled = next((w for w in spans if w.sampled), None)
    if sampled is not None:
        figures += (
            f"\n* over the last {elapsed(sampled.seconds)} only: "
            "the window holds more events than stats reads"
        )
    return counts + "\n\n" + figures


# -- operator actions ------------------------------------------------------------------
@cli.command()
@click.argument("job_id", type=Whole(1, None), callback=_bindable, metavar="ID")
@_db_option
def cancel(job_id: int, db: str | None) -> None:
    """Cancel a pending or in-progress job."""
    with _open(db, create=False) as app:
        app.cancel(job_id)
    _echo(f"job {job_id} cancelled")


@cli.command()
@click.argument("job_id", type=Whole(1, None), callback=_bindable, metavar="ID")
@_db_option
def retry(job_id: int, db: str | None) -> None:
    """Send a failed or cancelled job back to pending with a fresh retry budget."""
    with _open(db, create=False) as app:
        app.retry(job_id)
    _echo(f"job {job_id} requeued")


# -- maintenance -----------------------------------------------------------------------
@cli.command()
@click.option(
    "--verify",
    is_flag=True,
    help="Rebuild into scratch tables, print differences from the live ones, change nothing.",
)
@_db_option
def replay(verify: bool, db: str | None) -> None:
    """Rebuild every projection from the event log (seq 1 onwards)."""
    with _open(db, create=False) as app:
        if not verify:
            count = app.replay()
            _echo(f"rebuilt projections from {count} events")
            return
        differences = app.verify_projections()
        last = app.ledger.last_seq()
    if not differences:
        _echo(f"projections match the log ({last} events)")
        return
    for diff in differences:
        if diff.live is None or diff.rebuilt is None:
            side = "missing from live tables" if diff.live is None else "not in the log"
            _echo(f"{diff.table} {diff.key}: {side}")
            continue
        changed = [
            f"{key}: live={diff.live[key]!r} log={diff.rebuilt.get(key)!r}"
            for key in diff.live
            if diff.live[key] != diff.rebuilt.get(key)
        ]
        _echo(f"{diff.table} {diff.key}: " + "; ".join(changed))
    raise click.exceptions.Exit(1)


@cli.group()
def audit() -> None:
    """Check the integrity of the event log."""


@audit.command("verify")
@_json_option
@_db_option
def audit_verify(as_json: bool, db: str | None) -> None:
    """Walk the hash chain; name the first event altered, removed or reordered."""
    with _open(db, create=False) as app:
        report = app.audit()
    if as_json:
        _echo(
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
        _echo(
            f"chain verified: {report.events} events; head seq {report.head_seq} "
            f"hash {report.head_hash}"
        )
    else:
        _echo(f"chain broken at seq {report.first_bad_seq}: {report.problem}")
    if not report.ok:
        raise click.exceptions.Exit(1)


# -- worker ---------------------------------------------------------------------------
def _queues(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise InvalidInput(f"invalid --queues {text!r}: expected comma-separated queue names")
    return names


@cli.command()
@click.option(
    "--concurrency",
    "-c",
    type=Whole(1, 1024),
    default=8,
    show_default=True,
    help="Jobs in progress at once in this process.",
)
@click.option(
    "--processes",
    type=Whole(1, 64),
    default=1,
    show_default=True,
    help="Worker processes; above 1, this process supervises them and restarts any that dies.",
)
@click.option(
    "--queues",
    default=DEFAULT_QUEUE,
    show_default=True,
    metavar="A,B",
    help="Queues to take jobs from, comma-separated.",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE",
    help="Import this module to register its tasks (repeatable).",
)
@click.option(
    "--burst", is_flag=True, help="Exit 0 once no job is due, in flight, or held by a live lease."
)
@click.option(
    "--grace",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="On SIGINT/SIGTERM, how long in-flight jobs may finish.",
)
@click.option(
    "--lease",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="How long a claim lasts without a heartbeat.",
)
@click.option(
    "--prefetch",
    type=PREFETCH,
    default="auto",
    show_default=True,
    help="Jobs claimed ahead of free slots: a number, or auto (from 2 up to 4 per slot, "
    "deeper while jobs are shorter than a commit).",
)
@click.option(
    "--poll",
    default="1s",
    show_default=True,
    metavar="DURATION",
    help="Fallback poll for jobs no wake-up signal announced.",
)
@click.option("--quiet", "-q", is_flag=True, help="Log only failures and warnings.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per transition: text, or JSON objects.",
)
@click.option(
    "--metrics-port",
    type=Whole(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (0 picks a free port).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address the metrics endpoint listens on (0.0.0.0 exposes it to the network).",
)
@_db_option
def worker(
    concurrency: int,
    processes: int,
    queues: str,
    apps: tuple[str, ...],
    burst: bool,
    grace: str,
    lease: str,
    prefetch: int | None,
    poll: str,
    quiet: bool,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    db: str | None,
) -> None:
    """Run jobs: start the actor engine and work until stopped (or drained, with --burst)."""
    from conductor.engine import logs
    from conductor.engine.runtime import run_worker
    from conductor.registry import load_app

    config = WorkerConfig(
        concurrency=concurrency,
        queues=_queues(queues),
        prefetch=prefetch,
        lease=parse_duration(lease, "--lease"),
        grace=parse_duration(grace, "--grace"),
        burst=burst,
        poll_interval=max(parse_duration(poll, "--poll").total_seconds(), 0.001),
    )
    settings = Settings.from_env(db)
    for module in apps:
        load_app(module)
    logs.configure("json" if log_format == "json" else "text", quiet=quiet)
    if processes > 1:
        from conductor.engine import processes as pool

        if metrics_port and metrics_port + processes - 1 > 65535:
            raise click.BadParameter(
                f"{metrics_port} leaves no room for {processes} ports (one per process); "
                f"expected at most {65536 - processes}",
                param_hint="'--metrics-port'",
            )
        arguments = pool.child_arguments(click.get_current_context())
        raise click.exceptions.Exit(pool.supervise(settings, config, processes, arguments))
    address = None if metrics_port is None else (metrics_host, metrics_port)
    raise click.exceptions.Exit(run_worker(settings, config, metrics_address=address))


@cli.command("metrics")
@_db_option
def metrics_once(db: str | None) -> None:
    """Print Prometheus metrics computed from the ledger, once.

    Counters are totals since the database began; gauges are read from its projections.
    For node_exporter's textfile collector, or a quick look. Reads only.
    """
    from conductor import metrics

    with _open(db, create=False) as app:
        text = metrics.exposition(app.ledger, app.clock.now())
    click.echo(text, nl=False)


# -- bench -----------------------------------------------------------------------------
def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    """A comma-separated option as a tuple of its non-empty names."""
    if value is None:
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


@cli.command()
@click.option(
    "--jobs",
    type=Whole(1, 10_000_000),
    default=10_000,
    show_default=True,
    help="Jobs per enqueue and drain measurement.",
)
@click.option(
    "--concurrency",
    type=Whole(1, 1024),
    default=8,
    show_default=True,
    help="Worker slots per process.",
)
@click.option(
    "--prefetch",
    type=PREFETCH,
    default="auto",
    show_default=True,
    help="Jobs claimed ahead of free slots (as `worker --prefetch`).",
)
@click.option(
    "--processes",
    type=Whole(1, 64),
    default=1,
    show_default=True,
    help="Above 1, also compare CPU-bound jobs on this many worker processes with one.",
)
@click.option(
    "--backlog",
    type=Whole(1_000, 10_000_000),
    default=None,
    help="Also measure with this many jobs waiting: drain rate, worker memory as they are "
    "all processed, stats/jobs as commands, replay (minutes at 1000000).",
)
@click.option(
    "--only",
    metavar="A,B",
    callback=_names,
    help="Run only these of: enqueue, drain, sleep, latency, processes, scale.",
)
@click.option(
    "--stream-seconds",
    type=click.FloatRange(0.1, 600),
    default=3.0,
    show_default=True,
    help="How long each pickup-latency stream runs.",
)
@click.option(
    "--rate",
    type=click.FloatRange(1, 100_000),
    default=200.0,
    show_default=True,
    help="Jobs per second in the pickup-latency streams.",
)
@_json_option
def bench(
    jobs: int,
    concurrency: int,
    prefetch: int | None,
    processes: int,
    backlog: int | None,
    only: tuple[str, ...],
    stream_seconds: float,
    rate: float,
    as_json: bool,
) -> None:
    """Measure the real stack on fresh temporary databases (docs/performance.md).

    By default: enqueue (batch API and --file), a drain of no-op jobs, 10 ms jobs, and
    pickup latency in and across processes. --processes and --backlog add their scenarios.
    """
    from conductor import bench as benchmark

    unknown = [name for name in only if name not in benchmark.SCENARIOS]
    if unknown:
        raise click.BadParameter(
            f"unknown scenario {unknown[0]!r}; expected some of {', '.join(benchmark.SCENARIOS)}",
            param_hint="--only",
        )
    scenarios = only or (
        *benchmark.DEFAULT_SCENARIOS,
        *(("processes",) if processes > 1 else ()),
        *(("scale",) if backlog else ()),
    )
    result = benchmark.run(
        benchmark.BenchOptions(
            jobs=jobs,
            concurrency=concurrency,
            prefetch=prefetch,
            processes=processes,
            backlog=backlog,
            latency_rate=rate,
            latency_seconds=stream_seconds,
            scenarios=scenarios,
        )
    )
    _echo(json.dumps(result, indent=2) if as_json else benchmark.render(result))


# -- demo ------------------------------------------------------------------------------
@cli.command()
@_db_option
def demo(db: str | None) -> None:
    """Run a realistic mix of jobs in-process with live progress, then show them.

    Enqueues the demo jobs, runs a worker until every one has finished, and prints
    `conductor jobs` and `conductor stats`.
    """
    from conductor import demo as demo_run

    settings = Settings.from_env(db)
    demo_run.run(settings)
    context = click.get_current_context()
    context.invoke(jobs, db=db, limit=0)
    _echo("")
    context.invoke(stats, db=db)


@functools.cache
def commands() -> dict[str, click.Command]:
    """Every command path (e.g. `audit verify`) and its click command, for the docs."""
    found: dict[str, click.Command] = {}

    def walk(prefix: str, command: click.Command) -> None:
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found[prefix] = command

    walk("", cli)
    return found
