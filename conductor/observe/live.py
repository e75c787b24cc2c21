"""The machinery of the live CLI views (`stats --watch`, `top`, `events --follow`).

A live view runs until Ctrl-C or SIGTERM and then ends like any finished command (exit 0,
no traceback), including when its reader goes away (`... | head`). Snapshots are redrawn
in place on a terminal and appended, a blank line apart, anywhere else; followed events
are found by polling the log past the last seq seen, woken early by the wake-up signal
that local enqueues, cancels and retries send (`conductor.ledger.wakeup`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Final, Protocol, TextIO

import attrs

from conductor.domain.events import RecordedEvent
from conductor.ledger.base import EventFilter, Ledger

FOLLOW_POLL: Final = 0.2
"""Seconds between looks at the log while following: what a worker's append (which sends
no wake-up) may wait before it is shown."""

_CLEAR_SCREEN: Final = "\x1b[2J"
_HOME: Final = "\x1b[H"
_CLEAR_LINE_END: Final = "\x1b[K"
_CLEAR_BELOW: Final = "\x1b[J"


class Stopped(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so no `except Exception` swallows it."""


def _on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    raise Stopped


@contextlib.contextmanager
def until_stopped() -> Iterator[None]:
    """Run the body until Ctrl-C, SIGTERM or a closed output, then end normally.

    Once stopping, further signals are ignored so that closing the database is not cut
    short by an impatient second Ctrl-C.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    try:
        yield
    except (KeyboardInterrupt, Stopped):
        previous = None
        _ignore_signals(main)
    except BrokenPipeError:
        previous = None
        _ignore_signals(main)
        # Nothing more can be written; point stdout at /dev/null so the interpreter's
        # final flush does not report the broken pipe.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _ignore_signals(main: bool) -> None:
    if main:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@attrs.define
class Screen:
    """Where successive snapshots go: redrawn in place on a terminal (ANSI home and
    clear), else printed one after another with a blank line between them."""

    stream: TextIO
    redraw: bool
    _shown: int = 0

    @classmethod
    def for_stream(cls, stream: TextIO) -> Screen:
        """Redrawing exactly when `stream` is a terminal."""
        return cls(stream, stream.isatty())

    def show(self, text: str) -> None:
        if self.redraw:
            lines = text.splitlines()
            # Overwrite each line and clear what the previous frame left beyond it, rather
            # than clearing the whole screen first: no flicker between frames.
            body = "".join(f"{line}{_CLEAR_LINE_END}\n" for line in lines)
            start = _CLEAR_SCREEN + _HOME if self._shown == 0 else _HOME
            self.stream.write(start + body + _CLEAR_BELOW)
        else:
            self.stream.write(("\n" if self._shown else "") + text.rstrip("\n") + "\n")
        self.stream.flush()
        self._shown += 1


class Waiter(Protocol):
    def wait(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class Timer:
    """A plain wait, interruptible by signals: between refreshes of a watch, and between
    polls of a follower that cannot bind a wake-up socket."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def close(self) -> None:
        pass


def waiter(db: str) -> Waiter:
    """Something to wait on between polls: woken early by local enqueues, cancels and
    retries of `db` where wake-up sockets work (on PostgreSQL, by any host's enqueues and
    retries), else a plain timer."""
    from conductor.ledger import wakeup

    try:
        return wakeup.listener(db)
    except OSError:
        return Timer()


def refresh(show: Callable[[], None], interval: float, wait: Waiter) -> None:
    """Call `show` every `interval` seconds, for ever (until stopped)."""
    while True:
        show()
        wait.wait(interval)


def follow(
    ledger: Ledger,
    where: EventFilter,
    emit: Callable[[list[RecordedEvent]], None],
    wait: Waiter,
    *,
    poll: float = FOLLOW_POLL,
) -> None:
    """Emit each new batch of events matching `where` (past `where.after_seq`), for ever.

    Each poll costs one look at the newest seq; the filtered read runs only when the log
    grew, from the last seq seen. The cursor moves to the head seen *before* the read, or
    the last event emitted if later, so an event committed meanwhile is read next time
    rather than skipped.
    """
    cursor = where.after_seq
    while True:
        wait.wait(poll)
        head = ledger.last_seq()
        if head <= cursor:
            continue
        found = ledger.read(attrs.evolve(where, after_seq=cursor))
        if found:
            emit(found)
        cursor = max(head, found[-1].seq if found else cursor)
