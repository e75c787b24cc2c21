"""A bulk action's filters choose exactly the jobs they describe, for every job set and
every combination of filters: the ledger's query (`Ledger.select`) and the check made on
each row under the write lock (`Selection.mismatch`) agree with a plain reading of the
filters, on every backend."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conductor import Conductor
from conductor.domain.bulk import STATUSES, Selection
from conductor.domain.clock import stamp
from conductor.domain.config import Settings
from conductor.ledger.base import JobFilter
from tests.bulk_jobs import make_jobs

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
TASKS = ("a", "b", "c")
QUEUES = ("q1", "q2")

jobs = st.lists(
    st.tuples(
        st.sampled_from(TASKS),
        st.sampled_from(QUEUES),
        st.sampled_from(STATUSES),
        st.integers(0, 10).map(lambda minutes: T0 + dt.timedelta(minutes=minutes)),
    ),
    max_size=12,
)
times = st.none() | st.integers(-1, 11).map(lambda m: stamp(T0 + dt.timedelta(minutes=m)))
selections = st.builds(
    Selection,
    statuses=st.lists(st.sampled_from(STATUSES), unique=True, max_size=3).map(tuple),
    tasks=st.lists(st.sampled_from(TASKS), unique=True, max_size=2).map(tuple),
    queues=st.lists(st.sampled_from(QUEUES), unique=True, max_size=2).map(tuple),
    since=times,
    until=times,
)


def described(selection: Selection, row: dict[str, object]) -> bool:
    """The filters read plainly: each given one holds."""
    changed = str(row["updated_at"])
    return (
        (not selection.statuses or row["status"] in selection.statuses)
        and (not selection.tasks or row["task"] in selection.tasks)
        and (not selection.queues or row["queue"] in selection.queues)
        and (selection.since is None or changed >= selection.since)
        and (selection.until is None or changed < selection.until)
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(new_jobs=jobs, selection=selections, page=st.integers(1, 5))
def test_the_filters_choose_exactly_the_jobs_they_describe(
    db: str, new_jobs: list[tuple[str, str, str, dt.datetime]], selection: Selection, page: int
) -> None:
    # The ledger keeps the jobs of earlier examples: each example checks a bigger set.
    with Conductor(settings=Settings(db=db)) as app:
        if new_jobs:
            make_jobs(app.ledger, new_jobs)
        rows = app.ledger.jobs(JobFilter())
        expected = [row["id"] for row in rows if described(selection, dict(row))]
        chosen, after = [], 0
        while batch := app.ledger.select(selection, after=after, limit=page):
            chosen.extend(row["id"] for row in batch)
            after = batch[-1]["id"]
        assert chosen == expected
        assert [row["id"] for row in rows if selection.mismatch(row) is None] == expected
