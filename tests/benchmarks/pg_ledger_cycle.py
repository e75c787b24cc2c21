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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg_peers
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
    args = parser.parse_args()
    enqueued = max(args.jobs, args.enqueued or 0)
    with pg_peers._database(pg_peers.ADMIN_URL) as (_name, url):
        settings = Settings(db=url)
        with Conductor(settings=settings) as app:
            for first in range(0, enqueued, 1000):
                app.enqueue_many([{"task": "noop"}] * min(1000, enqueued - first))
        ledger = open_ledger(settings, create=False)
        try:
            done, cpu, wall = writer_cycle.drive(ledger, args.jobs, args.batch)
        finally:
            ledger.close()
    writer_cycle.report(done, args.batch, cpu, wall)


if __name__ == "__main__":
    main()
