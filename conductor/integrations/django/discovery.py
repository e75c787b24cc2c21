"""Which Django tasks a worker runs, and their registration as conductor tasks.

A payload names a registered task, never an import path (docs/security.md): a worker
imports only its own modules, chosen by settings, never by a payload. Those are the
`tasks` module of every installed app and the modules of `OPTIONS['TASK_MODULES']`; each
Django `Task` found in them, for any conductor backend, is registered in conductor's
registry under its `module_path` (`shop.tasks.send_receipt`). A job naming anything else
fails as an unknown task, and nothing is imported for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import module_has_submodule

from conductor.integrations.django.compat import AnyTask, Task
from conductor.integrations.django.options import setting


def task_modules(extra: Iterable[str]) -> list[str]:
    """The names of the modules a worker imports: each installed app's `tasks` module
    that exists, then `extra` (TASK_MODULES), each once."""
    found: dict[str, None] = {}
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "tasks"):
            found[f"{config.name}.tasks"] = None
    found.update(dict.fromkeys(extra))
    return list(found)


def tasks_in(modules: Iterable[str], alias: str) -> Iterator[AnyTask]:
    """Every Django `Task` defined at the top level of `modules`, importing them; a
    module that cannot be imported is the setting's error, named."""
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ImproperlyConfigured(
                f"{setting(alias, 'TASK_MODULES')} or an installed app names {name!r}, "
                f"which cannot be imported ({e}): expected an importable module"
            ) from e
        for value in vars(module).values():
            if isinstance(value, Task) and value.func.__module__ == module.__name__:
                yield value


def is_conductor_alias(alias: str) -> bool:
    """Whether Django's backend `alias` is a conductor backend (without creating it)."""
    from django.conf import settings

    config: Any = getattr(settings, "TASKS", {}).get(alias, {})
    backend = str(config.get("BACKEND", "")) if isinstance(config, dict) else ""
    return backend.startswith("conductor.integrations.django")


def known(modules: Iterable[str], alias: str) -> dict[str, AnyTask]:
    """The conductor-backed Django tasks of `modules`, by module path."""
    return {
        found.module_path: found
        for found in tasks_in(modules, alias)
        if is_conductor_alias(found.backend)
    }
