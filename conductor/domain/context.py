"""What a running handler can know about its job, and how it learns it was cancelled.

The worker sets the current `JobContext` around each handler call (a context variable,
so a handler's own threads started with `contextvars.copy_context()` see it too).
Cancellation is cooperative: `conductor cancel ID` ends the job as `cancelled` at once in
the ledger; the handler sees `cancelled` turn true (or `sleep` return early) and should
stop. A handler that ignores it runs to the end, its slot stays busy until then, and its
result is recorded as `result_ignored`; the job stays cancelled and is never retried.
"""

from __future__ import annotations

import contextvars
import threading

import attrs


@attrs.frozen(kw_only=True)
class JobContext:
    """The attempt a handler is running."""

    job_id: int
    attempt: int
    task: str
    queue: str
    cancel_event: threading.Event = attrs.field(factory=threading.Event, repr=False)
    heeded: threading.Event = attrs.field(factory=threading.Event, repr=False, eq=False)
    """Set once the handler has been told of its cancellation (`cancelled` returned True
    or `sleep` woke early): whatever it returns after that, its attempt was interrupted,
    and its outcome is recorded as such rather than as `completed`."""

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (or its attempt timed out or was given up)."""
        if self.cancel_event.is_set():
            self.heeded.set()
            return True
        return False

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on cancellation; True if cancelled."""
        if self.cancel_event.wait(seconds):
            self.heeded.set()
            return True
        return False

    @property
    def interrupted(self) -> bool:
        """Whether the handler has been told of its cancellation (see `heeded`)."""
        return self.heeded.is_set()


_CURRENT: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "conductor_job", default=None
)


def current_job() -> JobContext:
    """The context of the job this handler runs; raises outside a handler."""
    context = _CURRENT.get()
    if context is None:
        raise RuntimeError("current_job() is only available inside a running task handler")
    return context


def bind(context: JobContext | None) -> contextvars.Token[JobContext | None]:
    return _CURRENT.set(context)


def unbind(token: contextvars.Token[JobContext | None]) -> None:
    _CURRENT.reset(token)
