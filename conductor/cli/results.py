"""`conductor result`: what a finished job returned, or why it returned nothing."""

from __future__ import annotations

import sys
from typing import Any, Final

import click

from conductor.cli.options import Whole, bindable, db_option, echo, json_option, open_app
from conductor.cli.render import to_json
from conductor.domain.config import parse_duration
from conductor.domain.errors import JobFailedError

EXIT_NOT_FINISHED: Final = 3
"""The job has not finished (after `--wait`): distinct from 1, a failed or cancelled job
(or an error), so a script can tell "not yet" from "never"."""


def _document(job_id: int, status: str, error: Any, value: Any) -> dict[str, Any]:
    """The `--json` answer: id, status, and the result or the error."""
    document: dict[str, Any] = {"id": job_id, "status": status}
    if isinstance(error, JobFailedError):
        document["error"] = {
            "type": error.error_type,
            "message": error.message,
            "reason": error.reason,
            "traceback": error.traceback,
        }
    elif error is not None:
        document["error"] = {"by": error.by, "reason": error.reason}
    else:
        document["result"] = value
    return document


@click.command()
@click.argument("job_id", type=Whole(1, None), callback=bindable, metavar="ID")
@click.option(
    "--wait",
    metavar="DURATION",
    help="Wait up to this long for the job to finish (e.g. 30s) [default: no wait].",
)
@click.option(
    "--traceback", "show_traceback", is_flag=True, help="For a failed job, print its traceback too."
)
@json_option
@db_option
def result(
    job_id: int, wait: str | None, show_traceback: bool, as_json: bool, db: str | None
) -> None:
    """Print a finished job's result: its return value as JSON (exit 0).

    A failed job's result is its error (exit 1: the type and message on stderr, the
    traceback too with --traceback or --json); a cancelled job has none (exit 1). A job
    that has not finished, after --wait if given, exits 3. --json prints an object with
    the id, the status and the result or the error, whatever the status (and the same
    line on stderr and exit code).
    """
    timeout = 0.0 if wait is None else parse_duration(wait, "--wait").total_seconds()
    with open_app(db, create=False) as app:
        outcome = app.outcome(job_id, timeout=timeout)
    value = outcome.value if outcome.error is None else None
    if as_json:
        echo(to_json(_document(job_id, outcome.status, outcome.error, value)))
    elif outcome.error is None and outcome.finished:
        echo(to_json(value))
    if outcome.error is not None:
        error = outcome.error
        if show_traceback and isinstance(error, JobFailedError) and error.traceback:
            sys.stderr.write(error.traceback.rstrip() + "\n")
        raise error  # one line on stderr, exit 1 (after the JSON, with --json)
    if not outcome.finished:
        waited = f" after waiting {wait}" if wait is not None else ""
        sys.stderr.write(f"error: job {job_id} is {outcome.status}{waited}; no result yet\n")
        raise click.exceptions.Exit(EXIT_NOT_FINISHED)
