"""conductor: background jobs on an append-only, hash-chained event ledger.

The public API is what `__all__` lists; everything else is internal.

Each name is imported from its module on first use (PEP 562), so importing a submodule,
as every `conductor` command does, costs that submodule's imports only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor.backoff import Backoff
    from conductor.client import Conductor, Stats, StatusCounts
    from conductor.clock import Clock, ManualClock, SystemClock
    from conductor.config import Settings
    from conductor.context import JobContext, current_job
    from conductor.errors import (
        ConductorError,
        DatabaseBusy,
        DatabaseNotFound,
        InvalidInput,
        InvalidTransition,
        LedgerError,
        NotAConductorDatabase,
        SchemaTooNew,
        UnknownJob,
    )
    from conductor.registry import Registry, task
    from conductor.states import JobState

__all__ = [
    "Backoff",
    "Clock",
    "Conductor",
    "ConductorError",
    "DatabaseBusy",
    "DatabaseNotFound",
    "InvalidInput",
    "InvalidTransition",
    "JobContext",
    "JobState",
    "LedgerError",
    "ManualClock",
    "NotAConductorDatabase",
    "Registry",
    "SchemaTooNew",
    "Settings",
    "Stats",
    "StatusCounts",
    "SystemClock",
    "UnknownJob",
    "current_job",
    "task",
]

_MODULES: dict[str, str] = {
    "Backoff": "conductor.backoff",
    "Clock": "conductor.clock",
    "Conductor": "conductor.client",
    "ConductorError": "conductor.errors",
    "DatabaseBusy": "conductor.errors",
    "DatabaseNotFound": "conductor.errors",
    "InvalidInput": "conductor.errors",
    "InvalidTransition": "conductor.errors",
    "JobContext": "conductor.context",
    "JobState": "conductor.states",
    "LedgerError": "conductor.errors",
    "ManualClock": "conductor.clock",
    "NotAConductorDatabase": "conductor.errors",
    "Registry": "conductor.registry",
    "SchemaTooNew": "conductor.errors",
    "Settings": "conductor.config",
    "Stats": "conductor.client",
    "StatusCounts": "conductor.client",
    "SystemClock": "conductor.clock",
    "UnknownJob": "conductor.errors",
    "current_job": "conductor.context",
    "task": "conductor.registry",
}
"""Where each name in `__all__` is defined."""


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
