"""What the ASGI integration tests share: a registry of test tasks (run by embedded
workers in the test's own process), a gate the tests open, and polling with a deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conductor import current_job
from conductor.domain.registry import Registry

T = TypeVar("T")

DEADLINE = 120.0
"""A hang guard, never a speed check: the tests wait on the ledger, not on the clock."""


def registry() -> Registry:
    """`echo` returns its value; `gated` waits (cancellably) for its gate file, then
    returns its value; `boom` raises."""
    tasks = Registry()

    @tasks.task("echo")
    def echo(value: Any = None) -> Any:
        return value

    @tasks.task("gated")
    def gated(gate: str, value: Any = None) -> Any:
        job = current_job()
        while not Path(gate).exists():
            if job.sleep(0.02):
                return None
        return value

    @tasks.task("boom")
    def boom() -> None:
        raise ValueError("it went boom")

    return tasks


async def until(check: Callable[[], Awaitable[T]], what: str) -> T:
    """Await `check()` until it is truthy (looking every 10 ms), failing after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE}s waiting for {what}")
        await asyncio.sleep(0.01)


OURS = ("conductor-async-", "conductor-results", "conductor-engine", "conductor-start")
"""The names of the threads an `AsyncConductor` and an embedded worker start."""


def conductor_threads() -> list[str]:
    """The names of those threads alive in this process, sorted."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(OURS))


def no_conductor_threads() -> bool:
    """Wait (a hang guard) until conductor's threads have exited: a closed facade or a
    stopped worker has finished with them, and each is then on its way out."""
    deadline = time.monotonic() + DEADLINE
    while conductor_threads():
        if time.monotonic() > deadline:
            pytest.fail(f"conductor's threads still running: {conductor_threads()}")
        time.sleep(0.01)
    return True
