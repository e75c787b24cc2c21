"""Turning rows into text for the CLI: aligned plain tables and JSON.

Plain two-space-separated columns (no box drawing) so output greps, pastes and diffs well,
and nothing is imported at start-up that a listing does not need.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from conductor.domain.clock import Timestamp


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def widths(
    headers: Sequence[str], rows: Sequence[Sequence[object]], minimum: Sequence[int] = ()
) -> list[int]:
    """Column widths for `aligned`: the widest cell of each column, at least `minimum`."""
    found = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            found[i] = max(found[i], len("" if cell is None else str(cell)))
    for i, low in enumerate(minimum):
        found[i] = max(found[i], low)
    return found


def aligned(cells: Sequence[object], widths: Sequence[int]) -> str:
    """One table line at fixed `widths`, for rows printed as they arrive (`--follow`)."""
    text = ["" if c is None else str(c) for c in cells]
    padded = [cell.ljust(widths[i]) for i, cell in enumerate(text[:-1])]
    return "  ".join([*padded, text[-1]]).rstrip()


def when(value: Timestamp | None) -> str:
    """A stored timestamp shortened for a table: `2026-11-28 00:33:23.107Z`."""
    if not value:
        return ""
    return value[:10] + " " + value[11:23] + "Z"


def duration(seconds: float | None) -> str:
    """Time since something, as a table shows it: `+1.5ms`, `+2.00s`, `+3.0m`."""
    return "" if seconds is None else "+" + elapsed(seconds)


def elapsed(seconds: float | None) -> str:
    """A duration in the unit that reads best: `250.0ms`, `1.25s`, `2.5m`, `1.2h`."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def rate(per_second: float) -> str:
    """Events per second with about three significant figures: `0.0167`, `2.5`, `1400`."""
    return f"{per_second:.0f}" if per_second >= 100 else f"{per_second:.3g}"


def facts(values: dict[str, object]) -> str:
    return "  ".join(f"{key}={value}" for key, value in values.items())


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
