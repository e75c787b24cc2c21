"""The backend as Django's framework sees it, in the style of Django's own backend tests:
every feature flag it claims works, and what it refuses is refused with Django's own
exception (no worker runs here: jobs are read back from the ledger)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor import Conductor
from conductor.domain.config import Settings
from tests.integrations.conftest import conductor_tasks


@pytest.fixture
def ledger(tmp_path: Path, use_tasks: Any) -> str:
    path = str(tmp_path / "ledger.db")
    use_tasks(conductor_tasks(path))
    return path


def job(ledger: str, result_id: str) -> Any:
    with Conductor(settings=Settings(db=ledger)) as handle:
        return handle.job(int(result_id))


def test_the_backend_claims_every_feature_of_the_framework(ledger: str) -> None:
    from conductor.integrations.django.compat import task_backends

    backend = task_backends["default"]
    assert backend.supports_defer
    assert backend.supports_async_task
    assert backend.supports_get_result
    assert backend.supports_priority


def test_supports_defer_runs_a_task_no_earlier_than_run_after(ledger: str) -> None:
    from django.utils import timezone
    from djshop import tasks

    when = timezone.now() + dt.timedelta(minutes=5)
    result = tasks.add.using(run_after=when).enqueue(1, 2)
    row = job(ledger, result.id)
    assert row["run_at"].startswith(when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    assert result.status == "READY"


def test_supports_priority_maps_the_whole_range_onto_ranks_in_order(ledger: str) -> None:
    from djshop import tasks

    ranks = [
        job(ledger, tasks.add.using(priority=p).enqueue(0, p).id)["priority"]
        for p in (-100, -1, 0, 1, 100)
    ]
    assert ranks == [101, 2, 1, 0, -99]


def test_supports_async_task_accepts_a_coroutine_function(ledger: str) -> None:
    from djshop import tasks

    result = tasks.shout.enqueue("hi")
    row = job(ledger, result.id)
    assert (row["task"], row["queue"]) == ("djshop.tasks.shout", "mail")


def test_supports_get_result_from_another_thread(ledger: str) -> None:
    from djshop import tasks

    result = tasks.add.enqueue(20, 22)
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.append(tasks.add.get_result(result.id)))
    reader.start()
    reader.join()
    (found,) = seen
    assert (found.id, found.status, found.args, found.attempts) == (result.id, "READY", [20, 22], 0)
    assert found.enqueued_at is not None


def test_get_result_of_an_unknown_or_foreign_id_is_django_s_does_not_exist(ledger: str) -> None:
    from djshop import tasks

    from conductor.integrations.django.compat import TaskResultDoesNotExist, task_backends

    with Conductor(settings=Settings(db=ledger)) as handle:
        foreign = handle.enqueue({"task": "send_email"})
    for missing in ("999", "abc", "", str(foreign)):
        with pytest.raises(TaskResultDoesNotExist):
            task_backends["default"].get_result(missing)
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result("999")


def test_what_the_framework_forbids_is_refused_with_its_own_exception(ledger: str) -> None:
    from django.utils import timezone
    from djshop import tasks

    from conductor.integrations.django.compat import InvalidTaskError, task

    def local() -> None:
        """Not at module level."""

    with pytest.raises(InvalidTaskError, match="priority"):
        tasks.add.using(priority=101)
    with pytest.raises(InvalidTaskError, match="module level"):
        task(local)
    with pytest.raises(InvalidTaskError, match="Queue 'other'"):
        tasks.add.using(queue_name="other")
    with pytest.raises(InvalidTaskError, match="aware"):
        tasks.add.using(run_after=timezone.now().replace(tzinfo=None))


def test_arguments_that_are_not_json_are_refused_at_enqueue_and_nothing_is_written(
    ledger: str,
) -> None:
    from djshop import tasks

    from conductor.integrations.django.compat import InvalidTaskError

    with pytest.raises(InvalidTaskError, match=r"djshop\.tasks\.add.*JSON"):
        tasks.add.enqueue(dt.date(2026, 1, 1), 1)
    with pytest.raises(InvalidTaskError, match="JSON"):
        tasks.add.enqueue(float("nan"), 1)
    assert not Path(ledger).exists() or Conductor(settings=Settings(db=ledger)).jobs() == []


def test_a_task_outside_every_module_a_worker_imports_is_refused(ledger: str) -> None:
    from conductor.integrations.django.compat import InvalidTaskError, task

    with pytest.raises(InvalidTaskError, match="TASK_MODULES"):
        task(test_a_task_outside_every_module_a_worker_imports_is_refused)


@given(st.integers(-100, 100), st.integers(-100, 100))
def test_every_django_priority_is_a_valid_rank_and_the_order_is_kept(p: int, q: int) -> None:
    from conductor.domain.config import PRIORITY_RANKS, parse_priority
    from conductor.integrations.django.backend import rank

    assert parse_priority(rank(p)) == rank(p)
    assert rank(p) in PRIORITY_RANKS
    assert (p > q) == (rank(p) < rank(q))  # higher in Django: claimed sooner here


def test_a_payload_over_the_cap_is_refused_at_enqueue_not_at_the_commit(ledger: str) -> None:
    from django.db import transaction
    from djshop import tasks

    from conductor.integrations.django.compat import InvalidTaskError

    with transaction.atomic():
        with pytest.raises(InvalidTaskError, match=r"cannot enqueue djshop\.tasks\.add.*limit"):
            tasks.add.enqueue("x" * (2 << 20), 1)
        kept = tasks.add.enqueue(1, 1)
    assert [row["id"] for row in Conductor(settings=Settings(db=ledger)).jobs()] == [int(kept.id)]
