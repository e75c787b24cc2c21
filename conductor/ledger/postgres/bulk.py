"""Multi-row writes as one query each, and an append's writes as one statement.

psycopg's `executemany` runs in a nested pipeline whose entry and exit each wait for the
server, so three of them made an append cost seven round trips. One `INSERT ... SELECT`
(or `UPDATE ... FROM`) per table is one query whatever the batch size, and the server
plans it once instead of once per row.

The rows travel as one JSON text per table (an array of arrays, read with
`jsonb_array_elements` and cast column by column), not as one array parameter per
column: psycopg dumps a list parameter in Python, element type looked up and every
element dumped one call at a time, about 20 us for a 10-element array on this machine,
so an engine transaction's 25 arrays cost more client CPU than everything else it sends;
the `json` module's C encoder writes the same rows in a few microseconds
(docs/performance.md, "PostgreSQL, second round"). JSON strings round-trip text exactly
(the `->>` operator returns the string unescaped), so the hash chain's text is stored
byte for byte; numbers are whole numbers, cast back to their column's type.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, Final

from conductor.ledger import statements as sql
from projections.job_status import COLUMNS, MUTABLE_COLUMNS

_TYPES: Final = {
    "id": "bigint",
    "priority": "integer",
    "attempts": "integer",
    "retries": "integer",
    "max_retries": "integer",
    "last_seq": "bigint",
    "unique_for": "integer",
}
"""Column types that are not text (the rest of `jobs` is)."""
_EVENT_TYPES: Final = ("bigint", "bigint", "text", "integer", *["text"] * 5)
"""`statements.CHAIN_COLUMNS`, in order."""
_ENCODE: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _rows(types: Sequence[str], names: Sequence[str] | None = None) -> str:
    """A `SELECT` of one JSON parameter's rows, column `i` cast to `types[i]` (and named
    `names[i]`)."""
    fields = [
        (f"r->>{i}" if kind == "text" else f"(r->>{i})::{kind}")
        + (f" AS {names[i]}" if names else "")
        for i, kind in enumerate(types)
    ]
    return f"SELECT {', '.join(fields)} FROM jsonb_array_elements(%s::jsonb) AS e(r)"


_UPDATED: Final = (*MUTABLE_COLUMNS, "id")
EVENT_INSERT: Final = f"INSERT INTO events ({sql.CHAIN_COLUMNS}) {_rows(_EVENT_TYPES)}"
JOB_INSERT: Final = (
    f"INSERT INTO jobs ({sql.JOB_COLUMNS}) {_rows([_TYPES.get(c, 'text') for c in COLUMNS])}"
)
JOB_UPDATE: Final = (
    "UPDATE jobs SET "
    + ", ".join(f"{c} = v.{c}" for c in MUTABLE_COLUMNS)
    + f" FROM ({_rows([_TYPES.get(c, 'text') for c in _UPDATED], _UPDATED)}) AS v"
    + " WHERE jobs.id = v.id"
)
COUNTER_UPSERT: Final = (
    f"INSERT INTO counters ({sql.COUNTER_COLUMNS}) "
    f"{_rows(('text', 'text', 'text', 'bigint'))} "
    "ON CONFLICT (queue, task, status) DO UPDATE SET n = counters.n + excluded.n"
)


def rows(values: Sequence[Sequence[Any]]) -> str:
    """Rows of values (text, whole numbers, None) as the parameter of a statement above."""
    return _ENCODE.encode(values)


WRITES: Final = {
    "events": EVENT_INSERT,
    "job_inserts": JOB_INSERT,
    "job_updates": JOB_UPDATE,
    "counters": COUNTER_UPSERT,
    "projected": sql.projected_seq("%s"),
}
"""An append's writes by name, in the order their parameters are given to `writes`."""


@functools.cache
def writes(parts: tuple[str, ...], notify: int) -> str:
    """The writes named in `parts` (keys of `WRITES`, in its order) as one statement, each
    a data-modifying `WITH` query, and `notify` NOTIFYs (channel and payload parameters)
    as its `SELECT`: one statement for psycopg to prepare, send and read back instead of
    one per table (docs/performance.md, "PostgreSQL, second round"). They touch different
    tables (or different `jobs` rows: a batch's new jobs are inserted, the others
    updated), so running them under one snapshot changes nothing; their queries are
    those a caller would run alone."""
    queries = ", ".join(f"w{i} AS ({WRITES[part]})" for i, part in enumerate(parts))
    tail = ", ".join(["pg_notify(%s, %s)"] * notify) or "1"
    return f"WITH {queries} SELECT {tail}"
