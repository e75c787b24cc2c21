"""A short command ends without tearing the interpreter down (issue 13, item 8), and loses
no output doing so; anything that needs the interpreter's shutdown still gets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.support import seed

# An exit hook, installed in every interpreter the test starts: it writes a marker when
# the interpreter's own shutdown runs.
SITECUSTOMIZE = """
import atexit, os
atexit.register(lambda: open(os.environ["SHUTDOWN_MARKER"], "w").close())
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    marker = tmp_path / "shut-down"
    marker.unlink(missing_ok=True)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "SHUTDOWN_MARKER": str(marker)}
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    return done, marker.exists()


def test_a_listing_skips_the_interpreters_shutdown_and_prints_every_row(
    tmp_path: Path,
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, *["send_email"] * 3000)
    done, shut_down = _run(tmp_path, "jobs", "--limit", "0", "--db", str(db))
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert len(rows) == 3001  # the header and every job, nothing lost in a buffer
    assert rows[-1].split()[0] == "3000"
    assert not shut_down


def test_a_refused_command_still_prints_its_one_line_and_exit_code(tmp_path: Path) -> None:
    done, shut_down = _run(tmp_path, "jobs", "--db", str(tmp_path / "missing.db"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: no conductor database at")
    assert len(done.stderr.splitlines()) == 1
    assert not shut_down


def test_a_worker_gets_the_interpreters_shutdown_for_its_exit_hooks(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "noop")
    done, shut_down = _run(tmp_path, "worker", "--burst", "-q", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert shut_down
