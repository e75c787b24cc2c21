"""The Writer's cycle on SQLite alone, as `pg_ledger_cycle.py` is on PostgreSQL: one thread
settling the K jobs it claimed last time (`run_started` and `completed`) and claiming K
more, in one `Ledger.transact` each, with no actors, slots or handlers.

`python tests/benchmarks/sqlite_ledger_cycle.py [--jobs 10000] [--batch 10] [--mix]`,
PYTHONPATH set to the checkout to measure. `--mix` enqueues jobs at three priorities, so
every claim seeks three ranks. Under `valgrind --tool=callgrind`, two runs with the same
`--enqueued` and different `--jobs` give the instructions a job costs (their difference
over the difference in jobs), which the machine's load does not move
(docs/performance.md, "Issue 17: priorities as ranks").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Mapping

from conductor import Conductor
from conductor.domain import decisions as decide
from conductor.domain.config import Settings
from conductor.domain.events import NewEvent
from conductor.domain.job_row import JobRow
from conductor.engine import upkeep
from conductor.engine.messages import Began
from conductor.ledger.base import ClaimRequest
from conductor.ledger.open import open_ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument(
        "--enqueued", type=int, default=None, help="jobs enqueued first (default: --jobs)"
    )
    parser.add_argument("--mix", action="store_true", help="jobs at three priorities")
    args = parser.parse_args()
    enqueued = max(args.jobs, args.enqueued or 0)
    priorities = ("high", "medium", "low") if args.mix else ("medium",)
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(db=os.path.join(directory, "cycle.db"))
        with Conductor(settings=settings) as app:
            for first in range(0, enqueued, 999):
                chunk = min(999, enqueued - first)
                for index, priority in enumerate(priorities):
                    share = chunk // len(priorities) + (index < chunk % len(priorities))
                    app.enqueue_many([{"task": "noop"}] * share, priority=priority)
        ledger = open_ledger(settings, create=False)
        try:
            done = 0
            held: list[tuple[int, int]] = []
            began_cpu, began_wall = time.process_time(), time.perf_counter()
            while done < args.jobs:
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
                    limit=args.batch,
                    now=now,
                    lease=dt.timedelta(minutes=5),
                )
                _recorded, claimed = ledger.transact([j for j, _ in held], settle, claim=claim)
                done += len(held)
                held = [(c.id, c.attempt) for c in claimed]
                if not held and not claimed:
                    break
            cpu = time.process_time() - began_cpu
            wall = time.perf_counter() - began_wall
        finally:
            ledger.close()
    print(
        json.dumps(
            {
                "jobs": done,
                "batch": args.batch,
                "cpu_us_per_job": round(cpu / max(done, 1) * 1e6, 1),
                "jobs_per_s": round(done / wall) if wall else 0,
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
