"""What every scenario uses: options, where its fresh databases go, a fresh engine or worker
process, filling and draining a database, percentiles, peak memory, timed commands.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from conductor.client import Conductor
from conductor.domain.clock import unstamp
from conductor.domain.config import DEFAULT_QUEUE, Settings, WorkerConfig
from conductor.engine.runtime import Engine
from conductor.ledger.open import is_postgres

SCENARIOS: Final = ("enqueue", "drain", "sleep", "latency", "processes", "scale")
DEFAULT_SCENARIOS: Final = ("enqueue", "drain", "sleep", "latency")
SLEEP_SECONDS: Final = 0.01
DRAIN_POLL: Final = 0.05
"""Seconds between looks at the counters during a drain. The end is read from the last
event's stamp, so the poll costs no accuracy; polled every 5 ms, the looks (and the GIL
hand-overs they force) took 2-20% off the rate measured."""
CPU_CONCURRENCY: Final = 1
"""Slots per worker process for CPU-bound jobs: threads of one process share its GIL, so
more slots add contention, not CPU (as Celery's prefork pool runs one task per child;
docs/operations.md, "Several worker processes")."""
SPIN_ITERATIONS: Final = 600_000
"""A CPU-bound job: 20 to 40 ms of pure Python on the 2-core test machines, long enough
that the engine's own work per job (well under a millisecond) does not decide the ratio."""


@attrs.frozen(kw_only=True)
class BenchOptions:
    jobs: int = 10_000
    concurrency: int = 8
    prefetch: int | None = attrs.field(factory=lambda: WorkerConfig().prefetch)
    processes: int = 1
    backlog: int | None = None
    latency_rate: float = 200.0
    latency_seconds: float = 3.0
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    queue_controls: bool = False
    """The drain with queue controls configured (`conductor bench --queue-controls`)."""


@attrs.define
class Places:
    """Where a bench's fresh databases go: new files in a temporary folder, or, given a
    `postgresql://` server, new schemas of its database (`bench_<random>`, whatever schema
    the URL named). `clean` removes them all: the folder, and every schema made."""

    folder: Path
    server: str | None = None
    made: list[str] = attrs.field(factory=list)

    @classmethod
    def make(cls, db: str | None) -> Places:
        folder = Path(tempfile.mkdtemp(prefix="conductor-bench-"))
        return cls(folder, db if db is not None and is_postgres(db) else None)

    def db(self, name: str) -> str:
        """A database no one has used, for the part of a scenario called `name`."""
        if self.server is None:
            return str(self.folder / f"{name}.db")
        from conductor.ledger.postgres import scratch

        location = scratch.fresh(self.server, "bench")
        self.made.append(location)
        return location

    def describe(self) -> dict[str, Any]:
        """The backend, and the settings its figures depend on."""
        if self.server is None:
            return {
                "backend": "sqlite",
                "synchronous": os.environ.get("CONDUCTOR_SYNCHRONOUS", "FULL").upper(),
            }
        from conductor.ledger.postgres import scratch

        return {"backend": "postgresql", **scratch.describe(self.server)}

    def clean(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.made:
            from conductor.ledger.postgres import scratch

            for location in self.made:
                try:
                    scratch.drop(location)
                except Exception as e:  # noqa: BLE001 - a leftover schema must not hide the figures
                    sys.stderr.write(f"warning: could not drop the bench's schema: {e}\n")


def _prefetch_name(prefetch: int | None) -> str:
    return "auto" if prefetch is None else str(prefetch)


def console_command() -> list[str]:
    """This interpreter's `conductor` script (a shim such as pyenv's adds its own start-up),
    else `python -m conductor`."""
    script = Path(sys.executable).with_name("conductor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "conductor"]


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(cuts[94] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
    }


def _wait_until(done: Callable[[], bool], timeout: float = 1800, poll: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark jobs did not finish in time")
        time.sleep(poll)


def _last_settled_at(app: Conductor) -> float:
    """Wall-clock seconds (`time.time`) stamped on the newest completion or failure: when
    a drain ended, however late the poll noticed it."""
    newest = app.events(types=("completed", "failed"), limit=1)
    return unstamp(newest[0].at).timestamp()


def _finished(app: Conductor) -> int:
    overall = app.stats().overall
    return overall.completed + overall.failed


def _start_engine(
    settings: Settings, options: BenchOptions, queues: tuple[str, ...] = (DEFAULT_QUEUE,)
) -> tuple[Engine, threading.Thread]:
    config = WorkerConfig(
        concurrency=options.concurrency,
        prefetch=options.prefetch,
        poll_interval=1.0,
        queues=queues,
    )
    engine = Engine(settings, config)
    engine.start()
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    return engine, thread


def _worker_process(db: str, options: BenchOptions, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *console_command(),
            "worker",
            "--db",
            db,
            "-q",
            "--concurrency",
            str(options.concurrency),
            "--prefetch",
            _prefetch_name(options.prefetch),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _fill(
    app: Conductor,
    payload: dict[str, Any],
    count: int,
    batch: int = 10_000,
    queue: str | None = None,
) -> float:
    """Enqueue `count` copies of `payload` in batches; returns jobs/s."""
    started = time.perf_counter()
    for first in range(0, count, batch):
        app.enqueue_many([payload] * min(batch, count - first), queue=queue)
    return count / (time.perf_counter() - started)


def _drain_in_process(
    settings: Settings,
    options: BenchOptions,
    count: int,
    queues: tuple[str, ...] = (DEFAULT_QUEUE,),
) -> dict[str, Any]:
    """Start the engine in this process and time it through `count` more finished jobs."""
    with Conductor(settings=settings) as app:
        target = _finished(app) + count
        events_before = app.ledger.last_seq()
        began = time.time()
        engine, thread = _start_engine(settings, options, queues)
        try:
            _wait_until(lambda: _finished(app) >= target, poll=DRAIN_POLL)
            elapsed = _last_settled_at(app) - began
        finally:
            engine.request_stop()
            thread.join(60)
        events = app.ledger.last_seq() - events_before
    return {
        "jobs_per_s": round(count / elapsed),
        "events_written_per_s": round(events / elapsed),
        "seconds": round(elapsed, 3),
    }


# -- scenarios ---------------------------------------------------------------------------


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """A process's own peak RSS (`VmHWM`), None once it is gone or off Linux. Not
    `getrusage`: on Linux its `ru_maxrss` survives `exec`, so a child starts at the size
    of the parent that forked it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _command_ms(*args: str, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([*console_command(), *args], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1000, 1)
