"""One function per scenario: each measures one figure of docs/performance.md on its own
fresh database.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any, Final

import attrs

from conductor.bench.harness import (
    CPU_CONCURRENCY,
    SLEEP_SECONDS,
    SPIN_ITERATIONS,
    BenchOptions,
    Places,
    _command_ms,
    _drain_in_process,
    _fill,
    _finished,
    _percentiles,
    _start_engine,
    _wait_until,
    _worker_process,
    console_command,
    peak_rss_mib,
)
from conductor.client import Conductor
from conductor.domain.clock import unstamp
from conductor.domain.config import DEFAULT_QUEUE, Settings
from conductor.domain.queue_controls import MAX_LIMIT


def measure_enqueue(places: Places, options: BenchOptions) -> dict[str, Any]:
    with Conductor(settings=Settings(db=places.db("enqueue-api"))) as app:
        api_rate = _fill(app, {"task": "noop"}, options.jobs, batch=1_000)
    whole = _enqueue_file_seconds(places, options.jobs)
    one = _enqueue_file_seconds(places, 1)
    return {
        "enqueue_many_jobs_per_s": round(api_rate),
        "enqueue_file_jobs_per_s": round(options.jobs / whole),
        "enqueue_file_note": "wall time of the command, start-up included",
        "enqueue_file_batch_jobs_per_s": round((options.jobs - 1) / max(whole - one, 1e-9)),
        "enqueue_file_batch_note": "the same less a one-line file's run: the batch path alone",
    }


def _enqueue_file_seconds(places: Places, count: int) -> float:
    """Wall time of `conductor enqueue --file` with `count` lines into a fresh database."""
    lines = places.folder / f"payloads-{count}.jsonl"
    lines.write_text('{"task": "noop"}\n' * count)
    db = places.db(f"enqueue-file-{count}")
    with Conductor(settings=Settings(db=db)):
        pass  # the database exists before the command runs: its creation is not timed
    began = time.perf_counter()
    subprocess.run(
        [*console_command(), "enqueue", "--db", db, "--file", str(lines)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


CONTROLLED: Final = ("limited", "paused")
"""The queues of a drain with `--queue-controls`: the jobs drain through `limited`, whose
limits never bind (every claim still counts against them under the claim's lock, and
records its rate), and the worker also serves `paused`, paused with jobs waiting."""


def measure_drain(places: Places, options: BenchOptions) -> dict[str, Any]:
    settings = Settings(db=places.db("drain"))
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    with Conductor(settings=settings) as app:
        if options.queue_controls:
            queues = CONTROLLED
            app.limit_queue("limited", concurrency=MAX_LIMIT, rate=(MAX_LIMIT, "second"))
            app.pause_queue("paused")
            app.enqueue_many([{"task": "noop"}] * 100, queue="paused")
        _fill(app, {"task": "noop"}, options.jobs, queue=queues[0])
    result = _drain_in_process(settings, options, options.jobs, queues)
    if options.queue_controls:
        result["queue_controls"] = "drained through a limited queue, beside a paused one"
    # A job's whole life is 4 events: enqueued (written before the drain), claimed,
    # run_started, completed.
    result["lifecycle_events_per_s"] = result["jobs_per_s"] * 4
    return result


def measure_sleep(places: Places, options: BenchOptions) -> dict[str, Any]:
    settings = Settings(db=places.db("sleep"))
    count = max(options.concurrency * 250, 1_000)
    with Conductor(settings=settings) as app:
        _fill(app, {"task": "sleep", "seconds": SLEEP_SECONDS}, count)
    result = _drain_in_process(settings, options, count)
    ideal = options.concurrency / SLEEP_SECONDS
    bare = _bare_sleep_rate(options.concurrency, count)
    return {
        "jobs": count,
        "jobs_per_s": result["jobs_per_s"],
        "ideal_jobs_per_s": round(ideal),
        "share_of_ideal": round(result["jobs_per_s"] / ideal, 3),
        "bare_jobs_per_s": round(bare),
        "share_of_bare": round(result["jobs_per_s"] / bare, 3),
        "bare_note": "the same waits in plain threads, no queue: what this machine's timers allow",
    }


def _bare_sleep_rate(threads: int, count: int) -> float:
    """`count` 10 ms waits (the `sleep` task's `Event.wait`) on `threads` plain threads: a
    timed wait overshoots by tens of microseconds, more on a busy machine, so the ideal
    `concurrency / 10 ms` is out of reach of any queue; this is the reachable ceiling."""
    share = -(-count // threads)

    def waits() -> None:
        flag = threading.Event()
        for _ in range(share):
            flag.wait(SLEEP_SECONDS)

    began = time.perf_counter()
    pool = [threading.Thread(target=waits) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return share * threads / (time.perf_counter() - began)


def _latencies(app: Conductor, ids: list[int]) -> list[float]:
    values = []
    for job_id in ids:
        history = app.ledger.history(job_id)
        enqueued = next(r for r in history if r.type == "enqueued")
        # Picked up = its handler began (`run_started`, stamped when it began).
        started = next(r for r in history if r.type == "run_started")
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


def measure_latency(places: Places, options: BenchOptions) -> dict[str, Any]:
    from conductor.ledger import wakeup

    results: dict[str, Any] = {}
    settings = Settings(db=places.db("latency-in"))
    with Conductor(settings=settings) as app:
        engine, thread = _start_engine(settings, options)
        try:
            ids = _stream(app, options)
            _wait_until(lambda: _finished(app) >= len(ids))
        finally:
            engine.request_stop()
            thread.join(60)
        results["in_process"] = _percentiles(_latencies(app, ids))
    settings = Settings(db=places.db("latency-cross"))
    with Conductor(settings=settings) as app:
        worker = _worker_process(settings.db, options)
        try:
            # Until the worker listens, the stream's first jobs would wait for its poll.
            _wait_until(lambda: wakeup.listening(settings.db), timeout=60, poll=0.05)
            ids = _stream(app, options)
            _wait_until(lambda: _finished(app) >= len(ids))
        finally:
            worker.terminate()
            worker.wait(60)
        results["cross_process"] = _percentiles(_latencies(app, ids))
    return results


def measure_processes(places: Places, options: BenchOptions) -> dict[str, Any]:
    """CPU-bound jobs: one worker process against `--processes P`, each with
    `CPU_CONCURRENCY` slots, next to the same calls in P plain processes."""
    count = max(options.jobs // 50, 4) * options.processes
    cpu_options = attrs.evolve(options, concurrency=CPU_CONCURRENCY)
    rates: dict[str, float] = {}
    drains: dict[str, float] = {}
    bare: dict[str, float] = {}
    for processes in sorted({1, options.processes}):
        bare[str(processes)] = _bare_spin_rate(processes, count)
        db = places.db(f"spin-{processes}")
        with Conductor(settings=Settings(db=db)) as app:
            _fill(app, {"task": "spin", "iterations": SPIN_ITERATIONS}, count)
        began = time.perf_counter()
        worker = _worker_process(db, cpu_options, "--burst", "--processes", str(processes))
        if worker.wait(1800) != 0:
            raise RuntimeError(f"worker --processes {processes} exited {worker.returncode}")
        rates[str(processes)] = count / (time.perf_counter() - began)
        with Conductor(settings=Settings(db=db)) as app:
            first = min(unstamp(r.at) for r in app.events(types=["claimed"]))
            last = max(unstamp(r.at) for r in app.events(types=["completed"]))
        drains[str(processes)] = count / (last - first).total_seconds()
    one, many = rates["1"], rates[str(options.processes)]
    return {
        "jobs": count,
        "spin_iterations": SPIN_ITERATIONS,
        "concurrency_per_process": CPU_CONCURRENCY,
        "jobs_per_s": {key: round(rate) for key, rate in rates.items()},
        "speedup": round(many / one, 2),
        "note": "wall time of `conductor worker --burst`, start-up and exit included",
        "drain_jobs_per_s": {key: round(rate) for key, rate in drains.items()},
        "drain_speedup": round(drains[str(options.processes)] / drains["1"], 2),
        "drain_note": "first started to last completed event, from the log",
        "bare_jobs_per_s": {key: round(rate) for key, rate in bare.items()},
        "bare_speedup": round(bare[str(options.processes)] / bare["1"], 2),
        "bare_note": "the same spin calls in P plain processes, no queue: what the machine allows",
    }


def _bare_spin_rate(processes: int, count: int) -> float:
    """`count` spin calls split over `processes` plain interpreters (start-up included, as
    for the worker): the machine's own ceiling for the CPU-bound ratio, measured beside it."""
    share = -(-count // processes)
    code = (
        "from conductor.examples import spin\n"
        f"for _ in range({share}):\n    spin(iterations={SPIN_ITERATIONS})"
    )
    began = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
    for child in children:
        if child.wait(1800) != 0:
            raise RuntimeError(f"a bare spin process exited {child.returncode}")
    return share * processes / (time.perf_counter() - began)


def measure_scale(places: Places, options: BenchOptions, base_rate: float | None) -> dict[str, Any]:
    """The same drain with `--backlog` jobs waiting, memory as jobs flow, reads at scale."""
    backlog = options.backlog or 1_000_000
    db = places.db("backlog")
    settings = Settings(db=db)
    with Conductor(settings=settings) as app:
        fill_rate = _fill(app, {"task": "noop"}, backlog)
    reads = {
        "stats_ms": _command_ms("stats", "--db", db),
        "jobs_first_page_ms": _command_ms("jobs", "--db", db),
    }
    if base_rate is None:  # the drain scenario did not run: measure the small case here
        small = Settings(db=places.db("backlog-small"))
        with Conductor(settings=small) as app:
            _fill(app, {"task": "noop"}, options.jobs)
        base_rate = _drain_in_process(small, options, options.jobs)["jobs_per_s"]
    window = _drain_in_process(settings, options, options.jobs)
    # Memory: one worker process works off the rest; its peak RSS after its first 10,000
    # jobs (or half of a smaller backlog) and at the end. Both readings wait on the ledger's
    # count, not on a timer a fast drain outruns, and the worker is not `--burst`: it is
    # still alive (idle) when the last job is in, so the final reading always exists; then
    # it is stopped as an operator would, with SIGTERM.
    worker = _worker_process(db, options)
    rss: dict[str, float | None] = {}
    early = min(10_000, backlog // 2)
    with Conductor(settings=settings) as app:
        first = _finished(app) + early
        try:
            for target, key in ((first, f"after_{early}"), (backlog, "at_end")):

                def reached(target: int = target) -> bool:
                    return _finished(app) >= target or worker.poll() is not None

                _wait_until(reached, poll=0.05)
                if worker.poll() is not None:
                    raise RuntimeError(f"the bench worker exited {worker.returncode} early")
                rss[key] = peak_rss_mib(worker.pid)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait()
        processed = _finished(app)
        events = app.ledger.last_seq()
        began = time.perf_counter()
        app.replay()
        replay_seconds = time.perf_counter() - began
    return {
        "backlog": backlog,
        "enqueue_many_jobs_per_s": round(fill_rate),
        "drain_jobs_per_s_with_backlog": window["jobs_per_s"],
        "drain_jobs_per_s_small": round(base_rate),
        "ratio": round(window["jobs_per_s"] / base_rate, 3),
        **reads,
        "worker_peak_rss_mib": rss,
        "jobs_processed": processed,
        "replay_events": events,
        "replay_events_per_s": round(events / replay_seconds),
    }
