"""The copying part of the storage contract (`stored_events`, `import_events`), between
every pair of backends, and what every backend does with transactional-enqueue calls."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.domain.clock import stamp
from conductor.domain.config import Settings
from conductor.domain.control_events import OPERATIONS, QueueLimitSet
from conductor.domain.errors import LedgerError
from conductor.domain.events import NewEvent
from conductor.ledger.base import JobFilter, Ledger
from conductor.ledger.open import open_ledger
from tests.contract.test_ledger_contract import LEASE, T0, enqueue, run

LIMITED = QueueLimitSet(queue="default", by="op", reason="", limit="rate", value=9, per="hour")


def _open(kind: str, tmp_path: Path, pg_database: str | None) -> Ledger:
    if kind == "sqlite":
        db = str(tmp_path / f"{secrets.token_hex(4)}.db")
    else:
        db = f"{pg_database}?schema=t_{secrets.token_hex(6)}"
    return open_ledger(Settings(db=db), create=True)


@pytest.fixture(
    params=[
        ("sqlite", "sqlite"),
        ("sqlite", "postgres"),
        ("postgres", "sqlite"),
        ("postgres", "postgres"),
    ],
    ids="-to-".join,
)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Ledger, Ledger]]:
    pg = request.getfixturevalue("pg_database") if "postgres" in request.param else None
    source, destination = (_open(kind, tmp_path, pg) for kind in request.param)
    yield source, destination
    source.close()
    destination.close()
    from conductor.ledger.postgres import connection

    connection._close_pools()  # one pool per schema: closed, as the pg_url fixture does


def history_of(ledger: Ledger) -> list[tuple[object, ...]]:
    return ledger.stored_events(after=0, limit=1_000)


def test_imported_events_are_the_source_log_exactly_and_fold_to_the_same_rows(
    pair: tuple[Ledger, Ledger],
) -> None:
    source, destination = pair
    first, second, third = enqueue(source, count=3)
    source.append([NewEvent(job_id=OPERATIONS, at=stamp(T0), event=LIMITED)])
    source.claim(worker="w", queues=["default"], limit=2, now=T0, lease=LEASE)
    run(source, first, second)
    stored = history_of(source)
    # enqueued x3, queue_limit_set, claimed x2, queue_rate_spent, run_started x2
    assert [row[0] for row in stored] == list(range(1, 10))
    destination.import_events(stored[:3])
    destination.import_events(stored[3:])
    assert history_of(destination) == stored
    assert destination.rebuild_projections() == 9
    assert destination.controls("queue") == source.controls("queue")
    assert destination.verify_chain() == source.verify_chain()
    assert destination.diff_projections() == []
    assert destination.jobs(JobFilter()) == source.jobs(JobFilter())
    assert sorted(destination.counts()) == sorted(source.counts())
    # The copy goes on where the source stopped: the next job id, the next seq.
    assert enqueue(destination, now=T0) == [third + 1]
    assert destination.verify_chain().ok


def test_events_that_do_not_continue_the_head_are_refused_and_nothing_is_stored(
    pair: tuple[Ledger, Ledger],
) -> None:
    source, destination = pair
    enqueue(source, count=3)
    stored = history_of(source)
    with pytest.raises(LedgerError, match="does not follow its head"):
        destination.import_events(stored[1:])
    destination.import_events(stored[:1])
    with pytest.raises(LedgerError, match="does not follow its head"):
        destination.import_events(stored[:1])
    forked = [(*stored[1][:7], "0" * 64, stored[1][8])]
    with pytest.raises(LedgerError, match="does not follow its head"):
        destination.import_events(forked)  # type: ignore[arg-type]
    assert history_of(destination) == stored[:1]


def test_stored_events_pages_from_a_seq(pair: tuple[Ledger, Ledger]) -> None:
    source, _ = pair
    enqueue(source, count=5)
    assert [row[0] for row in source.stored_events(after=2, limit=2)] == [3, 4]
    assert source.stored_events(after=5, limit=10) == []


def test_ingest_with_nothing_waiting_appends_nothing(pair: tuple[Ledger, Ledger]) -> None:
    source, _ = pair
    enqueue(source)
    assert source.ingest(T0) == 0
    assert source.last_seq() == 1
