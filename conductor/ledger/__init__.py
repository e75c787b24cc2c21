"""The event ledger: the contract (`base`) and its backends."""

from __future__ import annotations

from conductor.ledger.base import ClaimedJob, Ledger

__all__ = ["ClaimedJob", "Ledger"]
