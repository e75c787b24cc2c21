"""The SQL of the `controls` read model (the operations stream's queues and schedules),
shared by both backends as `statements` is: builders take the placeholder as `mark`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from conductor.domain.codec import canonical_json, loads
from conductor.ledger.base import RowDifference
from conductor.ledger.statements import marks
from projections.controls import ControlRow

CONTROL_COLUMNS: Final = "kind, name, state, updated_at, last_seq"
CONTROLS: Final = f"SELECT {CONTROL_COLUMNS} FROM controls ORDER BY kind, name"


def control_upsert(mark: str) -> str:
    """Write one `controls` row (values in `CONTROL_COLUMNS` order), replacing its state."""
    return (
        f"INSERT INTO controls ({CONTROL_COLUMNS}) VALUES ({marks(mark, 5)}) "
        "ON CONFLICT (kind, name) DO UPDATE SET state = excluded.state, "
        "updated_at = excluded.updated_at, last_seq = excluded.last_seq"
    )


def control_rows(mark: str, keys: int, *, lock: str = "") -> str:
    """The `controls` rows of `keys` (kind, name) pairs; parameters: kind, name, kind, ...
    `lock` is appended (PostgreSQL's `FOR UPDATE`)."""
    wanted = " OR ".join([f"(kind = {mark} AND name = {mark})"] * keys)
    return f"SELECT {CONTROL_COLUMNS} FROM controls WHERE {wanted} ORDER BY kind, name {lock}"


def queue_controls(mark: str, queues: int, *, lock: str = "") -> str:
    """The `controls` rows (name, state) of `queues` queue names; `lock` is appended."""
    return (
        f"SELECT name, state FROM controls WHERE kind = 'queue' "
        f"AND name IN ({marks(mark, queues)}) ORDER BY name {lock}"
    )


def running_in(mark: str) -> str:
    """A queue's attempts claimed or running, from the counters (a seek on their key
    prefix, exact under the claim's lock). Parameter: queue."""
    return (
        "SELECT coalesce(sum(n), 0) FROM counters WHERE queue = "
        f"{mark} AND status IN ('claimed', 'in_progress')"
    )


def controls_of(mark: str) -> str:
    """Every `controls` row of one kind. Parameter: kind."""
    return f"SELECT {CONTROL_COLUMNS} FROM controls WHERE kind = {mark} ORDER BY name"


def control_row(values: Sequence[Any]) -> ControlRow:
    """A stored `controls` row as the fold keeps it."""
    kind, name, state, updated_at, last_seq = values
    return {
        "kind": kind,
        "name": name,
        "state": loads(state),
        "updated_at": updated_at,
        "last_seq": int(last_seq),
    }


def control_values(row: ControlRow) -> tuple[str, str, str, str, int]:
    """A folded `controls` row as stored (`CONTROL_COLUMNS` order, state canonical JSON)."""
    return (
        row["kind"],
        row["name"],
        canonical_json(row["state"]),
        row["updated_at"],
        row["last_seq"],
    )


def control_differences(
    live: Mapping[tuple[str, str], ControlRow], rebuilt: Mapping[tuple[str, str], ControlRow]
) -> list[RowDifference]:
    """The `controls` rows where the live read model and a rebuild disagree."""

    def shown(row: ControlRow | None) -> dict[str, object] | None:
        return (
            None
            if row is None
            else dict(zip(CONTROL_COLUMNS.split(", "), control_values(row), strict=True))
        )

    return [
        RowDifference(
            table="controls",
            key="/".join(key),
            live=shown(live.get(key)),
            rebuilt=shown(rebuilt.get(key)),
        )
        for key in sorted(live.keys() | rebuilt.keys())
        if shown(live.get(key)) != shown(rebuilt.get(key))
    ]
