"""Crash at every write (issue 6, test 2): every transaction is all or nothing.

`tests/reliability/crash_scenario.py` runs a fixed sequence of write transactions
(enqueue, claim, complete, fail with a retry, rescue, claim inside `transact`, complete two).
A fault-free run counts the S statements the ledger executes inside write transactions and
where each COMMIT falls. Then, each time on a fresh copy of the database, the scenario runs
with the ledger's test-only fault hook (`CONDUCTOR_FAULT_AT=N:before|after`), which ends the
process with exit 97 just before or after statement N. Afterwards the file is intact,
`audit verify` and `replay --verify` are clean, the events present are exactly those of the
transactions that committed before the crash (none of a torn one), and the scenario's
remaining steps run to the same history as the fault-free run.

To stay near a minute, N covers, for every transaction, its BEGIN, a statement in the
middle, the one before COMMIT and the COMMIT itself, in both modes (the statement after a
COMMIT is the next BEGIN); `CONDUCTOR_CRASH_ALL=1` crashes at every N instead.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from tests.conftest import run_cli

pytestmark = pytest.mark.sqlite_only(
    "SQLite's fault injection (CONDUCTOR_FAULT_AT) crashes it at each write"
)

ROOT = Path(__file__).resolve().parents[2]
CRASHED = 97


def scenario(
    db: Path, *, first: int = 1, fault: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONDUCTOR_DB", "CONDUCTOR_FAULT_AT")}
    if fault is not None:
        env["CONDUCTOR_FAULT_AT"] = fault
    argv = [sys.executable, "-m", "tests.reliability.crash_scenario", str(db), str(first)]
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False
    )


def history(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT type, job_id FROM events ORDER BY seq"))


def crash_points(statements: list[int]) -> list[int]:
    if os.environ.get("CONDUCTOR_CRASH_ALL"):
        return list(range(1, statements[-1] + 1))
    points: set[int] = set()
    for begin_after, commit in itertools.pairwise(statements):
        begin = begin_after + 1
        points |= {begin, (begin + commit) // 2, commit - 1, commit}
    return sorted(points)


def check_after_crash(
    db: Path, fault: str, seqs: list[int], full: list[tuple[str, int]], statements: list[int]
) -> None:
    n, mode = fault.split(":")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], fault
    for args in (("audit", "verify"), ("replay", "--verify")):
        done = run_cli(*args, db=db)
        assert done.code == 0, (fault, args, done.stdout, done.stderr)
    events = history(db)
    # All or nothing: the events are exactly those of the first k transactions ...
    assert len(events) in seqs, (fault, len(events), seqs)
    assert events == full[: len(events)], fault
    k = seqs.index(len(events))
    # ... and k is every transaction whose COMMIT ran before the crash (a committed one
    # survives the process's death; the one it died in left nothing).
    commits = statements[1:]
    expected = sum(c < int(n) or (c == int(n) and mode == "after") for c in commits)
    assert k == expected, (fault, k, expected)
    rest = scenario(db, first=k + 1)
    assert rest.returncode == 0, (fault, rest.stderr)
    assert history(db) == full, fault


def test_every_transaction_is_all_or_nothing_at_any_crash(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    Conductor(settings=Settings(db=str(base))).close()  # schema in place, nothing faulted

    clean = tmp_path / "clean.db"
    shutil.copy(base, clean)
    counted = scenario(clean, fault="0:before")  # armed, never fires: counts statements
    assert counted.returncode == 0, counted.stderr
    report: dict[str, Any] = json.loads(counted.stdout)
    statements: list[int] = report["statements"]
    seqs: list[int] = report["seqs"]
    full = history(clean)
    assert len(full) == seqs[-1] > 0
    assert len(statements) == 8
    assert statements[-1] > 7

    crashes = 0
    for n in crash_points(statements):
        for mode in ("before", "after"):
            fault = f"{n}:{mode}"
            db = tmp_path / f"crash-{n}-{mode}.db"
            shutil.copy(base, db)
            done = scenario(db, fault=fault)
            assert done.returncode == CRASHED, (fault, done.returncode, done.stderr)
            check_after_crash(db, fault, seqs, full, statements)
            crashes += 1
            for leftover in tmp_path.glob(f"{db.name}*"):
                leftover.unlink()
    print(f"S={statements[-1]} commits at {statements[1:]}; {crashes} crashes")
