"""`conductor stats`, `top` and `metrics`: counts, throughput and the Prometheus view."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from conductor.cli.options import (
    F,
    db_option,
    echo,
    json_option,
    open_app,
)
from conductor.cli.render import (
    elapsed,
    rate,
    table,
    to_json,
    when,
)
from conductor.domain.config import (
    parse_duration,
)
from conductor.domain.errors import InvalidInput
from conductor.domain.reports import Stats

if TYPE_CHECKING:
    from projections.throughput import Activity


def interval_option(function: F) -> F:
    return click.option(
        "--interval",
        default="1s",
        show_default=True,
        metavar="DURATION",
        help="Time between refreshes (at least 100ms).",
    )(function)


@click.command()
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C (like `top`).")
@interval_option
@json_option
@db_option
def stats(watch: bool, interval: str, as_json: bool, db: str | None) -> None:
    """Job counts by status, overall and per queue, and recent throughput.

    The activity table covers the last minute and the last hour (or, marked ^, the time
    since the first event when the database is younger than that): jobs completed and
    failed (in all and per second), failed attempts, and the p50/p95 of wait time (from a
    job becoming due to its attempt starting) and run time (from an attempt starting to
    its outcome), computed from the events stamped in each window. With --watch (or
    `conductor top`) the view refreshes in place until Ctrl-C; with --json, each refresh
    is one JSON object per line.
    """
    _stats_view(db, watch=watch, interval=interval, as_json=as_json)


@click.command()
@interval_option
@json_option
@db_option
def top(interval: str, as_json: bool, db: str | None) -> None:
    """Live job counts and throughput, refreshed in place until Ctrl-C (`stats --watch`)."""
    _stats_view(db, watch=True, interval=interval, as_json=as_json)


_MIN_INTERVAL = 0.1


def _stats_view(db: str | None, *, watch: bool, interval: str, as_json: bool) -> None:
    every = parse_duration(interval, "--interval").total_seconds()
    if every < _MIN_INTERVAL:
        raise InvalidInput(f"invalid --interval {interval!r}: expected at least 100ms")
    if not watch:
        with open_app(db, create=False) as app:
            result, activity = app.stats(), app.activity()
        if as_json:
            echo(to_json({**result.as_dict(), "activity": activity.as_dict()}))
        else:
            echo(_stats_text(result, activity))
        return
    from conductor.observe import live
    from conductor.observe.activity import ActivityReader

    with live.until_stopped(), open_app(db, create=False) as app:
        screen = live.Screen.for_stream(sys.stdout)
        reader = ActivityReader(app.ledger)  # kept: each refresh reads only new events

        def show() -> None:
            result, activity = app.stats(), reader.read(app.clock.now())
            if as_json:
                document = {**result.as_dict(), "activity": activity.as_dict()}
                echo(json.dumps(document, ensure_ascii=False))
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
        ("Queue", "Total", "Pending", "Claimed", "In progress", "Completed", "Failed", "Cancelled"),
        rows,
    )
    spans = activity.windows

    def spread(value: float | None) -> str:
        return "-" if value is None else elapsed(value)

    figures = table(
        (
            "Activity",
            *(
                w.name.replace("_", " ").capitalize() + "*" * w.sampled + "^" * w.since_first_event
                for w in spans
            ),
        ),
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
    young = next((w for w in spans if w.since_first_event), None)
    if young is not None:
        figures += (
            f"\n^ over the {elapsed(young.seconds)} since the first event: "
            "the database is younger than the window"
        )
    return counts + "\n\n" + figures


@click.command("metrics")
@db_option
def metrics_once(db: str | None) -> None:
    """Print Prometheus metrics computed from the ledger, once.

    Counters are totals since the database began; gauges are read from its projections.
    For node_exporter's textfile collector, or a quick look. Reads only.
    """
    from conductor.observe import prometheus

    with open_app(db, create=False) as app:
        text = prometheus.exposition(app.ledger, app.clock.now())
    click.echo(text, nl=False)
