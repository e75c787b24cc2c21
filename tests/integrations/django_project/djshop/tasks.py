"""The test project's tasks: sync, async, with context, failing, flaky."""

from __future__ import annotations

from typing import Any

try:
    from django.tasks import TaskContext, task
except ImportError:
    from django_tasks import TaskContext, task


@task
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="mail")
async def shout(text: str) -> str:
    return text.upper()


@task(takes_context=True)
def whoami(context: TaskContext, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "attempt": context.attempt,
        "id": context.task_result.id,
        "status": str(context.task_result.status),
    }


@task
def explode(message: str) -> None:
    raise ValueError(message)


@task(takes_context=True)
def flaky(context: TaskContext) -> int:
    if context.attempt < 2:
        raise RuntimeError(f"attempt {context.attempt} fails")
    return context.attempt


@task
def mark(label: str) -> str:
    return label
