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

from conductor.bench.harness import (
    DEFAULT_SCENARIOS,
    SCENARIOS,
    BenchOptions,
    console_command,
    peak_rss_mib,
)
from conductor.bench.report import render, run
from conductor.bench.scenarios import measure_drain

__all__ = [
    "DEFAULT_SCENARIOS",
    "SCENARIOS",
    "BenchOptions",
    "console_command",
    "measure_drain",
    "peak_rss_mib",
    "render",
    "run",
]
