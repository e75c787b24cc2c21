"""Ledger benchmarks: enqueue rates, replay of a large log, stats/jobs on a large database.

Run as a script (pytest ignores this directory; `just bench` runs it):

    python tests/benchmarks/ledger_bench.py [--json] [--runs 3] [--events 1000000]

Every figure comes from real SQLite files in a temporary directory, opened with conductor's
defaults (WAL, `synchronous=FULL`). Each measurement is repeated `--runs` times and
reported as the median with the min-max range. Large inputs are built once per invocation
and copied for each run, so a run times the operation, not the set-up:

* enqueue - `Conductor.enqueue`, one job per call, and `enqueue_many` in batches of 100
  and of 10,000, each run into a fresh database.
* replay - `Conductor.replay` (`conductor replay`) of an `--events` log: 40% `enqueued`,
  30.5% `started`, 28.5% `completed`, 1% `attempt_failed` + `retry_scheduled` (see
  `build_replay_log`). Each run is a fresh process on a fresh copy, timed around the call;
  its peak RSS is read in the same process, and a log a tenth the size is replayed too, so
  the two peaks show whether memory grows with the log.
* verify - `Conductor.verify_projections` (`conductor replay --verify`) on the same log.
* queries - `stats()` and the first page of `jobs()` (plain and filtered) on a database of
  `--jobs` jobs, in-process (the first call after opening, and the median of repeated
  calls), and as the real `conductor` CLI: wall time including process start-up, next to
  the start-up alone (`python -c pass`, `conductor --help`).

`--baseline-src DIR` also replays with the `conductor` and `projections` packages found in
DIR (for instance `git archive <rev> conductor projections | tar -x -C DIR`), alternating
with the current code run by run, so a before/after comparison shares the machine's
conditions. `--workdir DIR` keeps the built databases in DIR and reuses them next time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from summary import summary

from conductor import Conductor, ManualClock, Settings
from conductor.bench import console_command, peak_rss_mib
from conductor.domain import decisions as decide
from conductor.domain.clock import stamp
from conductor.domain.events import (
    JobAttemptFailed,
    JobCompleted,
    JobRetryScheduled,
    JobRunStarted,
    NewEvent,
)
from conductor.ledger.base import JobFilter

TASKS = ("send_email", "resize_image", "sync_account", "generate_report")
QUEUES = ("default", "email", "media")
PRIORITIES = ("high", "medium", "low")
LEASE = dt.timedelta(minutes=5)
BUILD_FORMAT = 3
"""Bump when the built logs change shape, so `--workdir` caches are rebuilt."""


# -- helpers ---------------------------------------------------------------------------
def _open(path: Path, *, clock: ManualClock | None = None, create: bool = True) -> Conductor:
    return Conductor(settings=Settings(db=str(path)), clock=clock, create=create)


def _payload(i: int) -> dict[str, Any]:
    return {"task": TASKS[i % len(TASKS)], "user_id": i, "email": f"user{i}@example.com"}


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _copy_db(source: Path, target: Path) -> None:
    _remove_db(target)
    shutil.copyfile(source, target)


def _child(
    kind: str, path: Path, extra: Sequence[str] = (), *, src: Path | None = None
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return what it printed (JSON).

    With `src`, the child imports `conductor` and `projections` from that directory.
    """
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"child {kind} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rss_mb() -> float:
    """This process's peak resident set size so far, in MB (`VmHWM`: see `peak_rss_mib`)."""
    own = peak_rss_mib()
    return own if own is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- machine ---------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = "unknown"
    mem_kb = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- enqueue ---------------------------------------------------------------------------
def bench_enqueue(workdir: Path, runs: int, singles: int) -> dict[str, Any]:
    cases: list[tuple[str, int, int]] = [
        ("enqueue (1 per call)", 1, singles),
        ("enqueue_many (batch 100)", 100, 20_000),
        ("enqueue_many (batch 10,000)", 10_000, 100_000),
    ]
    results: dict[str, Any] = {}
    for name, batch, total in cases:
        rates = []
        for _ in range(runs):
            path = workdir / f"enqueue-{batch}.db"
            _remove_db(path)
            payloads = [_payload(i) for i in range(total)]
            with _open(path) as app:
                start = time.perf_counter()
                if batch == 1:
                    for payload in payloads:
                        app.enqueue(payload)
                else:
                    for first in range(0, total, batch):
                        app.enqueue_many(payloads[first : first + batch])
                elapsed = time.perf_counter() - start
            rates.append(total / elapsed)
            _remove_db(path)
        results[name] = {"jobs": total, "batch": batch, "jobs_per_s": summary(rates)}
        _log(f"  {name}: {statistics.median(rates):,.0f} jobs/s")
    return results


# -- building large logs ---------------------------------------------------------------
def _enqueue_bulk(app: Conductor, count: int) -> None:
    """`count` jobs through `enqueue_many`, 10,000 per call, over queues and priorities."""
    batch = 10_000
    for n, start in enumerate(range(0, count, batch)):
        app.enqueue_many(
            [_payload(i) for i in range(start, min(start + batch, count))],
            queue=QUEUES[n % len(QUEUES)],
            priority=PRIORITIES[n % len(PRIORITIES)],
        )


def _claim(app: Conductor, clock: ManualClock, count: int) -> list[tuple[int, int]]:
    """Start `count` due jobs through `Ledger.claim`, 50,000 per claim; (id, attempt) each."""
    claimed: list[tuple[int, int]] = []
    while len(claimed) < count:
        got = app.ledger.claim(
            worker="bench-host:4242:0",
            queues=QUEUES,
            limit=min(50_000, count - len(claimed)),
            now=clock.advance(0.001),
            lease=LEASE,
        )
        if not got:
            raise RuntimeError("nothing left to claim")
        # A claim leaves jobs `claimed`; a worker's `run_started` makes them in_progress.
        at = stamp(clock.now())
        for first in range(0, len(got), 20_000):
            app.ledger.append(
                [
                    NewEvent(job_id=job.id, at=at, event=JobRunStarted(attempt=job.attempt))
                    for job in got[first : first + 20_000]
                ]
            )
        claimed.extend((job.id, job.attempt) for job in got)
    return claimed


def _start(
    app: Conductor, clock: ManualClock, count: int, claim_batch: int
) -> list[tuple[int, int]]:
    """Start the `count` oldest pending jobs as if claimed `claim_batch` at a time.

    Each claim gets its own time, so its `started` events carry their own lease expiry:
    with `claim_batch` 1 no two `started` events have the same `data`, the worst case for
    a replay (nothing decoded can be reused); the engine claims about ten at a time. The
    events are the ones `Ledger.claim` writes (`conductor.job.start`), appended 20,000 per
    transaction to keep the build quick.
    """
    rows = app.ledger.jobs(JobFilter(status="pending"))[:count]
    started: list[tuple[int, int]] = []
    events: list[NewEvent] = []
    now = clock.now()
    for index, row in enumerate(rows):
        if index % claim_batch == 0:
            now = clock.advance(0.000_123)
        worker = f"bench-host:{4242 + index // claim_batch % 4}:0"
        events.append(decide.start(row, worker=worker, now=now, lease=LEASE))
        started.append((row["id"], row["attempts"] + 1))
        if len(events) == 20_000:
            app.ledger.append(events)
            events = []
    if events:
        app.ledger.append(events)
    return started


def _finish(
    app: Conductor, clock: ManualClock, started: Sequence[tuple[int, int]], failures: int
) -> None:
    """Complete the started jobs, except `failures` of them that fail and wait for a retry."""
    batch = 20_000
    failing, completing = started[:failures], started[failures:]
    for first in range(0, len(completing), batch):
        at = stamp(clock.advance(0.001))
        app.ledger.append(
            [
                NewEvent(job_id=job_id, at=at, event=JobCompleted(attempt=attempt))
                for job_id, attempt in completing[first : first + batch]
            ]
        )
    for first in range(0, len(failing), batch):
        now = clock.advance(0.001)
        at = stamp(now)
        retry_at = stamp(now + dt.timedelta(days=1))  # far ahead: never claimed again here
        events = []
        for job_id, attempt in failing[first : first + batch]:
            events.append(
                NewEvent(
                    job_id=job_id,
                    at=at,
                    event=JobAttemptFailed(
                        attempt=attempt,
                        error_type="TimeoutError",
                        message="upstream did not answer in 30s",
                        traceback='Traceback (most recent call last):\n  File "tasks.py", '
                        "line 12, in send_email\nTimeoutError: upstream did not answer in 30s\n",
                    ),
                )
            )
            events.append(
                NewEvent(
                    job_id=job_id, at=at, event=JobRetryScheduled(attempt=attempt, run_at=retry_at)
                )
            )
        app.ledger.append(events)


def build_replay_log(path: Path, events: int, claim_batch: int) -> dict[str, int]:
    """A log of `events` events: 40% enqueued, 30.5% started, 28.5% completed, 1% failures.

    Jobs are enqueued with `enqueue_many`, 10,000 per call, over three queues, three
    priorities and four tasks; started `claim_batch` at a time (see `_start`); then most
    complete, and 0.5% fail an attempt (`attempt_failed` + `retry_scheduled`).
    """
    jobs = events * 400 // 1000
    started = events * 305 // 1000
    failures = events * 5 // 1000
    completed = events - jobs - started - 2 * failures
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    with _open(path, clock=clock) as app:
        _enqueue_bulk(app, jobs)
        clock.advance(1)
        begun = _start(app, clock, started, claim_batch)
        _finish(app, clock, begun[: completed + failures], failures)
        total = app.ledger.last_seq()
    return {
        "events": total,
        "jobs": jobs,
        "started": started,
        "completed": completed,
        "claim_batch": claim_batch,
    }


def build_query_db(path: Path, jobs: int) -> dict[str, int]:
    """`jobs` jobs: 90% pending, 1% in progress, 9% completed (so filters have hits)."""
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    started = jobs // 10
    completed = jobs * 9 // 100
    with _open(path, clock=clock) as app:
        _enqueue_bulk(app, jobs)
        clock.advance(1)
        claimed = _claim(app, clock, started)
        _finish(app, clock, claimed[:completed], 0)
        total = app.ledger.last_seq()
    return {"events": total, "jobs": jobs, "started": started, "completed": completed}


def _cached_build(
    workdir: Path, name: str, build: Callable[[Path], Mapping[str, int]]
) -> tuple[Path, dict[str, Any]]:
    path = workdir / f"{name}-v{BUILD_FORMAT}.db"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        _log(f"  reusing {path}")
        return path, json.loads(info_path.read_text())
    _log(f"  building {path} ...")
    _remove_db(path)
    start = time.perf_counter()
    info: dict[str, Any] = dict(build(path))
    info["build_seconds"] = round(time.perf_counter() - start, 1)
    info["file_mb"] = round(path.stat().st_size / 1e6, 1)
    info_path.write_text(json.dumps(info))
    _log(f"  built in {info['build_seconds']} s: {info}")
    return path, info


# -- replay ----------------------------------------------------------------------------
def bench_replay(
    workdir: Path, base: Path, small: Path, runs: int, baseline_src: Path | None
) -> dict[str, Any]:
    run_db = workdir / "replay-run.db"
    series: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        series.setdefault(key, []).append(value)

    events = small_events = 0
    for run in range(runs):
        variants: list[tuple[str, Path | None]] = [("replay", None)]
        if baseline_src is not None:
            variants.append(("baseline", baseline_src))
        for name, src in variants:
            _copy_db(base, run_db)
            got = _child("replay", run_db, src=src)
            events = got["events"]
            note(f"{name}.seconds", got["seconds"])
            note(f"{name}.rate", events / got["seconds"])
            note(f"{name}.rss", got["rss_peak_mb"])
            note(f"{name}.rss0", got["rss_before_mb"])
            _log(f"  {name} run {run + 1}: {events / got['seconds']:,.0f} events/s")
        _copy_db(small, run_db)
        got = _child("replay", run_db)
        small_events = got["events"]
        note("small.rss", got["rss_peak_mb"])
        note("small.rate", small_events / got["seconds"])
        _copy_db(base, run_db)
        got = _child("verify", run_db)
        if got["differences"]:
            raise SystemExit(f"replay --verify found {got['differences']} differences")
        note("verify.seconds", got["seconds"])
        note("verify.rss", got["rss_peak_mb"])
        _log(f"  verify run {run + 1}: {got['seconds']:.2f} s")
    _remove_db(run_db)

    def replaysummary(name: str) -> dict[str, Any]:
        return {
            "events": events,
            "seconds": summary(series[f"{name}.seconds"]),
            "events_per_s": summary(series[f"{name}.rate"]),
            "peak_rss_mb": summary(series[f"{name}.rss"]),
            "rss_before_mb": summary(series[f"{name}.rss0"]),
        }

    result: dict[str, Any] = {
        "replay": replaysummary("replay"),
        "replay_small": {
            "events": small_events,
            "events_per_s": summary(series["small.rate"]),
            "peak_rss_mb": summary(series["small.rss"]),
        },
        "verify": {
            "events": events,
            "seconds": summary(series["verify.seconds"]),
            "events_per_s": summary([events / s for s in series["verify.seconds"]]),
            "peak_rss_mb": summary(series["verify.rss"]),
        },
    }
    if baseline_src is not None:
        result["baseline"] = {**replaysummary("baseline"), "src": str(baseline_src)}
        result["speedup"] = summary(
            [
                b / a
                for a, b in zip(series["replay.seconds"], series["baseline.seconds"], strict=True)
            ]
        )
    return result


def child_replay(path: Path) -> dict[str, Any]:
    with _open(path, create=False) as app:
        before = _rss_mb()
        start = time.perf_counter()
        events = app.replay()
        seconds = time.perf_counter() - start
        peak = _rss_mb()
    return {"events": events, "seconds": seconds, "rss_before_mb": before, "rss_peak_mb": peak}


def child_verify(path: Path) -> dict[str, Any]:
    with _open(path, create=False) as app:
        before = _rss_mb()
        start = time.perf_counter()
        differences = app.verify_projections()
        seconds = time.perf_counter() - start
        peak = _rss_mb()
    return {
        "differences": len(differences),
        "seconds": seconds,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
    }


# -- queries ---------------------------------------------------------------------------
QUERIES: dict[str, Callable[[Conductor], object]] = {
    "stats()": lambda app: app.stats(),
    "jobs(limit=100)": lambda app: app.jobs(limit=100),
    "jobs(status='pending', limit=100)": lambda app: app.jobs(status="pending", limit=100),
    "jobs(status='completed', limit=100)": lambda app: app.jobs(status="completed", limit=100),
    "jobs(queue='email', limit=100)": lambda app: app.jobs(queue="email", limit=100),
}


def _cli_commands() -> dict[str, list[str]]:
    conductor = console_command()  # not a wrapper first on PATH, such as a pyenv shim
    return {
        "python -c pass (interpreter start-up)": [sys.executable, "-c", "pass"],
        "conductor --help (start-up, imports)": [*conductor, "--help"],
        "conductor stats": [*conductor, "stats", "--db", "{db}"],
        "conductor stats --json": [*conductor, "stats", "--json", "--db", "{db}"],
        "conductor jobs": [*conductor, "jobs", "--db", "{db}"],
        "conductor jobs --status completed": [
            *conductor,
            "jobs",
            "--status",
            "completed",
            "--db",
            "{db}",
        ],
    }


def child_queries(path: Path, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with _open(path, create=False) as app:
        for name, query in QUERIES.items():
            start = time.perf_counter()
            query(app)
            first = time.perf_counter() - start
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                query(app)
                times.append(time.perf_counter() - start)
            out[name] = {"first_ms": first * 1000, "median_ms": statistics.median(times) * 1000}
    return out


def bench_queries(base: Path, runs: int, repeats: int) -> dict[str, Any]:
    first: dict[str, list[float]] = {name: [] for name in QUERIES}
    warm: dict[str, list[float]] = {name: [] for name in QUERIES}
    commands = _cli_commands()
    cli: dict[str, list[float]] = {name: [] for name in commands}
    cli_repeats = max(repeats // 4, 1)
    for run in range(runs):
        got = _child("queries", base, [str(repeats)])
        for name in QUERIES:
            first[name].append(got[name]["first_ms"])
            warm[name].append(got[name]["median_ms"])
        for name, argv in commands.items():
            times = []
            for _ in range(cli_repeats):
                command = [part.replace("{db}", str(base)) for part in argv]
                start = time.perf_counter()
                subprocess.run(command, capture_output=True, check=True)
                times.append(time.perf_counter() - start)
            cli[name].append(statistics.median(times) * 1000)
        _log(
            f"  queries run {run + 1}: "
            + ", ".join(f"{name} {values[-1]:.0f} ms" for name, values in cli.items())
        )
    return {
        "in_process": {
            name: {"first_call_ms": summary(first[name]), "repeated_ms": summary(warm[name])}
            for name in QUERIES
        },
        "cli_wall_ms": {name: summary(values) for name, values in cli.items()},
        "repeats_per_run": repeats,
        "cli_repeats_per_run": cli_repeats,
    }


# -- report ----------------------------------------------------------------------------
def _fmt(summary: Mapping[str, float | int], unit: str, digits: int = 0) -> str:
    med, lo, hi = summary["median"], summary["min"], summary["max"]
    return f"{med:,.{digits}f} {unit}  ({lo:,.{digits}f}-{hi:,.{digits}f}, n={summary['runs']})"


def render(report: Mapping[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"machine: {m['nproc']} x {m['cpu']}, {m['memory_gb']} GB, Python {m['python']}, "
        f"SQLite {m['sqlite']}, load {m['load_avg_at_start']}",
        "durability: WAL, synchronous=FULL (conductor's default); medians (min-max, runs)",
        "",
    ]
    rows: list[tuple[str, str]] = []
    for name, result in report.get("enqueue", {}).items():
        rows.append((f"{name} [{result['jobs']:,} jobs]", _fmt(result["jobs_per_s"], "jobs/s")))
    if "replay" in report:
        section = report["replay"]
        rep, ver, small = section["replay"], section["verify"], section["replay_small"]
        batch = report["builds"]["replay"]["claim_batch"]
        n = f"{rep['events']:,} events, claims of {batch}"
        rows.append((f"replay [{n}]", _fmt(rep["events_per_s"], "events/s")))
        rows.append((f"replay [{n}] time", _fmt(rep["seconds"], "s", 2)))
        if "baseline" in section:
            rows.append(
                (f"  baseline code [{n}]", _fmt(section["baseline"]["events_per_s"], "events/s"))
            )
            rows.append(("  speed-up over baseline (same runs)", _fmt(section["speedup"], "x", 2)))
        rows.append(("replay peak RSS", _fmt(rep["peak_rss_mb"], "MB", 1)))
        rows.append(
            ("  RSS before the replay (imports, open db)", _fmt(rep["rss_before_mb"], "MB", 1))
        )
        rows.append(
            (
                f"  peak RSS replaying {small['events']:,} events",
                _fmt(small["peak_rss_mb"], "MB", 1),
            )
        )
        rows.append((f"replay --verify [{n}] time", _fmt(ver["seconds"], "s", 2)))
        rows.append(("replay --verify peak RSS", _fmt(ver["peak_rss_mb"], "MB", 1)))
    if "queries" in report:
        q = report["queries"]
        jobs = report["builds"]["queries"]["jobs"]
        for name, result in q["in_process"].items():
            rows.append(
                (f"{name} [{jobs:,} jobs] first call", _fmt(result["first_call_ms"], "ms", 2))
            )
            rows.append((f"{name} [{jobs:,} jobs] repeated", _fmt(result["repeated_ms"], "ms", 2)))
        for name, result in q["cli_wall_ms"].items():
            rows.append((f"{name} wall", _fmt(result, "ms", 0)))
    width = max((len(label) for label, _ in rows), default=0)
    lines.extend(f"{label:<{width}}  {value}" for label, value in rows)
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------
SECTIONS = ("enqueue", "replay", "queries")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the replay log")
    parser.add_argument(
        "--claim-batch",
        type=int,
        default=1,
        help="jobs per claim in the replay log (1, the default: every started event distinct)",
    )
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs for stats/jobs")
    parser.add_argument("--singles", type=int, default=2_000, help="jobs enqueued one per call")
    parser.add_argument("--repeats", type=int, default=20, help="query repetitions per run")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument("--workdir", type=Path, help="keep and reuse built databases here")
    parser.add_argument(
        "--baseline-src", type=Path, help="also replay with the packages in this directory"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, path = args.child[0], Path(args.child[1])
        children: dict[str, Callable[[], dict[str, Any]]] = {
            "replay": lambda: child_replay(path),
            "verify": lambda: child_verify(path),
            "queries": lambda: child_queries(path, int(args.child[2])),
        }
        print(json.dumps(children[kind]()))
        return

    sections = args.only or list(SECTIONS)
    report: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(["ledger_bench.py", *(sys.argv[1:] if argv is None else argv)]),
        "builds": {},
    }
    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp:
        scratch = Path(tmp)
        workdir = args.workdir or scratch
        workdir.mkdir(parents=True, exist_ok=True)
        if "enqueue" in sections:
            _log("enqueue ...")
            report["enqueue"] = bench_enqueue(scratch, args.runs, args.singles)
        if "replay" in sections:
            _log("replay ...")
            small_events = max(args.events // 10, 1_000)
            base, info = _cached_build(
                workdir,
                f"replay-{args.events}-c{args.claim_batch}",
                lambda path: build_replay_log(path, args.events, args.claim_batch),
            )
            small, small_info = _cached_build(
                workdir,
                f"replay-{small_events}-c{args.claim_batch}",
                lambda path: build_replay_log(path, small_events, args.claim_batch),
            )
            report["builds"]["replay"] = info
            report["builds"]["replay_small"] = small_info
            report["replay"] = bench_replay(scratch, base, small, args.runs, args.baseline_src)
        if "queries" in sections:
            _log("queries ...")
            base, info = _cached_build(
                workdir, f"queries-{args.jobs}", lambda path: build_query_db(path, args.jobs)
            )
            report["builds"]["queries"] = info
            report["queries"] = bench_queries(base, args.runs, args.repeats)
    print(json.dumps(report, indent=2) if args.json else render(report))


if __name__ == "__main__":
    main()
