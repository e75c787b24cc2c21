"""What `conductor stats` and `conductor jobs` import: a command pays for every module it
imports before it can print anything, so the read commands must not pull in the engine,
tracing, metrics or live views. Checked by module name, not by timing, so it is exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import conductor
from conductor import Conductor
from conductor.domain.config import Settings

NEVER_FOR_READS = (
    "conductor.bench",
    "conductor.domain.context",
    "conductor.cli.demo",
    "conductor.engine",
    "conductor.examples",
    "conductor.observe.live",
    "conductor.observe.metrics",
    "conductor.domain.registry",
    "conductor.observe.tracing",
    "conductor.ledger.wakeup",
    "opentelemetry",
    "projections.history",
    "pykka",
    "sqlite_utils",
)
"""Modules (and their submodules) neither read command may import."""

NEVER_FOR_JOBS = ("conductor.observe.activity", "projections.throughput")
"""Only `stats` reports activity."""

# Runs in a fresh interpreter: this one has imported everything already.
_PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from conductor.cli import main

def run(*argv):
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            main([*argv, "--db", sys.argv[1]])
        except SystemExit as e:
            code = e.code
    return {"code": code, "stdout": out.getvalue(), "modules": sorted(sys.modules)}

jobs = run("jobs")
print(json.dumps({"jobs": jobs, "stats": run("stats")}))
"""


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_stats_and_jobs_import_neither_the_engine_nor_tracing_nor_live_views(
    tmp_path: Path,
) -> None:
    db = tmp_path / "conductor.db"
    with Conductor(settings=Settings(db=str(db))) as app:
        app.enqueue({"task": "send_email"})  # a recent event, so stats reads the log
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(db)], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    jobs, stats = result["jobs"], result["stats"]
    assert (jobs["code"], stats["code"]) == (0, 0)
    assert "send_email" in jobs["stdout"]
    assert "Completed/s" in stats["stdout"]
    assert "conductor.ledger.sqlite" in jobs["modules"]
    assert _loaded(jobs["modules"], NEVER_FOR_READS + NEVER_FOR_JOBS) == []
    assert _loaded(stats["modules"], NEVER_FOR_READS) == []


def test_the_package_imports_its_exports_only_when_they_are_used() -> None:
    probe = (
        "import sys, conductor; print(sorted(m for m in sys.modules if m.startswith('conductor.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_module() -> None:
    assert sorted(conductor._MODULES) == sorted(conductor.__all__)
    for name in conductor.__all__:
        value = getattr(conductor, name)
        assert value is getattr(sys.modules[conductor._MODULES[name]], name)


_ENQUEUE_PROBE = """
import json, sys
from conductor.cli import main

try:
    main(["enqueue", "--payload", '{"task": "send_email"}', "--db", sys.argv[1]])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_enqueue_with_nothing_observing_imports_no_opentelemetry(tmp_path: Path) -> None:
    """A producer span and the enqueue count need OpenTelemetry only if a provider can
    exist; with no `OTEL_*` settings and no application using its API, none can."""
    db = tmp_path / "conductor.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _ENQUEUE_PROBE, str(db)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] in (0, None)
    observers = ("conductor.observe.metrics", "conductor.observe.tracing", "opentelemetry")
    assert _loaded(result["modules"], observers) == []
    with Conductor(settings=Settings(db=str(db))) as app:
        assert [row["task"] for row in app.jobs()] == ["send_email"]


_HELP_PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from conductor.cli import main

out = io.StringIO()
with redirect_stdout(out):
    try:
        main(["--help"])
    except SystemExit as e:
        code = e.code
print(json.dumps({"code": code, "stdout": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_help_lists_every_command_without_importing_what_they_run() -> None:
    """`conductor --help` imports each command's module to read its help line: those
    modules must leave the engine, telemetry, rich and sqlite-utils to the commands."""
    done = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] in (0, None)
    assert "demo" in result["stdout"]
    assert "worker" in result["stdout"]
    heavy = ("conductor.engine", "pykka", "opentelemetry", "rich", "sqlite_utils")
    assert _loaded(result["modules"], heavy) == []
