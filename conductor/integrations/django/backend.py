"""`ConductorBackend`: Django's Tasks framework enqueues into a conductor ledger.

    TASKS = {"default": {
        "BACKEND": "conductor.integrations.django.ConductorBackend",
        "OPTIONS": {"DB": "conductor.db"},
    }}

A Django task becomes a job whose payload names the task by its module path, with its
arguments as JSON: `{"task": "shop.tasks.send_receipt", "args": [...], "kwargs": {...}}`.
Django's priority p (-100 to 100, higher sooner) is the job's rank `1 - p`
(`conductor.domain.config.PRIORITY_RANKS`), its queue name the job's queue, `run_after`
the job's run time; the result id is the job id. `OPTIONS` are `options.py`'s.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from functools import cached_property
from typing import Any, Final

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from conductor.client import Conductor
from conductor.domain.config import Settings, check_queue
from conductor.domain.errors import InvalidInput, UnknownJob
from conductor.domain.payloads import Payload, parse_payload
from conductor.integrations.django import discovery, options, results
from conductor.integrations.django.compat import (
    AnyTask,
    BaseTaskBackend,
    InvalidTaskError,
    TaskResult,
    TaskResultDoesNotExist,
    task_enqueued,
)

UNCOMMITTED: Final = "uncommitted-"
"""The id prefix of a result whose transaction has not committed yet."""


def rank(priority: int) -> int:
    """The job rank of Django's task priority (-100 to 100, higher runs sooner): `1 - p`,
    so Django's default 0 is conductor's medium, and order is kept both ways."""
    return 1 - priority


class ConductorBackend(BaseTaskBackend):  # type: ignore[misc]
    """Django's task backend for conductor: every task's run is an audited history."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.config = options.parse(alias, self.options)
        self._local = threading.local()

    @cached_property
    def ledger_url(self) -> str:
        """Where the ledger is, as `--db` takes it."""
        if self.config.db is not None:
            return self.config.db
        return options.database_url(self.config)

    @property
    def conductor(self) -> Conductor:
        """This thread's handle on the ledger (a ledger connection is one thread's)."""
        handle: Conductor | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = Conductor(settings=Settings.from_env(self.ledger_url))
            self._local.handle = handle
        return handle

    @cached_property
    def _max_payload_bytes(self) -> int:
        return Settings.from_env(self.ledger_url).max_payload_bytes

    @cached_property
    def _modules(self) -> list[str]:
        return discovery.task_modules(self.config.task_modules)

    @cached_property
    def _tasks(self) -> dict[str, AnyTask]:
        return discovery.known(self._modules, self.alias)

    # -- what Django asks of a backend ---------------------------------------------------
    def validate_task(self, task: AnyTask) -> None:
        super().validate_task(task)
        try:
            check_queue(task.queue_name)
        except InvalidInput as e:
            raise InvalidTaskError(str(e)) from None
        # Checked once the apps are loaded (a task module imported while they load is
        # checked again at its first enqueue, which validates too).
        if apps.ready and task.func.__module__ not in self._modules:
            raise InvalidTaskError(
                f"task {task.module_path} is defined in {task.func.__module__}, which "
                "no worker imports: expected it in an installed app's tasks module or "
                f"in {options.setting(self.alias, 'TASK_MODULES')}"
            )

    def enqueue(self, task: AnyTask, args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        # Checked in full now, not when a commit enqueues it: after the commit, a refusal
        # could no longer be the caller's to handle.
        try:
            payload = parse_payload(_payload(task, args, kwargs), self._max_payload_bytes)
        except InvalidInput as e:
            raise InvalidTaskError(f"cannot enqueue {task.module_path}: {e}") from None
        plan: dict[str, Any] = {
            "queue": task.queue_name,
            "priority": rank(task.priority),
            "max_retries": self.config.max_retries,
            "at": _aware(task.run_after),
        }
        result = results.provisional(
            task, UNCOMMITTED + get_random_string(24), args, kwargs, self.alias
        )
        if self.config.database is not None:
            # The ledger is in Django's own database: the job is written in the caller's
            # transaction (committed at once outside one) and shares its fate.
            raw = _psycopg(self.config, self.alias)
            self._put(result, payload, plan, connection=raw)
            return result
        atomic = _in_atomic_block()
        if atomic is None:
            self._put(result, payload, plan)
        else:
            transaction.on_commit(lambda: self._put(result, payload, plan), using=atomic)
        return result

    def _put(
        self, result: TaskResult[Any], payload: Payload, plan: dict[str, Any], **more: Any
    ) -> None:
        job_id = self.conductor.enqueue(payload, **plan, **more)
        results.committed(result, job_id, timezone.now())
        task_enqueued.send(type(self), task_result=result)

    def get_result(self, result_id: str) -> TaskResult[Any]:
        return self.read_result(result_id)

    def read_result(self, result_id: str, *, running: int | None = None) -> TaskResult[Any]:
        """`get_result`; in the worker, `running` is the attempt now running
        (`results.task_result`)."""
        if not result_id.isascii() or not result_id.isdigit():
            raise TaskResultDoesNotExist(result_id)
        handle = self.conductor
        try:
            row = handle.job(int(result_id))
        except UnknownJob:
            raise TaskResultDoesNotExist(result_id) from None
        name = json.loads(row["payload"])["task"]
        task = self._tasks.get(name)
        if task is None:
            raise TaskResultDoesNotExist(
                f"job {result_id} runs {name!r}, which is no Django task of this project"
            )
        history = handle.ledger.history(row["id"])
        now = None if running is None else (running, timezone.now())
        return results.task_result(task, row, history, self.alias, running=now)


def _payload(task: AnyTask, args: Any, kwargs: Any) -> dict[str, Any]:
    """The job's payload; arguments that are not JSON are Django's `InvalidTask`."""
    payload = {"task": task.module_path, "args": list(args), "kwargs": dict(kwargs)}
    try:
        return dict(json.loads(json.dumps(payload, allow_nan=False)))
    except (TypeError, ValueError) as e:
        raise InvalidTaskError(
            f"arguments of task {task.module_path} cannot be stored as JSON ({e}): expected "
            "strings, numbers, booleans, None, lists and dicts with string keys"
        ) from None


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    if when is None or timezone.is_aware(when):
        return when
    aware: dt.datetime = timezone.make_aware(when, timezone.get_default_timezone())
    return aware


def _in_atomic_block() -> str | None:
    """The alias of a Django database inside `transaction.atomic()`, if any."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            return str(connection.alias)
    return None


def _psycopg(config: options.BackendOptions, alias: str) -> Any:
    """The psycopg 3 connection under Django's database `config.database`."""
    import psycopg

    connection = connections[config.database or DEFAULT_DB_ALIAS]
    connection.ensure_connection()
    raw = connection.connection
    if not isinstance(raw, psycopg.Connection):
        raise ImproperlyConfigured(
            f"{options.setting(alias, 'DATABASE')} is {config.database!r}, whose connection "
            f"is a {type(raw).__module__}.{type(raw).__name__}: expected psycopg 3 "
            "(pip install 'psycopg[binary]'; Django uses it when psycopg2 is absent)"
        )
    return raw


def ledger_url(alias: str) -> str:
    """The ledger of Django's task backend `alias`, as `--db` takes it."""
    return backend_named(alias).ledger_url


def backend_named(alias: str) -> ConductorBackend:
    """Django's task backend `alias`, which must be a conductor backend."""
    from conductor.integrations.django.compat import task_backends

    if alias not in getattr(task_backends, "settings", {}):
        raise ImproperlyConfigured(f"{options.setting(alias)} is not in TASKS: expected a backend")
    backend = task_backends[alias]
    if not isinstance(backend, ConductorBackend):
        raise ImproperlyConfigured(
            f"{options.setting(alias)} is a {type(backend).__name__}: expected "
            f"{options.BACKEND_PATH}"
        )
    return backend
