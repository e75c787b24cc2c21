"""The multi-host test's application module:
`conductor worker --app tests.reliability.partition_tasks` (with `app_env()`).

A job runs through at once on every host but one; on that host it holds its slot until
the test opens a gate, so the test decides which attempts are caught by a partition and
when they finish. The journal says where each attempt ran and when it ended, read by the
test from the shared filesystem (the namespaces share it, not the network).
"""

from __future__ import annotations

import os

from conductor import current_job, task

APP = "tests.reliability.partition_tasks"


def _journal(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@task("partitioned")
def partitioned(gate: str, journal: str, hold_on: str, **_: object) -> None:
    """Journal "start job attempt host"; on host `hold_on`, wait (cancellably) until the
    file `gate` exists; then journal "end job attempt host"."""
    job = current_job()
    host = os.environ.get("CONDUCTOR_HOST", "")
    _journal(journal, f"start {job.job_id} {job.attempt} {host}")
    if host == hold_on:
        while not os.path.exists(gate):
            if job.sleep(0.02):
                break
    _journal(journal, f"end {job.job_id} {job.attempt} {host}")
