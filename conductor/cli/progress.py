"""Progress for long commands (bulk enqueue, cancel and retry, replay, audit verify, bench)
on a terminal.

A command that works for seconds in silence looks hung. When stderr is a terminal and the
work is big enough to take a while, a `rich.progress` display is drawn there; piped, with
`--json`, or for small work nothing at all is written, so scripts and logs see exactly
what they saw before. rich is imported only when a display is drawn: most commands never
pay for it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, Final

MIN_LINES: Final = 10_000
"""Payload lines from which `enqueue --file` shows progress: about a second of work."""
MIN_JOBS: Final = 2_000
"""Jobs from which a filtered `cancel` or `retry` shows progress: a few transactions."""
MIN_EVENTS: Final = 50_000
"""Events from which `replay` and `audit verify` show progress: about half a second."""


class Tracker:
    """One command's progress: a stage at a time, each with a total or open-ended.

    Silent until there is a terminal to draw on and `size` (the work's size, when known)
    reaches `threshold`; with `size` unknown, it starts drawing once `threshold` items
    have been counted (`enqueue --file -` reading a pipe of unknown length)."""

    def __init__(self, *, enabled: bool, size: int | None, threshold: int) -> None:
        self._enabled = enabled and (size is None or size >= threshold)
        self._lazy = size is None
        self._threshold = threshold
        self._counted = 0
        self._display: Any = None
        self._task: Any = None
        self._stage: tuple[str, float | None] = ("", None)
        self._done = 0.0
        if self._enabled and not self._lazy:
            self._start()

    def stage(self, description: str, total: float | None = None) -> None:
        """Begin the next stage; the previous one is shown as finished. A stage with no
        `total` that is never advanced shows a spinner and the time it has taken."""
        self._finish_stage()
        self._stage, self._done = (description, total), 0.0
        if self._display is not None:
            self._task = self._display.add_task(description, total=total, count=self._count())

    def advance(self, amount: float = 1) -> None:
        self._done += amount
        if self._display is None:
            if not (self._enabled and self._lazy):
                return
            self._counted += int(amount)
            if self._counted < self._threshold:
                return
            self._start()
            return
        self._display.update(self._task, completed=self._done, count=self._count())

    def describe(self, description: str) -> None:
        """Rename the current stage (e.g. to the part of it now running)."""
        self._stage = (description, self._stage[1])
        if self._display is not None and self._task is not None:
            self._display.update(self._task, description=description)

    def _count(self) -> str:
        total = self._stage[1]
        if total is not None:
            return f"{self._done:,.0f}/{total:,.0f}"
        return f"{self._done:,.0f}" if self._done else ""

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
        )
        self._display.start()
        description, total = self._stage
        if description:
            self._task = self._display.add_task(
                description, total=total, completed=self._done, count=self._count()
            )

    def _finish_stage(self) -> None:
        if self._display is not None and self._task is not None:
            total = self._stage[1]
            done = self._done if total is None else total
            # A finished stage shows a full bar, however open-ended it was.
            self._display.update(self._task, total=max(done, 1), completed=max(done, 1))
            self._display.stop_task(self._task)
            self._task = None

    def close(self) -> None:
        if self._display is not None:
            self._finish_stage()
            self._display.stop()
            self._display = None


def on_terminal(*, quiet: bool = False) -> bool:
    """Whether progress may be drawn: stderr is a terminal and output is not for a program."""
    if quiet or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


@contextlib.contextmanager
def tracked(*, quiet: bool, size: int | None, threshold: int) -> Iterator[Tracker]:
    """A `Tracker` for the block, its display removed from the terminal's control at the end
    (also when the block fails, so the error line is printed below the last frame)."""
    tracker = Tracker(enabled=on_terminal(quiet=quiet), size=size, threshold=threshold)
    try:
        yield tracker
    finally:
        tracker.close()
