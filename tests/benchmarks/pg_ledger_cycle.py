"""The Writer's cycle on PostgreSQL alone, timed by this process's CPU: one thread
settling the K jobs it claimed last time (`run_started` and `completed`) and claiming K
more, in one `Ledger.transact` each, as the engine's Writer does, with no actors, slots
or handlers. What a job costs the storage path in the worker, client side: psycopg's
statements, the fold, the chain, with the server's answers awaited.

`python tests/benchmarks/pg_ledger_cycle.py [--jobs 10000] [--batch 10]`, PYTHONPATH set to
the checkout to measure, alternating checkouts (docs/performance.md, "PostgreSQL, second
round"). A fresh database per run, dropped after. Under `valgrind --tool=callgrind`, two
runs with the same `--enqueued` and different `--jobs` give the instructions a job costs
(their difference over the difference in jobs), which the machine's load does not move.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg_peers

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
    args = parser.parse_args()
    enqueued = max(args.jobs, args.enqueued or 0)
    with pg_peers._database(pg_peers.ADMIN_URL) as (_name, url):
        settings = Settings(db=url)
        with Conductor(settings=settings) as app:
            for first in range(0, enqueued, 1000):
                app.enqueue_many([{"task": "noop"}] * min(1000, enqueued - first))
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
            cpu = time.process_time() - began_cpu
            wall = time.perf_counter() - began_wall
        finally:
            ledger.close()
    print(
        json.dumps(
            {
                "jobs": args.jobs,
                "batch": args.batch,
                "cpu_us_per_job": round(cpu / max(args.jobs, 1) * 1e6, 1),
                "jobs_per_s": round(args.jobs / wall) if wall else 0,
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
