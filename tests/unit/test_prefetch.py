"""The prefetch depth: fixed when the user sets it, otherwise what the slots get through
in one claim round trip, between the floor and 4 per slot."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from conductor.engine.prefetch import CEILING_PER_SLOT, FLOOR, Prefetch

seconds = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)


def test_a_fixed_depth_ignores_what_it_observes() -> None:
    prefetch = Prefetch.fixed(5)
    prefetch.observe_job(0.000_01)
    prefetch.observe_claim(1.0)
    assert not prefetch.adapts
    assert prefetch.depth(8) == 5


def test_an_adaptive_depth_starts_at_the_floor_until_both_times_are_known() -> None:
    prefetch = Prefetch.adaptive(8)
    assert prefetch.depth(8) == FLOOR
    prefetch.observe_job(0.000_05)
    assert prefetch.depth(8) == FLOOR  # no claim timed yet
    prefetch.observe_claim(0.002)
    assert prefetch.depth(8) == 8 * CEILING_PER_SLOT  # 320 jobs per round trip, capped


def test_jobs_longer_than_a_claim_get_the_floor_and_in_between_get_the_ratio() -> None:
    prefetch = Prefetch.adaptive(8)
    prefetch.observe_claim(0.001)
    prefetch.observe_job(0.010)  # 8 slots x 1 ms / 10 ms = 0.8 of a job
    assert prefetch.depth(8) == FLOOR
    short = Prefetch.adaptive(8)
    short.observe_claim(0.003)
    short.observe_job(0.002)  # 8 x 3 / 2 = 12
    assert short.depth(8) == 12


def test_the_depth_follows_jobs_that_get_longer() -> None:
    prefetch = Prefetch.adaptive(4)
    prefetch.observe_claim(0.001)
    prefetch.observe_job(0.000_01)
    assert prefetch.depth(4) == 16
    for _ in range(40):
        prefetch.observe_job(0.050)
    assert prefetch.depth(4) == FLOOR


@given(
    slots=st.integers(min_value=1, max_value=1024),
    jobs=st.lists(seconds, min_size=1, max_size=20),
    claims=st.lists(seconds, min_size=1, max_size=20),
)
def test_an_adaptive_depth_stays_between_its_floor_and_ceiling(
    slots: int, jobs: list[float], claims: list[float]
) -> None:
    prefetch = Prefetch.adaptive(slots)
    for job, claim in zip(jobs, claims, strict=False):
        prefetch.observe_job(job)
        prefetch.observe_claim(claim)
        assert FLOOR <= prefetch.depth(slots) <= max(FLOOR, CEILING_PER_SLOT * slots)


@given(
    slots=st.integers(min_value=1, max_value=64),
    claim=seconds,
    shorter=seconds,
    longer=seconds,
)
def test_longer_jobs_never_get_a_deeper_buffer(
    slots: int, claim: float, shorter: float, longer: float
) -> None:
    shorter, longer = sorted((shorter, longer))
    deep, shallow = Prefetch.adaptive(slots), Prefetch.adaptive(slots)
    for prefetch, job in ((deep, shorter), (shallow, longer)):
        prefetch.observe_claim(claim)
        prefetch.observe_job(job)
    assert shallow.depth(slots) <= deep.depth(slots)
