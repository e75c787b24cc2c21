"""conductor's PostgreSQL drain timed by the worker processes' own CPU as well as by the
clock: on a machine shared with other work the wall-clock rate swings by half between
runs of the same code, the CPU a job costs the worker much less.

`python tests/benchmarks/pg_drain_cpu.py [--processes 1] [--jobs 20000]` runs one drain of
`pg_peers.py` (a fresh database, `conductor worker --processes N -c 8 --burst`, jobs/s
between the first and last task start) and adds the CPU time (user + system) of the
worker processes, from spawn to exit, per job, and that of the server's backends on the
database (the enqueue's included), read from /proc. Run it with PYTHONPATH set to the checkout
to measure, alternating checkouts (docs/performance.md, "PostgreSQL, second round").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg_peers


class ServerCpu:
    """The CPU (user + system) of the server's backends on benchmark databases
    (`bench_...`, one per measurement), read from /proc while they live: the last reading
    of each backend counts. Needs the server on this machine."""

    def __init__(self, admin_url: str) -> None:
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(admin_url,), daemon=True)
        self.thread.start()

    def _run(self, admin_url: str) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            while not self.stop.wait(0.05):
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname LIKE 'bench\\_%'"
                ).fetchall()
                for (pid,) in pids:
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self.last[pid] = (int(fields[11]) + int(fields[12])) / tick

    def seconds(self) -> float:
        self.stop.set()
        self.thread.join()
        return sum(self.last.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    options = pg_peers.Options(jobs=args.jobs, systems=("conductor",))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = ServerCpu(options.admin_url)
    result = pg_peers.measure_drain("conductor", options, args.processes)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_seconds = server.seconds()
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    print(
        json.dumps(
            {
                "processes": args.processes,
                "jobs_per_s": round(result["jobs_per_s"]),
                "worker_cpu_us_per_job": round((user + system) / args.jobs * 1e6, 1),
                "user_us_per_job": round(user / args.jobs * 1e6, 1),
                "system_us_per_job": round(system / args.jobs * 1e6, 1),
                "server_cpu_us_per_job": round(server_seconds / args.jobs * 1e6, 1),
                "commits_per_job": round(result["commits_per_job"], 3),
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
