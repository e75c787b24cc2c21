"""`conductor worker --processes P`: one parent process supervising P worker processes.

Each child is a whole `conductor worker` (its own engine, its own SQLite connections),
started by the CLI as `python -m conductor.cli.child PARENT_PID worker ARGS...` with the
parent's options minus `--processes`. Several processes on one database is the ordinary
multi-worker case (claims are transactions; a dead process's jobs are rescued by pid), so
the parent only starts, watches, restarts and stops children. It holds no jobs and opens
no connection while they run.

- A child that dies while the pool is running (killed, or any exit except a burst child's
  0) is restarted after a backoff (`restart_delay`), with one warning naming the old pid,
  how it ended and the new pid. Its jobs are rescued by the others, or by its replacement.
- SIGINT/SIGTERM: each child gets SIGTERM and shuts down gracefully (`--grace`); the
  parent exits 0 once they all have. A second signal forwards a second SIGTERM, which
  makes the children release their jobs at once; a third kills them (SIGKILL).
- Children run in their own process group, so a terminal's Ctrl-C reaches only the parent
  (which forwards it once), and on Linux the kernel sends them SIGTERM if the parent dies,
  so no worker outlives its supervisor unnoticed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from conductor.domain.errors import ConductorError
from conductor.engine import signals
from conductor.observe import logs

if TYPE_CHECKING:
    from conductor.domain.config import Settings, WorkerConfig

RESTART_DELAY_FIRST: Final = 0.1
RESTART_DELAY_CAP: Final = 5.0
STABLE_AFTER: Final = 10.0
"""Seconds a child must have run for its death to count as a first failure again."""
STOP_MARGIN: Final = 60.0
"""Seconds beyond `--grace` the parent waits for stopping children before killing them."""
_PR_SET_PDEATHSIG: Final = 1


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a child that has died `failures` times in a row
    (1, 2, ...): 0.1 s, doubling, at most 5 s."""
    return min(RESTART_DELAY_FIRST * 2.0 ** min(max(failures - 1, 0), 16), RESTART_DELAY_CAP)


def how_it_ended(returncode: int) -> str:
    """`killed by SIGKILL` or `exited with status 1`, from a Popen return code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def supervise(
    settings: Settings,
    config: WorkerConfig,
    processes: int,
    command: Sequence[str],
    arguments: Callable[[int], list[str]],
) -> int:
    """Run `processes` worker processes until signalled (or, in burst mode, until each has
    exited 0); returns the exit code. Must run in the main thread (it handles signals)."""
    from conductor.ledger.open import open_ledger

    # Create the database here, once: a bad --db fails this command with one line rather
    # than every child in a restart loop, and children never race to create the schema.
    ledger = open_ledger(settings, create=True)
    try:
        ledger.check_writable()  # read-only is not transient: fail here, not in every child
    finally:
        ledger.close()
    pool = ProcessPool(
        arguments,
        processes,
        command=command,
        burst=config.burst,
        grace=config.grace.total_seconds(),
    )
    return pool.run()


@attrs.define
class _Slot:
    """One of the P places a child runs in; the child in it changes on each restart."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    """Deaths in a row, each within STABLE_AFTER of its start: drives the backoff."""
    restart_at: float | None = None
    ended: str = ""
    """How the last child ended and its pid, for the restart's log line."""
    ended_pid: int = 0
    finished: bool = False
    """Burst mode: the child exited 0, so the work ran out; the slot stays empty."""


class ProcessPool:
    """Starts, watches, restarts and stops the children. The loop sleeps in `select` on a
    self-pipe that the signal machinery writes to (`signal.set_wakeup_fd`), so a child's
    death (SIGCHLD) or a stop signal wakes it at once; the handlers only record."""

    def __init__(
        self,
        arguments: Callable[[int], Sequence[str]],
        processes: int,
        *,
        burst: bool,
        grace: float,
        command: Sequence[str],
    ) -> None:
        self.arguments = arguments
        self.command = command
        self.burst = burst
        self.grace = grace
        self.slots = [_Slot(index) for index in range(processes)]
        self.restarts = 0
        self.code = 0
        self.stops = 0
        """Stop requests so far (signals, or an internal stop): 1 stops, 2 forces, 3 kills."""
        self.stop_deadline: float | None = None
        self._signals: list[int] = []

    def run(self) -> int:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        previous_fd = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in stops}
        self._signals.extend(signals.WORKER.take())  # those that came while it started
        # A Python-level handler, so that SIGCHLD also writes to the wake-up pipe.
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _noticed)
        try:
            now = time.monotonic()
            for slot in self.slots:
                try:
                    self._spawn(slot, now)
                except OSError as e:
                    raise ConductorError(
                        f"cannot start worker processes ({e}); expected a system that can "
                        f"start {len(self.slots)} more processes"
                    ) from None
            pids = ", ".join(str(slot.process.pid) for slot in self.slots if slot.process)
            logs.note(f"supervising {len(self.slots)} worker processes: pids {pids}")
            while True:
                self._take_signals()
                now = time.monotonic()
                self._reap(now)
                self._restart_due(now)
                self._enforce_deadline(now)
                if self._done():
                    break
                select.select([wake_read], [], [], self._timeout(now))
                _drain(wake_read)
        finally:
            self._kill_all()
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_read)
            os.close(wake_write)
        ending = "finished" if self.burst and self.stops == 0 else "stopped"
        logs.note(
            f"all {len(self.slots)} worker processes {ending}; restarts: {self.restarts}",
            restarts=self.restarts,
        )
        return self.code

    # -- the loop's steps ---------------------------------------------------------------
    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        self._signals.append(signum)

    def _take_signals(self) -> None:
        while self._signals:
            name = signal.Signals(self._signals.pop(0)).name
            if self.stops == 0:
                self._stop(
                    f"{name}: stopping {len(self._alive())} worker processes; in-flight jobs "
                    f"get {self.grace:g}s to finish (signal again to force)"
                )
            elif self.stops == 1:
                self.stops = 2
                logs.note(
                    "second signal: worker processes release in-flight jobs and exit now "
                    "(signal again to kill them)",
                    warning=True,
                )
                self._send(signal.SIGTERM)
            else:
                self.stops += 1
                self.code = 1
                logs.note("third signal: killing the worker processes", warning=True)
                self._send(signal.SIGKILL)

    def _stop(self, message: str) -> None:
        self.stops = 1
        self.stop_deadline = time.monotonic() + self.grace + STOP_MARGIN
        logs.note(message, warning=True)
        for slot in self.slots:
            if slot.restart_at is not None:
                slot.restart_at = None
                logs.note(
                    f"worker process {slot.ended_pid} {slot.ended}; not restarted (stopping)",
                    warning=True,
                )
        self._send(signal.SIGTERM)

    def _reap(self, now: float) -> None:
        for slot in self.slots:
            process = slot.process
            if process is None or process.poll() is None:
                continue
            slot.process = None
            code = process.returncode
            if self.stops:
                # A child stopped before it installed its handlers dies of the SIGTERM
                # itself; it held no jobs yet, so that is a clean stop too.
                if code not in (0, -signal.SIGTERM):
                    self.code = 1
                    logs.note(
                        f"worker process {process.pid} {how_it_ended(code)} while stopping",
                        warning=True,
                    )
                continue
            if self.burst and code == 0:
                slot.finished = True
                continue
            slot.ended, slot.ended_pid = how_it_ended(code), process.pid
            if code == 2:
                # A usage error would recur on every restart: stop instead of looping.
                self.code = 1
                self._stop(
                    f"worker process {process.pid} exited with a usage error (status 2); "
                    "stopping the others"
                )
                continue
            if now - slot.started >= STABLE_AFTER:
                slot.failures = 0
            slot.failures += 1
            slot.restart_at = now + restart_delay(slot.failures)

    def _restart_due(self, now: float) -> None:
        for slot in self.slots:
            if slot.restart_at is None or slot.restart_at > now:
                continue
            delay = restart_delay(slot.failures)
            slot.restart_at = None
            try:
                self._spawn(slot, now)
            except OSError as e:
                slot.failures += 1
                slot.restart_at = now + restart_delay(slot.failures)
                logs.note(
                    f"cannot start a worker process ({e}); trying again in "
                    f"{restart_delay(slot.failures):g}s",
                    warning=True,
                )
                continue
            assert slot.process is not None
            self.restarts += 1
            logs.note(
                f"worker process {slot.ended_pid} {slot.ended}; restarted it as "
                f"{slot.process.pid} after {delay:g}s (restarts: {self.restarts})",
                warning=True,
                old_pid=slot.ended_pid,
                ended=slot.ended,
                new_pid=slot.process.pid,
                restarts=self.restarts,
            )

    def _enforce_deadline(self, now: float) -> None:
        if self.stop_deadline is None or now < self.stop_deadline or not self._alive():
            return
        self.stop_deadline = None
        self.code = 1
        pids = ", ".join(str(process.pid) for process in self._alive())
        logs.note(
            f"worker processes {pids} still running {self.grace + STOP_MARGIN:g}s after the "
            "stop; killing them",
            warning=True,
        )
        self._send(signal.SIGKILL)

    def _done(self) -> bool:
        if self._alive() or any(slot.restart_at is not None for slot in self.slots):
            return False
        return bool(self.stops) or all(slot.finished for slot in self.slots)

    def _timeout(self, now: float) -> float:
        # Every wake-up also comes through the pipe; the 1 s ceiling is a backstop only.
        deadlines = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        if self.stop_deadline is not None:
            deadlines.append(self.stop_deadline)
        return max(0.0, min([1.0, *(deadline - now for deadline in deadlines)]))

    # -- processes ----------------------------------------------------------------------
    def _spawn(self, slot: _Slot, now: float) -> None:
        slot.process = subprocess.Popen(
            [*self.command, str(os.getpid()), *self.arguments(slot.index)],
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        slot.started = now

    def _alive(self) -> list[subprocess.Popen[bytes]]:
        return [slot.process for slot in self.slots if slot.process is not None]

    def _send(self, sig: signal.Signals) -> None:
        for process in self._alive():
            # Popen.send_signal does nothing for a child already reaped, so a reused pid
            # is never signalled.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)

    def _kill_all(self) -> None:
        """Only on the way out after an error: leave no child behind."""
        for process in self._alive():
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


def _noticed(signum: int, frame: types.FrameType | None) -> None:
    """SIGCHLD: nothing to do here; the wake-up pipe has already woken the loop."""


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


# -- the child's side ------------------------------------------------------------------
class _PidTag(logging.Filter):
    """Marks a child's log lines with its pid: `[4242] job 1 ...` in text, `"pid": 4242`
    in JSON, so the lines of P processes sharing one stderr can be told apart."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        fields = getattr(record, "fields", None) or {"message": message}
        record.__dict__["fields"] = {"pid": self.pid, **fields}
        record.msg, record.args = f"[{self.pid}] {message}", ()
        return True


def _die_with_parent() -> None:
    """Linux: ask the kernel for SIGTERM (a graceful stop) when the parent dies, even by
    SIGKILL. Elsewhere a child outlives a killed parent and must be stopped by hand."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def become_child(parent: int) -> None:
    """Set up a child started by `ProcessPool` for parent `parent`: die with the parent
    and tag every log line with this pid. Exits 0 at once if the parent is already gone."""
    _die_with_parent()
    if os.getppid() != parent:
        sys.exit(0)  # the parent died before the kernel could be told: nothing to do
    logs.LOGGER.addFilter(_PidTag(os.getpid()))
