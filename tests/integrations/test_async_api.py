"""`AsyncConductor`: Conductor's calls as coroutines that never block the event loop, on
both backends; results awaited on one shared listener, not a thread per waiter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor import (
    AsyncConductor,
    Conductor,
    ConductorError,
    JobFailedError,
    ResultTimeout,
    UnknownJob,
)
from conductor.client.threads import HandlePool, PoolClosed
from conductor.domain.config import Settings
from conductor.integrations.asgi import embedded_worker
from tests.integrations.support import conductor_threads, no_conductor_threads, registry, until

HOLD_SQLITE = """
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
select.select([sys.stdin], [], [], 60)
conn.execute("COMMIT")
"""

HOLD_POSTGRES = """
import select, sys, psycopg
from conductor.ledger.postgres.connection import parse
target = parse(sys.argv[1])
with psycopg.connect(target.conninfo, autocommit=True) as conn:
    conn.execute("BEGIN")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (target.chain_lock,))
    print("locked", flush=True)
    select.select([sys.stdin], [], [], 60)
    conn.execute("COMMIT")
"""
"""Another process's long write, held until the test says (a line on stdin), or for a
minute: an implementation that blocked the loop would otherwise wait for ever for a
release only the loop can send, instead of failing. On PostgreSQL the lock is the one
every append takes to chain its events (docs/architecture.md, "PostgreSQL: one chain,
many hosts")."""


def test_enqueues_wait_on_another_processs_write_lock_while_the_event_loop_keeps_ticking(
    db: str, backend: str
) -> None:
    Conductor(db).close()  # the schema exists before the lock is taken
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SQLITE if backend == "sqlite" else HOLD_POSTGRES, db],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"

        async def main() -> list[int]:
            settings = Settings(db=db, busy_timeout=60)
            async with AsyncConductor(settings=settings, threads=2) as app:
                enqueues = [
                    asyncio.create_task(app.enqueue({"task": "echo", "value": n})) for n in range(3)
                ]
                beats = 0
                while beats < 200:  # the heartbeat: each one is a turn of the loop
                    await asyncio.sleep(0)
                    beats += 1
                # Two enqueues sit in the pool's threads, waiting for the lock; the third
                # waits for a thread. None has finished, and the loop ran all along.
                assert not any(task.done() for task in enqueues)
                assert conductor_threads() == ["conductor-async-1", "conductor-async-2"]
                assert holder.stdin is not None
                holder.stdin.write("release\n")
                holder.stdin.flush()
                return list(await asyncio.gather(*enqueues))

        assert sorted(asyncio.run(main())) == [1, 2, 3]
    finally:
        holder.kill()
        holder.wait(60)
    with Conductor(db) as app:
        assert [row["status"] for row in app.jobs()] == ["pending"] * 3


def test_many_enqueues_at_once_share_a_bounded_pool_and_get_distinct_ids(db: str) -> None:
    async def main() -> tuple[list[int], list[str]]:
        async with AsyncConductor(db, threads=3) as app:
            ids = await asyncio.gather(
                *(app.enqueue({"task": "echo", "value": n}) for n in range(40))
            )
            return list(ids), conductor_threads()

    ids, threads = asyncio.run(main())
    assert sorted(ids) == list(range(1, 41))
    assert threads == ["conductor-async-1", "conductor-async-2", "conductor-async-3"]
    assert no_conductor_threads()  # closing stopped them all


def test_awaited_results_arrive_when_the_worker_finishes_with_one_listening_thread(
    db: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"

    async def main() -> list[object]:
        async with (
            AsyncConductor(db, threads=2) as app,
            embedded_worker(db, registry=registry(), concurrency=4, poll_interval=0.2),
        ):
            ids = await app.enqueue_many(
                [{"task": "gated", "gate": str(gate), "value": n} for n in range(10)]
            )
            waiters = [asyncio.create_task(app.result(job, timeout=None)) for job in ids]
            await until(lambda: _running(app, ids[0]), "the first job to start")
            ours = [name for name in conductor_threads() if name.startswith("conductor-async")]
            assert len(ours) <= 2
            assert conductor_threads().count("conductor-results") == 1
            assert not any(waiter.done() for waiter in waiters)
            gate.touch()
            return list(await asyncio.gather(*waiters))

    assert asyncio.run(main()) == list(range(10))


async def _running(app: AsyncConductor, job: int) -> bool:
    return (await app.job(job))["status"] == "in_progress"


def test_cancelling_an_awaited_result_leaves_the_other_waiters_to_get_theirs(
    db: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"

    async def main() -> tuple[bool, object]:
        async with (
            AsyncConductor(db) as app,
            embedded_worker(db, registry=registry(), poll_interval=0.2),
        ):
            job = await app.enqueue({"task": "gated", "gate": str(gate), "value": "done"})
            given_up = asyncio.create_task(app.result(job, timeout=None))
            kept = asyncio.create_task(app.result(job, timeout=None))
            await until(lambda: _running(app, job), "the job to start")
            given_up.cancel()
            with pytest.raises(asyncio.CancelledError):
                await given_up
            gate.touch()
            return given_up.cancelled(), await kept

    assert asyncio.run(main()) == (True, "done")
    assert no_conductor_threads()


def test_result_raises_the_jobs_error_a_timeout_or_unknown_job(db: str) -> None:
    async def main() -> None:
        async with (
            AsyncConductor(db) as app,
            embedded_worker(db, registry=registry(), queues="work", poll_interval=0.2),
        ):
            failing = await app.enqueue({"task": "boom"}, queue="work", max_retries=0)
            with pytest.raises(JobFailedError, match="it went boom") as failed:
                await app.result(failing, timeout=None)
            assert failed.value.error_type is not None
            assert failed.value.error_type.endswith("ValueError")
            idle = await app.enqueue({"task": "echo"}, queue="nobody-works-here")
            with pytest.raises(ResultTimeout, match=f"job {idle} is pending after waiting"):
                await app.result(idle, timeout=0.2)
            assert not (await app.outcome(idle)).finished
            with pytest.raises(UnknownJob):
                await app.result(999)

    asyncio.run(main())


def test_reads_and_operator_actions_mirror_conductor(db: str) -> None:
    async def main() -> None:
        async with AsyncConductor(db) as app:
            first, second = await app.enqueue_many([{"task": "echo"}, {"task": "echo"}])
            again = await app.enqueue_each(
                [{"task": "echo", "value": 1}], unique_key="only-once", queue="q"
            )
            duplicate = await app.enqueue({"task": "echo", "value": 1}, unique_key="only-once")
            assert duplicate == again[0].id
            await app.cancel(first, by="ops")
            with pytest.raises(ConductorError, match="cancel"):
                await app.cancel(first)
            await app.retry(first)
            report = await app.cancel_many([first, second, 999])
            assert sorted(report.done) == [first, second]
            assert list(report.refused) == [999]
            assert (await app.stats()).overall.cancelled == 2
            assert [e.type for e in await app.history(first)][:3] == [
                "enqueued",
                "cancelled",
                "requeued",
            ]
            assert [row["id"] for row in await app.jobs(status="pending")] == [again[0].id]
            assert await app.call(lambda c: c.pause_queue("q", by="ops")) is True

    asyncio.run(main())


def test_a_facade_refuses_calls_once_closed_and_opening_a_missing_database_fails(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        app = AsyncConductor(str(tmp_path / "app.db"))
        await app.open()
        await app.close()
        with pytest.raises(PoolClosed, match="closed"):
            await app.job(1)
        missing = AsyncConductor(str(tmp_path / "missing.db"), create=False)
        with pytest.raises(ConductorError, match=r"missing\.db"):
            await missing.open()
        await missing.close()

    asyncio.run(main())
    assert not (tmp_path / "missing.db").exists()


class Handle:
    """A stand-in for a Conductor: which thread opened it, and whether it was closed."""

    def __init__(self) -> None:
        self.thread = threading.current_thread().name
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@given(calls=st.integers(0, 30), size=st.integers(1, 4), withdrawn=st.sets(st.integers(0, 29)))
def test_the_pool_runs_every_kept_call_once_within_its_size_and_closes_each_handle_once(
    calls: int, size: int, withdrawn: set[int]
) -> None:
    opened: list[Handle] = []

    def open_handle() -> Handle:
        opened.append(Handle())
        return opened[-1]

    gate = threading.Event()
    pool: HandlePool[Handle] = HandlePool(open_handle, size, "pool-test")
    ran: list[int] = []

    def work(n: int) -> Callable[[Handle], str]:
        def call(handle: Handle) -> str:
            gate.wait(30)
            ran.append(n)
            assert handle.thread == threading.current_thread().name
            return handle.thread

        return call

    futures = [pool.submit(work(n)) for n in range(calls)]
    for n in withdrawn:
        if n < calls:
            futures[n].cancel()  # succeeds only for a call no thread has started
    gate.set()
    pool.close().result(30)
    kept = [n for n, future in enumerate(futures) if not future.cancelled()]
    assert sorted(ran) == kept
    assert pool.threads <= size
    assert len(opened) <= size
    assert all(handle.closed == 1 for handle in opened)
