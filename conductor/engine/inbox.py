"""The base of every conductor actor: a pykka thread actor with a `queue.SimpleQueue` inbox.

pykka gives each `ThreadingActor` a `queue.Queue`, which is written in Python: every
`tell` takes its lock and notifies a `Condition`, and every wait builds a new lock to
sleep on. A job costs at least two tells (`Run` to a worker, `Finished` back), so in a
drain of no-op jobs that machinery was about a tenth of the time the process held the GIL
(docs/performance.md). `queue.SimpleQueue` is the same unbounded FIFO implemented in C,
with the three methods pykka's inbox protocol asks for (`put`, `get`, `empty`), so the
messages, their order and pykka's own handling of them are unchanged.
"""

from __future__ import annotations

import queue
from typing import Any

import pykka


class ThreadActor(pykka.ThreadingActor):
    """`pykka.ThreadingActor` with the C-implemented inbox."""

    @staticmethod
    def _create_actor_inbox() -> Any:
        # pykka types this as its private `ActorInbox` protocol: put, get, empty.
        return queue.SimpleQueue()
