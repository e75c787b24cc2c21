"""What the PostgreSQL chain lock costs: conductor's appends next to the same inserts
without a chain, from 1, 2 and 4 processes at once.

    python tests/benchmarks/pg_chain_lock.py [--runs 3] [--transactions 400] [--batch 1 10]

Every process commits `--transactions` transactions of `--batch` new jobs each, as
producers enqueueing through the API would. Two systems, interleaved run by run:

* conductor - `Conductor.enqueue_many`: job rows locked, the chain lock taken, the batch
  numbered, hashed, folded into the read models and committed, one event per job;
* bare - the same event rows (same columns, same sizes) inserted into a plain table with a
  `bigserial` key and no lock, chain, fold or read model: what the server alone allows
  for that many commits, and the ceiling any design without a total order could reach.

The ratio bare/conductor at 4 processes is what one totally ordered, hash-chained log
costs on this server. Medians with min-max over the runs, with the load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from conductor import Conductor, Settings

SERVER = os.environ.get("CONDUCTOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_BARE = """
CREATE TABLE bare_events (
    seq bigserial PRIMARY KEY, job_id bigint NOT NULL, type text NOT NULL,
    version integer NOT NULL, at text NOT NULL, data text NOT NULL, trace text,
    prev_hash text NOT NULL, hash text NOT NULL
)"""


def _conductor(url: str, transactions: int, batch: int, start: Any) -> None:
    with Conductor(settings=Settings(db=url)) as app:
        start.wait()
        for _ in range(transactions):
            app.enqueue_many([{"task": "noop"}] * batch)


def _bare(url: str, transactions: int, batch: int, start: Any) -> None:
    schema = url.rsplit("schema=", 1)[1]
    conninfo = url.rsplit("?", 1)[0]
    row = (1, "enqueued", 1, "2026-12-07T00:00:00.000000Z", '{"payload":{"task":"noop"}}')
    with psycopg.connect(conninfo, autocommit=True, options=f"-c search_path={schema}") as conn:
        start.wait()
        for _ in range(transactions):
            with conn.pipeline(), conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO bare_events (job_id, type, version, at, data, trace, "
                    "prev_hash, hash) VALUES (%s, %s, %s, %s, %s, NULL, %s, %s)",
                    [(*row, "0" * 64, "f" * 64)] * batch,
                )


def measure(system: str, processes: int, transactions: int, batch: int) -> float:
    """Jobs (events) committed per second by `processes` processes of `system`."""
    schema = f"lock_{secrets.token_hex(4)}"
    url = f"{SERVER}?schema={schema}"
    if system == "conductor":
        with Conductor(settings=Settings(db=url)):
            pass  # create the schema before the clock starts
    else:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"SET search_path = {schema}")
            conn.execute(_BARE)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    target = _conductor if system == "conductor" else _bare
    children = [
        context.Process(target=target, args=(url, transactions, batch, start))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    start.wait()
    began = time.perf_counter()
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"{system} child exited {child.exitcode}")
    elapsed = time.perf_counter() - began
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return processes * transactions * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transactions", type=int, default=400)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    results: dict[str, list[float]] = {}
    loads = []
    for run in range(options.runs):
        for batch in options.batch:
            for processes in (1, 2, 4):
                for system in ("conductor", "bare") if run % 2 == 0 else ("bare", "conductor"):
                    key = f"{system} batch={batch} processes={processes}"
                    rate = measure(system, processes, options.transactions, batch)
                    results.setdefault(key, []).append(rate)
                    print(f"run {run + 1}: {key}: {rate:,.0f} jobs/s", file=sys.stderr)
        loads.append(os.getloadavg()[0])
    summary = {
        key: {"median": statistics.median(v), "min": min(v), "max": max(v)}
        for key, v in results.items()
    }
    if options.json:
        print(json.dumps({"results": summary, "load": loads}, indent=2))
        return
    print(f"load average (1 min) after each run: {', '.join(f'{x:.2f}' for x in loads)}")
    print("| batch | processes | conductor jobs/s | bare inserts/s | bare / conductor |")
    print("|---|---|---|---|---|")
    for batch in options.batch:
        for processes in (1, 2, 4):
            ours = summary[f"conductor batch={batch} processes={processes}"]
            bare = summary[f"bare batch={batch} processes={processes}"]
            print(
                f"| {batch} | {processes} | {ours['median']:,.0f} "
                f"({ours['min']:,.0f}-{ours['max']:,.0f}) | {bare['median']:,.0f} "
                f"({bare['min']:,.0f}-{bare['max']:,.0f}) | "
                f"{bare['median'] / ours['median']:.2f} |"
            )


if __name__ == "__main__":
    main()
