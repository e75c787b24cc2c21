"""Writes in doubt and outages, in one process: a commit whose answer the connection lost,
a database that stops answering for a while, and the two lines that report it.

A connection lost between COMMIT and its answer cannot be produced on cue with a real
server, so these tests put a real SQLite ledger behind `AnswerLost`: the chosen write is
really committed, then reported as `DatabaseUnavailable`, exactly what the Writer sees
when a PostgreSQL server goes away at that instant (tests/reliability covers real
restarts, on a private server).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from conductor import Conductor
from conductor.domain.config import Settings, WorkerConfig
from conductor.domain.errors import DatabaseUnavailable
from conductor.domain.events import NewEvent
from conductor.domain.registry import Registry
from conductor.engine import doubt
from conductor.engine.messages import Flush, QueueState
from conductor.engine.outage import Outage
from conductor.engine.runtime import Engine, open_writable
from conductor.ledger.base import Ledger
from conductor.observe import logs
from tests.engine.conftest import enqueue, wait_until


class AnswerLost:
    """A real ledger whose writes fail as chosen: `lose_answer` commits the next write
    `pick(events, claimed)` accepts and then reports the connection lost; `down` refuses
    every write (and read) before touching the database, as an absent server does."""

    pick: Callable[[Sequence[NewEvent], Sequence[Any]], bool] | None = None
    down = threading.Event()

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def transact(self, job_ids: Any, decide: Any, *, claim: Any = None) -> Any:
        if AnswerLost.down.is_set():
            raise DatabaseUnavailable("test: the server is down")
        decided: list[NewEvent] = []

        def watched(rows: Any) -> list[NewEvent]:
            decided[:] = decide(rows)
            return decided

        recorded, claimed = self._ledger.transact(job_ids, watched, claim=claim)
        pick = AnswerLost.pick
        if pick is not None and pick(decided, claimed):
            AnswerLost.pick = None
            raise DatabaseUnavailable("test: the answer to a commit was lost")
        return recorded, claimed

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._ledger, name)
        if not callable(attribute) or name == "close":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if AnswerLost.down.is_set():
                raise DatabaseUnavailable("test: the server is down")
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def engine_on(db_path: Path, registry: Registry) -> Iterator[Callable[..., Engine]]:
    started: list[tuple[Engine, threading.Thread]] = []
    AnswerLost.pick = None
    AnswerLost.down.clear()

    def start(**options: Any) -> Engine:
        config = WorkerConfig(
            **{"concurrency": 2, "poll_interval": 0.2, "maintenance_interval": 0.2, **options}
        )
        engine = Engine(
            Settings(db=str(db_path)),
            config,
            registry=registry,
            open_ledger=lambda settings: AnswerLost(open_writable(settings)),  # type: ignore[arg-type,return-value]
        )
        engine.start()
        thread = threading.Thread(target=engine.run, daemon=True)
        thread.start()
        started.append((engine, thread))
        return engine

    yield start
    AnswerLost.down.clear()
    for engine, thread in started:
        engine.request_stop(force=True)
        thread.join(30)
    pykka.ActorRegistry.stop_all()


def _types(db_path: Path, job_id: int) -> list[str]:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        return [rec.type for rec in app.ledger.history(job_id)]


def test_an_outcome_whose_commit_answer_was_lost_is_recorded_once(
    db_path: Path, registry: Registry, engine_on: Callable[..., Engine]
) -> None:
    registry.task("quick")(lambda: None)
    AnswerLost.pick = lambda events, _: any(e.event.TYPE == "completed" for e in events)
    (job_id,) = enqueue(db_path, [{"task": "quick"}])
    engine = engine_on()
    wait_until(lambda: AnswerLost.pick is None, what="the completion's answer lost")
    wait_until(lambda: engine.outage.outages == 1 and not engine.outage.down, what="back")
    engine.actors().writer.ask(Flush())  # the kept outcome's retry, done when this returns
    assert _types(db_path, job_id) == ["enqueued", "claimed", "run_started", "completed"]


def test_a_claim_whose_commit_answer_was_lost_is_given_back_at_once(
    db_path: Path, registry: Registry, engine_on: Callable[..., Engine]
) -> None:
    registry.task("quick")(lambda: None)
    AnswerLost.pick = lambda _, claimed: bool(claimed)
    (job_id,) = enqueue(db_path, [{"task": "quick"}])
    # A lease far longer than the hang guard: only the give-back can free the job in time.
    engine_on(lease=dt.timedelta(hours=1))
    wait_until(lambda: "completed" in _types(db_path, job_id), what="the job to complete")
    kinds = _types(db_path, job_id)
    assert kinds == [
        "enqueued",
        "claimed",
        "released",
        "claimed",
        "run_started",
        "completed",
    ], kinds
    with Conductor(settings=Settings(db=str(db_path))) as app:
        released = [rec.event for rec in app.ledger.history(job_id) if rec.type == "released"]
    assert "answer was lost" in released[0].reason  # type: ignore[attr-defined]


def test_outcomes_of_an_outage_are_kept_and_written_when_the_database_answers(
    db_path: Path, registry: Registry, engine_on: Callable[..., Engine]
) -> None:
    gate = threading.Event()
    registry.task("gated")(lambda: gate.wait(60))
    job_ids = enqueue(db_path, [{"task": "gated"}] * 2)
    engine = engine_on()
    wait_until(
        lambda: [_types(db_path, j)[-1] for j in job_ids] == ["run_started"] * 2,
        what="both jobs running",
    )
    AnswerLost.down.set()
    wait_until(lambda: engine.outage.down, what="the outage noticed")
    gate.set()  # the handlers finish while nothing can be written
    queue = engine.actors().queue
    wait_until(lambda: queue.ask(QueueState()).busy == 0, what="both handlers returned")
    AnswerLost.down.clear()
    wait_until(
        lambda: all(_types(db_path, j)[-1] == "completed" for j in job_ids),
        what="the kept outcomes written",
    )
    assert engine.outage.outages == 1
    assert not engine.outage.down


def test_an_outage_is_logged_once_and_its_end_once_with_how_long_it_lasted() -> None:
    now = [100.0]
    outage = Outage(timer=lambda: now[0])
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logs.LOGGER.addHandler(handler)
    level = logs.LOGGER.level
    logs.LOGGER.setLevel(logging.WARNING)
    try:
        error = DatabaseUnavailable("cannot reach PostgreSQL at x; expected a running server")
        for _ in range(50):
            outage.failed(outage.now(), error)
        now[0] = 112.5
        began_before_back = outage.now()
        outage.answered()
        outage.answered()
        now[0] = 113.0
        # A call that began before the database came back and met a cut connection after
        # it belongs to the outage already reported.
        outage.failed(began_before_back, error)
        outage.answered()
    finally:
        logs.LOGGER.removeHandler(handler)
        logs.LOGGER.setLevel(level)
    assert lines == [
        "database unreachable: cannot reach PostgreSQL at x; expected a running server; "
        "claims paused, outcomes kept in memory and retried until it answers "
        "(leases keep the claimed jobs safe meanwhile)",
        "database back after 12.5s; writing what was kept, claims resume",
    ]
    assert outage.outages == 1


def test_landed_finds_only_the_outcome_events_after_the_row_the_write_saw() -> None:
    from conductor.domain.decisions import Outcome
    from conductor.domain.events import JobAttemptFailed, JobCompleted, RecordedEvent

    def rec(seq: int, job_id: int, event: Any) -> RecordedEvent:
        return RecordedEvent(seq=seq, job_id=job_id, at="t", event=event, trace=None, hash="")

    histories = {
        1: [rec(5, 1, JobCompleted(attempt=2))],  # recorded by the write in doubt
        2: [rec(3, 2, JobAttemptFailed(attempt=1, error_type="Timeout", message="", traceback=""))],
    }
    outcomes = [Outcome(job_id=1, attempt=2), Outcome(job_id=2, attempt=1)]
    # Job 2's timeout was recorded before the write in doubt saw its row (seq 4): its
    # late result still has to be written.
    assert doubt.landed(outcomes, {1: 4, 2: 4}, histories) == {1}
