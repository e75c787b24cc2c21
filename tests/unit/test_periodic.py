"""Schedules declared in code: checked when the module that declares them is imported,
with the task's defaults filled in when a worker reads them."""

from __future__ import annotations

import pytest

from conductor.domain.errors import InvalidInput
from conductor.domain.registry import Registry


def test_a_cron_task_is_a_schedule_named_after_it_with_the_tasks_defaults() -> None:
    registry = Registry()
    registry.task("purge", cron="*/15 * * * *", queue="maint", priority="low", max_retries=1)(
        lambda: None
    )
    [(name, definition)] = registry.schedules().items()
    assert name == "purge"
    assert (definition.expression, definition.zone, definition.payload) == (
        "*/15 * * * *",
        "UTC",
        '{"task":"purge"}',
    )
    assert (definition.queue, definition.priority, definition.max_retries) == ("maint", 2, 1)
    assert definition.missed == "latest"


def test_a_periodic_declaration_takes_its_own_options_first_then_its_tasks() -> None:
    registry = Registry()
    registry.periodic(
        "offsite",
        cron="30 3 * * SUN",
        tz="Europe/Paris",
        payload={"task": "backup", "target": "s3"},
        priority="high",
        missed="all",
        catch_up_max=3,
    )
    registry.task("backup", queue="maint", max_retries=7)(lambda target="local": target)
    definition = registry.schedules()["offsite"]
    assert (definition.queue, definition.priority, definition.max_retries) == ("maint", 0, 7)
    assert (definition.missed, definition.catch_up_max) == ("all", 3)
    assert definition.payload == '{"target":"s3","task":"backup"}'


def test_a_schedule_for_a_task_this_process_does_not_know_takes_conductors_defaults() -> None:
    registry = Registry()
    registry.periodic("elsewhere", cron="@daily", payload={"task": "remote"})
    definition = registry.schedules()["elsewhere"]
    assert (definition.queue, definition.priority, definition.max_retries) == ("default", 1, 3)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"cron": "@daily", "tz": "Europe/Pariss"}, "invalid time zone"),
        ({"cron": "@daily", "payload": {"no": "task"}}, 'no "task" string'),
        ({"cron": "@daily", "missed": "sometimes"}, "missed-slot policy"),
        ({"cron": "@daily", "catch_up_max": 0}, "catch-up maximum"),
        ({"cron": "@daily", "priority": "urgent"}, "invalid priority"),
        ({"cron": "@daily", "queue": "a/b"}, "invalid queue"),
    ],
)
def test_a_bad_declaration_fails_the_import_naming_what_is_wrong(
    options: dict[str, object], says: str
) -> None:
    arguments = {"payload": {"task": "t"}, **options}
    with pytest.raises(InvalidInput, match=says):
        Registry().periodic("nightly", **arguments)  # type: ignore[arg-type]


def test_a_bad_cron_on_a_task_fails_its_decoration() -> None:
    with pytest.raises(InvalidInput, match="invalid cron expression"):
        Registry().task("t", cron="every day")


def test_one_name_declared_twice_differently_is_refused_and_identically_is_fine() -> None:
    registry = Registry()
    registry.periodic("n", cron="@daily", payload={"task": "t"})
    registry.periodic("n", cron="@daily", payload={"task": "t"})  # a module imported twice
    with pytest.raises(InvalidInput, match="already declared"):
        registry.periodic("n", cron="@hourly", payload={"task": "t"})
    with pytest.raises(InvalidInput, match="invalid schedule name"):
        registry.periodic("has space", cron="@daily", payload={"task": "t"})
