"""`conductor bench`: the real stack on fresh temporary databases, measured.

Each scenario answers one figure of the performance targets (docs/performance.md):

- `enqueue`: the batch APIs, `Conductor.enqueue_many` and `conductor enqueue --file`.
- `drain`: no-op jobs drained end to end by the actor engine in this process (jobs/s, and
  events/s of the whole life of a job: enqueued, started, completed).
- `sleep`: 10 ms jobs, as a share of the ideal `concurrency / 10 ms` and of the same waits
  in plain threads.
- `latency`: pickup latency under a steady stream, enqueued in the worker's process and
  from another process (`started.at - enqueued.at`, both stamped by the same clock).
- `processes`: CPU-bound jobs drained by `conductor worker --processes P` against one
  process, and the ratio.
- `scale`: with `--backlog N` jobs waiting, the drain rate (against `drain`), peak RSS of a
  worker process after 10,000 and after all N jobs, `stats` and `jobs` as commands, and
  `replay` of the resulting log.

Default durability (synchronous=FULL) unless CONDUCTOR_SYNCHRONOUS says otherwise. Figures
depend on the machine and on what else runs on it: compare runs made side by side.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from conductor.client import Conductor
from conductor.clock import unstamp
from conductor.config import Settings, WorkerConfig
from conductor.engine import logs
from conductor.engine.runtime import Engine

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


def _start_engine(settings: Settings, options: BenchOptions) -> tuple[Engine, threading.Thread]:
    config = WorkerConfig(
        concurrency=options.concurrency, prefetch=options.prefetch, poll_interval=1.0
    )
    engine = Engine(settings, config)
    engine.start()
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    return engine, thread


def _worker_process(db: Path, options: BenchOptions, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *console_command(),
            "worker",
            "--db",
            str(db),
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


def _fill(app: Conductor, payload: dict[str, Any], count: int, batch: int = 10_000) -> float:
    """Enqueue `count` copies of `payload` in batches; returns jobs/s."""
    started = time.perf_counter()
    for first in range(0, count, batch):
        app.enqueue_many([payload] * min(batch, count - first))
    return count / (time.perf_counter() - started)


def _drain_in_process(settings: Settings, options: BenchOptions, count: int) -> dict[str, Any]:
    """Start the engine in this process and time it through `count` more finished jobs."""
    with Conductor(settings=settings) as app:
        target = _finished(app) + count
        events_before = app.ledger.last_seq()
        began = time.time()
        engine, thread = _start_engine(settings, options)
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
def measure_enqueue(folder: Path, options: BenchOptions) -> dict[str, Any]:
    with Conductor(settings=Settings(db=str(folder / "enqueue-api.db"))) as app:
        api_rate = _fill(app, {"task": "noop"}, options.jobs, batch=1_000)
    whole = _enqueue_file_seconds(folder, options.jobs)
    one = _enqueue_file_seconds(folder, 1)
    return {
        "enqueue_many_jobs_per_s": round(api_rate),
        "enqueue_file_jobs_per_s": round(options.jobs / whole),
        "enqueue_file_note": "wall time of the command, start-up included",
        "enqueue_file_batch_jobs_per_s": round((options.jobs - 1) / max(whole - one, 1e-9)),
        "enqueue_file_batch_note": "the same less a one-line file's run: the batch path alone",
    }


def _enqueue_file_seconds(folder: Path, count: int) -> float:
    """Wall time of `conductor enqueue --file` with `count` lines into a fresh database."""
    lines = folder / f"payloads-{count}.jsonl"
    lines.write_text('{"task": "noop"}\n' * count)
    db = folder / f"enqueue-file-{count}.db"
    with Conductor(settings=Settings(db=str(db))):
        pass  # the file exists before the command runs: its creation is not timed
    began = time.perf_counter()
    subprocess.run(
        [*console_command(), "enqueue", "--db", str(db), "--file", str(lines)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def measure_drain(folder: Path, options: BenchOptions) -> dict[str, Any]:
    settings = Settings(db=str(folder / "drain.db"))
    with Conductor(settings=settings) as app:
        _fill(app, {"task": "noop"}, options.jobs)
    result = _drain_in_process(settings, options, options.jobs)
    # A job's whole life is 3 events: enqueued (written before the drain), started, completed.
    result["lifecycle_events_per_s"] = result["jobs_per_s"] * 3
    return result


def measure_sleep(folder: Path, options: BenchOptions) -> dict[str, Any]:
    settings = Settings(db=str(folder / "sleep.db"))
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
    from conductor import wakeup

    results: dict[str, Any] = {}
    settings = Settings(db=str(folder / "latency-in.db"))
    with Conductor(settings=settings) as app:
        engine, thread = _start_engine(settings, options)
        try:
            ids = _stream(app, options)
            _wait_until(lambda: _finished(app) >= len(ids))
        finally:
            engine.request_stop()
            thread.join(60)
        results["in_process"] = _percentiles(_latencies(app, ids))
    settings = Settings(db=str(folder / "latency-cross.db"))
    with Conductor(settings=settings) as app:
        worker = _worker_process(Path(settings.db), options)
        try:
            _wait_until(lambda: any(wakeup.directory(settings.db).glob("*.sock")), timeout=30)
            ids = _stream(app, options)
            _wait_until(lambda: _finished(app) >= len(ids))
        finally:
            worker.terminate()
            worker.wait(60)
        results["cross_process"] = _percentiles(_latencies(app, ids))
    return results


def measure_processes(folder: Path, options: BenchOptions) -> dict[str, Any]:
    """CPU-bound jobs: one worker process against `--processes P`, each with
    `CPU_CONCURRENCY` slots, next to the same calls in P plain processes."""
    count = max(options.jobs // 50, 4) * options.processes
    cpu_options = attrs.evolve(options, concurrency=CPU_CONCURRENCY)
    rates: dict[str, float] = {}
    drains: dict[str, float] = {}
    bare: dict[str, float] = {}
    for processes in sorted({1, options.processes}):
        bare[str(processes)] = _bare_spin_rate(processes, count)
        db = folder / f"spin-{processes}.db"
        with Conductor(settings=Settings(db=str(db))) as app:
            _fill(app, {"task": "spin", "iterations": SPIN_ITERATIONS}, count)
        began = time.perf_counter()
        worker = _worker_process(db, cpu_options, "--burst", "--processes", str(processes))
        if worker.wait(1800) != 0:
            raise RuntimeError(f"worker --processes {processes} exited {worker.returncode}")
        rates[str(processes)] = count / (time.perf_counter() - began)
        with Conductor(settings=Settings(db=str(db))) as app:
            first = min(unstamp(r.at) for r in app.events(types=["started"]))
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


def measure_scale(folder: Path, options: BenchOptions, base_rate: float | None) -> dict[str, Any]:
    """The same drain with `--backlog` jobs waiting, memory as jobs flow, reads at scale."""
    backlog = options.backlog or 1_000_000
    db = folder / "backlog.db"
    settings = Settings(db=str(db))
    with Conductor(settings=settings) as app:
        fill_rate = _fill(app, {"task": "noop"}, backlog)
    reads = {
        "stats_ms": _command_ms("stats", "--db", str(db)),
        "jobs_first_page_ms": _command_ms("jobs", "--db", str(db)),
    }
    if base_rate is None:  # the drain scenario did not run: measure the small case here
        small = Settings(db=str(folder / "backlog-small.db"))
        with Conductor(settings=small) as app:
            _fill(app, {"task": "noop"}, options.jobs)
        base_rate = _drain_in_process(small, options, options.jobs)["jobs_per_s"]
    window = _drain_in_process(settings, options, options.jobs)
    # Memory: one worker process works off the rest; its peak RSS after its first 10,000
    # jobs (or half of a smaller backlog) and at the end.
    worker = _worker_process(db, options, "--burst")
    rss: dict[str, float | None] = {}
    early = min(10_000, backlog // 2)
    with Conductor(settings=settings) as app:
        first = _finished(app) + early
        while worker.poll() is None:
            if f"after_{early}" not in rss and _finished(app) >= first:
                rss[f"after_{early}"] = peak_rss_mib(worker.pid)
            rss["at_end"] = peak_rss_mib(worker.pid) or rss.get("at_end")
            time.sleep(0.2)
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


def run(options: BenchOptions) -> dict[str, Any]:
    logs.configure(quiet=True)
    logs.LOGGER.setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="conductor-bench-"))
    try:
        result: dict[str, Any] = {
            "options": attrs.asdict(options),
            "synchronous": os.environ.get("CONDUCTOR_SYNCHRONOUS", "FULL").upper(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        }
        wanted = options.scenarios
        if "enqueue" in wanted:
            result["enqueue"] = measure_enqueue(folder, options)
        if "drain" in wanted:
            result["drain"] = measure_drain(folder, options)
        if "sleep" in wanted:
            result["sleep"] = measure_sleep(folder, options)
        if "latency" in wanted:
            result["pickup_latency"] = measure_latency(folder, options)
        if "processes" in wanted:
            result["processes"] = measure_processes(folder, options)
        if "scale" in wanted:
            base = result.get("drain", {}).get("jobs_per_s")
            result["scale"] = measure_scale(folder, options, base)
        own = peak_rss_mib()
        if own is None:  # not Linux: getrusage's peak (KiB on Linux, bytes on macOS)
            own = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["bench_process_peak_rss_mib"] = own
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def render(result: dict[str, Any]) -> str:
    options = result["options"]
    lines = [
        f"conductor bench: concurrency {options['concurrency']}, prefetch "
        f"{_prefetch_name(options['prefetch'])}, "
        f"synchronous={result['synchronous']}, {result['cpus']} CPUs",
    ]
    if "enqueue" in result:
        e = result["enqueue"]
        lines.append(
            f"  enqueue_many ({options['jobs']:,} jobs)      "
            f"{e['enqueue_many_jobs_per_s']:>9,} jobs/s"
        )
        lines.append(f"  enqueue --file (command)        {e['enqueue_file_jobs_per_s']:>9,} jobs/s")
        lines.append(
            f"    less start-up (the batch path) {e['enqueue_file_batch_jobs_per_s']:>8,} jobs/s"
        )
    if "drain" in result:
        d = result["drain"]
        lines.append(
            f"  drain {options['jobs']:,} no-op jobs          {d['jobs_per_s']:>9,} jobs/s"
        )
        lines.append(
            f"    lifecycle events (3 per job)  {d['lifecycle_events_per_s']:>9,} events/s"
        )
    if "sleep" in result:
        s = result["sleep"]
        lines.append(
            f"  10 ms jobs                      {s['jobs_per_s']:>9,} jobs/s "
            f"({s['share_of_ideal']:.0%} of {s['ideal_jobs_per_s']:,}; "
            f"{s['share_of_bare']:.0%} of plain threads' {s['bare_jobs_per_s']:,})"
        )
    if "pickup_latency" in result:
        for name, label in (("in_process", "in process"), ("cross_process", "other process")):
            v = result["pickup_latency"][name]
            lines.append(
                f"  pickup latency, {label:<14}  p50 {v['p50_ms']:.2f} ms  "
                f"p95 {v['p95_ms']:.2f} ms  p99 {v['p99_ms']:.2f} ms"
            )
    if "processes" in result:
        p = result["processes"]
        rates = ", ".join(f"{k} process(es) {v:,}/s" for k, v in p["jobs_per_s"].items())
        lines.append(f"  CPU-bound jobs: {rates}; speed-up {p['speedup']}x")
        drains = ", ".join(f"{k}: {v:,}/s" for k, v in p["drain_jobs_per_s"].items())
        lines.append(f"    first start to last completion: {drains}; {p['drain_speedup']}x")
        bare = ", ".join(f"{k}: {v:,}/s" for k, v in p["bare_jobs_per_s"].items())
        lines.append(f"    the same calls in plain processes: {bare}; {p['bare_speedup']}x")
    if "scale" in result:
        s = result["scale"]
        lines += [
            f"  with {s['backlog']:,} waiting: drain {s['drain_jobs_per_s_with_backlog']:,} "
            f"jobs/s vs {s['drain_jobs_per_s_small']:,} (ratio {s['ratio']})",
            f"    stats {s['stats_ms']} ms, jobs {s['jobs_first_page_ms']} ms (commands)",
            f"    worker peak RSS {s['worker_peak_rss_mib']} MiB over {s['jobs_processed']:,} jobs",
            f"    replay {s['replay_events']:,} events: {s['replay_events_per_s']:,} events/s",
        ]
    return "\n".join(lines)
