"""Dashboard benchmarks: server time of the overview and the first jobs page at a million
jobs, and what ten live browsers cost the workers.

Run as a script (pytest ignores this directory):

    python tests/benchmarks/dashboard_bench.py [--json] [--jobs 1000000] [--runs 30]
        [--drain 20000] [--drain-runs 3] [--workdir DIR]

* pages - a SQLite ledger of `--jobs` jobs (`ledger_bench.build_query_db`: 90% pending,
  1% in progress, 9% completed, over three queues and four tasks), served by a real
  `conductor dashboard` process; each page and API answer is requested `--runs` times
  and its server time read from the `Server-Timing` header the dashboard sends (the time
  to start answering, in the server, without the network and the client). Reported: the
  first request and the median and p95 of the rest.
* sse - `--drain` no-op jobs drained by one `conductor worker --burst` process, with no
  dashboard, and with a dashboard that ten SSE clients watch; throughput is the jobs over
  the time from the first start to the last completion, read from the ledger. Runs of
  the two set-ups alternate (`--drain-runs` each), medians reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from ledger_bench import _cached_build, _log, build_query_db

from conductor import Conductor, Settings

CONDUCTOR = "conductor"
PAGES = (
    ("overview page", "/"),
    ("overview API", "/api/overview"),
    ("jobs page", "/jobs"),
    ("jobs API", "/api/jobs"),
    ("jobs page, status=completed", "/jobs?status=completed"),
    ("jobs page, queue=email, task=send_email", "/jobs?queue=email&task=send_email"),
    ("jobs page 2, status=pending", None),
    ("stats API", "/api/stats"),
)
_ANNOUNCED = re.compile(r"conductor dashboard at (http://\S+/) ")


class Dashboard:
    """A `conductor dashboard` process on a free port."""

    def __init__(self, db: Path, log: Path) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if k != "CONDUCTOR_DASHBOARD_TOKEN"}
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [CONDUCTOR, "dashboard", "--db", str(db), "--port", "0"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 120
        while not (found := _ANNOUNCED.search(log.read_text(errors="replace"))):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"dashboard did not start: {log.read_text()}")
            time.sleep(0.05)
        self.url = found.group(1)
        self.http = httpx.Client(base_url=self.url, trust_env=False, timeout=120)

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=60)


def server_ms(answer: httpx.Response) -> float:
    found = re.search(r"app;dur=([0-9.]+)", answer.headers["server-timing"])
    assert found, answer.headers
    return float(found.group(1))


def bench_pages(workdir: Path, jobs: int, runs: int) -> dict[str, Any]:
    path, info = _cached_build(workdir, f"dashboard-{jobs}", lambda p: build_query_db(p, jobs))
    dashboard = Dashboard(path, workdir / "dashboard-pages.log")
    results: dict[str, Any] = {"database": info}
    try:
        first_page = dashboard.http.get("/api/jobs", params={"status": "pending"}).json()
        second = f"/jobs?status=pending&before={first_page['before']}"
        for name, target in PAGES:
            url = target or second
            times, walls = [], []
            for _ in range(runs + 1):
                began = time.perf_counter()
                answer = dashboard.http.get(url)
                walls.append((time.perf_counter() - began) * 1000)
                if answer.status_code != 200:
                    raise SystemExit(f"{url}: {answer.status_code} {answer.text[:300]}")
                times.append(server_ms(answer))
            rest = sorted(times[1:])
            results[name] = {
                "path": url,
                "first_ms": round(times[0], 1),
                "median_ms": round(statistics.median(rest), 1),
                "p95_ms": round(rest[max(0, int(len(rest) * 0.95) - 1)], 1),
                "client_median_ms": round(statistics.median(walls[1:]), 1),
            }
            _log(f"  {name}: {results[name]}")
    finally:
        dashboard.close()
    return results


def _fill(path: Path, count: int) -> None:
    with Conductor(settings=Settings(db=str(path))) as app:
        for start in range(0, count, 10_000):
            app.enqueue_many([{"task": "noop"}] * min(10_000, count - start))


def _drain_rate(path: Path, count: int) -> float:
    """Run one burst worker to the end; jobs/s from its first start to its last finish."""
    done = subprocess.run(
        [CONDUCTOR, "worker", "--db", str(path), "--burst", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"worker failed: {done.stderr[-2000:]}")
    with Conductor(settings=Settings(db=str(path)), create=False) as app:
        started = app.events(types=("claimed",)) or app.events(types=("started",))
        finished = app.events(types=("completed",))
    assert len(finished) == count, (len(finished), count)
    span = _seconds(started[0].at, finished[-1].at)
    return count / span


def _seconds(a: str, b: str) -> float:
    from conductor.domain.clock import seconds_between

    return seconds_between(a, b)


def _watch(url: str, stop: threading.Event, received: list[int]) -> None:
    with (
        contextlib.suppress(httpx.HTTPError),  # the dashboard stopping ends the stream
        httpx.Client(base_url=url, trust_env=False, timeout=None) as http,  # noqa: S113
        http.stream("GET", "/api/stream") as answer,
    ):
        for line in answer.iter_lines():
            if line.startswith("data: "):
                received.append(json.loads(line[6:])["seq"])
            if stop.is_set():
                return


def bench_sse(workdir: Path, count: int, runs: int, clients: int = 10) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"no dashboard": [], f"{clients} SSE clients": []}
    messages: list[int] = []
    for run in range(runs):
        for setup, found in rates.items():
            path = workdir / f"drain-{run}-{setup.split()[0]}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            _fill(path, count)
            dashboard = None
            stop = threading.Event()
            threads: list[threading.Thread] = []
            received: list[int] = []
            if setup != "no dashboard":
                dashboard = Dashboard(path, workdir / "dashboard-sse.log")
                threads = [
                    threading.Thread(
                        target=_watch, args=(dashboard.url, stop, received), daemon=True
                    )
                    for _ in range(clients)
                ]
                for thread in threads:
                    thread.start()
                deadline = time.monotonic() + 60
                while len(received) < clients and time.monotonic() < deadline:
                    time.sleep(0.05)  # every client has its first message: all are watching
            try:
                rate = _drain_rate(path, count)
            finally:
                stop.set()
                if dashboard is not None:
                    dashboard.close()
            found.append(rate)
            messages.append(len(received))
            _log(f"  run {run + 1} {setup}: {rate:,.0f} jobs/s ({len(received)} messages)")
    medians = {setup: statistics.median(values) for setup, values in rates.items()}
    base, watched = medians.values()
    return {
        "jobs": count,
        "runs": runs,
        "median_jobs_per_second": {k: round(v) for k, v in medians.items()},
        "all_jobs_per_second": {k: [round(v) for v in vs] for k, vs in rates.items()},
        "cost_percent": round((base - watched) / base * 100, 1),
        "messages_received": messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--drain", type=int, default=20_000)
    parser.add_argument("--drain-runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--skip", choices=("pages", "sse"), action="append", default=[])
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = options.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {}
        if "pages" not in options.skip:
            _log(f"pages at {options.jobs:,} jobs")
            report["pages"] = bench_pages(workdir, options.jobs, options.runs)
        if "sse" not in options.skip:
            _log(f"drain of {options.drain:,} jobs with and without ten SSE clients")
            report["sse"] = bench_sse(workdir, options.drain, options.drain_runs)
    print(json.dumps(report, indent=2) if options.json else json.dumps(report))


if __name__ == "__main__":
    main()
