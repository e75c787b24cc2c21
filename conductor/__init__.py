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
    from conductor.domain.backoff import Backoff
    from conductor.domain.clock import Clock, ManualClock, SystemClock
    from conductor.domain.config import Settings
    from conductor.domain.context import JobContext, current_job
    from conductor.domain.errors import (
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
    from conductor.domain.registry import Registry, periodic, task
    from conductor.domain.reports import ActionReport, Stats, StatusCounts
    from conductor.domain.states import JobState

__all__ = [
    "ActionReport",
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
    "periodic",
    "task",
]

_MODULES: dict[str, str] = {
    "ActionReport": "conductor.domain.reports",
    "Backoff": "conductor.domain.backoff",
    "Clock": "conductor.domain.clock",
    "Conductor": "conductor.client",
    "ConductorError": "conductor.domain.errors",
    "DatabaseBusy": "conductor.domain.errors",
    "DatabaseNotFound": "conductor.domain.errors",
    "InvalidInput": "conductor.domain.errors",
    "InvalidTransition": "conductor.domain.errors",
    "JobContext": "conductor.domain.context",
    "JobState": "conductor.domain.states",
    "LedgerError": "conductor.domain.errors",
    "ManualClock": "conductor.domain.clock",
    "NotAConductorDatabase": "conductor.domain.errors",
    "Registry": "conductor.domain.registry",
    "SchemaTooNew": "conductor.domain.errors",
    "Settings": "conductor.domain.config",
    "Stats": "conductor.domain.reports",
    "StatusCounts": "conductor.domain.reports",
    "SystemClock": "conductor.domain.clock",
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
