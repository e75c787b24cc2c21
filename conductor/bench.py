"""`conductor bench`: the real stack on a fresh temporary database, measured.

Reports enqueue rate (batched API), end-to-end drain rate (jobs/s and events/s, with the
engine in this process or `--processes P` worker processes), pickup latency under a steady
stream (the time from a job's `enqueued` event to its `started` event, both stamped by the
same clock, for jobs enqueued in the worker's process and from another process), and
peak RSS. Default durability (synchronous=FULL) unless CONDUCTOR_SYNCHRONOUS says
otherwise. Figures depend on the machine: compare runs made side by side.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from conductor.client import Conductor
from conductor.clock import unstamp
from conductor.config import Settings, WorkerConfig
from conductor.engine import logs
from conductor.engine.runtime import Engine


@attrs.frozen(kw_only=True)
class BenchOptions:
    jobs: int = 10_000
    concurrency: int = 8
    task: str = "noop"
    processes: int = 1
    latency_rate: float = 200.0
    latency_seconds: float = 3.0


def _payload(task: str) -> dict[str, Any]:
    return {"task": "sleep", "seconds": 0.01} if task == "sleep" else {"task": "noop"}


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(cuts[94] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
    }


def _wait_done(app: Conductor, total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while app.stats().overall.completed + app.stats().overall.failed < total:
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark jobs did not finish in time")
        time.sleep(0.005)


def _start_engine(settings: Settings, concurrency: int) -> tuple[Engine, threading.Thread]:
    engine = Engine(settings, WorkerConfig(concurrency=concurrency, poll_interval=1.0))
    engine.start()
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    return engine, thread


def _worker_processes(
    db: Path, options: BenchOptions, *extra: str
) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conductor",
                "worker",
                "--db",
                str(db),
                "-q",
                "--concurrency",
                str(options.concurrency),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(options.processes)
    ]


def measure_drain(folder: Path, options: BenchOptions) -> dict[str, Any]:
    settings = Settings(db=str(folder / "drain.db"))
    payload = _payload(options.task)
    with Conductor(settings=settings) as app:
        started = time.perf_counter()
        for first in range(0, options.jobs, 1000):
            app.enqueue_many([payload] * min(1000, options.jobs - first))
        enqueue_seconds = time.perf_counter() - started
        events_before = app.ledger.last_seq()
        began = time.perf_counter()
        if options.processes == 1:
            engine, thread = _start_engine(settings, options.concurrency)
            _wait_done(app, options.jobs)
            elapsed = time.perf_counter() - began
            engine.request_stop()
            thread.join(60)
        else:
            workers = _worker_processes(Path(settings.db), options, "--burst")
            for process in workers:
                process.wait(600)
            elapsed = time.perf_counter() - began
        events = app.ledger.last_seq() - events_before
    return {
        "enqueue_jobs_per_s": round(options.jobs / enqueue_seconds),
        "jobs_per_s": round(options.jobs / elapsed),
        "events_per_s": round(events / elapsed),
        "drain_seconds": round(elapsed, 3),
    }


def _latencies(app: Conductor, ids: list[int]) -> list[float]:
    values = []
    for job_id in ids:
        history = app.ledger.history(job_id)
        enqueued = next(r for r in history if r.type == "enqueued")
        started = next(r for r in history if r.type == "started")
        values.append((unstamp(started.at) - unstamp(enqueued.at)).total_seconds())
    return values


def _stream(app: Conductor, options: BenchOptions) -> list[int]:
    """Enqueue one job at a time at a steady rate; returns their ids."""
    ids = []
    interval = 1.0 / options.latency_rate
    count = int(options.latency_rate * options.latency_seconds)
    next_at = time.perf_counter()
    for _ in range(count):
        ids.append(app.enqueue({"task": "noop"}))
        next_at += interval
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return ids


def measure_latency(folder: Path, options: BenchOptions) -> dict[str, Any]:
    results: dict[str, Any] = {}
    settings = Settings(db=str(folder / "latency-in.db"))
    with Conductor(settings=settings) as app:
        engine, thread = _start_engine(settings, options.concurrency)
        ids = _stream(app, options)
        _wait_done(app, len(ids))
        engine.request_stop()
        thread.join(60)
        results["in_process"] = _percentiles(_latencies(app, ids))
    settings = Settings(db=str(folder / "latency-cross.db"))
    with Conductor(settings=settings) as app:
        (worker,) = _worker_processes(Path(settings.db), attrs.evolve(options, processes=1))
        from conductor import wakeup

        deadline = time.monotonic() + 30
        while not any(wakeup.directory(settings.db).glob("*.sock")):
            if time.monotonic() > deadline:
                raise TimeoutError("worker process did not start")
            time.sleep(0.01)
        ids = _stream(app, options)
        _wait_done(app, len(ids))
        worker.terminate()
        worker.wait(60)
        results["cross_process"] = _percentiles(_latencies(app, ids))
    return results


def run(options: BenchOptions) -> dict[str, Any]:
    logs.configure(quiet=True)
    logs.LOGGER.setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="conductor-bench-"))
    try:
        result: dict[str, Any] = {
            "options": attrs.asdict(options),
            "synchronous": os.environ.get("CONDUCTOR_SYNCHRONOUS", "FULL").upper(),
            "cpus": os.cpu_count(),
        }
        result.update(measure_drain(folder, options))
        result["pickup_latency"] = measure_latency(folder, options)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result["peak_rss_mib"] = round(max(own, children) / 1024, 1)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def render(result: dict[str, Any]) -> str:
    latency = result["pickup_latency"]
    lines = [
        f"conductor bench: {result['options']['jobs']} {result['options']['task']} jobs, "
        f"concurrency {result['options']['concurrency']}, "
        f"{result['options']['processes']} process(es), synchronous={result['synchronous']}",
        f"  enqueue (batches of 1000)   {result['enqueue_jobs_per_s']:>10,} jobs/s",
        f"  drain, end to end          {result['jobs_per_s']:>10,} jobs/s",
        f"  events written              {result['events_per_s']:>10,} events/s",
    ]
    for name, label in (("in_process", "in process"), ("cross_process", "another process")):
        values = latency[name]
        lines.append(
            f"  pickup latency ({label:>15})  p50 {values['p50_ms']:.2f} ms  "
            f"p95 {values['p95_ms']:.2f} ms  p99 {values['p99_ms']:.2f} ms"
        )
    lines.append(f"  peak RSS                    {result['peak_rss_mib']:>10} MiB")
    return "\n".join(lines)
