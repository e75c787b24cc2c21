"""conductor: background jobs on an append-only, hash-chained event ledger.

The public API is what `__all__` lists; everything else is internal.
"""

from __future__ import annotations

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
