"""The ledger invariants every reliability test must leave intact (issue 6).

`ledger_problems` returns what is wrong with one ledger (a SQLite file or a PostgreSQL
schema), as sentences; an empty list means it holds: a SQLite file passes
`PRAGMA integrity_check`; the read models equal a rebuild
from the log (`replay --verify`); the hash chain verifies (`audit verify`); no job has more
than one terminal event; and every attempt has exactly one outcome — completed,
retry_scheduled or failed after its attempt_failed, rescued, released, or cancelled while
it ran — except the attempt of a job still in progress, which has none yet. A stale result
(`result_ignored`) is recorded at most once, only for an attempt that had already lost the
job.
"""

from __future__ import annotations

import collections
import sqlite3
from pathlib import Path

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.errors import DatabaseNotFound
from conductor.domain.events import RecordedEvent
from conductor.ledger.open import is_postgres

TERMINAL = frozenset({"completed", "failed", "cancelled"})
"""Events that end a job (a `requeued` job may end again, so each is counted per run)."""

ENDS_AN_ATTEMPT = frozenset({"completed", "retry_scheduled", "failed", "rescued", "released"})
"""Events that carry the attempt they end."""


def is_ledger(path: Path) -> bool:
    """Whether `path` is an SQLite file holding conductor's event log (tests also create
    files that are deliberately not, which have no invariants to keep)."""
    try:
        with path.open("rb") as head:
            if head.read(16) != b"SQLite format 3\x00":
                return False
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return False
    return found is not None


def holds_ledger(url: str) -> bool:
    """Whether the PostgreSQL schema at `url` holds a conductor ledger (a test that
    refused bad input must not have created one)."""
    try:
        with Conductor(settings=Settings(db=url), create=False):
            return True
    except DatabaseNotFound:
        return False


def ledger_problems(db: Path | str) -> list[str]:
    """Every broken invariant of the ledger at `db` (a file or a `postgresql://` URL),
    one sentence each."""
    if not is_postgres(str(db)):
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchall()
        if integrity != [("ok",)]:
            return [f"{db}: integrity_check reports {integrity[:3]}"]
    with Conductor(settings=Settings(db=str(db)), create=False) as app:
        differences = app.verify_projections()
        chain = app.audit()
        records = app.events()
        statuses = {row["id"]: row["status"] for row in app.jobs()}
    problems = [f"{db}: replay --verify differs: {d}" for d in differences[:5]]
    if not chain.ok:
        problems.append(f"{db}: audit verify fails at seq {chain.first_bad_seq}: {chain.problem}")
    problems += [f"{db}: {p}" for p in _terminal_problems(records)]
    problems += [f"{db}: {p}" for p in _attempt_problems(records, statuses)]
    return problems


def _terminal_problems(records: list[RecordedEvent]) -> list[str]:
    """At most one terminal event per job between requeues."""
    ended: collections.Counter[int] = collections.Counter()
    problems = []
    for record in records:
        if record.type == "requeued":
            ended[record.job_id] = 0
        elif record.type in TERMINAL:
            ended[record.job_id] += 1
            if ended[record.job_id] == 2:
                problems.append(
                    f"job {record.job_id} has a second terminal event at seq {record.seq}"
                )
    return problems


def _attempt_problems(records: list[RecordedEvent], statuses: dict[int, str]) -> list[str]:
    outcomes: dict[tuple[int, int], list[str]] = {}
    ignored: collections.Counter[tuple[int, int]] = collections.Counter()
    running: dict[int, int] = {}  # job -> the attempt that holds it now
    for record in records:
        job, kind = record.job_id, record.type
        attempt = getattr(record.event, "attempt", None)
        if kind in ("claimed", "started"):  # an attempt opens (`started`: older ledgers)
            assert attempt is not None
            if (job, attempt) in outcomes:
                return [f"job {job} attempt {attempt} started twice (seq {record.seq})"]
            outcomes[(job, attempt)] = []
            running[job] = attempt
        elif kind in ENDS_AN_ATTEMPT and (job, attempt) in outcomes:
            outcomes[(job, attempt)].append(kind)
            running.pop(job, None)
        elif kind == "cancelled" and job in running:
            outcomes[(job, running.pop(job))].append(kind)
        elif kind == "result_ignored":
            assert attempt is not None
            ignored[(job, attempt)] += 1
    problems = []
    for (job, attempt), ends in outcomes.items():
        still_running = running.get(job) == attempt and statuses.get(job) in (
            "claimed",
            "in_progress",
        )
        if len(ends) != (0 if still_running else 1):
            problems.append(f"job {job} attempt {attempt} has outcomes {ends}")
    for (job, attempt), count in ignored.items():
        if count > 1 or not outcomes.get((job, attempt)):
            problems.append(
                f"job {job} attempt {attempt}: {count} stale results, outcomes "
                f"{outcomes.get((job, attempt))}"
            )
    return problems
