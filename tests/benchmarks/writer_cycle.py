"""The Writer's cycle without the engine, for `pg_ledger_cycle.py` and
`sqlite_ledger_cycle.py`: one thread settling the jobs it claimed last time
(`run_started` and `completed`) and claiming a batch more, in one `Ledger.transact` each,
as the engine's Writer does, with no actors, slots or handlers."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Mapping

from conductor.domain import decisions as decide
from conductor.domain.events import NewEvent
from conductor.domain.job_row import JobRow
from conductor.engine import upkeep
from conductor.engine.messages import Began
from conductor.ledger.base import ClaimRequest, Ledger


def drive(ledger: Ledger, jobs: int, batch: int) -> tuple[int, float, float]:
    """Settle and claim until `jobs` are done or none is left: (done, CPU s, wall s)."""
    done = 0
    held: list[tuple[int, int]] = []
    began_cpu, began_wall = time.process_time(), time.perf_counter()
    while done < jobs:
        now = dt.datetime.now(dt.UTC)
        starts = [Began(job_id=j, attempt=a, at=now) for j, a in held]
        outcomes = [decide.Outcome(job_id=j, attempt=a, task="noop") for j, a in held]

        def settle(
            rows: Mapping[int, JobRow],
            starts: list[Began] = starts,
            outcomes: list[decide.Outcome] = outcomes,
            now: dt.datetime = now,
        ) -> list[NewEvent]:
            return upkeep.settle_batch(starts, outcomes, rows, now)

        claim = ClaimRequest(
            worker="bench",
            queues=("default",),
            limit=batch,
            now=now,
            lease=dt.timedelta(minutes=5),
        )
        _recorded, claimed = ledger.transact([j for j, _ in held], settle, claim=claim)
        done += len(held)
        held = [(c.id, c.attempt) for c in claimed]
        if not held and not claimed:
            break
    return done, time.process_time() - began_cpu, time.perf_counter() - began_wall


def report(done: int, batch: int, cpu: float, wall: float) -> None:
    """One JSON line: what a job cost the cycle, and the machine's load."""
    print(
        json.dumps(
            {
                "jobs": done,
                "batch": batch,
                "cpu_us_per_job": round(cpu / max(done, 1) * 1e6, 1),
                "jobs_per_s": round(done / wall) if wall else 0,
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    )
