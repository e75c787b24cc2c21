"""Upcasters: how data stored by an older version of an event type reads as the current one.

`decode_event` (events.py) chains them on read, so projections only ever see current
events; the stored rows (and their hashes) are never touched. A shape change adds an
entry here instead of reinterpreting old rows (docs/events.md, "Versioning and
upcasting"). Keyed by type name, not class: events.py imports this module, not the
other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final


def _enqueued_v1_to_v2(fields: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no unique keys: every job it recorded was enqueued without one."""
    return {**fields, "unique_key": None, "unique_for": None}


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _cancelled_v1(fields: dict[str, Any]) -> dict[str, Any]:
    # Cancelled before batches existed: no batch to name.
    return {**fields, "batch": None}


def _requeued_v1(fields: dict[str, Any]) -> dict[str, Any]:
    # Requeued before reasons and batches: the reason an operator gives none today.
    return {**fields, "reason": "requeued", "batch": None}


UPCASTERS: Final[dict[tuple[str, int], Upcaster]] = {
    ("enqueued", 1): _enqueued_v1_to_v2,
    ("cancelled", 1): _cancelled_v1,
    ("requeued", 1): _requeued_v1,
    # `completed` 1 -> 2: results arrived; what conductor stored before kept none.
    ("completed", 1): lambda fields: {**fields, "result": None},
}
"""(type, stored version) -> function turning that version's data into version + 1's.

`decode_event` chains them on read, so projections only ever see current events; the
stored rows (and their hashes) are never touched."""
