"""PNG plots of a `peers.py` or `pg_peers.py` result: throughput against concurrency, against
backlog and against worker processes, and the pickup-latency CDF. Medians are the lines;
bars span the min-max of the runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt

LABELS = {
    "conductor": "conductor",
    "huey": "huey",
    "rq": "RQ",
    "celery": "Celery",
    "procrastinate": "procrastinate",
    "pgqueuer": "pgqueuer",
}
COLOURS = {
    "conductor": "#1f77b4",
    "huey": "#ff7f0e",
    "rq": "#2ca02c",
    "celery": "#d62728",
    "procrastinate": "#9467bd",
    "pgqueuer": "#8c564b",
}


def _style(result: dict[str, Any], system: str) -> dict[str, Any]:
    """Label and colour; a second column of one system (pgqueuer-25) is drawn dashed."""
    labels = result.get("labels", {})
    base, _, variant = system.partition("-")
    variants = sorted(
        (s for s in labels if s.partition("-")[0] == base),
        key=lambda s: int(s.partition("-")[2] or 0),
    )
    dashed = bool(variant) and variants.index(system) > 0
    return {
        "label": labels.get(system, LABELS.get(system, system)),
        "color": COLOURS[base],
        "linestyle": "--" if dashed else "-",
    }


def _errorbar_series(
    by_point: dict[str, Any], key: str
) -> tuple[list[int], list[float], list[list[float]]]:
    xs = sorted(int(x) for x in by_point)
    medians, below, above = [], [], []
    for x in xs:
        summary = by_point[str(x)]["summary"][key]
        medians.append(summary["median"])
        below.append(summary["median"] - summary["min"])
        above.append(summary["max"] - summary["median"])
    return xs, medians, [below, above]


def _from_zero(axes: Any) -> None:
    axes.set_ylim(0, axes.get_ylim()[1] * 1.1)  # room above the highest point


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_concurrency(result: dict[str, Any], path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for system, by_level in result["concurrency"].items():
        xs, ys, spread = _errorbar_series(by_level, "jobs_per_s")
        axes.errorbar(
            xs, ys, yerr=spread, marker="o", capsize=3, label=LABELS[system], color=COLOURS[system]
        )
    axes.set_xscale("log", base=2)
    axes.set_xticks(result["options"]["levels"], [str(x) for x in result["options"]["levels"]])
    axes.set_xlabel("concurrency (slots in one worker process)")
    axes.set_ylabel("jobs/s (no-op jobs)")
    _from_zero(axes)
    axes.set_title(f"Drain of {result['options']['sweep_jobs']:,} jobs vs concurrency")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def plot_backlog(result: dict[str, Any], path: Path) -> Path:
    figure, (rate_axes, rss_axes) = plt.subplots(1, 2, figsize=(9.6, 4.0))
    for system, by_size in result["backlog"].items():
        if system == "ratios":
            continue
        style = {"marker": "o", "capsize": 3, "label": LABELS[system], "color": COLOURS[system]}
        xs, ys, spread = _errorbar_series(by_size, "jobs_per_s")
        rate_axes.errorbar(xs, ys, yerr=spread, **style)
        xs, ys, spread = _errorbar_series(by_size, "worker_peak_rss_mib")
        rss_axes.errorbar(xs, ys, yerr=spread, **style)
    window = result["options"]["window"]
    for axes, label in ((rate_axes, f"jobs/s over the first {window:,}"), (rss_axes, "MiB")):
        axes.set_xscale("log")
        axes.set_xlabel("jobs waiting")
        axes.set_ylabel(label)
        _from_zero(axes)
        axes.grid(alpha=0.3)
        axes.legend()
    rate_axes.set_title("Throughput vs backlog (8 slots)")
    rss_axes.set_title("Worker peak RSS")
    return _save(figure, path)


def plot_latency_cdf(result: dict[str, Any], path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for system, data in result["latency"].items():
        samples = data["samples_ms"]
        if not samples:
            continue
        fractions = [(i + 1) / len(samples) for i in range(len(samples))]
        p50 = data["summary"]["p50_ms"]["median"]
        style = _style(result, system)
        style["label"] = f"{style['label']} (p50 {p50:.2f} ms)"
        axes.step(samples, fractions, where="post", **style)
    options = result["options"]
    axes.set_xscale("log")
    axes.set_xlabel("pickup latency, ms (task start - producer stamp)")
    axes.set_ylabel("fraction of jobs")
    axes.set_title(f"Pickup latency CDF, {options['rate']:.0f} jobs/s from another process")
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_processes(result: dict[str, Any], path: Path) -> Path:
    """`pg_peers.py`'s drain: jobs/s against worker processes, without and with start-up."""
    figure, (rate_axes, spawn_axes) = plt.subplots(1, 2, figsize=(9.6, 4.0))
    for system, by_processes in result["drain"].items():
        style = {"marker": "o", "capsize": 3, **_style(result, system)}
        for axes, key in ((rate_axes, "jobs_per_s"), (spawn_axes, "jobs_per_s_with_startup")):
            xs, ys, spread = _errorbar_series(by_processes, key)
            axes.errorbar(xs, ys, yerr=spread, **style)
    options = result["options"]
    slots = options["concurrency"]
    for axes, title in (
        (rate_axes, "first to last job"),
        (spawn_axes, "from the workers' spawn"),
    ):
        axes.set_xscale("log", base=2)
        axes.set_xticks(options["processes"], [str(x) for x in options["processes"]])
        axes.set_xlabel(f"worker processes ({slots} slots each)")
        axes.set_ylabel("jobs/s (no-op jobs)")
        axes.set_title(f"Drain of {options['jobs']:,} jobs, {title}", fontsize=10)
        _from_zero(axes)
        axes.grid(alpha=0.3)
        axes.legend()
    return _save(figure, path)


def write_pg(result: dict[str, Any], folder: Path) -> list[Path]:
    """The plots of a `pg_peers.py` result; returns the files written."""
    written = []
    if result.get("drain"):
        written.append(plot_processes(result, folder / "pg-peers-drain.png"))
    if result.get("latency"):
        written.append(plot_latency_cdf(result, folder / "pg-peers-latency-cdf.png"))
    return written


def write_all(result: dict[str, Any], folder: Path) -> list[Path]:
    """Every plot the result has data for; returns the files written."""
    written = []
    if "concurrency" in result:
        written.append(plot_concurrency(result, folder / "peers-concurrency.png"))
    if "backlog" in result:
        written.append(plot_backlog(result, folder / "peers-backlog.png"))
    if "latency" in result:
        written.append(plot_latency_cdf(result, folder / "peers-latency-cdf.png"))
    return written
