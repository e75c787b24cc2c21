"""Django tasks run by a conductor worker: each discovered task (`discovery.py`) is
registered under its module path with a handler that calls it as Django would.

The handler runs the task with its JSON arguments (an `async def` task to completion on
the worker thread), gives a `takes_context` task a `TaskContext` whose `task_result` is
read from the ledger (so `context.attempt` counts this attempt), sends the framework's
`task_started` and `task_finished` signals, and closes Django database connections that
went stale or broke, before and after, as Django does around a request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from conductor.domain.context import current_job
from conductor.domain.registry import REGISTRY, Registry, TaskSpec
from conductor.integrations.django import discovery, options
from conductor.integrations.django.compat import (
    AnyTask,
    TaskContext,
    TaskError,
    TaskResultStatus,
    task_backends,
    task_finished,
    task_started,
)


def conductor_modules() -> list[str]:
    """Every module a worker imports for the project's conductor backends."""
    extra: dict[str, None] = {}
    for alias, config in getattr(settings, "TASKS", {}).items():
        if discovery.is_conductor_alias(alias):
            parsed = options.parse(alias, config.get("OPTIONS", {}))
            extra.update(dict.fromkeys(parsed.task_modules))
    return discovery.task_modules(extra)


def register(registry: Registry = REGISTRY) -> list[str]:
    """Register every conductor-backed Django task of the project; returns their names."""
    found = discovery.known(conductor_modules(), "default")
    for name, task in found.items():
        registry.register(TaskSpec(name=name, function=handler(task)))
    return sorted(found)


def handler(task: AnyTask) -> Any:
    """The conductor handler of Django task `task`."""

    def run(args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> Any:
        job = current_job()
        backend = task_backends[task.backend]
        result = backend.read_result(str(job.job_id), running=job.attempt)
        sender = type(backend)
        close_old_connections()
        task_started.send(sender, task_result=result)
        try:
            if task.takes_context:
                value = task.call(TaskContext(task_result=result), *(args or []), **(kwargs or {}))
            else:
                value = task.call(*(args or []), **(kwargs or {}))
        except BaseException as e:
            _finish(result, TaskResultStatus.FAILED, error=e)
            task_finished.send(sender, task_result=result)
            raise
        finally:
            close_old_connections()
        _finish(result, TaskResultStatus.SUCCESSFUL, value=value)
        task_finished.send(sender, task_result=result)
        return value

    run.__name__ = run.__qualname__ = task.name
    run.__module__ = task.func.__module__
    return run


def _finish(
    result: Any, status: Any, *, value: Any = None, error: BaseException | None = None
) -> None:
    """What `task_finished` receivers see: the attempt's outcome, before the worker's
    Writer records it (and for a retried attempt, before the retry makes it READY)."""
    import traceback

    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "_return_value", value)
    if error is not None:
        path = f"{type(error).__module__}.{type(error).__qualname__}"
        trace = "".join(traceback.format_exception(error))
        result.errors.append(TaskError(exception_class_path=path, traceback=trace))
