"""`conductor demo`: enqueue a realistic mix of jobs and run them with a live progress line.

Everything goes through the same public pieces a user would touch: `Conductor.enqueue`
and an in-process `Engine`.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from typing import Any, Final, TextIO

import click

from conductor.cli.app import COMMANDS, load
from conductor.cli.options import db_option, echo
from conductor.client import Conductor
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.errors import InvalidInput
from conductor.domain.states import TERMINAL_STATES

DEMO_JOBS: Final[list[tuple[dict[str, Any], dict[str, Any]]]] = [
    *(
        ({"task": "send_email", "email": f"user{n}@example.com", "subject": "Welcome"}, {})
        for n in range(1, 13)
    ),
    ({"task": "data_import", "source": "customers.csv", "rows": 5000}, {"priority": "high"}),
    ({"task": "data_import", "source": "orders.csv", "rows": 20000}, {"priority": "low"}),
    ({"task": "send_email", "email": "later@example.com"}, {"delay": dt.timedelta(seconds=3)}),
    ({"task": "sleep", "seconds": 1}, {"delay": dt.timedelta(seconds=2)}),
    ({"task": "flaky", "p": 0.5}, {"max_retries": 5}),
    ({"task": "fail", "message": "the demo's failing job"}, {"max_retries": 2}),
]
TIMEOUT: Final = 60.0


def enqueue(app: Conductor) -> list[int]:
    return [app.enqueue(payload, **options) for payload, options in DEMO_JOBS]


def _progress(app: Conductor, ids: list[int]) -> tuple[int, dict[str, int]]:
    counts: dict[str, int] = {}
    done = 0
    for job_id in ids:
        status = app.job(job_id)["status"]
        counts[status] = counts.get(status, 0) + 1
        done += status in TERMINAL_STATES
    return done, counts


def _refuse_used(app: Conductor) -> None:
    """Refuse a database that already holds jobs: the demo's would mix with them (a second
    demo used to add to the first one's jobs, and `demo` in a project directory to its
    real ./conductor.db). Nothing is deleted: the user picks a new path."""
    held = app.stats().overall.total
    if held:
        raise InvalidInput(
            f"{app.settings.db} already holds {held} job{'s' * (held != 1)}; the demo needs "
            "an empty database: expected --db with a new path (e.g. --db demo.db), or remove "
            "this one first"
        )


HORIZON: Final = dt.timedelta(minutes=1)
"""The demo's worker runs in burst mode with this horizon: it keeps going while a retry
or a delayed job falls due within it, so every demo job finishes (the flaky job's five
retries back off for about 15 s at most) and then the worker stops by itself."""


def run(settings: Settings, out: TextIO = sys.stderr) -> list[int]:
    """Enqueue the demo jobs, run a burst worker with a horizon until the work runs out."""
    # Imported here: `conductor --help` loads this module to list the command.
    from conductor.engine.runtime import Engine
    from conductor.observe import logs

    logs.configure(quiet=True)
    logs.LOGGER.setLevel(logging.ERROR)  # the progress line says it all
    with Conductor(settings=settings) as app:
        _refuse_used(app)
        ids = enqueue(app)
        out.write(f"enqueued {len(ids)} demo jobs into {settings.db}; running them...\n")
        config = WorkerConfig(concurrency=4, poll_interval=0.5, burst=True, horizon=HORIZON)
        engine = Engine(settings, config)
        engine.start()
        runner = threading.Thread(target=engine.run, daemon=True)
        runner.start()
        live = out.isatty()
        shown = ""
        deadline = time.monotonic() + TIMEOUT
        try:
            while True:
                drained = not runner.is_alive()  # looked at first: the last line is current
                done, counts = _progress(app, ids)
                line = f"[{done}/{len(ids)} finished] " + "  ".join(
                    f"{status} {n}" for status, n in sorted(counts.items())
                )
                if line != shown:
                    out.write(("\r\033[K" if live else "") + line + ("" if live else "\n"))
                    out.flush()
                    shown = line
                if drained or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            engine.request_stop()
            runner.join(30)
        out.write("\n\n" if live else "\n")
    return ids


@click.command()
@db_option
def demo(db: str | None) -> None:
    """Run a realistic mix of jobs in-process with live progress, then show them.

    Enqueues the demo jobs, runs a burst worker with a one-minute horizon (as `worker
    --burst --horizon 1m`: retries included) until every one has finished, and prints
    `conductor jobs` and `conductor stats`. The database must hold no jobs yet: a demo
    never mixes its jobs with others (give a new --db to run it again).
    """
    settings = Settings.from_env(db)
    run(settings)
    context = click.get_current_context()
    context.invoke(load(COMMANDS["jobs"]), db=db, limit=0)
    echo("")
    context.invoke(load(COMMANDS["stats"]), db=db)
