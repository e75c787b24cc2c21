"""What transactional enqueue costs a worker's claims on PostgreSQL.

Run as a script (pytest ignores this directory):

    python tests/benchmarks/intake_bench.py [--server postgresql://postgres@127.0.0.1:5432/test]
        [--claims 1000] [--rounds 3]

In a schema of its own (dropped at the end), times `Ledger.transact` claims of up to 8
jobs, with the intake take as shipped and with it replaced by a no-op, alternately:

* full claims, 8 due jobs each: the busy path, where the take is skipped;
* idle claims, nothing due: where the take is one more statement.

Each figure is the median of `--claims` claims.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import statistics
import time
from typing import Any

import psycopg

from conductor import Conductor
from conductor.ledger.base import ClaimRequest
from conductor.ledger.postgres import intake


def median_claim_us(app: Conductor, queue: str, claims: int) -> float:
    took = []
    for _ in range(claims):
        request = ClaimRequest(
            worker="bench",
            queues=(queue,),
            limit=8,
            now=dt.datetime.now(dt.UTC),
            lease=dt.timedelta(seconds=30),
        )
        start = time.perf_counter()
        app.ledger.transact((), lambda rows: [], claim=request)
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    schema = f"intake_bench_{secrets.token_hex(4)}"
    app = Conductor(f"{args.server}?schema={schema}")
    try:
        due = 2 * args.rounds * args.claims * 8
        for start in range(0, due, 10_000):
            app.enqueue_many([{"task": "noop"}] * min(10_000, due - start))
        never = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        app.enqueue_many([{"task": "noop"}], queue="later", at=never)
        shipped = intake.take

        def skipped(conn: Any, now: dt.datetime) -> list[Any]:
            return []

        for round_ in range(args.rounds):
            for queue, label in (("default", "full claims"), ("later", "idle claims")):
                intake.take = shipped
                with_take = median_claim_us(app, queue, args.claims)
                intake.take = skipped  # type: ignore[assignment]
                without = median_claim_us(app, queue, args.claims)
                print(
                    f"round {round_} {label}: median {with_take:.0f} us with the intake take, "
                    f"{without:.0f} us without ({with_take - without:+.0f} us)"
                )
        intake.take = shipped
    finally:
        app.close()
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
