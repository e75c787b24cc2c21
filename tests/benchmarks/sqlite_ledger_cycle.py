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
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import writer_cycle

from conductor import Conductor
from conductor.domain.config import Settings
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
            done, cpu, wall = writer_cycle.drive(ledger, args.jobs, args.batch)
        finally:
            ledger.close()
    writer_cycle.report(done, args.batch, cpu, wall)


if __name__ == "__main__":
    main()
