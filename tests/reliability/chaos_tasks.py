"""The chaos test's application module: `conductor worker --app tests.reliability.chaos_tasks`."""

from __future__ import annotations

import os
import random

from conductor import Backoff, current_job, task


class ChaosFailure(RuntimeError):
    """The failure a flaky chaos job raises."""


@task("chaos_sleep", backoff=Backoff(base=0.01, cap=0.05))
def chaos_sleep(ms: int, journal: str, flaky_p: float = 0.0, **_: object) -> None:
    """Journal "job attempt" (one O_APPEND write), sleep `ms`, then fail with `flaky_p`."""
    job = current_job()
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{job.job_id} {job.attempt}\n".encode())
    finally:
        os.close(fd)
    job.sleep(ms / 1000)
    # Seeded per (job, attempt): a rerun of the same attempt makes the same choice.
    chance = random.Random(f"{job.job_id}:{job.attempt}")  # noqa: S311 - not secrets
    if chance.random() < flaky_p:
        raise ChaosFailure(f"chaos: job {job.job_id} attempt {job.attempt} flaked")
