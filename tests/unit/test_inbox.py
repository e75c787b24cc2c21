"""The actors' C inbox keeps pykka's behaviour: order, replies, and the teardown that
answers asks still waiting when an actor stops."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import pytest

from conductor.engine.core import CoreActor
from conductor.engine.inbox import ThreadActor
from conductor.engine.supervisor import Supervisor
from conductor.engine.worker import Worker


class _Recorder(ThreadActor):
    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.seen: list[int] = []
        self._gate = gate

    def on_receive(self, message: Any) -> Any:
        if message == "wait":
            assert self._gate is not None
            self._gate.wait(10)
            return None
        if message == "seen":
            return list(self.seen)
        self.seen.append(message)
        return None


def test_every_conductor_actor_gets_the_c_inbox() -> None:
    for actor_class in (CoreActor, Worker, Supervisor):
        assert issubclass(actor_class, ThreadActor)
    ref = _Recorder.start()
    try:
        assert isinstance(ref.actor_inbox, queue.SimpleQueue)
    finally:
        ref.stop()


def test_tells_from_several_threads_arrive_each_in_its_senders_order() -> None:
    ref = _Recorder.start()
    try:

        def send(base: int) -> None:
            for i in range(2_000):
                ref.tell(base + i)

        senders = [threading.Thread(target=send, args=(n * 10_000,)) for n in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        seen = ref.ask("seen")
    finally:
        ref.stop()
    assert len(seen) == 8_000
    for n in range(4):
        mine = [value for value in seen if n * 10_000 <= value < (n + 1) * 10_000]
        assert mine == list(range(n * 10_000, n * 10_000 + 2_000))


def test_asks_queued_behind_a_stop_fail_instead_of_hanging() -> None:
    gate = threading.Event()
    ref = _Recorder.start(gate)
    ref.tell("wait")  # the actor blocks here while more messages queue behind
    before = ref.ask("seen", block=False)
    stopped = ref.stop(block=False)
    behind = ref.ask("seen", block=False)
    gate.set()
    stopped.get(timeout=10)
    assert before.get(timeout=10) == []  # queued ahead of the stop: handled
    # pykka's teardown drains the rest of the inbox with empty()/get() and fails each ask.
    with pytest.raises(pykka.ActorDeadError):
        behind.get(timeout=10)
