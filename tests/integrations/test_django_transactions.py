"""Enqueue and the application's transaction: on a ledger of its own, a task enqueued
inside `transaction.atomic()` reaches the ledger when the transaction commits and never
if it rolls back; on a ledger in Django's PostgreSQL database, the job row is written in
that very transaction."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.ledger.base import EventFilter
from tests.conftest import run_cli
from tests.integrations.conftest import PROJECT, Manage, conductor_tasks


def rolled_back(work: Any, using: str = "default") -> Any:
    """The task result `work` enqueued (its last value) inside an atomic block that then
    rolls back."""
    from django.db import transaction

    with transaction.atomic(using=using):
        done = work()[-1]
        transaction.set_rollback(True, using=using)
    return done


def test_on_a_separate_ledger_a_task_waits_for_the_commit_and_vanishes_on_rollback(
    tmp_path: Path, use_tasks: Any
) -> None:
    from django.db import transaction
    from djshop import tasks
    from djshop.models import Order

    ledger = str(tmp_path / "ledger.db")
    use_tasks(conductor_tasks(ledger))
    with Conductor(settings=Settings(db=ledger)) as handle:
        dropped = rolled_back(lambda: (Order.objects.create(number="A-1"), tasks.add.enqueue(1, 1)))
        assert dropped.id.startswith("uncommitted-")
        assert handle.jobs() == []
        assert handle.ledger.read(EventFilter()) == []
        assert dropped.id.startswith("uncommitted-")

        with transaction.atomic():
            Order.objects.create(number="A-2")
            kept = tasks.add.enqueue(2, 2)
            assert handle.jobs() == []  # not before the commit
        assert kept.id.isdigit()
        (row,) = handle.jobs()
        assert (str(row["id"]), row["task"], row["status"]) == (
            kept.id,
            "djshop.tasks.add",
            "pending",
        )
        assert kept.enqueued_at is not None
        assert list(Order.objects.values_list("number", flat=True)) == ["A-2"]
        Order.objects.all().delete()

        outside = tasks.add.enqueue(3, 3)  # no transaction: at once
        assert outside.id.isdigit()


def test_on_django_s_postgresql_database_the_job_commits_and_rolls_back_with_the_app(
    use_tasks: Any, manage: Manage
) -> None:
    from django.db import transaction
    from djshop import tasks
    from djshop.models import Order

    from conductor.integrations.django.compat import TaskResultDoesNotExist, task_backends

    schema = f"dj_{secrets.token_hex(6)}"
    env = use_tasks(conductor_tasks("", DATABASE="pg", SCHEMA=schema))
    url = task_backends["default"].ledger_url
    assert url.endswith(f"?schema={schema}")
    with Conductor(settings=Settings(db=url)) as handle:
        dropped = rolled_back(
            lambda: (Order.objects.using("pg").create(number="B-1"), tasks.add.enqueue(5, 5)),
            using="pg",
        )
        assert dropped.id.isdigit()  # the id came from the ledger's sequence
        assert handle.jobs() == []
        assert handle.ledger.read(EventFilter()) == []
        with pytest.raises(TaskResultDoesNotExist):
            tasks.add.get_result(dropped.id)

        with transaction.atomic(using="pg"):
            Order.objects.using("pg").create(number="B-2")
            kept = tasks.add.enqueue(6, 6)
            with Conductor(settings=Settings(db=url)) as other:
                assert other.jobs() == []  # invisible to others before the commit
        assert [str(row["id"]) for row in handle.jobs()] == [kept.id]
        assert list(Order.objects.using("pg").values_list("number", flat=True)) == ["B-2"]
        Order.objects.using("pg").all().delete()

    done = manage("conductor_worker", "--burst", env=env)
    assert done.returncode == 0, done.stderr
    assert tasks.add.get_result(kept.id).return_value == 12
    audit = run_cli("audit", "verify", "--db", "django:djproject.settings", env=env, cwd=PROJECT)
    assert audit.code == 0, audit.stderr
