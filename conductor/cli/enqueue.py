"""`conductor enqueue`: one payload, or a file of them in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conductor.cli import progress
from conductor.cli.options import (
    Whole,
    db_option,
    echo,
    json_option,
    note,
    utf8,
)
from conductor.client import Conductor
from conductor.domain import unique
from conductor.domain.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE,
    MAX_RETRIES_CAP,
    PRIORITIES,
    Settings,
    check_queue,
    parse_duration,
)
from conductor.domain.errors import InvalidInput
from conductor.domain.payloads import Payload, parse_payload
from conductor.domain.reports import Enqueued

if TYPE_CHECKING:
    from conductor.cli.progress import Tracker


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


def _file_payloads(path: str, max_bytes: int, tracker: Tracker) -> list[Payload]:
    payloads = []
    tracker.stage(f"reading {'stdin' if path == '-' else Path(path).name}")
    for number, raw in _read_lines(path):
        tracker.advance()
        line = raw.strip()
        if not line:
            continue
        try:
            payloads.append(parse_payload(line, max_bytes))
        except InvalidInput as e:
            raise InvalidInput(f"line {number}: {e}") from None
    if not payloads:
        raise InvalidInput(f"--file {path!r} holds no payloads; expected one JSON object per line")
    return payloads


def _unique_key(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A bad key is a usage error (exit 2), like any bad option value."""
    if value is None:
        return None
    utf8(ctx, param, value)
    try:
        return unique.check_key(value)
    except InvalidInput as e:
        raise click.BadParameter(str(e)) from None


def _unique_for(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dt.timedelta | None:
    if value is None:
        return None
    try:
        period = parse_duration(value, "--unique-for")
        unique.check_period(period, value)
    except InvalidInput as e:
        raise click.BadParameter(str(e)) from None
    return period


@click.command()
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
    callback=utf8,
    help=f"Queue name [default: the task's, else {DEFAULT_QUEUE}].",
)
@click.option(
    "--unique-key",
    callback=_unique_key,
    metavar="KEY",
    help="Enqueue only if no job with this key is pending or running; else print that "
    "job's id and add nothing. Not with --file.",
)
@click.option(
    "--unique-for",
    callback=_unique_for,
    metavar="DURATION",
    help="With --unique-key: a job with the key enqueued within this long (10m, 1d) "
    "blocks, whatever its state.",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE",
    help="Import this module so its tasks' defaults apply (repeatable).",
)
@json_option
@db_option
def enqueue(
    payload: str | None,
    file: str | None,
    delay: str | None,
    at: str | None,
    priority: str | None,
    max_retries: int | None,
    queue: str | None,
    unique_key: str | None,
    unique_for: dt.timedelta | None,
    apps: tuple[str, ...],
    as_json: bool,
    db: str | None,
) -> None:
    """Add a job (or a file of jobs) and print its id.

    Any task name is accepted: whether a worker knows it is decided when it runs. On a
    terminal, a --file of 10,000 lines or more shows its progress on stderr (not with
    --json). With --unique-key, a duplicate prints the id of the job holding the key and
    a note on stderr, exits 0, and adds nothing ("duplicate": true with --json).
    """
    if (payload is None) == (file is None):
        raise click.UsageError("give exactly one of --payload JSON or --file PATH")
    if delay is not None and at is not None:
        raise click.UsageError("give --delay or --at, not both")
    if unique_for is not None and unique_key is None:
        raise click.UsageError("give --unique-for with --unique-key: it is the key's scope")
    if unique_key is not None and file is not None:
        # One key for every line would enqueue the first line only; keys per line need
        # options per line, which --file does not have (the API's enqueue_many takes a
        # function of the payload).
        raise click.UsageError("give --unique-key with --payload, not --file")
    settings = Settings.from_env(db)
    # Validate everything before opening (and so creating) the database: a refused
    # enqueue must leave no file behind.
    if queue is not None:
        check_queue(queue)
    from conductor.domain.registry import load_app

    for module in apps:
        load_app(module)
    wait = None if delay is None else parse_duration(delay, "delay")
    start = None if at is None else _parse_at(at)
    # Progress only for a file (its length is learnt as it is read), never with --json.
    with progress.tracked(
        quiet=as_json or file is None, size=None, threshold=progress.MIN_LINES
    ) as tracker:
        items = (
            # As the bytes given (os.fsencode undoes Python's surrogate escapes), so a
            # payload that is not UTF-8 is reported as such rather than crashing the size
            # check.
            [parse_payload(os.fsencode(payload), settings.max_payload_bytes)]
            if payload is not None
            else _file_payloads(file or "-", settings.max_payload_bytes, tracker)
        )
        tracker.stage(f"enqueuing {len(items):,} jobs in one transaction")
        with Conductor(settings=settings, create=True) as app:
            done = app.enqueue_each(
                items,
                queue=queue,
                priority=priority,
                max_retries=max_retries,
                delay=wait,
                at=start,
                unique_key=unique_key,
                unique_for=unique_for,
            )
    ids = [one.id for one in done]
    keyed = any(one.unique_key is not None for one in done)
    if as_json:
        shown: dict[str, object] = {"ids": ids}
        if keyed and len(done) == 1:
            shown.update(duplicate=done[0].duplicate, unique_key=done[0].unique_key)
        elif keyed:
            shown["duplicate"] = [one.duplicate for one in done]
        echo(json.dumps(shown))
    elif len(ids) == 1:
        echo(str(ids[0]))
        if done[0].duplicate:
            note(
                f"duplicate: job {ids[0]} holds unique key {done[0].unique_key!r}; "
                "nothing was enqueued"
            )
    else:
        echo(_summary(done))


def _summary(done: list[Enqueued]) -> str:
    """`enqueue --file`'s line: the new jobs' ids, and how many lines were duplicates
    (their tasks' unique keys, with --app, were held)."""
    new = [one.id for one in done if not one.duplicate]
    made = f"enqueued {len(new)} jobs" + (f": {new[0]}-{new[-1]}" if new else "")
    duplicates = len(done) - len(new)
    if not duplicates:
        return made
    if duplicates == 1:
        return f"{made}; 1 duplicate of a job holding its unique key"
    return f"{made}; {duplicates} duplicates of jobs holding their unique keys"


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
