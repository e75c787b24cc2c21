"""`conductor worker`: run the engine in this process, or supervise several."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final

import click

from conductor.cli.options import (
    PREFETCH,
    Whole,
    db_option,
    utf8_all,
)
from conductor.domain.config import (
    DEFAULT_QUEUE,
    Settings,
    WorkerConfig,
    parse_duration,
)
from conductor.domain.errors import InvalidInput

CHILD: Final = (sys.executable, "-m", "conductor.cli.child")
"""How a worker child is started; its arguments follow: the parent's pid, `worker`, options."""


def _queues(given: tuple[str, ...]) -> tuple[str, ...]:
    """The queues of every `--queue` (each may be comma-separated), each once, in order;
    `default` when none is given."""
    names: dict[str, None] = {}
    for text in given:
        found = [name.strip() for name in text.split(",") if name.strip()]
        if not found:
            raise InvalidInput(f"invalid --queue {text!r}: expected queue names, comma-separated")
        names.update(dict.fromkeys(found))
    return tuple(names) or (DEFAULT_QUEUE,)


@click.command()
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
    "--queue",
    "queues",
    multiple=True,
    callback=utf8_all,
    metavar="NAME",
    help=f"A queue to take jobs from: repeatable, or comma-separated [default: {DEFAULT_QUEUE}].",
)
@click.option(
    # The name before `--queue` matched `enqueue --queue`; kept so scripts keep working.
    "--queues",
    "old_queues",
    multiple=True,
    callback=utf8_all,
    hidden=True,
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
    "--horizon",
    metavar="DURATION",
    help="With --burst: also wait for jobs due within DURATION (retries in their backoff, "
    "delayed jobs), e.g. 1m: run everything that will be due soon, then exit.",
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
@db_option
def worker(
    concurrency: int,
    processes: int,
    queues: tuple[str, ...],
    old_queues: tuple[str, ...],
    apps: tuple[str, ...],
    burst: bool,
    horizon: str | None,
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
    from conductor.engine import signals

    signals.WORKER.install()  # first: a stop signal during start-up must not kill the worker
    from conductor.domain.registry import load_app
    from conductor.engine.runtime import run_worker
    from conductor.observe import logs

    if horizon is not None and not burst:
        raise click.UsageError("--horizon only applies with --burst; expected --burst --horizon")
    config = WorkerConfig(
        concurrency=concurrency,
        queues=_queues((*queues, *old_queues)),
        prefetch=prefetch,
        lease=parse_duration(lease, "--lease"),
        grace=parse_duration(grace, "--grace"),
        burst=burst,
        horizon=None if horizon is None else parse_duration(horizon, "--horizon"),
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
        arguments = child_arguments(click.get_current_context())
        raise click.exceptions.Exit(pool.supervise(settings, config, processes, CHILD, arguments))
    address = None if metrics_port is None else (metrics_host, metrics_port)
    raise click.exceptions.Exit(run_worker(settings, config, metrics_address=address))


def child_arguments(ctx: click.Context) -> Callable[[int], list[str]]:
    """The command line of child `index`, from the parent's `worker` invocation: every
    option given (on the command line or through its environment variable) except
    `--processes`, and `--metrics-port PORT+index` (0 stays 0: each child picks a port)."""
    import click
    from click.core import ParameterSource

    given: list[str] = []
    port: int | None = None
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, click.Option) or name is None or name == "processes":
            continue
        value = ctx.params.get(name)
        if value is None or ctx.get_parameter_source(name) in (None, ParameterSource.DEFAULT):
            continue
        if name == "metrics_port":
            port = int(value)
            continue
        flag = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
        if param.is_flag:
            given += [flag] if value else []
        elif param.multiple:
            for item in value:
                given += [flag, str(item)]
        else:
            given += [flag, str(value)]

    def arguments(index: int) -> list[str]:
        metrics = [] if port is None else ["--metrics-port", str(port + index if port else 0)]
        return [ctx.info_name or "worker", *given, *metrics]

    return arguments
