"""The pure parts of bulk operator actions: what each action can move, how a selection is
checked and narrowed, batch ids, and the upcasters of the events that carry them."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor.domain.bulk import Selection, check_batch, movable, new_batch
from conductor.domain.errors import InvalidInput
from conductor.domain.events import JobCancelled, JobRequeued, decode_event
from conductor.domain.job_row import JobRow


def row(**changes: object) -> JobRow:
    base: dict[str, object] = {
        "id": 7,
        "task": "imp",
        "queue": "nightly",
        "priority": 1,
        "status": "failed",
        "attempts": 1,
        "retries": 0,
        "max_retries": 0,
        "run_at": "2026-11-28T10:00:00.000000Z",
        "payload": '{"task":"imp"}',
        "last_error": None,
        "worker": None,
        "lease_expires_at": None,
        "created_at": "2026-11-28T10:00:00.000000Z",
        "updated_at": "2026-11-28T11:00:00.000000Z",
        "trace": None,
        "last_seq": 4,
    }
    return {**base, **changes}  # type: ignore[return-value]


def test_each_action_moves_exactly_the_statuses_the_state_table_allows() -> None:
    assert movable("retry") == ("failed", "cancelled")
    assert movable("cancel") == ("pending", "claimed", "in_progress")


def test_a_selection_without_statuses_is_narrowed_to_what_the_action_can_move() -> None:
    assert Selection(tasks=("imp",)).for_action("retry").statuses == ("failed", "cancelled")
    assert Selection(statuses=("failed",)).for_action("retry").statuses == ("failed",)


@pytest.mark.parametrize(
    ("selection", "action", "message"),
    [
        (Selection(statuses=("lost",)), "retry", "invalid status 'lost': expected one of"),
        (Selection(statuses=("pending",)), "retry", "only failed or cancelled jobs can be retried"),
        (Selection(statuses=("failed",)), "cancel", "only pending, claimed or in_progress jobs"),
        (Selection(since="2026-11-28T12", until="2026-11-28T11"), "retry", "since earlier than"),
    ],
)
def test_a_selection_that_cannot_mean_anything_for_the_action_is_refused(
    selection: Selection, action: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        selection.for_action(action)


def test_only_a_selection_with_no_filter_at_all_is_empty() -> None:
    assert Selection().empty
    assert not Selection(until="2026-11-28T11:00:00.000000Z").empty
    assert not Selection(queues=("q",)).empty


@pytest.mark.parametrize(
    ("selection", "why"),
    [
        (Selection(statuses=("cancelled",)), "is failed; the filter chooses cancelled jobs"),
        (Selection(tasks=("a", "b")), "has task 'imp'; the filter chooses task 'a' or 'b'"),
        (Selection(queues=("q",)), "is in queue 'nightly'; the filter chooses queue 'q'"),
        (
            Selection(since="2026-11-28T12:00:00.000000Z"),
            "last changed at 2026-11-28T11:00:00.000000Z, before the filter's since "
            "2026-11-28T12:00:00.000000Z",
        ),
        (
            Selection(until="2026-11-28T11:00:00.000000Z"),
            "last changed at 2026-11-28T11:00:00.000000Z, not before the filter's until "
            "2026-11-28T11:00:00.000000Z",
        ),
        (Selection(statuses=("failed",), since="2026-11-28T11:00:00.000000Z"), None),
    ],
)
def test_mismatch_names_the_first_filter_a_row_fails(selection: Selection, why: str | None) -> None:
    assert selection.mismatch(row()) == why


@given(st.datetimes(timezones=st.just(dt.UTC)), st.text("0123456789abcdef", min_size=6, max_size=6))
def test_every_batch_id_made_is_one_a_user_can_type_back(when: dt.datetime, token: str) -> None:
    batch = new_batch(when, token)
    assert check_batch(batch) == batch
    assert check_batch(f" {batch.upper()} ") == batch


@pytest.mark.parametrize(
    "text", ["", "12", "20261207-103000-3fa2c", "20261207-103000-3fa2cg", "2026-12-07 10:30"]
)
def test_text_that_is_no_batch_id_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="expected one printed by cancel or retry"):
        check_batch(text)


def test_version_1_cancels_and_requeues_are_upcast_with_no_batch() -> None:
    assert decode_event("cancelled", 1, '{"by":"operator","reason":"r"}') == JobCancelled(
        by="operator", reason="r", batch=None
    )
    assert decode_event("requeued", 1, '{"by":"operator","run_at":"T"}') == JobRequeued(
        by="operator", run_at="T", reason="requeued", batch=None
    )
