"""`conductor batch ID`: one operator action read back from the audit trail.

`conductor retry --status failed` may move thousands of jobs; every event it appended
carries its batch id, the operator and the reason. This summarises them: what was done,
by whom, why, when, and to which jobs, so "who retried these 4,000 jobs, and why" is one
command. `conductor events --batch ID` lists the events themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

import click

from conductor.cli.options import db_option, echo, json_option, open_app, utf8
from conductor.cli.render import to_json, when
from conductor.domain.bulk import check_batch
from conductor.domain.errors import ConductorError, InvalidInput
from conductor.domain.events import JobCancelled, JobRequeued


def id_ranges(ids: Iterable[int]) -> str:
    """`1-3, 7, 9-12`: a batch's job ids, short however many there are in a row."""
    spans: list[list[int]] = []
    for job_id in sorted(set(ids)):
        if spans and job_id == spans[-1][1] + 1:
            spans[-1][1] = job_id
        else:
            spans.append([job_id, job_id])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


@click.command()
@click.argument("batch_id", metavar="ID", callback=utf8)
@json_option
@db_option
def batch(batch_id: str, as_json: bool, db: str | None) -> None:
    """Show one operator action: what it did, by whom, why, when and to which jobs.

    ID is the batch id `conductor cancel` or `retry` printed; every event of that command
    carries it. An id no event carries is an error (exit 1).
    """
    try:
        wanted = check_batch(batch_id)
    except InvalidInput as e:
        raise click.BadParameter(str(e), param_hint="'ID'") from None
    with open_app(db, create=False) as app:
        found = app.batch_events(wanted)
    if not found:
        raise ConductorError(
            f"no events carry batch {wanted}; expected a batch id printed by cancel or retry"
        )
    moves = [rec.event for rec in found if isinstance(rec.event, JobCancelled | JobRequeued)]
    summary = {
        "batch": wanted,
        "event": ", ".join(sorted({rec.type for rec in found})),
        "by": ", ".join(sorted({event.by for event in moves})),
        "reason": ", ".join(sorted({event.reason for event in moves})),
        "first": found[0].at,
        "last": found[-1].at,
        "jobs": [rec.job_id for rec in found],
    }
    if as_json:
        echo(to_json(summary))
        return
    count = len(found)
    echo(f"batch {wanted}: {summary['event']} {count} job{'s' * (count != 1)}")
    echo(f"  by      {summary['by']}")
    echo(f"  reason  {summary['reason']}")
    echo(f"  at      {when(found[0].at)} to {when(found[-1].at)}")
    echo(f"  jobs    {id_ranges(rec.job_id for rec in found)}")
