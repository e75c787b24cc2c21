"""Tasks: names mapped to Python functions, and the `@task` decorator.

A payload names its task by the registered name, never by import path: a worker runs only
functions that its own code registered (`--app module` imports such code). The rest of
the payload is passed to the function as keyword arguments.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import attrs

from conductor.domain import cron as cron_module
from conductor.domain import schedules
from conductor.domain.backoff import Backoff, coerce
from conductor.domain.config import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    PRIORITIES,
    check_max_retries,
    check_queue,
)
from conductor.domain.errors import InvalidInput
from conductor.domain.payloads import parse_payload
from conductor.domain.unique import check_key, check_period

F = TypeVar("F", bound=Callable[..., Any])

TaskFunction = Callable[..., Any]
_EXAMPLES: Final = "conductor.examples"
"""The bundled example tasks: an application's own task of the same name replaces one."""


@attrs.frozen(kw_only=True)
class TaskSpec:
    """A registered task and its defaults (enqueue options override them)."""

    name: str
    function: TaskFunction
    max_retries: int | None = None
    backoff: Backoff = attrs.field(factory=Backoff)
    timeout: dt.timedelta | None = None
    queue: str | None = None
    priority: str | None = None
    unique_key: str | Callable[[dict[str, Any]], str | None] | None = None
    """The key its jobs are enqueued with unless the enqueue gives one: a fixed key (one
    such job at a time), or a function of the payload (None from it: no key)."""
    unique_for: int | None = None
    """The key's scope in seconds; None for "while a job with it is pending or running"."""
    redact: tuple[str, ...] = ()
    """Payload fields the dashboard masks (a key at any depth, or a dotted path)."""


@attrs.frozen(kw_only=True)
class PeriodicSpec:
    """A schedule declared in code (`@task(cron=...)` or `periodic(...)`), checked when
    declared; options left out take the task's defaults when a worker declares it."""

    name: str
    cron: str
    tz: str
    payload: str
    """The job's payload object as canonical JSON text."""
    task: str
    queue: str | None = None
    priority: str | None = None
    max_retries: int | None = None
    missed: str = schedules.DEFAULT_MISSED
    catch_up_max: int = schedules.DEFAULT_CATCH_UP_MAX


class Registry:
    """Task name -> TaskSpec, and the schedules declared in code. One global instance
    serves `@task` and `periodic`; tests may make their own."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}
        self._periodic: dict[str, PeriodicSpec] = {}

    def register(self, spec: TaskSpec) -> None:
        existing = self._tasks.get(spec.name)
        if existing is not None and spec.function.__module__ == _EXAMPLES:
            return  # the application registered its own task of that name first: keep it
        replaces_example = existing is not None and existing.function.__module__ == _EXAMPLES
        if existing is not None and existing.function is not spec.function and not replaces_example:
            raise InvalidInput(
                f"task {spec.name!r} is already registered to "
                f"{existing.function.__module__}.{existing.function.__qualname__}; "
                "expected each name once"
            )
        self._tasks[spec.name] = spec

    def get(self, name: str) -> TaskSpec | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def task(
        self,
        name: str,
        *,
        max_retries: int | None = None,
        backoff: Backoff | float | None = None,
        timeout: float | dt.timedelta | None = None,
        queue: str | None = None,
        priority: str | None = None,
        unique_key: str | Callable[[dict[str, Any]], str | None] | None = None,
        unique_for: float | dt.timedelta | None = None,
        cron: str | None = None,
        tz: str = "UTC",
        missed: str = schedules.DEFAULT_MISSED,
        redact: Sequence[str] = (),
    ) -> Callable[[F], F]:
        """Register the decorated function under `name` with these defaults.

        With `cron` (an expression in the time zone `tz`), the task also runs on that
        schedule, named after the task, with the payload `{"task": name}`: a worker
        declares it to the ledger when it starts (docs/tasks.md, "Periodic tasks").
        `redact` names payload fields the dashboard shows masked (docs/dashboard.md)."""
        if not name or not isinstance(name, str):
            raise InvalidInput(f"invalid task name {name!r}: expected a non-empty string")
        if priority is not None and priority not in PRIORITIES:
            raise InvalidInput(f"invalid priority {priority!r}: expected high, medium or low")
        limit = (
            None
            if timeout is None
            else timeout
            if isinstance(timeout, dt.timedelta)
            else dt.timedelta(seconds=timeout)
        )
        if limit is not None and limit <= dt.timedelta(0):
            raise InvalidInput(f"invalid timeout {timeout!r}: expected a positive duration")
        if unique_for is not None and unique_key is None:
            raise InvalidInput(
                f"invalid unique_for for task {name!r}: given without a unique_key; "
                "expected a key too"
            )
        if isinstance(unique_key, str):
            check_key(unique_key)
        elif unique_key is not None and not callable(unique_key):
            raise InvalidInput(
                f"invalid unique_key {unique_key!r} for task {name!r}: expected a string "
                "or a function of the payload"
            )
        period = (
            None
            if unique_for is None
            else check_period(
                unique_for
                if isinstance(unique_for, dt.timedelta)
                else dt.timedelta(seconds=unique_for)
            )
        )
        spec_options: dict[str, Any] = {
            "unique_key": unique_key,
            "unique_for": period,
            "max_retries": None if max_retries is None else check_max_retries(max_retries),
            "backoff": coerce(backoff),
            "timeout": limit,
            "queue": None if queue is None else check_queue(queue),
            "priority": priority,
            "redact": check_redact(name, redact),
        }

        if cron is not None:
            self.periodic(name, cron=cron, payload={"task": name}, tz=tz, missed=missed)

        def decorate(function: F) -> F:
            self.register(TaskSpec(name=name, function=function, **spec_options))
            return function

        return decorate

    def periodic(
        self,
        name: str,
        *,
        cron: str,
        payload: dict[str, Any],
        tz: str = "UTC",
        queue: str | None = None,
        priority: str | None = None,
        max_retries: int | None = None,
        missed: str = schedules.DEFAULT_MISSED,
        catch_up_max: int = schedules.DEFAULT_CATCH_UP_MAX,
    ) -> None:
        """Declare a schedule in code: enqueue `payload` at every slot of `cron` in `tz`.

        Checked here, so a bad expression, zone or payload fails the import of the
        module that declares it, naming what is wrong."""
        parsed = parse_payload(payload, DEFAULT_MAX_PAYLOAD_BYTES)
        if priority is not None and priority not in PRIORITIES:
            raise InvalidInput(f"invalid priority {priority!r}: expected high, medium or low")
        cron_module.zone(tz)
        spec = PeriodicSpec(
            name=schedules.check_name(name),
            cron=cron_module.check_expression(cron),
            tz=tz,
            payload=parsed.text,
            task=parsed.task,
            queue=None if queue is None else check_queue(queue),
            priority=priority,
            max_retries=None if max_retries is None else check_max_retries(max_retries),
            missed=schedules.check_missed(missed),
            catch_up_max=schedules.check_catch_up_max(catch_up_max),
        )
        existing = self._periodic.get(name)
        if existing is not None and existing != spec:
            raise InvalidInput(
                f"schedule {name!r} is already declared with another definition; "
                "expected each schedule name once"
            )
        self._periodic[name] = spec

    def schedules(self) -> dict[str, schedules.Definition]:
        """The schedules declared in code, each with the defaults of its task (when this
        registry knows it) filled in, as the ledger stores them."""
        found = {}
        for name, spec in self._periodic.items():
            task = self.get(spec.task)
            found[name] = schedules.Definition(
                expression=spec.cron,
                zone=spec.tz,
                payload=spec.payload,
                task=spec.task,
                queue=_pick(spec.queue, task.queue if task else None, DEFAULT_QUEUE),
                priority=PRIORITIES[
                    _pick(spec.priority, task.priority if task else None, DEFAULT_PRIORITY)
                ],
                max_retries=_pick(
                    spec.max_retries, task.max_retries if task else None, DEFAULT_MAX_RETRIES
                ),
                missed=spec.missed,
                catch_up_max=spec.catch_up_max,
            )
        return found


T = TypeVar("T")


def _pick(*choices: T | None) -> T:
    """The first option given: the schedule's, then its task's, then conductor's."""
    for choice in choices:
        if choice is not None:
            return choice
    raise AssertionError("the last choice is always a default")


REGISTRY: Final = Registry()
task: Final = REGISTRY.task
periodic: Final = REGISTRY.periodic


def check_redact(task: str, fields: Sequence[str]) -> tuple[str, ...]:
    """A task's `redact` fields: names or dotted paths of payload keys."""
    if isinstance(fields, str):
        fields = (fields,)
    checked = tuple(fields)
    for field in checked:
        if not isinstance(field, str) or not field or any(not part for part in field.split(".")):
            raise InvalidInput(
                f"invalid redact field {field!r} for task {task!r}: expected a payload key "
                "or a dotted path such as card.number"
            )
    return checked


def load_app(module: str, what: str = "--app") -> None:
    """Import `module` so its `@task` decorators register; errors name the module and the
    setting that gave it (`what`: `--app`, or an embedded worker's `app=`)."""
    # Like RQ and Celery: an app module in the current directory is importable even when
    # `conductor` runs as a console script (whose sys.path starts at its own directory).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's module's
        raise InvalidInput(
            f"cannot import {what} {module!r}: {type(e).__name__}: {e}; "
            "expected an importable module that registers tasks"
        ) from None
