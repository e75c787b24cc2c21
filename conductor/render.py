"""Turning rows into text for the CLI: aligned plain tables and JSON.

Plain two-space-separated columns (no box drawing) so output greps, pastes and diffs well,
and nothing is imported at start-up that a listing does not need.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from conductor.clock import Timestamp


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def when(value: Timestamp | None) -> str:
    """A stored timestamp shortened for a table: `2026-11-28 00:33:23.107Z`."""
    if not value:
        return ""
    return value[:10] + " " + value[11:23] + "Z"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"+{seconds * 1000:.1f}ms"
    if seconds < 120:
        return f"+{seconds:.2f}s"
    if seconds < 7200:
        return f"+{seconds / 60:.1f}m"
    return f"+{seconds / 3600:.1f}h"


def facts(values: dict[str, object]) -> str:
    return "  ".join(f"{key}={value}" for key, value in values.items())


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
