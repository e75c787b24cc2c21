"""Queue and Scheduler driven message by message, with recording stand-ins around them."""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from conductor import Conductor, ManualClock
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.decisions import Outcome
from conductor.domain.registry import Registry
from conductor.engine.messages import (
    Began,
    Claimed,
    Demand,
    Dispatch,
    Drain,
    Finished,
    Maintain,
    QueueState,
    Run,
    Tick,
    TickResult,
    Wake,
)
from conductor.engine.queue import Queue
from conductor.engine.runtime import open_writable
from conductor.engine.scheduler import WOKEN_MAINTENANCE_GAP, Scheduler
from conductor.engine.worker import Worker
from conductor.ledger.base import ClaimedJob


class Recorder(pykka.ThreadingActor):
    """Stands in for the Writer or a Worker: keeps every message it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "seen":
            return list(self.seen)
        self.seen.append(message)
        return None


def seen(ref: pykka.ActorRef[Any]) -> list[Any]:
    return ref.ask("seen")  # type: ignore[no-any-return]


def dispatch(job_id: int, payload: str = "{}") -> Dispatch:
    job = ClaimedJob(
        id=job_id,
        task="t",
        queue="default",
        payload=payload,
        attempt=1,
        retries=0,
        max_retries=0,
        lease_expires_at="x",
        trace=None,
        run_at="2026-01-01T00:00:00.000000Z",
    )
    return Dispatch(job=job, cancel=threading.Event())


@pytest.fixture
def actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def demanded(writer: pykka.ActorRef[Any]) -> int:
    return sum(m.count for m in seen(writer) if isinstance(m, Demand))


def test_the_queue_asks_only_for_free_slots_plus_prefetch(actors: None) -> None:
    writer = Recorder.start()
    workers = {f"w{n}": Recorder.start() for n in range(3)}
    queue = Queue.start(2)
    queue.proxy().connect(writer, workers).get()
    assert demanded(writer) == 3 + 2
    # The writer is behind: no Claimed yet. Wake-ups must not pile up more demand.
    for _ in range(5):
        queue.tell(Wake())
    queue.ask(QueueState())
    assert demanded(writer) == 5


def test_the_queue_dispatches_to_idle_workers_and_buffers_the_prefetch(actors: None) -> None:
    writer = Recorder.start()
    workers = {f"w{n}": Recorder.start() for n in range(2)}
    queue = Queue.start(1)
    queue.proxy().connect(writer, workers).get()
    queue.tell(Claimed(tuple(dispatch(n) for n in (1, 2, 3)), 3))
    status = queue.ask(QueueState())
    assert (status.busy, status.buffered, status.asked) == (2, 1, 0)
    runs = [m.dispatch.job.id for ref in workers.values() for m in seen(ref)]
    assert sorted(runs) == [1, 2]
    first_slot = next(slot for slot, ref in workers.items() if seen(ref))
    queue.tell(Finished(first_slot, Outcome(job_id=1, attempt=1)))
    queue.ask(QueueState())  # the Finished is handled: its Forward waits in the inbox
    status = queue.ask(QueueState())  # and now the Forward too
    assert (status.busy, status.buffered) == (2, 0)  # job 3 went to the freed slot
    assert any(isinstance(m, Run) and m.dispatch.job.id == 3 for m in seen(workers[first_slot]))
    # the outcome was forwarded, and one more job was asked for to refill the prefetch
    reports = [m for m in seen(writer) if not isinstance(m, Demand)]
    assert [outcome.job_id for r in reports for outcome in r.outcomes] == [1]
    assert demanded(writer) == 3 + 1


def test_a_short_claim_stops_asking_until_something_wakes_the_queue(actors: None) -> None:
    writer = Recorder.start()
    workers = {"w1": Recorder.start()}
    queue = Queue.start(0)
    queue.proxy().connect(writer, workers).get()
    queue.tell(Claimed((), 1))
    assert queue.ask(QueueState()).exhausted
    assert demanded(writer) == 1
    queue.tell(Wake())
    queue.ask(QueueState())
    assert demanded(writer) == 2


def test_a_wake_up_during_a_claim_is_not_lost_when_the_claim_comes_back_short(
    actors: None,
) -> None:
    """The claim may have read the database before the woken-for job committed: a short
    answer to it must not park the queue until the next poll."""
    writer = Recorder.start()
    workers = {"w1": Recorder.start()}
    queue = Queue.start(0)
    queue.proxy().connect(writer, workers).get()
    assert demanded(writer) == 1  # a claim is in flight
    queue.tell(Wake())  # a job committed meanwhile
    queue.tell(Claimed((), 1))  # the claim missed it
    status = queue.ask(QueueState())
    assert not status.exhausted
    assert demanded(writer) == 2, "the queue must ask again at once"
    queue.tell(Claimed((), 1))  # nothing woke it since: now it rests
    assert queue.ask(QueueState()).exhausted
    assert demanded(writer) == 2


def test_a_wake_up_while_two_claims_are_out_costs_one_more_claim_not_one_per_answer(
    actors: None,
) -> None:
    """A demand sent after a wake-up is claimed after it, so it answers that wake-up; the
    short answers of claims already out then mean the work has run out. (Remembering the
    wake-up until no claim was out made each short answer ask again while another was
    out: on PostgreSQL, about three empty claims per job in a steady stream.)"""
    writer = Recorder.start()
    workers = {"w1": Recorder.start(), "w2": Recorder.start()}
    queue = Queue.start(0)
    queue.proxy().connect(writer, workers).get()
    queue.tell(Claimed((dispatch(1), dispatch(2)), 2))
    queue.ask(QueueState())
    assert demanded(writer) == 2
    queue.tell(Finished("w1", Outcome(job_id=1, attempt=1)))
    queue.ask(QueueState())
    queue.ask(QueueState())  # its Forward: one more job asked for (claim B)
    assert demanded(writer) == 3
    queue.tell(Wake())  # a job committed while B is out
    queue.tell(Finished("w2", Outcome(job_id=2, attempt=1)))
    queue.ask(QueueState())
    queue.ask(QueueState())  # its Forward: claim C, sent after the wake-up
    assert demanded(writer) == 4
    queue.tell(Claimed((), 1))  # B comes back short
    queue.tell(Claimed((), 1))  # and so does C, which read after the commit
    status = queue.ask(QueueState())
    assert status.exhausted
    assert (status.asked, demanded(writer)) == (0, 4)


def test_a_worker_that_took_the_next_job_stays_busy_and_gets_no_run(actors: None) -> None:
    writer = Recorder.start()
    workers = {f"w{n}": Recorder.start() for n in range(2)}
    waiting: deque[Dispatch] = deque()
    queue = Queue.start(1, waiting=waiting)
    queue.proxy().connect(writer, workers).get()
    queue.tell(Claimed(tuple(dispatch(n) for n in (1, 2, 3)), 3))
    assert queue.ask(QueueState()).buffered == 1
    first_slot = next(slot for slot, ref in workers.items() if seen(ref))
    took = waiting.popleft()  # what a finishing worker does: job 3 is its own now
    queue.tell(Finished(first_slot, Outcome(job_id=1, attempt=1), took))
    queue.ask(QueueState())  # the Finished, then its Forward
    status = queue.ask(QueueState())
    assert (status.busy, status.buffered) == (2, 0)
    assert [m.dispatch.job.id for m in seen(workers[first_slot])] == [1]  # no Run for job 3
    reports = [m for m in seen(writer) if not isinstance(m, Demand)]
    assert [outcome.job_id for r in reports for outcome in r.outcomes] == [1]
    assert demanded(writer) == 3 + 1  # the buffer refilled; no slot counted free
    queue.tell(Finished(first_slot, Outcome(job_id=3, attempt=1)))  # took nothing
    assert queue.ask(QueueState()).busy == 1


def test_a_drain_hands_back_each_buffered_job_once_and_buffers_no_later_claim(
    actors: None,
) -> None:
    writer = Recorder.start()
    workers = {"w1": Recorder.start()}
    waiting: deque[Dispatch] = deque()
    queue = Queue.start(2, waiting=waiting)
    queue.proxy().connect(writer, workers).get()
    queue.tell(Claimed(tuple(dispatch(n) for n in (1, 2, 3)), 3))
    queue.ask(QueueState())
    assert [d.job.id for d in waiting] == [2, 3]
    taken_by_worker = waiting.popleft()
    unstarted, idle = queue.ask(Drain())
    assert [job.id for job in unstarted] == [3]
    assert taken_by_worker.job.id == 2
    assert not waiting
    queue.tell(Claimed((dispatch(4),), 1))  # a claim that was already on its way
    assert queue.ask(QueueState()).buffered == 0
    assert not waiting
    assert not idle.is_set()  # w1 still runs job 1
    queue.tell(Finished("w1", Outcome(job_id=1, attempt=1), taken_by_worker))
    queue.ask(QueueState())
    assert not idle.is_set()  # and now job 2
    queue.tell(Finished("w1", Outcome(job_id=2, attempt=1)))
    queue.ask(QueueState())
    assert idle.is_set()


class _TakenFirst(deque[Dispatch]):
    """A buffer whose next `popleft` finds that a worker took the front job a moment
    earlier: the race between a finishing worker and the Queue's own dispatch."""

    race = True

    def popleft(self) -> Dispatch:
        if self.race:
            self.race = False
            super().popleft()  # the worker's take
        return super().popleft()


def test_a_job_a_worker_took_first_is_not_dispatched_again_and_the_queue_survives(
    actors: None,
) -> None:
    writer = Recorder.start()
    workers = {f"w{n}": Recorder.start() for n in range(2)}
    waiting = _TakenFirst()
    queue = Queue.start(0, waiting=waiting)
    queue.proxy().connect(writer, workers).get()
    queue.tell(Claimed((dispatch(1),), 2))
    status = queue.ask(QueueState())  # the Queue is still alive to answer
    assert (status.busy, status.buffered) == (0, 0)
    assert all(seen(ref) == [] for ref in workers.values())


def test_a_worker_runs_the_job_it_takes_from_the_buffer_next(actors: None) -> None:
    ran: list[int] = []
    registry = Registry()

    @registry.task("t")
    def record(n: int) -> None:
        ran.append(n)

    queue, supervisor = Recorder.start(), Recorder.start()
    waiting: deque[Dispatch] = deque([dispatch(2, '{"task": "t", "n": 2}')])
    clock = ManualClock(dt.datetime(2026, 12, 7, tzinfo=dt.UTC))
    worker = Worker.start("w1", queue, supervisor, registry, waiting, clock)
    worker.tell(Run(dispatch(1, '{"task": "t", "n": 1}')))
    # The Run the worker tells itself lands behind the first "nothing" (sent while Run(1)
    # was still queued), so only a second ask is sure to come after it.
    worker.ask("nothing")
    worker.ask("nothing")
    finished = [m for m in seen(queue) if isinstance(m, Finished)]
    began = [m for m in seen(queue) if isinstance(m, Began)]
    assert ran == [1, 2]
    # Each handler's start is announced before its end: the `run_started` fact.
    assert [type(m).__name__ for m in seen(queue)] == ["Began", "Finished"] * 2
    assert [(m.job_id, m.attempt, m.at) for m in began] == [
        (1, 1, clock.now()),
        (2, 1, clock.now()),
    ]
    assert [(m.outcome.job_id, m.outcome.ok) for m in finished] == [(1, True), (2, True)]
    assert [None if m.took is None else m.took.job.id for m in finished] == [2, None]
    assert not waiting


class SteppedTimer:
    """The Queue's timer, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_adaptive_queue_deepens_its_buffer_for_short_jobs_up_to_four_per_slot(
    actors: None,
) -> None:
    timer = SteppedTimer()
    writer = Recorder.start()
    workers = {"w1": Recorder.start(), "w2": Recorder.start()}
    queue = Queue.start(None, timer=timer)
    queue.proxy().connect(writer, workers).get()
    assert demanded(writer) == 2 + 2  # free slots plus the floor while nothing is known
    timer.now = 0.002  # the claim took 2 ms
    queue.tell(Claimed(tuple(dispatch(n) for n in (1, 2, 3, 4)), 4))
    assert queue.ask(QueueState()).prefetch == 2
    timer.now = 0.002_01  # job 1 (or 2) ran for 10 us: 2 slots x 2 ms / 10 us = 400
    first_slot = next(slot for slot, ref in workers.items() if seen(ref))
    queue.tell(Finished(first_slot, Outcome(job_id=1, attempt=1)))
    queue.ask(QueueState())  # the Finished, then its Forward
    status = queue.ask(QueueState())
    assert status.prefetch == 8  # capped at 4 per slot
    # the freed slot took job 3; the Queue asks for the deeper buffer: 8 - 1 buffered
    assert (status.busy, status.buffered, status.asked) == (2, 1, 7)
    assert demanded(writer) == 4 + 7


def test_an_adaptive_queue_keeps_the_floor_for_jobs_longer_than_a_claim(actors: None) -> None:
    timer = SteppedTimer()
    writer = Recorder.start()
    workers = {"w1": Recorder.start()}
    queue = Queue.start(None, timer=timer)
    queue.proxy().connect(writer, workers).get()
    timer.now = 0.001
    queue.tell(Claimed(tuple(dispatch(n) for n in (1, 2, 3)), 3))
    queue.ask(QueueState())  # handled before the timer moves on
    for job_id in (1, 2):
        timer.now += 0.050  # 50 ms jobs against a 1 ms claim
        queue.tell(Finished("w1", Outcome(job_id=job_id, attempt=1)))
        queue.ask(QueueState())
    status = queue.ask(QueueState())
    assert status.prefetch == 2
    assert status.buffered + status.asked + status.busy <= 1 + 2


def test_a_fixed_prefetch_never_adapts(actors: None) -> None:
    timer = SteppedTimer()
    writer = Recorder.start()
    workers = {"w1": Recorder.start()}
    queue = Queue.start(1, timer=timer)
    queue.proxy().connect(writer, workers).get()
    timer.now = 0.010
    queue.tell(Claimed(tuple(dispatch(n) for n in (1, 2)), 2))
    queue.ask(QueueState())
    timer.now = 0.010_001
    queue.tell(Finished("w1", Outcome(job_id=1, attempt=1)))
    queue.ask(QueueState())
    assert queue.ask(QueueState()).prefetch == 1
    assert demanded(writer) == 2 + 1


@pytest.fixture
def scheduler(
    db: str, actors: None, request: pytest.FixtureRequest
) -> tuple[Any, Any, Any, Settings]:
    settings = Settings(db=db)
    config = WorkerConfig(poll_interval=1000.0, maintenance_interval=request.param)
    queue, writer = Recorder.start(), Recorder.start()
    ref = Scheduler.start(settings, config, queue, writer, open_writable)
    return ref, queue, writer, settings


@pytest.mark.parametrize("scheduler", [50.0], indirect=True)
def test_the_scheduler_sleeps_exactly_until_the_next_due_job_then_wakes_the_queue(
    scheduler: tuple[Any, Any, Any, Settings],
) -> None:
    ref, queue, _, settings = scheduler
    clock = ManualClock()
    with Conductor(settings=settings, clock=clock) as app:
        app.enqueue({"task": "t"}, delay=dt.timedelta(seconds=90))
        app.enqueue({"task": "t"}, delay=dt.timedelta(seconds=30))
    now = clock.now()
    result: TickResult = ref.ask(Tick(now))
    assert result.sleep == pytest.approx(30.0)  # the job due in 30 s, not the poll
    result = ref.ask(Tick(now + dt.timedelta(seconds=29)))
    assert result.sleep == pytest.approx(1.0)
    assert not any(isinstance(m, Wake) for m in seen(queue))
    ref.ask(Tick(now + dt.timedelta(seconds=30)))
    assert any(isinstance(m, Wake) for m in seen(queue))


@pytest.mark.parametrize("scheduler", [50.0], indirect=True)
def test_a_woken_look_wakes_the_queue_only_for_a_job_that_fell_due_after_the_runtime_woke_it(
    scheduler: tuple[Any, Any, Any, Settings],
) -> None:
    """The runtime wakes the Queue before the Scheduler looks: a job due by then was
    looked for by a claim already (another Wake is another, empty, claim); one that fell
    due in between was not."""
    ref, queue, _, settings = scheduler
    clock = ManualClock()
    with Conductor(settings=settings, clock=clock) as app:
        app.enqueue({"task": "t"}, delay=dt.timedelta(seconds=30))
    due = clock.now() + dt.timedelta(seconds=30)
    later = due + dt.timedelta(seconds=1)
    ref.ask(Tick(later, woken=True, queue_woken_at=due))
    assert not any(isinstance(m, Wake) for m in seen(queue))
    ref.ask(Tick(later, woken=True, queue_woken_at=due - dt.timedelta(milliseconds=5)))
    assert sum(isinstance(m, Wake) for m in seen(queue)) == 1


@pytest.mark.parametrize("scheduler", [5.0], indirect=True)
def test_the_scheduler_asks_for_maintenance_on_schedule_and_whenever_woken(
    scheduler: tuple[Any, Any, Any, Settings],
) -> None:
    ref, _, writer, settings = scheduler
    with Conductor(settings=settings):
        pass
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ref.ask(Tick(now))
    ref.ask(Tick(now + dt.timedelta(seconds=1)))
    assert sum(isinstance(m, Maintain) for m in seen(writer)) == 1
    ref.ask(Tick(now + dt.timedelta(seconds=2), woken=True))
    ref.ask(Tick(now + dt.timedelta(seconds=6)))  # 5 s after the woken one: not yet
    ref.ask(Tick(now + dt.timedelta(seconds=7)))
    assert [m.now for m in seen(writer) if isinstance(m, Maintain)] == [
        now,
        now + dt.timedelta(seconds=2),
        now + dt.timedelta(seconds=7),
    ]


@pytest.mark.parametrize("scheduler", [5.0], indirect=True)
def test_wake_ups_in_a_burst_bring_maintenance_forward_at_most_once_per_gap(
    scheduler: tuple[Any, Any, Any, Settings],
) -> None:
    """Every enqueue wakes the workers: a stream of them must not turn into a stream of
    maintenance rounds ahead of the claims, yet a cancel still reaches a handler soon."""
    ref, _, writer, settings = scheduler
    with Conductor(settings=settings):
        pass
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    gap = WOKEN_MAINTENANCE_GAP
    ref.ask(Tick(now))
    for n in range(1, 5):  # four wake-ups within the gap
        result: TickResult = ref.ask(Tick(now + gap * n / 5, woken=True))
    assert result.sleep == pytest.approx((gap / 5).total_seconds())  # until the gap ends
    ref.ask(Tick(now + gap, woken=True))
    assert [m.now for m in seen(writer) if isinstance(m, Maintain)] == [now, now + gap]


@pytest.mark.parametrize("scheduler", [50.0], indirect=True)
def test_a_due_job_does_not_hide_the_next_scheduled_one(
    scheduler: tuple[Any, Any, Any, Settings],
) -> None:
    ref, queue, _, settings = scheduler
    clock = ManualClock()
    with Conductor(settings=settings, clock=clock) as app:
        app.enqueue({"task": "t"})
        app.enqueue({"task": "t"}, delay=dt.timedelta(seconds=12))
    result: TickResult = ref.ask(Tick(clock.now()))
    assert any(isinstance(m, Wake) for m in seen(queue))
    assert result.sleep == pytest.approx(12.0)
