"""`conductor jobs`, `show` and `history`: what the read models hold about jobs."""

from __future__ import annotations

import json
from typing import Any

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
    duration,
    facts,
    table,
    to_json,
    when,
)
from conductor.client import STATUSES
from conductor.domain.config import (
    priority_name,
)
from conductor.domain.job_row import JobRow


def job_json(row: JobRow) -> dict[str, Any]:
    return {
        **row,
        "priority": priority_name(row["priority"]),
        "payload": json.loads(row["payload"]),
    }


@click.command()
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option("--task", callback=utf8, help="Only jobs of this task.")
@click.option("--queue", callback=utf8, help="Only jobs in this queue.")
@click.option(
    "--limit",
    type=Whole(0, None),
    callback=bindable,
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show the newest N (0 for all), oldest first.",
)
@json_option
@db_option
def jobs(
    status: str | None,
    task: str | None,
    queue: str | None,
    limit: int,
    as_json: bool,
    db: str | None,
) -> None:
    """List jobs: ID, task, status, retries used."""
    with open_app(db, create=False) as app:
        rows = app.jobs(status=status, task=task, queue=queue, limit=limit_or_none(limit))
    if as_json:
        echo(to_json([job_json(row) for row in rows]))
        return
    echo(
        table(
            ("ID", "Task", "Status", "Retries", "Queue", "Priority", "Run at", "Updated"),
            [
                (
                    row["id"],
                    row["task"],
                    row["status"],
                    f"{row['retries']}/{row['max_retries']}",
                    row["queue"],
                    priority_name(row["priority"]),
                    when(row["run_at"]) if row["status"] == "pending" else "",
                    when(row["updated_at"]),
                )
                for row in rows
            ],
        )
    )
    truncation_note(len(rows), limit_or_none(limit), "jobs")


@click.command()
@click.argument("job_id", type=Whole(1, None), callback=bindable, metavar="ID")
@json_option
@db_option
def show(job_id: int, as_json: bool, db: str | None) -> None:
    """Show one job: payload, status, attempts, its result once completed, and each
    failure with its traceback."""
    with open_app(db, create=False) as app:
        row = app.job(job_id)
        failures = app.failures(job_id)
        done = app.outcome(job_id) if row["status"] == "completed" else None
    if as_json:
        echo(
            to_json(
                {
                    **job_json(row),
                    **({"result": done.value} if done is not None else {}),
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
        f"  Priority:    {priority_name(row['priority'])}",
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
    if row["unique_key"] is not None:
        period = row["unique_for"]
        scope = "while pending or running" if period is None else f"for {period}s"
        lines.append(f"  Unique key:  {row['unique_key']} ({scope})")
    lines.append("  Payload:")
    lines.extend("    " + line for line in to_json(json.loads(row["payload"])).splitlines())
    if done is not None:
        lines.append("  Result:")
        lines.extend("    " + line for line in to_json(done.value).splitlines())
    for rec, ev in failures:
        lines.append(
            f"  Attempt {ev.attempt} failed at {when(rec.at)}: {ev.error_type}: {ev.message}"
        )
        lines.extend("    " + line for line in ev.traceback.rstrip().splitlines())
    echo("\n".join(lines))


@click.command()
@click.argument("job_id", type=Whole(1, None), callback=bindable, metavar="ID")
@json_option
@db_option
def history(job_id: int, as_json: bool, db: str | None) -> None:
    """Every event of one job, in order, with the time between them.

    The Trace column is the trace id stored with the event (the enqueue's producer span,
    or the attempt's consumer span), to look up in a tracing backend.
    """
    with open_app(db, create=False) as app:
        entries = app.history(job_id)
    if as_json:
        echo(
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
    echo(
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
