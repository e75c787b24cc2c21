"""conductor: background jobs on an append-only, hash-chained event ledger.

The public API is what `__all__` lists; everything else is internal.

Each name is imported from its module on first use (PEP 562), so importing a submodule,
as every `conductor` command does, costs that submodule's imports only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor.client import Conductor
    from conductor.client.aio import AsyncConductor
    from conductor.domain.backoff import Backoff
    from conductor.domain.clock import Clock, ManualClock, SystemClock
    from conductor.domain.config import Settings
    from conductor.domain.context import JobContext, current_job
    from conductor.domain.errors import (
        ConductorError,
        ConfigurationError,
        DatabaseBusy,
        DatabaseNotFound,
        InvalidInput,
        InvalidTransition,
        JobCancelledError,
        JobFailedError,
        LedgerError,
        NotAConductorDatabase,
        NotSelected,
        ResultNotJSON,
        ResultTimeout,
        ResultTooLarge,
        SchemaTooNew,
        UnknownJob,
    )
    from conductor.domain.registry import Registry, periodic, task
    from conductor.domain.reports import ActionReport, Enqueued, Stats, StatusCounts, Target
    from conductor.domain.states import JobState

__all__ = [
    "ActionReport",
    "AsyncConductor",
    "Backoff",
    "Clock",
    "Conductor",
    "ConductorError",
    "ConfigurationError",
    "DatabaseBusy",
    "DatabaseNotFound",
    "Enqueued",
    "InvalidInput",
    "InvalidTransition",
    "JobCancelledError",
    "JobContext",
    "JobFailedError",
    "JobState",
    "LedgerError",
    "ManualClock",
    "NotAConductorDatabase",
    "NotSelected",
    "Registry",
    "ResultNotJSON",
    "ResultTimeout",
    "ResultTooLarge",
    "SchemaTooNew",
    "Settings",
    "Stats",
    "StatusCounts",
    "SystemClock",
    "Target",
    "UnknownJob",
    "current_job",
    "periodic",
    "task",
]

_MODULES: dict[str, str] = {
    "ActionReport": "conductor.domain.reports",
    "AsyncConductor": "conductor.client.aio",
    "Backoff": "conductor.domain.backoff",
    "Clock": "conductor.domain.clock",
    "Conductor": "conductor.client",
    "ConductorError": "conductor.domain.errors",
    "ConfigurationError": "conductor.domain.errors",
    "DatabaseBusy": "conductor.domain.errors",
    "DatabaseNotFound": "conductor.domain.errors",
    "Enqueued": "conductor.domain.reports",
    "InvalidInput": "conductor.domain.errors",
    "InvalidTransition": "conductor.domain.errors",
    "JobCancelledError": "conductor.domain.errors",
    "JobFailedError": "conductor.domain.errors",
    "JobContext": "conductor.domain.context",
    "JobState": "conductor.domain.states",
    "LedgerError": "conductor.domain.errors",
    "ManualClock": "conductor.domain.clock",
    "NotAConductorDatabase": "conductor.domain.errors",
    "NotSelected": "conductor.domain.errors",
    "Registry": "conductor.domain.registry",
    "ResultNotJSON": "conductor.domain.errors",
    "ResultTimeout": "conductor.domain.errors",
    "ResultTooLarge": "conductor.domain.errors",
    "SchemaTooNew": "conductor.domain.errors",
    "Settings": "conductor.domain.config",
    "Stats": "conductor.domain.reports",
    "StatusCounts": "conductor.domain.reports",
    "SystemClock": "conductor.domain.clock",
    "Target": "conductor.domain.reports",
    "UnknownJob": "conductor.domain.errors",
    "current_job": "conductor.domain.context",
    "periodic": "conductor.domain.registry",
    "task": "conductor.domain.registry",
}
"""Where each name in `__all__` is defined."""


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


_DUNDERS = ("__all__", "__doc__", "__file__", "__name__", "__path__", "__version__")


def __dir__() -> list[str]:
    """The public API and the module basics, not the helpers this file imports."""
    return sorted({*__all__, *(name for name in _DUNDERS if name in globals())})
