"""The fixed sequence of write transactions `test_crash_at_every_write` crashes inside.

Run as `python -m tests.reliability.crash_scenario DB [FIRST]`: it runs steps FIRST..end
(default 1), one transaction each, through the public API as the engine's writer does.
Each step reads what it needs (attempt numbers) from the database, so the steps after a
crash can run in a fresh process. With the fault hook armed (`CONDUCTOR_FAULT_AT`) it
prints, as JSON, the ledger's statement count after each step (the COMMIT boundaries)
and the last event seq after each step.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable

from conductor import Conductor, ManualClock
from conductor.domain import decisions as decide
from conductor.domain.config import Settings
from conductor.ledger.base import ClaimRequest

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)
QUEUES = ("default",)
STEPS = 7


def _attempt(app: Conductor, job_id: int) -> int:
    row = app.ledger.job(job_id)
    assert row is not None
    return row["attempts"]


def _settle(app: Conductor, now: dt.datetime, outcomes: list[decide.Outcome]) -> None:
    app.ledger.transact(
        [o.job_id for o in outcomes],
        lambda rows: [e for o in outcomes for e in decide.settle(rows.get(o.job_id), o, now=now)],
    )


def step(app: Conductor, n: int) -> None:
    now = START + dt.timedelta(hours=n)
    if n == 1:  # three jobs in one transaction
        app.enqueue_many([{"task": "noop", "i": i} for i in range(3)], max_retries=3)
    elif n == 2:  # claim all three
        claimed = app.ledger.claim(worker="w1", queues=QUEUES, limit=3, now=now, lease=LEASE)
        assert [job.id for job in claimed] == [1, 2, 3], claimed
    elif n == 3:  # job 1 completes
        _settle(app, now, [decide.Outcome(job_id=1, attempt=_attempt(app, 1))])
    elif n == 4:  # job 2 fails: attempt_failed + retry_scheduled
        _settle(
            app,
            now,
            [decide.Outcome(job_id=2, attempt=_attempt(app, 2), error_type="Boom", message="x")],
        )
    elif n == 5:  # job 3's worker is lost: rescued
        app.ledger.transact(
            [3], lambda rows: decide.rescue(rows.get(3), reason="lease expired", now=now)
        )
    elif n == 6:  # settle nothing and claim jobs 2 and 3 in one transaction, as the writer does
        request = ClaimRequest(worker="w2", queues=QUEUES, limit=5, now=now, lease=LEASE)
        _, claimed = app.ledger.transact([], lambda rows: [], claim=request)
        assert sorted(job.id for job in claimed) == [2, 3], claimed
    elif n == 7:  # both complete in one transaction
        _settle(app, now, [decide.Outcome(job_id=j, attempt=_attempt(app, j)) for j in (2, 3)])


def main(argv: list[str]) -> None:
    db, first = argv[0], int(argv[1]) if len(argv) > 1 else 1
    clock = ManualClock(START)
    with Conductor(settings=Settings(db=db), clock=clock, create=False) as app:
        count: Callable[[], int] = lambda: getattr(app.ledger._conn, "_count", -1)  # noqa: E731
        statements, seqs = [count()], [app.ledger.last_seq()]
        for n in range(first, STEPS + 1):
            step(app, n)
            statements.append(count())
            seqs.append(app.ledger.last_seq())
    print(json.dumps({"statements": statements, "seqs": seqs}))


if __name__ == "__main__":
    main(sys.argv[1:])
