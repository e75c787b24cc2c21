"""One drain of `conductor bench` (10,000 no-op jobs, the engine in this process), timed by
wall clock (jobs/s, as the bench reports) and by this process's CPU time during the drain
alone (all threads), which other processes' load disturbs far less.

`python tests/benchmarks/controls_drain.py plain` drains the default queue; `controls`
drains through a queue with concurrency and rate limits that never bind, beside a paused
queue the worker also serves (what `conductor bench --queue-controls` does). Run it with
PYTHONPATH set to the checkout to measure, alternating checkouts (docs/performance.md).
It uses only what `conductor bench` uses, so it also runs against code from before queue
controls existed, with `plain`.
"""

from __future__ import annotations

import json
import sys
import time

from conductor import Conductor
from conductor.bench.harness import BenchOptions, Places, _drain_in_process
from conductor.domain.config import Settings

controls = sys.argv[1] == "controls"
places = Places.make(None)
try:
    settings = Settings(db=places.db("drain"))
    with Conductor(settings=settings) as app:
        queue = None
        if controls:
            app.limit_queue("limited", concurrency=1_000_000, rate=(1_000_000, "second"))
            app.pause_queue("paused")
            app.enqueue_many([{"task": "noop"}] * 100, queue="paused")
            queue = "limited"
        app.enqueue_many([{"task": "noop"}] * 10_000, queue=queue)
    began = time.process_time()
    if controls:
        result = _drain_in_process(settings, BenchOptions(), 10_000, ("limited", "paused"))
    else:
        result = _drain_in_process(settings, BenchOptions(), 10_000)
    cpu = time.process_time() - began
    per_job = round(cpu / 10_000 * 1e6, 1)
    print(json.dumps({"jobs_per_s": result["jobs_per_s"], "cpu_us_per_job": per_job}))
finally:
    places.clean()
