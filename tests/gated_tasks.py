"""Tasks that wait for the test instead of for the clock:
`conductor worker --app tests.gated_tasks` (with `app_env()`).

A job that "takes 2 s" finishes on its own on a fast machine before the test looks, and
is still starting on a loaded one; a job that waits for a file the test creates ends
exactly when the test says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from conductor import current_job, task

APP = "tests.gated_tasks"
REPO = Path(__file__).resolve().parents[1]


def app_env() -> dict[str, str]:
    """The environment for a worker given `--app tests.gated_tasks`: the repository root on
    PYTHONPATH, wherever pytest was started."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


@task("gated")
def gated(gate: str, first_attempt_only: bool = False, **_: object) -> None:
    """Wait (cancellably) until the file `gate` exists; with `first_attempt_only`, later
    attempts (a rescuer's run) return at once."""
    job = current_job()
    if first_attempt_only and job.attempt > 1:
        return
    while not os.path.exists(gate):
        if job.sleep(0.02):
            return
