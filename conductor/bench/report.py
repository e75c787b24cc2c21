"""Run the chosen scenarios and render their figures."""

from __future__ import annotations

import logging
import os
import resource
import sys
from collections.abc import Callable
from typing import Any

import attrs

from conductor.bench.harness import (
    SCENARIOS,
    BenchOptions,
    Places,
    _prefetch_name,
    peak_rss_mib,
)
from conductor.bench.scenarios import (
    measure_drain,
    measure_enqueue,
    measure_latency,
    measure_processes,
    measure_scale,
    measure_sleep,
)
from conductor.observe import logs


def run(
    options: BenchOptions,
    on_scenario: Callable[[str], None] | None = None,
    *,
    db: str | None = None,
) -> dict[str, Any]:
    """Run the scenarios of `options` on fresh temporary databases: SQLite files, or
    schemas of the PostgreSQL database when `db` is a `postgresql://` URL (a SQLite `db`
    only chooses the backend: its file is not touched). `on_scenario` is told the name of
    each scenario as it begins (the CLI's progress display)."""
    begin = on_scenario or (lambda name: None)
    logs.configure(quiet=True)
    logs.LOGGER.setLevel(logging.ERROR)
    places = Places.make(db)
    try:
        result: dict[str, Any] = {
            "options": attrs.asdict(options),
            **places.describe(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        }
        measures: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
            "enqueue": ("enqueue", lambda: measure_enqueue(places, options)),
            "drain": ("drain", lambda: measure_drain(places, options)),
            "sleep": ("sleep", lambda: measure_sleep(places, options)),
            "latency": ("pickup_latency", lambda: measure_latency(places, options)),
            "processes": ("processes", lambda: measure_processes(places, options)),
            # Scale compares with the drain's rate when the drain ran first.
            "scale": (
                "scale",
                lambda: measure_scale(places, options, result.get("drain", {}).get("jobs_per_s")),
            ),
        }
        for name in SCENARIOS:  # in this order whatever order they were asked in
            if name in options.scenarios:
                begin(name)
                key, measure = measures[name]
                result[key] = measure()
        own = peak_rss_mib()
        if own is None:  # not Linux: getrusage's peak (KiB on Linux, bytes on macOS)
            own = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["bench_process_peak_rss_mib"] = own
        return result
    finally:
        places.clean()


def render(result: dict[str, Any]) -> str:
    options = result["options"]
    durability = (
        f"PostgreSQL {result['server_version']}, synchronous_commit={result['synchronous_commit']}"
        if result.get("backend") == "postgresql"
        else f"synchronous={result['synchronous']}"
    )
    lines = [
        f"conductor bench: concurrency {options['concurrency']}, prefetch "
        f"{_prefetch_name(options['prefetch'])}, {durability}, {result['cpus']} CPUs",
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
            f"    lifecycle events (4 per job)  {d['lifecycle_events_per_s']:>9,} events/s"
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
