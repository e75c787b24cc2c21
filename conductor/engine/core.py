"""The base of the actors a worker process cannot do without (Writer, Queue, Scheduler).

Unlike a worker actor, none of them can be replaced mid-flight: a failure in one is
reported to the Supervisor, which stops the process cleanly (see `supervisor.py`).
"""

from __future__ import annotations

import types
from typing import Any

import pykka

from conductor.engine.inbox import ThreadActor
from conductor.engine.messages import CoreCrashed


class CoreActor(ThreadActor):
    use_daemon_thread = True

    def __init__(self, supervisor: pykka.ActorRef[Any] | None = None) -> None:
        super().__init__()
        self._supervisor = supervisor

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        if self._supervisor is not None:
            self._supervisor.tell(
                CoreCrashed(
                    actor=type(self).__name__, error=repr(exception_value), cause=exception_value
                )
            )
