"""What `conductor stats`' activity figures cost on a long log.

Run as a script (pytest ignores this directory):

    python tests/benchmarks/activity_bench.py [--events 1000000] [--hours 240] [--workdir DIR]

Builds a log of `--events` events (jobs enqueued, started 0-2 s later, finished 0-1 s after
that; 1% fail an attempt and are retried) spread evenly over `--hours`, appended in time
order as a live system would, then times on it:

* `Ledger.recent` for the last minute and the last hour (the rows it returns), and
  `Conductor.activity()` (both windows, look-ups of lead-in events included), as of the
  log's last stamp;
* for scale, one full pass over the log (`SELECT count(*) ... WHERE at >= ?`), which is
  what a query without the backwards walk would cost.

Each timing is the median of `--runs` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conductor import Conductor, ManualClock, Settings
from conductor.domain.clock import stamp
from conductor.domain.events import (
    JobAttemptFailed,
    JobCompleted,
    JobEnqueued,
    JobRetryScheduled,
    JobStarted,
    NewEvent,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BATCH = 10_000


def _job_events(job_id: int, at: dt.datetime, rng: random.Random) -> list[NewEvent]:
    """One job's events after its `enqueued`: (stamp, event) in time order."""
    started = at + dt.timedelta(seconds=rng.uniform(0, 2))
    lease = stamp(started + dt.timedelta(minutes=5))
    out = [
        NewEvent(
            job_id=job_id,
            at=stamp(started),
            event=JobStarted(attempt=1, worker="bench:1:w", lease_expires_at=lease),
        )
    ]
    done = started + dt.timedelta(seconds=rng.uniform(0, 1))
    if rng.random() < 0.01:
        retry = done + dt.timedelta(seconds=1)
        out += [
            NewEvent(
                job_id=job_id,
                at=stamp(done),
                event=JobAttemptFailed(attempt=1, error_type="E", message="m", traceback=""),
            ),
            NewEvent(
                job_id=job_id,
                at=stamp(done),
                event=JobRetryScheduled(attempt=1, run_at=stamp(retry)),
            ),
            NewEvent(
                job_id=job_id,
                at=stamp(retry),
                event=JobStarted(attempt=2, worker="bench:1:w", lease_expires_at=lease),
            ),
        ]
        done = retry + dt.timedelta(seconds=rng.uniform(0, 1))
        attempt = 2
    else:
        attempt = 1
    out.append(NewEvent(job_id=job_id, at=stamp(done), event=JobCompleted(attempt=attempt)))
    return out


def build(path: Path, events: int, hours: float) -> str:
    """Append about `events` events over `hours`, in stamp order; returns the last stamp."""
    rng = random.Random(7)  # noqa: S311 - reproducible timings, not secrets
    jobs = events // 3
    step = hours * 3600 / jobs
    pending: list[tuple[str, int, NewEvent]] = []  # (stamp, order, event) not yet appended
    order = 0
    last = ""
    with Conductor(settings=Settings(db=str(path)), clock=ManualClock(START)) as app:
        batch: list[NewEvent] = []
        for job_id in range(1, jobs + 1):
            at = START + dt.timedelta(seconds=job_id * step)
            now = stamp(at)
            # Release everything stamped before this enqueue, in stamp order.
            while pending and pending[0][0] <= now:
                batch.append(heapq.heappop(pending)[2])
            batch.append(
                NewEvent(
                    job_id=None,
                    at=now,
                    event=JobEnqueued(
                        task="bench",
                        queue="default",
                        priority=1,
                        max_retries=3,
                        run_at=now,
                        payload='{"task":"bench"}',
                    ),
                )
            )
            for new in _job_events(job_id, at, rng):
                order += 1
                heapq.heappush(pending, (new.at, order, new))
            if len(batch) >= BATCH:
                app.ledger.append(batch)
                last = batch[-1].at
                batch = []
        batch += [item[2] for item in sorted(pending)]
        if batch:
            app.ledger.append(batch)
            last = batch[-1].at
    return last


def timed(runs: int, call: Callable[[], object]) -> tuple[float, object]:
    result = call()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hours", type=float, default=240.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="activity-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"activity-{args.events}-{args.hours:g}h.db"
    info = path.with_suffix(".json")
    if not info.exists():
        began = time.perf_counter()
        last = build(path, args.events, args.hours)
        info.write_text(json.dumps({"last": last, "build_s": time.perf_counter() - began}))
    last = json.loads(info.read_text())["last"]
    now = dt.datetime.fromisoformat(last)
    report: dict[str, Any] = {"events": args.events, "hours": args.hours}
    with Conductor(settings=Settings(db=str(path)), clock=ManualClock(now)) as app:
        report["log_events"] = app.ledger.last_seq()
        for name, seconds in (("minute", 60), ("hour", 3600)):
            since = stamp(now - dt.timedelta(seconds=seconds))
            took, rows = timed(args.runs, lambda since=since: app.ledger.recent(since))
            assert isinstance(rows, list)
            report[f"recent_{name}_rows"] = len(rows)
            report[f"recent_{name}_ms"] = round(took * 1000, 2)
        took, activity = timed(args.runs, app.activity)
        report["activity_ms"] = round(took * 1000, 2)
        report["activity"] = activity.as_dict()  # type: ignore[attr-defined]
    conn = sqlite3.connect(path)
    since = stamp(now - dt.timedelta(hours=1))
    took, _ = timed(
        args.runs,
        lambda: conn.execute("SELECT count(*) FROM events WHERE at >= ?", (since,)).fetchone(),
    )
    report["full_scan_ms"] = round(took * 1000, 2)
    conn.close()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
