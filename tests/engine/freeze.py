"""Freezing a real worker process at a known point, so a kill lands mid-attempt on any
machine.

A test that sends SIGKILL "after a while" depends on how fast the victim started and how
long its jobs take: on a loaded machine the kill lands before the first claim or between
two jobs, and the test proves nothing (or fails). Instead: SIGSTOP the victim, wait until
the kernel reports it stopped, read from the ledger what it holds at that instant (it can
change nothing while stopped), and only kill it if it holds what the test needs;
otherwise SIGCONT and try again.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from conductor import Conductor
from conductor.domain.events import EVENT_CLASSES
from conductor.engine import identity
from tests.engine.conftest import wait_until

T = TypeVar("T")

CLAIMS = [kind for kind in ("started", "claimed") if kind in EVENT_CLASSES]
"""The event that begins an attempt and names its worker: `started` until issue 13 split
it into `claimed` and `run_started` (a ledger may hold both)."""
ENDS = ("completed", "attempt_failed", "released", "rescued", "failed", "cancelled")
"""Events after which an attempt no longer runs."""


def stopped(pid: int) -> bool:
    """True once the kernel shows `pid` in state T (stopped by a signal)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def catches(pid: int, signum: int) -> bool:
    """True once `pid` has installed a handler for `signum` (its SigCgt mask in /proc): a
    signal sent earlier would take the default action, e.g. SIGTERM would kill it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(
        (line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0"
    )
    return bool(int(mask, 16) >> (signum - 1) & 1)


def freeze(process: subprocess.Popen[bytes]) -> None:
    """SIGSTOP `process` and wait until it is really stopped."""
    process.send_signal(signal.SIGSTOP)
    wait_until(lambda: stopped(process.pid), timeout=60, what=f"pid {process.pid} to stop")


def in_flight(app: Conductor, pid: int) -> set[tuple[int, int]]:
    """(job, attempt) pairs started by process `pid` of this host and not ended yet."""
    prefix = f"{identity.host()}:{pid}:"
    started = {
        (r.job_id, r.event.attempt)  # type: ignore[union-attr]
        for r in app.events(types=CLAIMS)
        if r.event.worker.startswith(prefix)  # type: ignore[union-attr]
    }
    ended = {(r.job_id, getattr(r.event, "attempt", None)) for r in app.events(types=ENDS)}
    ended_jobs = {job for job, attempt in ended if attempt is None}
    return {(job, n) for job, n in started - ended if job not in ended_jobs}


def freeze_when(
    process: subprocess.Popen[bytes],
    look: Callable[[], T],
    timeout: float = 300,
    what: str = "the process frozen in the wanted state",
) -> T:
    """Freeze `process`, call `look`; if it returns something falsy, let the process run on
    and try again (until `timeout`). Returns what `look` saw, with the process stopped."""

    def attempt() -> T:
        if process.poll() is not None:
            raise AssertionError(f"pid {process.pid} exited {process.returncode} too soon")
        freeze(process)
        seen = look()
        if not seen:
            process.send_signal(signal.SIGCONT)
        return seen

    result: T = wait_until(attempt, timeout=timeout, what=what)
    return result


def freeze_mid_attempt(
    process: subprocess.Popen[bytes], app: Conductor, timeout: float = 300
) -> set[tuple[int, int]]:
    """Freeze `process` at an instant it holds at least one running attempt; return those."""
    return freeze_when(
        process,
        lambda: in_flight(app, process.pid),
        timeout,
        f"pid {process.pid} frozen with attempts in flight",
    )
