"""Django's Tasks framework under either name: `django.tasks` (Django 6 and later) or the
`django-tasks` backport (`django_tasks`, Django 4.2 to 5.2), which define the same API
with two differently named exceptions. Everything else imports the framework from here.
"""

from __future__ import annotations

from typing import Any

try:  # Django 6: the framework ships with Django
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import (
        TASK_MAX_PRIORITY,
        TASK_MIN_PRIORITY,
        Task,
        TaskError,
    )
    from django.tasks.exceptions import InvalidTask as InvalidTaskError
    from django.tasks.exceptions import TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started

    FRAMEWORK = "django.tasks"
except ImportError:  # the backport, for Django 4.2 to 5.2
    try:
        import django_tasks  # noqa: F401
    except ImportError:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "conductor.integrations.django needs Django's Tasks framework: expected "
            "Django 6 (django.tasks) or, on Django 4.2 to 5.2, the django-tasks package "
            "(pip install 'conductor[django]')"
        ) from None
    from django_tasks import (
        TaskContext,
        TaskResult,
        TaskResultStatus,
        task,
        task_backends,
    )
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import (
        TASK_MAX_PRIORITY,
        TASK_MIN_PRIORITY,
        Task,
        TaskError,
    )
    from django_tasks.exceptions import (
        InvalidTaskError,
        TaskResultDoesNotExist,
    )
    from django_tasks.signals import (
        task_enqueued,
        task_finished,
        task_started,
    )

    FRAMEWORK = "django_tasks"

AnyTask = Task[Any, Any]

__all__ = [
    "FRAMEWORK",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "AnyTask",
    "BaseTaskBackend",
    "InvalidTaskError",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
