"""The outage tests' application module: `conductor worker --app tests.reliability.outage_tasks`."""

from __future__ import annotations

import os

from conductor import current_job, task


@task("outage_gated")
def outage_gated(gate: str, journal: str, **_: object) -> None:
    """The first attempt waits until the file `gate` exists; every attempt then journals
    "job attempt" (one O_APPEND write) as it returns, so a test knows the handler is done
    while the database cannot tell it."""
    job = current_job()
    while job.attempt == 1 and not os.path.exists(gate):
        if job.sleep(0.02):
            break
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{job.job_id} {job.attempt}\n".encode())
    finally:
        os.close(fd)
