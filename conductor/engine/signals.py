"""A worker's stop signals, caught from the first moment the process can catch them.

Python's default SIGTERM kills the process (exit 143) and its default SIGINT raises
KeyboardInterrupt wherever the main thread is, a traceback. A worker spends its first few
hundred milliseconds importing (its own modules, pykka, prometheus_client, the `--app`
modules) before the engine exists, and a supervisor or a deploy may stop it at any of
those moments. So the `worker` command installs these handlers before anything heavy is
imported; until the engine is ready they only remember what arrived, and `attach` hands
that over to the engine's own handler, which then takes the graceful path. With nothing
attached (start-up, or after the engine stopped) a signal is only recorded: the process
is on its way to exit 0 anyway.

Deliberately light: only `signal` and `threading`, so installing costs nothing.
"""

from __future__ import annotations

import signal
import threading
import types
from collections.abc import Callable
from typing import Any, Final

STOPS: Final = (signal.SIGINT, signal.SIGTERM)

Target = Callable[[int], None]
"""What handles a stop signal once the engine exists: called with the signal number."""


class StopSignals:
    """SIGINT and SIGTERM for one process: remembered until a target is attached."""

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._target: Target | None = None
        self._previous: dict[int, Any] | None = None

    @property
    def installed(self) -> bool:
        return self._previous is not None

    def install(self) -> bool:
        """Catch the stop signals from now on; True if this call installed the handlers
        (False when they already were, or off the main thread, where Python cannot)."""
        if self._previous is not None or threading.current_thread() is not threading.main_thread():
            return False
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in STOPS}
        return True

    def uninstall(self) -> None:
        """Put back the handlers `install` replaced and forget everything."""
        if self._previous is not None:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        self._previous = None
        self._target = None
        self._pending.clear()

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        target = self._target
        if target is None:
            self._pending.append(signum)
        else:
            target(signum)

    def take(self) -> list[int]:
        """The signals that arrived with no target attached, oldest first; forgets them."""
        taken, self._pending = self._pending, []
        return taken

    def attach(self, target: Target) -> None:
        """Send every stop signal to `target` from now on, first those that arrived
        before (in order)."""
        self._target = target
        for signum in self.take():
            target(signum)

    def detach(self) -> None:
        """Stop sending signals to the target; later ones are only recorded."""
        self._target = None


WORKER: Final = StopSignals()
"""The process's stop signals (there is one set of signal handlers per process)."""


def name(signum: int) -> str:
    return signal.Signals(signum).name
