"""Unique keys hold across processes: four real processes enqueueing the same keys at
the same moment make exactly one job per key, on every backend.

The processes are released together by a barrier (a line written to each one's stdin
once all four have said they are ready), never by sleeping: each opens its ledger and
does a first read before it reports ready, so what races after the barrier is the
enqueues themselves."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.ledger.base import JobFilter
from tests.conftest import CONDUCTOR
from tests.engine.conftest import WorkerProcesses, wait_until

PROCESSES = 4
KEYS = 40
HANG_GUARD = 300.0
"""Seconds before a stuck child fails the test: a guard against hanging, not a speed check."""

_API_CHILD = """
import json, sys
from conductor import Conductor
from conductor.domain.config import Settings

db, me, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
with Conductor(settings=Settings(db=db)) as app:
    app.jobs(limit=1)
    print("ready", flush=True)
    sys.stdin.readline()
    answers = []
    for key in keys:
        done = app.enqueue_each([{"task": "noop", "by": me}], unique_key=key)[0]
        answers.append([key, done.id, done.duplicate])
print(json.dumps(answers), flush=True)
"""

_LOOPING_CHILD = """
import json, sys, time
from conductor import Conductor
from conductor.domain.config import Settings

db, rounds, guard = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with Conductor(settings=Settings(db=db)) as app:
    app.jobs(limit=1)
    print("ready", flush=True)
    sys.stdin.readline()
    answers = []
    for _ in range(rounds):
        done = app.enqueue_each([{"task": "noop"}], unique_key="same")[0]
        answers.append([done.id, done.duplicate])
        # Poll the ledger until the job holding the key has completed (a hang guard, not
        # a pace): then all four race for the freed key again.
        deadline = time.monotonic() + guard
        while app.job(done.id)["status"] != "completed":
            assert time.monotonic() < deadline, "the worker did not complete the job"
            time.sleep(0.001)
print(json.dumps(answers), flush=True)
"""

_CLI_CHILD = """
import os, sys
print("ready", flush=True)
sys.stdin.readline()
os.execvp(sys.argv[1], sys.argv[1:])
"""


def _env() -> dict[str, str]:
    # The children run this worktree's conductor, not whichever one is installed.
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root}


def _released_together(argvs: list[list[str]]) -> list[str]:
    """Start one process per argv, wait until every one has printed `ready`, release them
    all at once, and return each one's stdout after `ready`."""
    children = [
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for argv in argvs
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line == "ready\n", f"child not ready: {line!r} {child.stderr}"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = []
        for child in children:
            out, err = child.communicate(timeout=HANG_GUARD)
            assert child.returncode == 0, err
            outputs.append(out)
        return outputs
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def test_four_processes_enqueueing_the_same_keys_at_once_make_one_job_per_key(db: str) -> None:
    keys = [f"key-{n}" for n in range(KEYS)]
    outputs = _released_together(
        [[sys.executable, "-c", _API_CHILD, db, str(me), *keys] for me in range(PROCESSES)]
    )
    answers = [json.loads(out) for out in outputs]
    with Conductor(settings=Settings(db=db), create=False) as app:
        rows = app.ledger.jobs(JobFilter())
        assert app.verify_projections() == []
    assert sorted(row["unique_key"] for row in rows) == sorted(keys)
    job_of = {row["unique_key"]: row["id"] for row in rows}
    for key_index, key in enumerate(keys):
        told = [answer[key_index] for answer in answers]
        # Every process was given the one job's id, and exactly one of them made it.
        assert {job_id for _, job_id, _ in told} == {job_of[key]}
        assert Counter(duplicate for _, _, duplicate in told) == {False: 1, True: PROCESSES - 1}


def test_four_enqueue_commands_with_one_unique_key_at_once_make_exactly_one_job(
    db: str,
) -> None:
    argv = [
        sys.executable,
        "-c",
        _CLI_CHILD,
        CONDUCTOR,
        "enqueue",
        "--payload",
        '{"task": "noop"}',
        "--unique-key",
        "same",
        "--json",
        "--db",
        db,
    ]
    outputs = _released_together([argv] * PROCESSES)
    told = [json.loads(out) for out in outputs]
    with Conductor(settings=Settings(db=db), create=False) as app:
        rows = app.ledger.jobs(JobFilter())
    assert [(row["id"], row["unique_key"]) for row in rows] == [(rows[0]["id"], "same")]
    assert {tuple(answer["ids"]) for answer in told} == {(rows[0]["id"],)}
    assert Counter(answer["duplicate"] for answer in told) == {False: 1, True: PROCESSES - 1}


def test_while_a_worker_completes_jobs_a_key_is_never_held_by_two_unfinished_jobs(
    db: str, workers: WorkerProcesses
) -> None:
    """Four processes keep enqueueing one key while a worker process runs the jobs: the
    key frees each time a job completes and is taken again, and the log shows every job
    with the key enqueued only after the one before it finished."""
    workers.start()
    with Conductor(settings=Settings(db=db)) as app:
        probe = app.enqueue({"task": "noop"})
        wait_until(lambda: app.job(probe)["status"] == "completed", HANG_GUARD, "the worker")
    rounds = 8
    argv = [sys.executable, "-c", _LOOPING_CHILD, db, str(rounds), str(HANG_GUARD)]
    outputs = _released_together([argv] * PROCESSES)
    told = [answer for out in outputs for answer in json.loads(out)]
    with Conductor(settings=Settings(db=db), create=False) as app:
        wait_until(
            lambda: all(row["status"] == "completed" for row in app.jobs()),
            timeout=HANG_GUARD,
            what="the worker to complete every job",
        )
        jobs = [row for row in app.ledger.jobs(JobFilter()) if row["id"] != probe]
        spans = []
        for row in jobs:
            history = app.ledger.history(row["id"])
            assert row["unique_key"] == "same"
            spans.append((history[0].seq, history[-1].seq, history[-1].type))
    # Every round freed the key and one of the four took it again.
    assert len(jobs) >= rounds
    assert len(told) == rounds * PROCESSES
    # Each enqueue that made a job got its own; every duplicate named one of them.
    made = [job_id for job_id, duplicate in told if not duplicate]
    assert sorted(made) == [row["id"] for row in jobs]
    assert {job_id for job_id, _ in told} <= set(made)
    for (_, finished, last), (enqueued, _, _) in itertools.pairwise(spans):
        assert last == "completed"
        assert enqueued > finished, spans
