from __future__ import annotations

import pytest

from conductor.domain.errors import InvalidTransition
from conductor.domain.events import JOB_EVENT_TYPES
from conductor.domain.states import TERMINAL_STATES, TRANSITIONS, JobState, can_apply, next_state


def test_enqueued_is_the_only_way_a_job_comes_into_being() -> None:
    births = [typ for (state, typ) in TRANSITIONS if state is None]
    assert births == ["enqueued"]
    assert next_state(1, None, "enqueued") is JobState.PENDING


def moves_out_of(state: JobState) -> dict[str, JobState]:
    return {
        typ: next_state(1, state, typ)
        for typ in JOB_EVENT_TYPES
        if can_apply(state, typ) and next_state(1, state, typ) != state
    }


def test_completed_is_terminal_for_every_event_type() -> None:
    assert moves_out_of(JobState.COMPLETED) == {}


def test_failed_and_cancelled_leave_only_through_an_operator_requeue() -> None:
    for state in (JobState.FAILED, JobState.CANCELLED):
        assert moves_out_of(state) == {"requeued": JobState.PENDING}


def test_a_stale_result_is_recorded_in_every_state_and_moves_nothing() -> None:
    for state in JobState:
        assert next_state(1, state, "result_ignored") is state
    assert not can_apply(None, "result_ignored")
    assert {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED} == TERMINAL_STATES


def test_every_transition_uses_a_known_event_type() -> None:
    assert {typ for (_, typ) in TRANSITIONS} == set(JOB_EVENT_TYPES)


def test_an_illegal_move_names_the_job_its_state_and_the_attempted_event() -> None:
    with pytest.raises(InvalidTransition) as caught:
        next_state(7, JobState.COMPLETED, "cancelled")
    message = str(caught.value)
    assert "job 7" in message
    assert "completed" in message
    assert "'cancelled'" in message
    assert "pending or claimed or in_progress" in message


def test_a_job_that_does_not_exist_cannot_be_started() -> None:
    with pytest.raises(InvalidTransition, match="does not exist"):
        next_state(3, None, "started")
