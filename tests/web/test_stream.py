"""Live updates: `/api/stream` sends `changed` (last seq, counts) after any event, whoever
appended it; one watcher per dashboard process serves every stream."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.web.stream import Watcher
from tests.web.support import Running


def changes(lines: Iterator[str]) -> Iterator[dict[str, object]]:
    """The `changed` messages of a server-sent event stream."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "changed":
            yield json.loads(line.removeprefix("data: "))


def test_the_stream_announces_a_job_enqueued_by_another_process(
    dashboard: Running, ledger: Conductor
) -> None:
    ledger.enqueue({"task": "noop"})
    with dashboard.http.stream("GET", "/api/stream") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        received = changes(answer.iter_lines())
        first = next(received)
        assert first["seq"] == 1
        assert first["counts"]["pending"] == 1  # type: ignore[index]
        job = ledger.enqueue({"task": "noop"})
        ledger.cancel(job, by="erin")
        seen = next(received)
        while seen["seq"] != 3:  # the enqueue may be announced before the cancel
            seen = next(received)
        assert seen["counts"] == {**first["counts"], "total": 2, "cancelled": 1}  # type: ignore[dict-item]


def test_several_streams_share_one_watcher_thread(dashboard: Running, ledger: Conductor) -> None:
    ledger.enqueue({"task": "noop"})
    streams = [dashboard.client() for _ in range(4)]
    try:
        opened = [http.stream("GET", "/api/stream") for http in streams]
        answers = [context.__enter__() for context in opened]
        firsts = [next(changes(answer.iter_lines())) for answer in answers]
        assert {first["seq"] for first in firsts} == {1}
        for context in opened:
            context.__exit__(None, None, None)
    finally:
        for http in streams:
            http.close()


def test_one_watcher_serves_every_subscriber_and_stops_after_the_last(db: str) -> None:
    with Conductor(db) as app:
        app.enqueue({"task": "noop"})
        watcher = Watcher(Settings(db=db), poll=0.05)

        async def watch() -> list[int]:
            queues = [watcher.subscribe() for _ in range(10)]
            threads = [t for t in threading.enumerate() if t.name == "conductor-dashboard-watcher"]
            assert len(threads) == 1
            firsts = [await asyncio.wait_for(q.get(), 60) for q in queues]
            assert {m["seq"] for m in firsts} == {1}
            await asyncio.to_thread(app.enqueue, {"task": "noop"})
            seconds = [await asyncio.wait_for(q.get(), 60) for q in queues]
            for queue in queues:
                watcher.unsubscribe(queue)
            return [m["seq"] for m in seconds]

        assert asyncio.run(watch()) == [2] * 10
        assert watcher.subscribers == 0
        for thread in threading.enumerate():
            if thread.name == "conductor-dashboard-watcher":
                thread.join(timeout=60)
                assert not thread.is_alive()
        watcher.close()
