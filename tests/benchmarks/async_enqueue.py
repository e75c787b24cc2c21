"""What `AsyncConductor` costs an enqueue, and whether the event loop stays free.

Per round, on a fresh ledger each: N enqueues through `Conductor.enqueue` one after the
other; N awaited one after the other through `AsyncConductor.enqueue`; N at once
(`asyncio.gather`) through the facade's pool. Beside the async runs a heartbeat coroutine
sleeps 1 ms at a time: its ticks per second say how free the loop stayed (about 1,000 at
best; a loop blocked by the enqueues would tick about as often as they finish).

`python tests/benchmarks/async_enqueue.py [--db sqlite|postgres] [--rounds 5] [--jobs 500]`
(docs/performance.md, "Issue 17: the async API"). PostgreSQL takes a fresh schema of
`postgresql://postgres@127.0.0.1:5432/test` per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid

from conductor import AsyncConductor, Conductor

PG = "postgresql://postgres@127.0.0.1:5432/test?schema=bench_{}"


def fresh(kind: str, directory: str, made: list[str]) -> str:
    name = uuid.uuid4().hex[:12]
    if kind == "sqlite":
        return os.path.join(directory, f"{name}.db")
    made.append(f"bench_{name}")
    return PG.format(name)


def drop(schemas: list[str]) -> None:
    """The PostgreSQL schemas this run made, dropped after it."""
    if not schemas:
        return
    import psycopg

    with psycopg.connect(PG.partition("?")[0], autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def plain(url: str, jobs: int) -> float:
    with Conductor(url) as app:
        app.enqueue({"task": "noop"})  # opens the ledger outside the timing
        began = time.perf_counter()
        for _ in range(jobs):
            app.enqueue({"task": "noop"})
        return jobs / (time.perf_counter() - began)


async def awaited(url: str, jobs: int, together: bool) -> tuple[float, float]:
    async with AsyncConductor(url) as app:
        await app.enqueue({"task": "noop"})
        ticks = 0
        done = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.001)
                ticks += 1

        beating = asyncio.create_task(heartbeat())
        began = time.perf_counter()
        if together:
            await asyncio.gather(*(app.enqueue({"task": "noop"}) for _ in range(jobs)))
        else:
            for _ in range(jobs):
                await app.enqueue({"task": "noop"})
        elapsed = time.perf_counter() - began
        done.set()
        await beating
        return jobs / elapsed, ticks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=500)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"sync": [], "async, awaited": [], "async, gathered": []}
    ticks: dict[str, list[float]] = {"async, awaited": [], "async, gathered": []}
    made: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        try:
            for _ in range(args.rounds):
                rates["sync"].append(plain(fresh(args.db, directory, made), args.jobs))
                for name, together in (("async, awaited", False), ("async, gathered", True)):
                    url = fresh(args.db, directory, made)
                    rate, tick = asyncio.run(awaited(url, args.jobs, together))
                    rates[name].append(rate)
                    ticks[name].append(tick)
        finally:
            drop(made)
    for name, values in rates.items():
        line = f"{args.db} {name}: {statistics.median(values):,.0f} enqueues/s "
        line += f"({min(values):,.0f}-{max(values):,.0f})"
        if name in ticks:
            line += f", heartbeat {statistics.median(ticks[name]):,.0f} ticks/s"
        print(line)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
