"""conductor next to procrastinate and pgqueuer on one PostgreSQL server, in one run (issue 14).

Run as a script (pytest ignores this directory; `just bench-pg` runs it):

    python tests/benchmarks/pg_peers.py [--runs 3] [--quick] [--json] [--out docs/img]

Every measurement gets a database of its own on the server (`CREATE DATABASE bench_<hex>`
through `--admin-url`, dropped afterwards), the system's schema is applied to it, and the
job is the same for every system: `peer_tasks.record`, which appends (sent, started) stamps
to a file of its process (see peer_tasks.py for each system's registration of it).

* drain - 20,000 no-op jobs enqueued first with each system's batch API (timed on its
  own), then N worker processes (1, 2 and 4), each with 8 slots, drain them and exit by
  themselves: `conductor worker --processes N -c 8 --burst` (one command: a parent that
  starts N worker processes), N `procrastinate worker --concurrency 8 --one-shot`, N
  `pgq run --mode drain`. The rate is taken from the first to the last task start (the
  stamps), and also from the spawn of the workers to the last task start (start-up
  included). After the drain, with every connection closed, the database's own counters
  (`pg_stat_database`) say how many transactions and row writes each job cost, enqueue
  included.
* latency - one running worker process (8 slots) warmed up by a first job, and this
  process enqueueing one job at a time at a steady 100 jobs/s for 6 s (600 samples): the
  task's start minus the time this process stamped just before the enqueue call,
  p50/p95/p99 and every sample. 100 jobs/s, not peers.py's 200: one procrastinate worker
  falls behind a stream of 150 jobs/s (its p50 grows to hundreds of ms as a backlog builds),
  and a backlog's wait is not pickup latency.

Runs are interleaved (run 1 of every system at every N, then run 2, ...), and the order of
systems rotates by one each run. Medians with the min-max range; `--json` prints
everything; `--out DIR` (default docs/img) gets the PNG plots and `pg_peers.json`. A system
whose first measurement fails is skipped from then on, with a note saying why (so the
script runs where a system cannot, and says so); a later failure (the server out of
connection slots, say) loses that one measurement, also with a note. Completion is
detected as in peers.py: stat calls on the stamp files every 20 ms, in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import attrs
import peer_tasks
import psycopg
from peers import (
    POLL,
    Workers,
    _fmt,
    _machine,
    _names,
    _read_stamps,
    _rotated,
    _sizes,
    _wait_count,
    publish,
    stream_latency,
)
from summary import summary

from conductor import Conductor, Settings

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent.parent
SYSTEMS = ("conductor", "procrastinate", "pgqueuer")
WORKLOADS = ("drain", "latency")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 1_000
"""Jobs per batch-enqueue call, for every system (as peers.py and `conductor bench`)."""
PGQUEUER_BATCHES = (10, 25)
"""pgqueuer's `--batch-size` (jobs per dequeue query), one column each: its default, and the
value of its performance guide's example for short jobs ("increase batch_size when jobs are
short-lived")."""


@attrs.frozen(kw_only=True)
class Options:
    runs: int = 3
    jobs: int = 20_000
    processes: tuple[int, ...] = (1, 2, 4)
    concurrency: int = 8
    rate: float = 100.0
    seconds: float = 6.0
    pgqueuer_batches: tuple[int, ...] = PGQUEUER_BATCHES
    admin_url: str = ADMIN_URL
    systems: tuple[str, ...] = SYSTEMS
    workloads: tuple[str, ...] = WORKLOADS


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- databases -------------------------------------------------------------------------
def _url_of(admin_url: str, name: str) -> str:
    """The admin URL with its database swapped for `name` (query string kept)."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def _database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A fresh database on the server for one measurement: (its name, its URL)."""
    name = f"bench_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, _url_of(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _activity(admin_url: str, name: str, jobs: int) -> dict[str, float]:
    """What the database counted, per job: transactions committed and rows written.

    Read once no session is left on it (a backend reports its counters as it exits)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(admin_url, autocommit=True) as admin:
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone() != (0,):
            if time.monotonic() > deadline:
                raise TimeoutError(f"sessions still open on {name} after the measurement")
            time.sleep(POLL)
        admin.execute("SELECT pg_stat_clear_snapshot()")
        row = admin.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted"
            " FROM pg_stat_database WHERE datname = %s",
            (name,),
        ).fetchone()
    assert row is not None
    commits, inserted, updated, deleted = row
    return {
        "commits_per_job": commits / jobs,
        "rows_inserted_per_job": inserted / jobs,
        "rows_updated_per_job": updated / jobs,
        "rows_deleted_per_job": deleted / jobs,
    }


# -- the systems -----------------------------------------------------------------------
def columns(options: Options) -> list[str]:
    """The systems as measured: pgqueuer once per batch size (`pgqueuer-10`, ...)."""
    found: list[str] = []
    for system in options.systems:
        if system == "pgqueuer":
            found += [f"pgqueuer-{b}" for b in options.pgqueuer_batches]
        else:
            found.append(system)
    return found


def label(column: str) -> str:
    system, _, batch = column.partition("-")
    return f"{system}, batch {batch}" if batch else system


class Peer(Protocol):
    """One system, its schema applied to a fresh database, for one measurement."""

    def enqueue_batch(self, n: int) -> None: ...
    def enqueue_one(self, sent: float) -> None: ...
    def commands(self, processes: int, *, burst: bool) -> list[list[str]]: ...
    def close(self) -> None:
        """Idempotent: a drain closes early, so the database's counters can be read."""
        ...


class ConductorPeer:
    """conductor's public API and CLI, as for SQLite: the ledger creates its own schema."""

    def __init__(self, url: str, options: Options, column: str) -> None:
        self.url = url
        self.concurrency = options.concurrency
        self.closed = False
        self.app = Conductor(settings=Settings(db=url))

    def enqueue_batch(self, n: int) -> None:
        for first in range(0, n, BATCH):
            self.app.enqueue_many([{"task": "bench_record"}] * min(BATCH, n - first))

    def enqueue_one(self, sent: float) -> None:
        self.app.enqueue({"task": "bench_record", "sent": sent})

    def commands(self, processes: int, *, burst: bool) -> list[list[str]]:
        command = [sys.executable, "-m", "conductor", "worker", "--db", self.url, "-q"]
        command += ["-c", str(self.concurrency), "--processes", str(processes)]
        command += ["--app", "peer_tasks"]
        return [command + (["--burst"] if burst else [])]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.app.close()  # and with it the pool, the last ledger on this database


class ProcrastinatePeer:
    """procrastinate's async API in this process (one event loop kept for the peer's life)."""

    def __init__(self, url: str, options: Options, column: str) -> None:
        self.concurrency = options.concurrency
        self.closed = False
        self.runner = asyncio.Runner()
        self.app = peer_tasks.make_procrastinate(url, pool_size=1)
        self.task = self.app.tasks[peer_tasks.PG_TASK]
        self.runner.run(self._open())

    async def _open(self) -> None:
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()

    def enqueue_batch(self, n: int) -> None:
        for first in range(0, n, BATCH):
            self.runner.run(self.task.batch_defer_async(*[{}] * min(BATCH, n - first)))

    def enqueue_one(self, sent: float) -> None:
        self.runner.run(self.task.defer_async(sent=sent))

    def commands(self, processes: int, *, burst: bool) -> list[list[str]]:
        command = [sys.executable, "-m", "procrastinate", "--app", "peer_tasks.procrastinate_app"]
        command += ["worker", "--concurrency", str(self.concurrency)]
        command += ["--one-shot" if burst else "--wait"]
        return [list(command) for _ in range(processes)]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.runner.run(self.app.close_async())
            finally:
                self.runner.close()


class PgqueuerPeer:
    """pgqueuer's `Queries` on one asyncpg connection in this process."""

    def __init__(self, url: str, options: Options, column: str) -> None:
        import asyncpg
        from pgqueuer.queries import Queries

        self.batch = int(column.partition("-")[2])
        self.closed = False
        self.runner = asyncio.Runner()
        self.connection = self.runner.run(asyncpg.connect(dsn=url))
        self.queries = Queries.from_asyncpg_connection(self.connection)
        self.runner.run(self.queries.install())
        self.runner.run(self.queries.optimize_autovacuum())  # its checklist: `pgq autovac`

    def enqueue_batch(self, n: int) -> None:
        for first in range(0, n, BATCH):
            count = min(BATCH, n - first)
            self.runner.run(
                self.queries.enqueue([peer_tasks.PG_TASK] * count, [None] * count, [0] * count)
            )

    def enqueue_one(self, sent: float) -> None:
        self.runner.run(self.queries.enqueue(peer_tasks.PG_TASK, repr(sent).encode()))

    def commands(self, processes: int, *, burst: bool) -> list[list[str]]:
        code = "import sys, peer_tasks; peer_tasks.pgqueuer_worker(int(sys.argv[1]), sys.argv[2])"
        command = [sys.executable, "-c", code, str(self.batch)]
        command += ["drain" if burst else "continuous"]
        return [list(command) for _ in range(processes)]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.runner.run(self.connection.close())
            finally:
                self.runner.close()


PEERS: dict[str, Callable[[str, Options, str], Peer]] = {
    "conductor": ConductorPeer,
    "procrastinate": ProcrastinatePeer,
    "pgqueuer": PgqueuerPeer,
}


def settings(options: Options) -> dict[str, str]:
    """Every setting chosen for each system, as the report prints it."""
    c = options.concurrency
    found = {
        "conductor": (
            f"`conductor worker --db URL --processes N -c {c} --burst -q --app peer_tasks` "
            "(prefetch auto: 2 to 4 claimed jobs per slot); `Conductor.enqueue_many` in "
            f"batches of {BATCH:,}; a sync task, run in the engine's worker threads"
        ),
        "procrastinate": (
            f"N x `procrastinate worker --concurrency {c} --one-shot`, listen/notify on "
            f"(default), a psycopg pool of up to {c + 1} connections (its docs: "
            "concurrency + 1 for short jobs), jobs kept (`delete_jobs` never, the default); "
            f"`Task.batch_defer_async` in batches of {BATCH:,}; an `async def` task"
        ),
    }
    for batch in options.pgqueuer_batches:
        found[f"pgqueuer-{batch}"] = (
            f"N x `pgq run --mode drain --batch-size {batch}` (its body: "
            "`peer_tasks.pgqueuer_worker`, as 1.6.0's CLI fails with typer 0.29) "
            "(no `--max-concurrent-tasks`: unlimited, the default), one asyncpg connection "
            "per worker (its guide: asyncpg, a single connection for the QueueManager), "
            "durability `durable` (the default: logged tables), `pgq autovac` applied; "
            f"`Queries.enqueue` with lists, {BATCH:,} per call; an `async def` entrypoint"
        )
    return found


@contextlib.contextmanager
def _measurement(system: str, options: Options) -> Iterator[tuple[Peer, Path, dict[str, str], str]]:
    """A fresh database with the system's schema, a stamp folder, the workers' environment."""
    with (
        _database(options.admin_url) as (name, url),
        tempfile.TemporaryDirectory(prefix=f"pg-peers-{system}-") as folder,
    ):
        stamps = Path(folder) / "stamps"
        stamps.mkdir()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
        env[peer_tasks.STAMPS_ENV] = str(stamps)
        env[peer_tasks.PG_URL_ENV] = url
        env[peer_tasks.PG_POOL_ENV] = str(options.concurrency + 1)
        peer = PEERS[system.partition("-")[0]](url, options, system)
        try:
            yield peer, stamps, env, name
        finally:
            peer.close()


def measure_drain(system: str, options: Options, processes: int) -> dict[str, Any]:
    jobs = options.jobs
    with _measurement(system, options) as (peer, stamps, env, name):
        began = time.perf_counter()
        peer.enqueue_batch(jobs)
        enqueue_seconds = time.perf_counter() - began
        workers = Workers(peer.commands(processes, burst=True), stamps.parent, env)
        try:
            _wait_count(stamps, jobs, workers, timeout=max(300.0, jobs / 20))
            workers.wait_exit(120)
        finally:
            workers.stop()
        peer.close()  # idempotent; the counters below need every session gone
        activity = _activity(options.admin_url, name, jobs)
        started = sorted(started for _sent, started in _read_stamps(stamps))
    if len(started) != jobs:
        raise RuntimeError(f"{len(started)} task starts stamped for {jobs} jobs")
    first, last = started[0], started[-1]
    assert workers.exited is not None
    return {
        "jobs": jobs,
        "processes": processes,
        "concurrency": options.concurrency,
        "enqueue_jobs_per_s": jobs / enqueue_seconds,
        "jobs_per_s": (jobs - 1) / (last - first),
        "jobs_per_s_with_startup": jobs / (last - workers.spawned),
        "startup_s": first - workers.spawned,
        "burst_exit_s": workers.exited - workers.spawned,
        "jobs_per_s_burst_wall": jobs / (workers.exited - workers.spawned),
        **activity,
        "load_average": os.getloadavg()[0],
    }


def measure_latency(system: str, options: Options) -> dict[str, Any]:
    count = round(options.rate * options.seconds)
    with _measurement(system, options) as (peer, stamps, env, _name):
        workers = Workers(peer.commands(1, burst=False), stamps.parent, env)
        try:
            return stream_latency(peer, stamps, workers, options.rate, count)
        finally:
            workers.stop()


# -- the run ---------------------------------------------------------------------------
def _server(admin_url: str) -> dict[str, str]:
    """The server's version and the settings that decide what a commit costs."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        found = {"version": str(admin.execute("SHOW server_version").fetchone()[0])}  # type: ignore[index]
        for setting in ("synchronous_commit", "fsync", "wal_sync_method", "max_connections"):
            found[setting] = str(admin.execute(f"SHOW {setting}").fetchone()[0])  # type: ignore[index]
    return found


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("conductor", "procrastinate", "pgqueuer", "psycopg", "asyncpg"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return versions


def _first_line(error: BaseException) -> str:
    """One line for a note: libpq's first line says what failed; a worker's failure (a log
    tail) ends with the exception that stopped it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return f"{type(error).__name__}: {lines[0] if isinstance(error, psycopg.Error) else lines[-1]}"


DRAIN_KEYS = (
    "enqueue_jobs_per_s",
    "jobs_per_s",
    "jobs_per_s_with_startup",
    "startup_s",
    "jobs_per_s_burst_wall",
    "commits_per_job",
    "rows_inserted_per_job",
    "rows_updated_per_job",
    "rows_deleted_per_job",
)
LATENCY_KEYS = ("p50_ms", "p95_ms", "p99_ms", "achieved_rate")


def _summarise(runs: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    return {key: summary([r[key] for r in runs]) for key in keys if runs and key in runs[0]}


def run(options: Options) -> dict[str, Any]:
    result: dict[str, Any] = {
        "options": attrs.asdict(options),
        "labels": {s: label(s) for s in columns(options)},
        "machine": _machine(),
        "server": _server(options.admin_url),
        "versions": _versions(),
        "settings": settings(options),
        "notes": [],
    }
    systems = columns(options)
    skipped: dict[str, str] = {}
    notes: list[str] = []
    worked: set[str] = set()

    def attempt(system: str, what: str, measure: Callable[[], dict[str, Any]]) -> Any:
        if system in skipped:
            return None
        try:
            found = measure()
        except Exception as e:  # noqa: BLE001 - any failure is a note, never the end of the run
            if system in worked:
                note = f"{label(system)}: one {what} lost to {_first_line(e)}"
            else:
                note = f"skipped {label(system)} from its {what} on: {_first_line(e)}"
                skipped[system] = note
            notes.append(note)
            _log(f"NOTE: {note}")
            return None
        worked.add(system)
        return found

    drains: dict[str, dict[int, list[dict[str, Any]]]] = {
        s: {n: [] for n in options.processes} for s in systems
    }
    latencies: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    for index in range(options.runs):
        order = _rotated(systems, index)
        if "drain" in options.workloads:
            for processes in options.processes:
                for system in order:
                    if system not in skipped:
                        _log(f"run {index + 1}/{options.runs}: drain, {processes} x {system}")
                    found = attempt(
                        system,
                        f"run {index + 1} drain with {processes} worker process(es)",
                        lambda s=system, n=processes: measure_drain(s, options, n),
                    )
                    if found:
                        drains[system][processes].append(found)
        if "latency" in options.workloads:
            for system in order:
                if system not in skipped:
                    _log(f"run {index + 1}/{options.runs}: latency, {system}")
                found = attempt(
                    system,
                    f"run {index + 1} latency stream",
                    lambda s=system: measure_latency(s, options),
                )
                if found:
                    latencies[system].append(found)
    measured = [s for s in systems if any(drains[s][n] for n in options.processes) or latencies[s]]
    result["systems"] = measured
    result["notes"] = notes
    if "drain" in options.workloads:
        result["drain"] = {
            s: {
                str(n): {"summary": _summarise(drains[s][n], DRAIN_KEYS), "runs": drains[s][n]}
                for n in options.processes
                if drains[s][n]
            }
            for s in measured
        }
    if "latency" in options.workloads:
        result["latency"] = {
            s: {
                "summary": _summarise(latencies[s], LATENCY_KEYS),
                "runs": [{k: v for k, v in r.items() if k != "samples_ms"} for r in latencies[s]],
                "samples_ms": sorted(x for r in latencies[s] for x in r["samples_ms"]),
            }
            for s in measured
            if latencies[s]
        }
    return result


# -- report ----------------------------------------------------------------------------
def markdown(result: dict[str, Any]) -> str:
    systems = result["systems"]
    options = result["options"]
    lines = [
        "| Measurement | " + " | ".join(label(s) for s in systems) + " |",
        "|---|" + "---|" * len(systems),
    ]

    def row(label: str, cells: Sequence[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    def drain_cells(processes: int, key: str, digits: int = 0) -> list[str]:
        return [
            _fmt(result["drain"][s].get(str(processes), {}).get("summary", {}).get(key), digits)
            for s in systems
        ]

    jobs = f"{options['jobs']:,}"
    slots = options["concurrency"]
    if "drain" in result:
        first = options["processes"][0]
        row(f"enqueue {jobs} jobs (batch API), jobs/s", drain_cells(first, "enqueue_jobs_per_s"))
        for n in options["processes"]:
            plural = "process" if n == 1 else "processes"
            row(
                f"drain {jobs} no-op jobs, {n} {plural} x {slots} slots, jobs/s",
                [f"**{c}**" if c != "-" else c for c in drain_cells(n, "jobs_per_s")],
            )
        for n in options["processes"]:
            row(
                f"the same from spawn (start-up included), {n} x {slots}, jobs/s",
                drain_cells(n, "jobs_per_s_with_startup"),
            )
        for n in options["processes"]:
            row(f"spawn to first job, {n} x {slots}, s", drain_cells(n, "startup_s", 2))
        row(
            f"transactions committed per job (enqueue + drain, {first} x {slots})",
            drain_cells(first, "commits_per_job", 2),
        )
        for kind in ("inserted", "updated", "deleted"):
            row(f"rows {kind} per job", drain_cells(first, f"rows_{kind}_per_job", 2))
    if "latency" in result:
        latency = result["latency"]
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            row(
                f"pickup latency {key[:3]}, ms ({options['rate']:.0f} jobs/s, another process)",
                [_fmt(latency.get(s, {}).get("summary", {}).get(key), 2) for s in systems],
            )
        row(
            "latency stream: rate the producer achieved, jobs/s",
            [_fmt(latency.get(s, {}).get("summary", {}).get("achieved_rate")) for s in systems],
        )
    for system in systems:
        lines.append(f"\n{label(system)}: {result['settings'][system]}.")
    server = result["server"]
    lines.append(
        f"\nPostgreSQL {server['version']}, synchronous_commit={server['synchronous_commit']}, "
        f"fsync={server['fsync']}, wal_sync_method={server['wal_sync_method']}."
    )
    load = result["machine"].get("load_average_during")
    if load:
        lines.append(
            f"\n{result['machine']['cpus']} CPUs; 1-minute load average at the end of the "
            f"measurements: {load[0]:.1f}-{load[1]:.1f}."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of every measurement")
    parser.add_argument(
        "--quick", action="store_true", help="5,000 jobs per drain, a 5 s latency stream"
    )
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "img", help="folder for PNGs and pg_peers.json"
    )
    parser.add_argument("--no-plots", action="store_true", help="write nothing to --out")
    parser.add_argument("--only", type=_names(WORKLOADS), default=WORKLOADS, metavar="W,W")
    parser.add_argument("--systems", type=_names(SYSTEMS), default=SYSTEMS, metavar="S,S")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per drain (20,000)")
    parser.add_argument("--processes", type=_sizes, default=(1, 2, 4), metavar="N,N")
    parser.add_argument("--concurrency", type=int, default=8, help="slots per worker process")
    parser.add_argument("--rate", type=float, default=100.0, help="latency stream, jobs/s")
    parser.add_argument("--seconds", type=float, default=None, help="latency stream (6 s)")
    parser.add_argument(
        "--pgqueuer-batch",
        type=_sizes,
        default=PGQUEUER_BATCHES,
        metavar="B,B",
        help="pgq run --batch-size, a column each",
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="creates and drops databases")
    args = parser.parse_args(argv)
    for name in ("runs", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected 1 or more")
    jobs = args.jobs or (5_000 if args.quick else 20_000)
    seconds = args.seconds or (5.0 if args.quick else 6.0)
    if jobs < 2 or args.rate <= 0 or seconds <= 0:
        parser.error("--jobs, --rate, --seconds: expected at least 2 jobs and positive numbers")
    try:
        _server(args.admin_url)
    except psycopg.Error as e:
        parser.error(f"--admin-url {args.admin_url}: the server did not answer ({_first_line(e)})")
    options = Options(
        runs=args.runs,
        jobs=jobs,
        processes=args.processes,
        concurrency=args.concurrency,
        rate=args.rate,
        seconds=seconds,
        pgqueuer_batches=args.pgqueuer_batch,
        admin_url=args.admin_url,
        systems=args.systems,
        workloads=args.only,
    )
    result = run(options)
    if not result["systems"]:
        raise SystemExit("nothing was measured: " + "; ".join(result["notes"]))
    publish(result, args, markdown, "pg_peers.json", lambda plots: plots.write_pg)


if __name__ == "__main__":
    main()
