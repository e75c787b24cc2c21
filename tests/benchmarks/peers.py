"""conductor next to its peers (huey, RQ, Celery) on identical workloads, in one run.

Run as a script (pytest ignores this directory; `just bench` runs it):

    python tests/benchmarks/peers.py [--runs 3] [--quick] [--json] [--out docs/img]

Workloads, each the same shape for every system, each job the same task
(`peer_tasks.record`: it appends (sent, started) stamps to a file of its process):

* drain - 10,000 no-op jobs enqueued first with each system's batch API (timed on its
  own), then a worker with 8 slots drains them: conductor `worker --burst -c 8`, huey's
  consumer with 8 worker threads, 8 RQ `SimpleWorker` processes in burst mode, one Celery
  worker with `--pool threads -c 8`. The rate is taken from the first to the last task
  start (the stamps), and also from the worker's spawn to the last task start (start-up
  included); conductor's engine in this process (`conductor.bench.measure_drain`) is
  reported beside it.
* concurrency - conductor and huey draining the same jobs at 1, 2, 4, 8, 16, 32 slots.
* backlog - conductor and huey with B jobs waiting (10,000 and 100,000; `--big` adds
  1,000,000): the rate over the first `--window` completions, and the worker's peak RSS
  (VmHWM of the worker process, read before it is stopped).
* latency - a steady 200 jobs/s for 5 s, enqueued one at a time from this process into a
  running worker (8 slots) once a warm-up job has run: the task's start time minus the
  time the producer stamped just before the enqueue call, p50/p95/p99 and every sample.

Runs are interleaved (run 1 of every system, then run 2, ...), and the order of systems
rotates by one each run. Medians with the min-max range; `--json` prints everything;
`--out DIR` (default docs/img) gets the PNG plots and `peers.json`. RQ and Celery use
Redis (`--redis-url`, database 14 by default, a fresh queue name per measurement); they
are skipped, with a note, when it does not answer.

Completion is detected the same way for every system: this process sums the sizes of the
stamp files every 20 ms (stat calls only, in this process, not the worker's); the time of
the last job is its own stamp, so the polling interval does not enter any rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import attrs
import peer_tasks
from summary import summary

from conductor import Conductor, Settings
from conductor.bench import peak_rss_mib

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent.parent
SYSTEMS = ("conductor", "huey", "rq", "celery")
REDIS_SYSTEMS = ("rq", "celery")
SWEEP_SYSTEMS = ("conductor", "huey")
WORKLOADS = ("drain", "latency", "concurrency", "backlog")
LABELS = {"conductor": "conductor", "huey": "huey", "rq": "RQ", "celery": "Celery"}
POLL = 0.02
"""Seconds between two counts of the stamp files."""
BATCH = 1_000
"""Jobs per batch-enqueue call in the drain (as `conductor bench`)."""
BACKLOG_BATCH = 10_000


@attrs.frozen(kw_only=True)
class Options:
    runs: int = 3
    sweep_runs: int = 3
    jobs: int = 10_000
    sweep_jobs: int = 10_000
    concurrency: int = 8
    levels: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    backlogs: tuple[int, ...] = (10_000, 100_000)
    window: int = 5_000
    rate: float = 200.0
    seconds: float = 5.0
    redis_url: str = "redis://127.0.0.1:6379/14"
    systems: tuple[str, ...] = SYSTEMS
    workloads: tuple[str, ...] = WORKLOADS


# -- measuring helpers -----------------------------------------------------------------
def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50_ms": statistics.median(values) * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


def _count(stamps: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(stamps)) // peer_tasks.STAMP.size


def _read_stamps(stamps: Path) -> list[tuple[float, float]]:
    pairs: list[tuple[float, float]] = []
    for path in sorted(stamps.iterdir()):
        data = path.read_bytes()
        pairs.extend(
            peer_tasks.STAMP.unpack_from(data, offset)
            for offset in range(0, len(data) - len(data) % 16, 16)
        )
    return pairs


class Workers:
    """Worker processes started for one measurement, logging to files in its folder."""

    def __init__(self, commands: Sequence[Sequence[str]], folder: Path, env: dict[str, str]):
        self.logs = [folder / f"worker-{i}.log" for i in range(len(commands))]
        self.spawned = time.time()
        self.processes = []
        for command, log in zip(commands, self.logs, strict=True):
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        command, stdout=subprocess.DEVNULL, stderr=out, env=env, cwd=folder
                    )
                )
        self.peak_rss: dict[int, float] = {}
        self.exited: float | None = None

    def sample(self) -> None:
        for process in self.processes:
            rss = peak_rss_mib(process.pid) or 0.0
            self.peak_rss[process.pid] = max(rss, self.peak_rss.get(process.pid, 0.0))
        if self.exited is None and all(p.poll() is not None for p in self.processes):
            self.exited = time.time()

    def failure(self) -> str | None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() not in (None, 0):
                tail = log.read_text(errors="replace")[-2000:]
                return f"{' '.join(map(str, process.args))} exited {process.returncode}:\n{tail}"  # type: ignore[arg-type]
        return None

    def wait_exit(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.exited is None:
            if time.monotonic() > deadline:
                raise TimeoutError("burst workers did not exit")
            self.sample()
            time.sleep(POLL)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    @property
    def rss_total_mib(self) -> float:
        return sum(self.peak_rss.values())


def _wait_count(stamps: Path, target: int, workers: Workers, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _count(stamps) < target:
        workers.sample()
        failed = workers.failure()
        if failed:
            raise RuntimeError(failed)
        if workers.exited is not None and _count(stamps) < target:
            raise RuntimeError(f"workers exited after {_count(stamps)} of {target} jobs")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_count(stamps)} of {target} jobs done in {timeout:.0f} s")
        time.sleep(POLL)
    workers.sample()


# -- the systems -----------------------------------------------------------------------
class Peer(Protocol):
    """One system, set up in a fresh folder for one measurement."""

    burst: bool
    """True when its workers exit by themselves once the queue is empty."""

    def enqueue_batch(self, n: int) -> None: ...
    def enqueue_one(self, sent: float) -> None: ...
    def fill_backlog(self, n: int) -> None: ...
    def commands(self, concurrency: int, *, burst: bool) -> list[list[str]]: ...
    def ready(self, workers: Workers) -> bool: ...
    def close(self) -> None: ...


class ConductorPeer:
    burst = True

    def __init__(self, folder: Path, options: Options) -> None:
        self.db = str(folder / "conductor.db")
        self.app = Conductor(settings=Settings(db=self.db))

    def enqueue_batch(self, n: int) -> None:
        for first in range(0, n, BATCH):
            self.app.enqueue_many([{"task": "bench_record"}] * min(BATCH, n - first))

    def enqueue_one(self, sent: float) -> None:
        self.app.enqueue({"task": "bench_record", "sent": sent})

    def fill_backlog(self, n: int) -> None:
        for first in range(0, n, BACKLOG_BATCH):
            self.app.enqueue_many([{"task": "bench_record"}] * min(BACKLOG_BATCH, n - first))

    def commands(self, concurrency: int, *, burst: bool) -> list[list[str]]:
        command = [sys.executable, "-m", "conductor", "worker", "--db", self.db, "-q"]
        command += ["-c", str(concurrency), "--app", "peer_tasks"]
        return [command + (["--burst"] if burst else [])]

    def ready(self, workers: Workers) -> bool:
        return True

    def close(self) -> None:
        self.app.close()


class HueyPeer:
    burst = False

    def __init__(self, folder: Path, options: Options) -> None:
        self.path = str(folder / "huey.db")
        self.huey, self.task = peer_tasks.make_huey(self.path)

    def enqueue_batch(self, n: int) -> None:
        # huey has no batch enqueue: `map` enqueues one task (one transaction) per item.
        self.task.map([0.0] * n)

    def enqueue_one(self, sent: float) -> None:
        self.task(sent)

    def fill_backlog(self, n: int) -> None:
        # Set-up, not measured: huey would commit (and fsync) once per task, a million
        # times. The rows are the ones `SqliteStorage.enqueue` writes (queue, message, 0),
        # messages serialized by huey itself, in transactions of BACKLOG_BATCH rows.
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            for first in range(0, n, BACKLOG_BATCH):
                rows = [
                    (self.huey.name, self.huey.serialize_task(self.task.s(0.0)), 0.0)
                    for _ in range(min(BACKLOG_BATCH, n - first))
                ]
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    "INSERT INTO task (queue, data, priority) VALUES (?, ?, ?)", rows
                )
                connection.execute("COMMIT")
        finally:
            connection.close()

    def commands(self, concurrency: int, *, burst: bool) -> list[list[str]]:
        command = [sys.executable, "-m", "huey.bin.huey_consumer", "peer_tasks.huey", "-q"]
        return [[*command, "-w", str(concurrency), "-k", "thread"]]

    def ready(self, workers: Workers) -> bool:
        return True

    def close(self) -> None:
        self.huey.storage.close()


class RQPeer:
    burst = True

    def __init__(self, folder: Path, options: Options) -> None:
        from redis import Redis
        from rq import Queue

        self.url = options.redis_url
        self.name = f"bench-{uuid.uuid4().hex[:12]}"
        self.redis = Redis.from_url(self.url)
        self.queue = Queue(self.name, connection=self.redis)

    def enqueue_batch(self, n: int) -> None:
        from rq import Queue

        for first in range(0, n, BATCH):
            count = min(BATCH, n - first)
            self.queue.enqueue_many([Queue.prepare_data(peer_tasks.record) for _ in range(count)])

    def enqueue_one(self, sent: float) -> None:
        self.queue.enqueue(peer_tasks.record, sent)

    def fill_backlog(self, n: int) -> None:
        self.enqueue_batch(n)

    def commands(self, concurrency: int, *, burst: bool) -> list[list[str]]:
        command = [sys.executable, "-m", "rq.cli", "worker", "-w", "rq.worker.SimpleWorker"]
        command += ["-u", self.url, "-q", *(["--burst"] if burst else []), self.name]
        return [list(command) for _ in range(concurrency)]

    def ready(self, workers: Workers) -> bool:
        from rq import Worker

        return Worker.count(queue=self.queue) >= len(workers.processes)

    def close(self) -> None:
        # Pending jobs and the queue go now; finished jobs expire after RQ's result TTL.
        self.queue.delete(delete_jobs=True)
        keys = list(self.redis.scan_iter(match=f"*{self.name}*"))
        if keys:
            self.redis.delete(*keys)
        self.redis.close()


class CeleryPeer:
    burst = False

    def __init__(self, folder: Path, options: Options) -> None:
        self.url = options.redis_url
        self.name = f"bench-{uuid.uuid4().hex[:12]}"
        self.app = peer_tasks.make_celery(self.url, self.name)
        self.task = self.app.tasks[peer_tasks.CELERY_TASK]

    def enqueue_batch(self, n: int) -> None:
        # Celery has no batch enqueue; one producer (one connection) sends them all.
        with self.app.producer_or_acquire() as producer:
            for _ in range(n):
                self.task.apply_async(producer=producer)

    def enqueue_one(self, sent: float) -> None:
        self.task.apply_async(args=(sent,))

    def fill_backlog(self, n: int) -> None:
        self.enqueue_batch(n)

    def commands(self, concurrency: int, *, burst: bool) -> list[list[str]]:
        command = [sys.executable, "-m", "celery", "-A", "peer_tasks:celery_app", "worker"]
        command += ["--pool", "threads", "-c", str(concurrency), "-l", "WARNING"]
        return [[*command, "-Q", self.name]]

    def ready(self, workers: Workers) -> bool:
        return True

    def close(self) -> None:
        from redis import Redis

        redis = Redis.from_url(self.url)
        keys = list(redis.scan_iter(match=f"*{self.name}*"))
        if keys:
            redis.delete(*keys)
        redis.close()
        self.app.close()


PEERS: dict[str, Callable[[Path, Options], Peer]] = {
    "conductor": ConductorPeer,
    "huey": HueyPeer,
    "rq": RQPeer,
    "celery": CeleryPeer,
}


@contextlib.contextmanager
def _measurement(system: str, options: Options) -> Iterator[tuple[Peer, Path, dict[str, str]]]:
    with tempfile.TemporaryDirectory(prefix=f"peers-{system}-") as name:
        folder = Path(name)
        stamps = folder / "stamps"
        stamps.mkdir()
        peer = PEERS[system](folder, options)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
        env[peer_tasks.STAMPS_ENV] = str(stamps)
        env["BENCH_HUEY_DB"] = str(folder / "huey.db")
        env["BENCH_BROKER_URL"] = options.redis_url
        env["BENCH_CELERY_QUEUE"] = getattr(peer, "name", "")
        try:
            yield peer, stamps, env
        finally:
            peer.close()


# -- workloads -------------------------------------------------------------------------
def measure_drain(system: str, options: Options, jobs: int, concurrency: int) -> dict[str, Any]:
    with _measurement(system, options) as (peer, stamps, env):
        began = time.perf_counter()
        peer.enqueue_batch(jobs)
        enqueue_seconds = time.perf_counter() - began
        workers = Workers(peer.commands(concurrency, burst=True), stamps.parent, env)
        try:
            _wait_count(stamps, jobs, workers, timeout=max(300.0, jobs / 20))
            if peer.burst:
                workers.wait_exit(120)
        finally:
            workers.stop()
        started = sorted(started for _sent, started in _read_stamps(stamps))
    first, last = started[0], started[jobs - 1]
    result: dict[str, Any] = {
        "jobs": jobs,
        "concurrency": concurrency,
        "enqueue_jobs_per_s": jobs / enqueue_seconds,
        "jobs_per_s": (jobs - 1) / (last - first),
        "jobs_per_s_with_startup": jobs / (last - workers.spawned),
        "startup_s": first - workers.spawned,
        "worker_processes": len(workers.processes),
        "worker_peak_rss_mib": workers.rss_total_mib,
        "load_average": os.getloadavg()[0],
    }
    if peer.burst and workers.exited is not None:
        result["burst_exit_s"] = workers.exited - workers.spawned
        result["jobs_per_s_burst_wall"] = jobs / (workers.exited - workers.spawned)
    return result


def measure_in_process(jobs: int, concurrency: int) -> dict[str, Any]:
    """conductor's engine in this process (`conductor bench`'s drain), for comparison."""
    import logging

    from conductor.bench import BenchOptions
    from conductor.bench import measure_drain as bench_drain
    from conductor.observe import logs

    logs.configure(quiet=True)
    logs.LOGGER.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="peers-inproc-") as name:
        return bench_drain(Path(name), BenchOptions(jobs=jobs, concurrency=concurrency))


def measure_backlog(system: str, options: Options, backlog: int) -> dict[str, Any]:
    window = min(options.window, backlog)
    with _measurement(system, options) as (peer, stamps, env):
        began = time.perf_counter()
        peer.fill_backlog(backlog)
        fill_seconds = time.perf_counter() - began
        workers = Workers(peer.commands(options.concurrency, burst=False), stamps.parent, env)
        try:
            _wait_count(stamps, window, workers, timeout=max(600.0, window / 10))
        finally:
            workers.stop()
        started = sorted(started for _sent, started in _read_stamps(stamps))
    first, last = started[0], started[window - 1]
    return {
        "backlog": backlog,
        "window": window,
        "fill_seconds": fill_seconds,
        "jobs_per_s": (window - 1) / (last - first),
        "startup_s": first - workers.spawned,
        "worker_peak_rss_mib": workers.rss_total_mib,
        "load_average": os.getloadavg()[0],
    }


def measure_latency(system: str, options: Options) -> dict[str, Any]:
    count = round(options.rate * options.seconds)
    with _measurement(system, options) as (peer, stamps, env):
        workers = Workers(peer.commands(options.concurrency, burst=False), stamps.parent, env)
        try:
            deadline = time.monotonic() + 120
            while not peer.ready(workers):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{system} workers did not register")
                time.sleep(POLL)
            return stream_latency(peer, stamps, workers, options.rate, count)
        finally:
            workers.stop()


def stream_latency(
    peer: Any, stamps: Path, workers: Workers, rate: float, count: int
) -> dict[str, Any]:
    """Warm `workers` up with one job, then enqueue `count` jobs one at a time at `rate`
    jobs/s through `peer.enqueue_one(sent stamp)`, and read each job's pickup latency off
    the stamp files (`just bench` and `just bench-pg` both stream this way)."""
    peer.enqueue_one(-1.0)  # the warm-up job: once it has run, the worker is up
    _wait_count(stamps, 1, workers, timeout=120)
    interval = 1.0 / rate
    began = time.perf_counter()
    next_at = began
    for _ in range(count):
        peer.enqueue_one(time.time())
        next_at += interval
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    stream_seconds = time.perf_counter() - began
    _wait_count(stamps, count + 1, workers, timeout=120)
    samples = sorted(started - sent for sent, started in _read_stamps(stamps) if sent > 0)
    return {
        "jobs": count,
        "offered_rate": rate,
        "achieved_rate": count / stream_seconds,
        **_percentiles(samples),
        "load_average": os.getloadavg()[0],
        "samples_ms": [round(s * 1000, 4) for s in samples],
    }


# -- the run ---------------------------------------------------------------------------
def _redis_answers(url: str) -> str | None:
    """None when Redis answers, else why not."""
    try:
        from redis import Redis

        client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except Exception as e:  # noqa: BLE001 - any failure means: skip RQ and Celery
        return f"{type(e).__name__}: {e}"
    return None


def _rotated(systems: Sequence[str], run: int) -> list[str]:
    shift = run % len(systems)
    return [*systems[shift:], *systems[:shift]]


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for name in ("conductor", "huey", "rq", "celery", "redis", "kombu"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return versions


def _durability(systems: Sequence[str]) -> dict[str, str]:
    """The SQLite settings each SQLite-backed system really runs with (PRAGMA answers)."""
    sync = Settings.from_env().synchronous  # what the workers get: CONDUCTOR_SYNCHRONOUS
    found = {"conductor": f"WAL, synchronous={sync} (conductor's default is FULL)"}
    if "huey" in systems:
        with tempfile.TemporaryDirectory(prefix="peers-huey-") as name:
            huey, _task = peer_tasks.make_huey(str(Path(name) / "huey.db"))
            with huey.storage.db() as cursor:
                mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
                level = cursor.execute("PRAGMA synchronous").fetchone()[0]
            huey.storage.close()
        levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        found["huey"] = (
            f"{mode.upper()}, synchronous={levels.get(level, level)} (SqliteHuey default)"
        )
    return found


def _machine() -> dict[str, Any]:
    model = "-"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
    }


def _summarise(runs: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    return {key: summary([r[key] for r in runs if key in r]) for key in keys if key in runs[0]}


DRAIN_KEYS = (
    "enqueue_jobs_per_s",
    "jobs_per_s",
    "jobs_per_s_with_startup",
    "startup_s",
    "jobs_per_s_burst_wall",
    "worker_peak_rss_mib",
)
LATENCY_KEYS = ("p50_ms", "p95_ms", "p99_ms", "achieved_rate")


def run(options: Options) -> dict[str, Any]:
    notes: list[str] = []
    systems = list(options.systems)
    if any(s in REDIS_SYSTEMS for s in systems):
        why = _redis_answers(options.redis_url)
        if why is not None:
            skipped = [s for s in systems if s in REDIS_SYSTEMS]
            systems = [s for s in systems if s not in REDIS_SYSTEMS]
            note = (
                f"skipped {', '.join(skipped)}: Redis at {options.redis_url} did not answer ({why})"
            )
            notes.append(note)
            _log(f"NOTE: {note}")
    if not systems:
        raise SystemExit("nothing left to run: " + "; ".join(notes))
    result: dict[str, Any] = {
        "options": attrs.asdict(options),
        "systems": systems,
        "machine": _machine(),
        "versions": _versions(),
        "durability": _durability(systems),
        "notes": notes,
    }
    workloads = options.workloads
    drains: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    latencies: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    in_process: list[dict[str, Any]] = []
    for index in range(options.runs):
        order = _rotated(systems, index)
        if "drain" in workloads:
            for system in order:
                _log(f"run {index + 1}/{options.runs}: drain, {system}")
                drains[system].append(
                    measure_drain(system, options, options.jobs, options.concurrency)
                )
            if "conductor" in systems:
                _log(f"run {index + 1}/{options.runs}: drain, conductor in-process")
                in_process.append(measure_in_process(options.jobs, options.concurrency))
        if "latency" in workloads:
            for system in order:
                _log(f"run {index + 1}/{options.runs}: latency, {system}")
                latencies[system].append(measure_latency(system, options))
    if "drain" in workloads:
        result["drain"] = {
            s: {"summary": _summarise(drains[s], DRAIN_KEYS), "runs": drains[s]} for s in systems
        }
        if in_process:
            result["drain_in_process"] = {
                "summary": _summarise(in_process, ("jobs_per_s", "enqueue_jobs_per_s")),
                "runs": in_process,
            }
    if "latency" in workloads:
        result["latency"] = {
            s: {
                "summary": _summarise(latencies[s], LATENCY_KEYS),
                "runs": [{k: v for k, v in r.items() if k != "samples_ms"} for r in latencies[s]],
                "samples_ms": sorted(x for r in latencies[s] for x in r["samples_ms"]),
            }
            for s in systems
        }
    sweepers = [s for s in SWEEP_SYSTEMS if s in systems]
    if "concurrency" in workloads and sweepers:
        result["concurrency"] = _concurrency(sweepers, options)
    if "backlog" in workloads and sweepers:
        result["backlog"] = _backlog(sweepers, options)
    return result


def _concurrency(systems: list[str], options: Options) -> dict[str, Any]:
    points: dict[str, dict[int, list[dict[str, Any]]]] = {
        s: {c: [] for c in options.levels} for s in systems
    }
    for index in range(options.sweep_runs):
        for level in options.levels:
            for system in _rotated(systems, index):
                _log(f"sweep run {index + 1}/{options.sweep_runs}: concurrency {level}, {system}")
                points[system][level].append(
                    measure_drain(system, options, options.sweep_jobs, level)
                )
    return {
        s: {
            str(c): {"summary": _summarise(runs, ("jobs_per_s",)), "runs": runs}
            for c, runs in points[s].items()
        }
        for s in systems
    }


def _backlog(systems: list[str], options: Options) -> dict[str, Any]:
    points: dict[str, dict[int, list[dict[str, Any]]]] = {
        s: {b: [] for b in options.backlogs} for s in systems
    }
    for index in range(options.sweep_runs):
        for backlog in options.backlogs:
            if backlog >= 1_000_000 and index > 0:
                continue  # a million-job backlog is built once per invocation
            for system in _rotated(systems, index):
                _log(f"sweep run {index + 1}/{options.sweep_runs}: backlog {backlog:,}, {system}")
                points[system][backlog].append(measure_backlog(system, options, backlog))
    keys = ("jobs_per_s", "worker_peak_rss_mib", "fill_seconds", "startup_s")
    out: dict[str, Any] = {
        s: {str(b): {"summary": _summarise(runs, keys), "runs": runs} for b, runs in by.items()}
        for s, by in points.items()
    }
    smallest, largest = min(options.backlogs), max(options.backlogs)
    if smallest != largest:
        out["ratios"] = {
            s: {
                "sizes": [largest, smallest],
                "rate_ratio": out[s][str(largest)]["summary"]["jobs_per_s"]["median"]
                / out[s][str(smallest)]["summary"]["jobs_per_s"]["median"],
            }
            for s in systems
        }
    return out


# -- report ----------------------------------------------------------------------------
def _fmt(summary: dict[str, Any] | None, digits: int = 0, unit: str = "") -> str:
    if not summary:
        return "-"

    def one(value: float) -> str:
        return f"{value:,.{digits}f}"

    text = one(summary["median"]) + unit
    if summary["runs"] > 1:
        text += f" ({one(summary['min'])}-{one(summary['max'])})"
    return text


def markdown(result: dict[str, Any]) -> str:
    systems = result["systems"]
    options = result["options"]
    header = "| Measurement | " + " | ".join(LABELS[s] for s in systems) + " |"
    rule = "|---|" + "---|" * len(systems)
    lines: list[str] = []

    def row(label: str, cells: Sequence[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    if "drain" in result or "latency" in result:
        lines += [header, rule]
    if "drain" in result:
        drain = result["drain"]
        jobs = f"{options['jobs']:,}"
        row(
            f"enqueue {jobs} jobs, jobs/s",
            [_fmt(drain[s]["summary"].get("enqueue_jobs_per_s")) for s in systems],
        )
        row(
            f"drain {jobs} no-op jobs, 8 slots, jobs/s (first to last job)",
            [_fmt(drain[s]["summary"].get("jobs_per_s")) for s in systems],
        )
        row(
            "the same from the worker's spawn (start-up included), jobs/s",
            [_fmt(drain[s]["summary"].get("jobs_per_s_with_startup")) for s in systems],
        )
        row(
            "worker spawn to first job, s",
            [_fmt(drain[s]["summary"].get("startup_s"), 2) for s in systems],
        )
        row(
            "burst worker(s) spawn to exit, jobs/s",
            [_fmt(drain[s]["summary"].get("jobs_per_s_burst_wall")) for s in systems],
        )
    if "latency" in result:
        latency = result["latency"]
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            row(
                f"pickup latency {key[:3]}, ms ({options['rate']:.0f} jobs/s, another process)",
                [_fmt(latency[s]["summary"].get(key), 2) for s in systems],
            )
        row(
            "latency stream: rate the producer achieved, jobs/s",
            [_fmt(latency[s]["summary"].get("achieved_rate")) for s in systems],
        )
    if "drain_in_process" in result:
        lines.append("")
        lines.append(
            "conductor's engine in the harness process (`conductor bench` drain): "
            + _fmt(result["drain_in_process"]["summary"]["jobs_per_s"])
            + " jobs/s."
        )
    sweepers = [s for s in SWEEP_SYSTEMS if s in systems]
    if "concurrency" in result:
        lines += ["", "| Slots | " + " | ".join(f"{LABELS[s]}, jobs/s" for s in sweepers) + " |"]
        lines.append("|---|" + "---|" * len(sweepers))
        for level in options["levels"]:
            row(
                str(level),
                [
                    _fmt(result["concurrency"][s][str(level)]["summary"]["jobs_per_s"])
                    for s in sweepers
                ],
            )
    if "backlog" in result:
        backlog = result["backlog"]
        cells = [f"{LABELS[s]}, jobs/s | {LABELS[s]}, peak RSS MiB" for s in sweepers]
        lines += ["", "| Jobs waiting | " + " | ".join(cells) + " |"]
        lines.append("|---|" + "---|---|" * len(sweepers))
        for size in options["backlogs"]:
            values = []
            for s in sweepers:
                summary = backlog[s][str(size)]["summary"]
                values += [_fmt(summary["jobs_per_s"]), _fmt(summary["worker_peak_rss_mib"], 1)]
            row(f"{size:,}", values)
        for s, ratio in backlog.get("ratios", {}).items():
            big, small = ratio["sizes"]
            lines.append(
                f"\n{LABELS[s]}: rate at {big:,} waiting / rate at {small:,} = "
                f"{ratio['rate_ratio']:.2f}"
            )
    for system, text in result.get("durability", {}).items():
        lines.append(f"\n{LABELS[system]}: {text}.")
    load = result["machine"].get("load_average_during")
    if load:
        lines.append(
            f"\n{result['machine']['cpus']} CPUs; 1-minute load average at the end of the "
            f"measurements: {load[0]:.1f}-{load[1]:.1f}."
        )
    return "\n".join(lines)


def _load_range(result: dict[str, Any]) -> list[float]:
    """Min and max of the 1-minute load average seen at the end of every measurement."""
    seen: list[float] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "load_average":
                    seen.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return [min(seen), max(seen)] if seen else []


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: expected comma-separated whole numbers"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"invalid list {text!r}: expected positive numbers")
    return values


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"invalid list {text!r}: expected some of {', '.join(allowed)}"
            )
        return names

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of drain and latency")
    parser.add_argument(
        "--quick", action="store_true", help="one run of the sweeps, 5,000 jobs per point"
    )
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "img", help="folder for PNGs and peers.json"
    )
    parser.add_argument("--no-plots", action="store_true", help="write nothing to --out")
    parser.add_argument("--only", type=_names(WORKLOADS), default=WORKLOADS, metavar="W,W")
    parser.add_argument("--systems", type=_names(SYSTEMS), default=SYSTEMS, metavar="S,S")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the drain")
    parser.add_argument("--levels", type=_sizes, default=(1, 2, 4, 8, 16, 32), metavar="N,N")
    parser.add_argument("--backlogs", type=_sizes, default=None, metavar="N,N")
    parser.add_argument("--big", action="store_true", help="add a 1,000,000-job backlog")
    parser.add_argument("--window", type=int, default=5_000, help="completions timed per backlog")
    parser.add_argument("--rate", type=float, default=200.0, help="latency stream, jobs/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="latency stream length")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: expected 1 or more")
    backlogs = args.backlogs or (10_000, 100_000)
    if args.big and 1_000_000 not in backlogs:
        backlogs = (*backlogs, 1_000_000)
    options = Options(
        runs=args.runs,
        sweep_runs=1 if args.quick else args.runs,
        jobs=args.jobs,
        sweep_jobs=5_000 if args.quick else args.jobs,
        levels=args.levels,
        backlogs=tuple(sorted(backlogs)),
        window=args.window,
        rate=args.rate,
        seconds=args.seconds,
        redis_url=args.redis_url,
        systems=args.systems,
        workloads=args.only,
    )
    result = run(options)
    publish(result, args, markdown, "peers.json", lambda plots: plots.write_all)


def publish(
    result: dict[str, Any],
    args: argparse.Namespace,
    markdown: Callable[[dict[str, Any]], str],
    name: str,
    writer: Callable[[Any], Callable[[dict[str, Any], Path], list[Path]]],
) -> None:
    """A benchmark's ending, shared by `just bench` and `just bench-pg`: the table, the
    plots (`writer(plots)` draws them) and `name`'s JSON in `--out` unless `--no-plots`,
    then the table or, with `--json`, everything, on stdout."""
    result["machine"]["load_average_during"] = _load_range(result)
    table = markdown(result)
    result["markdown"] = table
    if not args.no_plots:
        import plots

        args.out.mkdir(parents=True, exist_ok=True)
        written = writer(plots)(result, args.out)
        (args.out / name).write_text(json.dumps(result, indent=1) + "\n")
        result["written"] = [str(p) for p in [*written, args.out / name]]
        for path in result["written"]:
            _log(f"wrote {path}")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for note in result["notes"]:
            print(f"NOTE: {note}")
        print(table)


if __name__ == "__main__":
    main()
