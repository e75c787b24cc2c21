"""The one task every system in the peer benchmark runs, and each system's registration of it.

`record(sent)` appends two doubles to a file of its own process: `sent`, the time the
producer stamped just before enqueueing (0.0 for drain jobs), and the time the task body
started. The harness (`peers.py`) counts completions by the files' sizes and reads the
stamps afterwards, so every system is timed by the same code, on the same clock, and no
system's own bookkeeping (results, ledger) is read. One `os.write` of 16 bytes to an
`O_APPEND` file is one atomic append on Linux, so threads need no lock to write.

Workers import this module by name with `PYTHONPATH` set to this directory:

* conductor: `conductor worker --app peer_tasks`; `bench_record` is registered only when
  conductor is already imported, so the other systems' workers do not import it.
* huey: `huey_consumer peer_tasks.huey` (a `SqliteHuey` on `BENCH_HUEY_DB`).
* RQ: jobs name `peer_tasks.record` itself.
* Celery: `celery -A peer_tasks:celery_app` (broker `BENCH_BROKER_URL`, queue
  `BENCH_CELERY_QUEUE`).
* procrastinate: `procrastinate --app peer_tasks.procrastinate_app worker` (the database
  `BENCH_PG_URL`, a pool of `BENCH_PG_POOL` connections); its task is `async def`, as its
  docs recommend for concurrency (a sync task would run in a thread per job).
* pgqueuer: `pgqueuer_worker`, which does what `pgq run peer_tasks:pgqueuer_main` does
  (pgqueuer 1.6.0's `pgq run` fails before it starts with typer 0.29: its `--log-level`
  parser hands a str where an enum is read), with one asyncpg connection to `BENCH_PG_URL`
  (the driver and connection shape its performance guide recommends for a worker); the
  `sent` stamp travels as the job's payload, the decimal text of the float.

The huey, Celery and procrastinate apps are built on first attribute access (PEP 562
`__getattr__`), so importing this module pulls in none of those libraries.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

STAMP = struct.Struct("<dd")
"""One record: (sent, started), seconds since the epoch (`time.time()`)."""
STAMPS_ENV = "BENCH_STAMPS"
HUEY_TASK = "record"
CELERY_TASK = "peer_tasks.record"
PG_TASK = "record"
"""The task's name in procrastinate and the entrypoint's in pgqueuer."""
PG_URL_ENV = "BENCH_PG_URL"
PG_POOL_ENV = "BENCH_PG_POOL"

_lock = threading.Lock()
_fd: int | None = None
_fd_pid = 0


def _stamp_file() -> int:
    global _fd, _fd_pid  # noqa: PLW0603 - one file per process, opened on first use
    pid = os.getpid()
    if _fd is None or _fd_pid != pid:  # a forked child writes a file of its own
        with _lock:
            if _fd is None or _fd_pid != pid:
                folder = Path(os.environ[STAMPS_ENV])
                _fd = os.open(
                    folder / f"stamps-{pid}.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
                )
                _fd_pid = pid
    return _fd


def record(sent: float = 0.0, **_: object) -> None:
    """The task: note when it started, next to when its producer sent it."""
    started = time.time()
    os.write(_stamp_file(), STAMP.pack(sent, started))


def make_huey(path: str) -> tuple[Any, Any]:
    """A `SqliteHuey` on `path` with huey's shipped defaults, and `record` registered on it."""
    from huey import SqliteHuey

    huey = SqliteHuey("bench", filename=path)
    return huey, huey.task(name=HUEY_TASK)(record)


def make_celery(broker_url: str, queue: str) -> Any:
    """A Celery app on a Redis broker with no result backend, `record` registered."""
    from celery import Celery

    app = Celery("peer_tasks", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,  # no result backend: completion is read from the stamps
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=CELERY_TASK)(record)
    return app


async def _record_async(sent: float = 0.0) -> None:
    record(sent)


def make_procrastinate(url: str, pool_size: int) -> Any:
    """A procrastinate `App` on `url` with `record` registered as the async task `record`.

    The pool may grow to `pool_size` (`max_size`; procrastinate's docs ask for the worker's
    concurrency plus one when jobs are short); it opens with psycopg_pool's default of 4 or
    fewer (the server's connection slots are shared)."""
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=url, min_size=min(4, pool_size), max_size=pool_size
    )
    app = procrastinate.App(connector=connector)
    app.task(name=PG_TASK)(_record_async)
    return app


@contextlib.asynccontextmanager
async def pgqueuer_main() -> AsyncIterator[Any]:
    """pgqueuer's factory (`pgq run peer_tasks:pgqueuer_main`): one asyncpg connection."""
    import asyncpg
    from pgqueuer import PgQueuer

    connection = await asyncpg.connect(dsn=os.environ[PG_URL_ENV])
    try:
        pgq = PgQueuer.from_asyncpg_connection(connection)

        @pgq.entrypoint(PG_TASK)
        async def _record_job(job: Any) -> None:
            record(float(job.payload) if job.payload else 0.0)

        yield pgq
    finally:
        await connection.close()


def pgqueuer_worker(batch_size: int, mode: str) -> None:
    """The body of `pgq run peer_tasks:pgqueuer_main --batch-size B --mode M`, with its
    defaults for every other option: pgqueuer's INFO logging, its event loop (uvloop when
    installed), its supervisor."""
    from datetime import timedelta

    from pgqueuer import types
    from pgqueuer.adapters.cli import cli, supervisor
    from pgqueuer.core import logconfig

    logconfig.setup_fancy_logger(logconfig.LogLevel.INFO)
    cli.asyncio_run(
        supervisor.run(
            pgqueuer_main,
            batch_size=batch_size,
            mode=types.QueueExecutionMode[mode],
            dequeue_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=30),
        )
    )


def __getattr__(name: str) -> Any:
    if name == "procrastinate_app":
        value = make_procrastinate(os.environ[PG_URL_ENV], int(os.environ[PG_POOL_ENV]))
    elif name == "huey":
        value = make_huey(os.environ["BENCH_HUEY_DB"])[0]
    elif name == "celery_app":
        value = make_celery(os.environ["BENCH_BROKER_URL"], os.environ["BENCH_CELERY_QUEUE"])
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


if "conductor" in sys.modules:  # a conductor worker (`--app peer_tasks`) or the harness
    from conductor import task

    task("bench_record")(record)
