"""`conductor bench`: the real stack measured on fresh temporary databases."""

from __future__ import annotations

import json

import click

from conductor.cli import progress
from conductor.cli.options import (
    PREFETCH,
    Whole,
    db_option,
    echo,
    json_option,
)


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    """A comma-separated option as a tuple of its non-empty names."""
    if value is None:
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


@click.command()
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
@click.option(
    "--queue-controls",
    is_flag=True,
    help="Drain through a queue with (generous) concurrency and rate limits, beside a "
    "paused one: what queue controls cost on the claim path.",
)
@db_option
@json_option
def bench(
    db: str | None,
    jobs: int,
    concurrency: int,
    prefetch: int | None,
    processes: int,
    backlog: int | None,
    only: tuple[str, ...],
    stream_seconds: float,
    rate: float,
    queue_controls: bool,
    as_json: bool,
) -> None:
    """Measure the real stack on fresh temporary databases (docs/performance.md).

    By default: enqueue (batch API and --file), a drain of no-op jobs, 10 ms jobs, and
    pickup latency in and across processes. --processes and --backlog add their scenarios.
    On a terminal (without --json), stderr shows which scenario is running.

    With a postgresql:// --db, each database is a new schema of that database, dropped
    afterwards (the URL's own schema is not touched); otherwise each is a new SQLite file
    in a temporary folder (a file --db only picks the backend).
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
    started: list[str] = []
    # A bench takes seconds to minutes: progress on a terminal whatever its size.
    with progress.tracked(quiet=as_json, size=len(scenarios), threshold=1) as tracker:
        tracker.stage("bench", total=len(scenarios))

        def begin(name: str) -> None:
            if started:  # the scenario before this one has finished
                tracker.advance()
            started.append(name)
            tracker.describe(f"bench: {name}")

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
                queue_controls=queue_controls,
            ),
            on_scenario=begin,
            db=db,
        )
        tracker.advance()
    echo(json.dumps(result, indent=2) if as_json else benchmark.render(result))
