"""Example tasks, always registered, so the README and the demo run out of the box.

They simulate work with cancellable sleeps (`spin` burns CPU instead); real applications
register their own tasks in a module passed to `conductor worker --app`.
"""

from __future__ import annotations

import random

from conductor.domain.context import current_job
from conductor.domain.registry import task


class TaskFailedError(RuntimeError):
    """Raised by the `fail` and `flaky` examples."""


@task("noop")
def noop(**_: object) -> None:
    """Does nothing: for benchmarks."""


@task("send_email")
def send_email(email: str, subject: str = "Hello", body: str = "", **_: object) -> str:
    """Pretends to send an email (about 50 ms)."""
    current_job().sleep(0.05)
    return f"sent {subject!r} to {email}"


@task("data_import", timeout=120)
def data_import(source: str = "data.csv", rows: int = 1000, **_: object) -> int:
    """Pretends to import `rows` rows in a few steps, stopping early if cancelled."""
    job = current_job()
    steps = 4
    for _step in range(steps):
        if job.sleep(0.05 + rows / 100_000):
            return 0
    return rows


@task("sleep")
def sleep(seconds: float = 1.0, **_: object) -> None:
    """Sleeps `seconds` (cancellable)."""
    current_job().sleep(float(seconds))


@task("spin")
def spin(iterations: int = 100_000, **_: object) -> int:
    """Burns CPU for `iterations` loop turns, holding the GIL: for CPU-bound benchmarks."""
    total = 0
    for turn in range(int(iterations)):
        total += turn
    return total


@task("fail", backoff=0.5)
def fail(message: str = "this job always fails", **_: object) -> None:
    """Always raises, with `message`."""
    raise TaskFailedError(message)


@task("flaky", backoff=0.5)
def flaky(p: float = 0.5, **_: object) -> str:
    """Fails with probability `p` (0..1)."""
    if random.random() < float(p):  # noqa: S311 - simulated failure, not security
        raise TaskFailedError(f"flaky failure (p={p})")
    return "ok"
