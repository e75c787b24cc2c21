"""conductor: background jobs on an append-only, hash-chained event ledger.

The public API is what `__all__` lists; everything else is internal.
"""

from __future__ import annotations

from conductor.client import Conductor, Stats, StatusCounts
from conductor.clock import Clock, ManualClock, SystemClock
from conductor.config import Settings
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
from conductor.states import JobState

__all__ = [
    "Clock",
    "Conductor",
    "ConductorError",
    "DatabaseBusy",
    "DatabaseNotFound",
    "InvalidInput",
    "InvalidTransition",
    "JobState",
    "LedgerError",
    "ManualClock",
    "NotAConductorDatabase",
    "SchemaTooNew",
    "Settings",
    "Stats",
    "StatusCounts",
    "SystemClock",
    "UnknownJob",
]
