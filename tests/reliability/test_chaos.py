"""Chaos kill (issue 6, test 1): SIGKILL random worker processes while 2,000 jobs flow,
on each backend (issue 14).

Four `conductor worker` processes run `chaos_sleep` jobs (5-50 ms, some flaky, a few that
always fail); about once a second a random worker is SIGKILLed and restarted. Then a
`--burst` worker drains what is left and the rest stop with SIGTERM. The ledger, the
journal the handler writes and the verifiers must then agree that nothing was lost, nothing
completed twice and every attempt ended exactly once. The one `time.sleep` is the kill
cadence (a chaos schedule); every wait for a state polls the ledger against a deadline.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.events import RecordedEvent
from conductor.ledger.open import is_postgres
from tests.conftest import run_cli
from tests.engine.conftest import WorkerProcesses, wait_until
from tests.engine.freeze import catches, freeze_when, in_flight

REPO = Path(__file__).resolve().parents[2]
APP = "tests.reliability.chaos_tasks"
SEED = 20_260_601
PROCESSES = 4
KILL_EVERY = 0.6
ALWAYS_FAIL_EVERY = 100
"""One job in this many always fails (flaky_p 1.0, max_retries 1) and must end failed."""
FLAKY_EVERY = 4
"""One job in this many fails with probability 0.3 per attempt (max_retries 10)."""

HOLDING_OUTCOMES = frozenset({"completed", "attempt_failed", "rescued", "released"})
"""Outcomes that end an attempt's hold on its job (plus `failed` without `attempt_failed`,
which is a rescue that found the retries used up)."""
TAKEN_BACK = frozenset({"rescued", "released", "failed-on-rescue"})
"""Outcomes of an attempt whose worker lost the job before reporting."""

SOAK = pytest.mark.skipif(
    os.environ.get("CONDUCTOR_SOAK") != "1", reason="soak test: set CONDUCTOR_SOAK=1 (just soak)"
)


@pytest.fixture
def pool(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    """Workers running the chaos app module (importable from the repository root)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    workers = WorkerProcesses(db, tmp_path, "--app", APP, env={**os.environ, "PYTHONPATH": path})
    yield workers
    workers.stop_all()


def _enqueue(db: str, journal: Path, n_jobs: int) -> tuple[set[int], set[int]]:
    """Enqueue `n_jobs`; return (ids that must complete, ids that must fail)."""
    rng = random.Random(SEED)  # noqa: S311 - a reproducible job mix, not secrets
    good: list[dict[str, object]] = []
    bad: list[dict[str, object]] = []
    for n in range(n_jobs):
        payload: dict[str, object] = {
            "task": "chaos_sleep",
            "ms": rng.randint(5, 50),
            "journal": str(journal),
            "flaky_p": 0.3 if n % FLAKY_EVERY == 0 else 0.0,
        }
        if n % ALWAYS_FAIL_EVERY == ALWAYS_FAIL_EVERY - 1:
            bad.append({**payload, "flaky_p": 1.0})
        else:
            good.append(payload)
    with Conductor(settings=Settings(db=db)) as app:
        # Spread the always-failing jobs through the run rather than all at the end.
        cut = len(good) // 2
        first = app.enqueue_many(good[:cut], max_retries=10)
        failing = app.enqueue_many(bad, max_retries=1)
        second = app.enqueue_many(good[cut:], max_retries=10)
    return set(first) | set(second), set(failing)


def _pid(worker: str) -> int:
    return int(worker.split(":")[1])


def _run_chaos(pool: WorkerProcesses, db: str, kills: int, budget: float) -> set[int]:
    """Run the workers under the kill schedule, drain, stop; return the killed pids."""
    # One slot per process keeps the 2,000 jobs running long enough for all the kills.
    worker_args = ("--concurrency", "1", "--lease", "5s")
    live = [pool.start(*worker_args) for _ in range(PROCESSES)]
    chaos = random.Random(SEED)  # noqa: S311 - a reproducible kill schedule, not secrets
    killed: set[int] = set()
    with Conductor(settings=Settings(db=db)) as app:

        def unfinished() -> int:
            overall = app.stats().overall
            return overall.pending + overall.in_progress

        # The chaos schedule: about every 0.6 s (a pace, not a synchronisation) a random
        # worker is frozen at an instant it holds an attempt, SIGKILLed, and restarted at
        # once. A restarted worker may take seconds to boot on a loaded machine: the kill
        # waits for it to hold an attempt rather than landing on a process still starting.
        for _ in range(kills):
            time.sleep(KILL_EVERY)
            index = chaos.randrange(PROCESSES)
            victim = live[index]
            seen = freeze_when(
                victim,
                lambda: in_flight(app, victim.pid) or unfinished() == 0,  # noqa: B023
                what="a worker frozen mid-attempt",
            )
            if seen is True:  # every job ended: nothing left to interrupt
                victim.send_signal(signal.SIGCONT)
                break
            victim.send_signal(signal.SIGKILL)
            victim.wait(300)
            killed.add(victim.pid)
            live[index] = pool.start(*worker_args)
        assert killed, "the work finished before the first kill: make the jobs longer"

        drain = pool.start("--burst", "--concurrency", "4")
        assert drain.wait(budget) == 0
        wait_until(lambda: unfinished() == 0, timeout=budget, what="every job to end")
        for process in live:
            # A worker restarted by the last kill may not have its handler yet: SIGTERM
            # would then kill it instead of stopping it.
            wait_until(lambda: catches(process.pid, signal.SIGTERM), what="the SIGTERM handler")  # noqa: B023
            process.send_signal(signal.SIGTERM)
        for process in live:
            assert process.wait(300) == 0
    return killed


def _check_attempts(
    records: list[RecordedEvent], killed: set[int]
) -> tuple[dict[tuple[int, int], str], int]:
    """Group the events by (job, attempt) and check each attempt ended exactly once.

    Return the worker of each started attempt and how many attempts the kills interrupted.
    """
    by_attempt: dict[tuple[int, int], list[str]] = collections.defaultdict(list)
    workers: dict[tuple[int, int], str] = {}
    for rec in records:
        attempt = getattr(rec.event, "attempt", None)
        if attempt is None:
            continue
        by_attempt[(rec.job_id, attempt)].append(rec.type)
        if rec.type == "claimed":
            workers[(rec.job_id, attempt)] = rec.event.worker  # type: ignore[union-attr]
    wrong: dict[tuple[int, int], list[str]] = {}
    interrupted_unrescued: list[tuple[int, int]] = []
    interrupted = 0
    for key, types in by_attempt.items():
        outcomes = [t for t in types if t in HOLDING_OUTCOMES]
        if "failed" in types and "attempt_failed" not in types:
            outcomes.append("failed-on-rescue")
        ignored = types.count("result_ignored")
        ok = (
            types.count("claimed") == 1
            and len(outcomes) == 1
            # A stale result is recorded only for an attempt that had lost its job.
            and (ignored == 0 or (ignored == 1 and outcomes[0] in TAKEN_BACK))
            and (
                outcomes[0] != "attempt_failed"
                or ("retry_scheduled" in types) != ("failed" in types)
            )
        )
        if not ok:
            wrong[key] = types
        # An attempt whose worker was SIGKILLed before it ended must have been taken back.
        if (
            key in workers
            and _pid(workers[key]) in killed
            and not ({"completed", "attempt_failed"} & set(types))
        ):
            interrupted += 1
            if not TAKEN_BACK & set(outcomes):
                interrupted_unrescued.append(key)
    assert wrong == {}
    assert interrupted_unrescued == []
    assert interrupted > 0, "no kill interrupted an attempt"

    return workers, interrupted


@pytest.mark.parametrize(
    ("n_jobs", "kills", "budget"),
    [
        pytest.param(2_000, 20, 600.0, id="2k-jobs-20-kills"),
        pytest.param(
            20_000, 100, 900.0, id="soak-20k-jobs-100-kills", marks=[pytest.mark.soak, SOAK]
        ),
    ],
)
def test_sigkilling_random_workers_loses_nothing_and_ends_every_attempt_once(
    db: str, tmp_path: Path, pool: WorkerProcesses, n_jobs: int, kills: int, budget: float
) -> None:
    journal = tmp_path / "journal.txt"
    must_complete, must_fail = _enqueue(db, journal, n_jobs)
    killed = _run_chaos(pool, db, kills, budget)
    with Conductor(settings=Settings(db=db)) as app:
        statuses = {row["id"]: row["status"] for row in app.jobs()}
        records = app.events()

    # Every job ends terminal: the good ones completed, the always-failing ones failed.
    assert len(statuses) == n_jobs
    assert {j for j, s in statuses.items() if s not in ("completed", "failed")} == set()
    assert {j for j, s in statuses.items() if s == "completed"} == must_complete
    assert {j for j, s in statuses.items() if s == "failed"} == must_fail

    # At most one completed event per job (exactly one for the ones that completed).
    completed = collections.Counter(r.job_id for r in records if r.type == "completed")
    assert [j for j, n in completed.items() if n > 1] == []
    assert set(completed) == must_complete

    # Every attempt has exactly one outcome; every attempt a kill interrupted was taken back.
    workers, interrupted = _check_attempts(records, killed)
    print(f"chaos: {len(killed)} kills interrupted {interrupted} attempts of {len(workers)}")

    # The journal: every completed attempt ran, and no attempt ran twice.
    lines = journal.read_text().splitlines()
    ran = collections.Counter(tuple(int(x) for x in line.split()) for line in lines)
    assert [pair for pair, n in ran.items() if n > 1] == []
    completed_attempts = {
        (r.job_id, r.event.attempt)  # type: ignore[union-attr]
        for r in records
        if r.type == "completed"
    }
    assert completed_attempts - set(ran) == set()
    assert set(ran) <= set(workers), "the journal names an attempt the ledger never started"

    if not is_postgres(db):
        with sqlite3.connect(db) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    verify = run_cli("replay", "--verify", db=db)
    assert verify.code == 0, verify.stdout
    audit = run_cli("audit", "verify", db=db)
    assert audit.code == 0, audit.stdout
