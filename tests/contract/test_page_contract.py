"""`Ledger.page`, the dashboard's jobs listing, against every backend: newest first, every
filter combined, and keyset pages that together are exactly the filtered list."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conductor.domain.bulk import Selection
from conductor.domain.clock import stamp
from conductor.ledger.base import Ledger
from tests.bulk_jobs import make_jobs

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
STATUSES = ("pending", "claimed", "in_progress", "completed", "failed", "cancelled")


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def ids(
    ledger: Ledger, where: Selection, *, before: int | None = None, limit: int = 100
) -> list[int]:
    return [row["id"] for row in ledger.page(where, before=before, limit=limit)]


def test_page_lists_newest_first_under_every_filter(ledger: Ledger) -> None:
    make_jobs(
        ledger,
        [
            ("a", "q1", "failed", hours(0)),  # 1
            ("b", "q1", "failed", hours(1)),  # 2
            ("a", "q2", "cancelled", hours(2)),  # 3
            ("a", "q2", "completed", hours(3)),  # 4
            ("c", "q1", "pending", hours(4)),  # 5
            ("a", "q1", "in_progress", hours(5)),  # 6
        ],
    )
    assert ids(ledger, Selection()) == [6, 5, 4, 3, 2, 1]
    assert ids(ledger, Selection(statuses=("failed",))) == [2, 1]
    assert ids(ledger, Selection(statuses=("failed", "cancelled"))) == [3, 2, 1]
    assert ids(ledger, Selection(tasks=("a",), queues=("q1",))) == [6, 1]
    assert ids(ledger, Selection(since=stamp(hours(1)), until=stamp(hours(4)))) == [4, 3, 2]
    assert ids(ledger, Selection(statuses=("failed",), tasks=("a",), queues=("q2",))) == []
    assert ids(ledger, Selection(), before=4) == [3, 2, 1]
    assert ids(ledger, Selection(), before=1) == []
    assert ids(ledger, Selection(), limit=2) == [6, 5]


EXAMPLES = itertools.count()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    specs=st.lists(
        st.tuples(st.sampled_from("ab"), st.sampled_from(STATUSES), st.integers(0, 5)),
        min_size=0,
        max_size=25,
    ),
    status=st.sampled_from((None, *STATUSES)),
    task=st.sampled_from((None, "a", "b")),
    size=st.integers(1, 7),
)
def test_pages_followed_by_their_last_id_are_the_whole_filtered_list(
    ledger: Ledger,
    specs: list[tuple[str, str, int]],
    status: str | None,
    task: str | None,
    size: int,
) -> None:
    # The ledger lives across examples: each example's jobs are in a queue of their own.
    queue = f"q{next(EXAMPLES)}"
    made = make_jobs(ledger, [(t, queue, s, hours(h)) for t, s, h in specs])
    where = Selection(
        statuses=() if status is None else (status,),
        tasks=() if task is None else (task,),
        queues=(queue,),
    )
    expected = [
        job_id
        for job_id, (t, s, _) in reversed(list(zip(made, specs, strict=True)))
        if (status is None or s == status) and (task is None or t == task)
    ]
    pages: list[list[int]] = []
    before = None
    while page := ids(ledger, where, before=before, limit=size):
        assert len(page) <= size
        pages.append(page)
        before = page[-1]
    assert [job_id for page in pages for job_id in page] == expected
