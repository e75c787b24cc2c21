"""Queue controls hold across real `conductor worker` processes on one ledger (both
backends): a concurrency limit and a rate limit are never exceeded, proven from the
ledger's own events; a pause stops claims and a resume restarts them; a limit changed
while the workers run takes effect. Every wait is on the ledger or a process exit."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.clock import unstamp
from conductor.domain.config import Settings
from conductor.domain.events import RecordedEvent
from tests import gated_tasks
from tests.conftest import run_cli
from tests.engine.conftest import WorkerProcesses, wait_until

FINISHING = ("completed", "failed", "released", "rescued", "retry_scheduled", "cancelled")
"""Events after which an attempt no longer counts against a concurrency limit."""
BURST_TIMEOUT = 300


@pytest.fixture
def gated(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(
        db, tmp_path, "--app", gated_tasks.APP, "--queue", "q", env=gated_tasks.app_env()
    )
    yield pool
    pool.stop_all()


def app(db: str) -> Conductor:
    return Conductor(settings=Settings(db=db))


def log(db: str) -> list[RecordedEvent]:
    with app(db) as handle:
        return handle.events()


def held_at_once(events: list[RecordedEvent], queue_jobs: set[int]) -> list[int]:
    """After each event of the log, in seq order (the order the ledger applied them), how
    many of `queue_jobs`' attempts were claimed and not yet finished."""
    holding: set[int] = set()
    after = []
    for rec in events:
        if rec.job_id not in queue_jobs:
            continue
        if rec.type == "claimed":
            holding.add(rec.job_id)
        elif rec.type in FINISHING:
            holding.discard(rec.job_id)
        after.append(len(holding))
    return after


def running_by_time(events: list[RecordedEvent], queue_jobs: set[int]) -> int:
    """The most attempts whose handlers ran at one instant, from each attempt's
    `run_started` and `completed` times (stamped by the workers of one host's clock)."""
    edges = []
    for rec in events:
        if rec.job_id in queue_jobs and rec.type == "run_started":
            edges.append((rec.at, 1))
        elif rec.job_id in queue_jobs and rec.type == "completed":
            edges.append((rec.at, -1))
    most = now = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        now += step
        most = max(most, now)
    return most


def running(db: str) -> int:
    with app(db) as handle:
        return sum(s.running for s in handle.queues() if s.name == "q")


def test_three_workers_never_run_more_of_a_queue_than_its_concurrency_limit(
    db: str, tmp_path: Path, gated: WorkerProcesses
) -> None:
    gate = tmp_path / "gate"
    with app(db) as handle:
        handle.limit_queue("q", concurrency=2, by="test")
        jobs = set(handle.enqueue_many([{"task": "gated", "gate": str(gate)}] * 12, queue="q"))
    workers = [gated.start("--concurrency", "4", "--burst") for _ in range(3)]
    # Twelve slots wait on the gate for two places: once two attempts are held, every
    # worker's claims find no room until one finishes.
    wait_until(lambda: running(db) == 2, what="the limit to be reached")
    gate.touch()
    for worker in workers:
        assert worker.wait(BURST_TIMEOUT) == 0
    events = log(db)
    assert max(held_at_once(events, jobs)) == 2
    assert running_by_time(events, jobs) <= 2
    assert sum(1 for rec in events if rec.type == "completed") == 12
    assert run_cli("replay", "--verify", db=db).code == 0


def test_three_workers_never_claim_more_of_a_queue_than_its_rate_per_window(
    db: str, tmp_path: Path
) -> None:
    with app(db) as handle:
        handle.limit_queue("q", rate="4/s", by="test")
        jobs = set(handle.enqueue_many([{"task": "noop"}] * 12, queue="q"))
    pool = WorkerProcesses(db, tmp_path, "--queue", "q", "--poll", "100ms")
    try:
        workers = [pool.start("--concurrency", "4", "--burst") for _ in range(3)]
        for worker in workers:
            assert worker.wait(BURST_TIMEOUT) == 0
    finally:
        pool.stop_all()
    events = log(db)
    # Each claim counts in the window of its stamp, or in a later one already begun (a
    # claimer whose `now` was read before another's): the fold's rule, replayed here.
    windows: collections.Counter[dt.datetime] = collections.Counter()
    current: dt.datetime | None = None
    for rec in events:
        if rec.job_id in jobs and rec.type == "claimed":
            window = unstamp(rec.at).replace(microsecond=0)
            current = window if current is None or window > current else current
            windows[current] += 1
    assert sum(windows.values()) == 12
    assert max(windows.values()) <= 4
    assert len(windows) >= 3  # twelve claims at four a second: three windows at least
    spent = [rec.event.fields()["claims"] for rec in events if rec.type == "queue_rate_spent"]
    assert sum(spent) == 12
    assert run_cli("replay", "--verify", db=db).code == 0


def test_a_paused_queue_keeps_its_jobs_pending_until_it_is_resumed(db: str, tmp_path: Path) -> None:
    with app(db) as handle:
        handle.pause_queue("mail", by="test", reason="relay down")
        held = handle.enqueue_many([{"task": "noop"}] * 3, queue="mail")
        free = handle.enqueue_many([{"task": "noop"}] * 3, queue="other")
    pool = WorkerProcesses(db, tmp_path, "--queue", "mail,other")
    try:
        # A burst worker stops once nothing it may claim is due: the other queue's jobs
        # ran, the paused queue's were never claimed.
        assert pool.start("--burst").wait(BURST_TIMEOUT) == 0
        with app(db) as handle:
            assert {handle.job(i)["status"] for i in free} == {"completed"}
            assert {handle.job(i)["status"] for i in held} == {"pending"}
            assert not [r for r in handle.events(types=["claimed"]) if r.job_id in held]
            handle.resume_queue("mail", by="test")
        assert pool.start("--burst").wait(BURST_TIMEOUT) == 0
        with app(db) as handle:
            assert {handle.job(i)["status"] for i in held} == {"completed"}
    finally:
        pool.stop_all()


def test_pausing_a_queue_stops_running_workers_claiming_and_running_jobs_finish(
    db: str, tmp_path: Path, gated: WorkerProcesses
) -> None:
    gate = tmp_path / "gate"
    with app(db) as handle:
        first = handle.enqueue({"task": "gated", "gate": str(gate)}, queue="q")
    gated.start("--queue", "other", "--concurrency", "2", "--poll", "100ms")
    wait_until(lambda: running(db) == 1, what="the first job to be claimed")
    with app(db) as handle:
        handle.pause_queue("q", by="test")
        later = handle.enqueue({"task": "noop"}, queue="q")
        marker = handle.enqueue({"task": "noop"}, queue="other")
        # The worker's claims take the oldest due job first across its queues: once it
        # has claimed the marker, enqueued after `later`, it has looked past the paused
        # queue. Its running job is not touched by the pause and finishes.
        wait_until(lambda: handle.job(marker)["status"] == "completed", what="the marker")
        assert handle.job(later)["status"] == "pending"
        assert handle.job(first)["status"] == "in_progress"
        gate.touch()
        wait_until(lambda: handle.job(first)["status"] == "completed", what="the first job")
        seq = handle.ledger.last_seq()
        assert not [r for r in handle.events(types=["claimed"]) if r.job_id == later]
        handle.resume_queue("q", by="test")
        wait_until(lambda: handle.job(later)["status"] == "completed", what="the resumed job")
        claims = [r for r in handle.events(types=["claimed"]) if r.job_id == later]
        assert len(claims) == 1
        assert claims[0].seq > seq


def test_a_limit_raised_while_workers_run_takes_effect(
    db: str, tmp_path: Path, gated: WorkerProcesses
) -> None:
    gate = tmp_path / "gate"
    with app(db) as handle:
        handle.limit_queue("q", concurrency=1, by="test")
        jobs = set(handle.enqueue_many([{"task": "gated", "gate": str(gate)}] * 6, queue="q"))
    for _ in range(3):
        gated.start("--concurrency", "2", "--poll", "100ms")
    wait_until(lambda: running(db) == 1, what="one job under the limit of 1")
    with app(db) as handle:
        changed_at = handle.ledger.last_seq()
        handle.limit_queue("q", concurrency=3, by="test")
    wait_until(lambda: running(db) == 3, what="three jobs under the raised limit")
    gate.touch()
    with app(db) as handle:
        wait_until(
            lambda: {handle.job(i)["status"] for i in jobs} == {"completed"}, what="all jobs"
        )
    events = log(db)
    before = [rec for rec in events if rec.seq <= changed_at]
    assert max(held_at_once(before, jobs)) == 1
    assert max(held_at_once(events, jobs)) == 3
