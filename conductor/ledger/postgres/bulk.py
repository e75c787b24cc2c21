"""Multi-row writes as one statement each: `unnest` over one array per column.

psycopg's `executemany` runs in a nested pipeline whose entry and exit each wait for the
server, so three of them made an append cost seven round trips. One `INSERT ... SELECT
FROM unnest(...)` (or `UPDATE ... FROM unnest(...)`) per table is one statement, queued in
the transaction's pipeline like any other, whatever the batch size; the server also plans
it once instead of once per row. The arrays travel in binary (`%b`): measured against
text arrays, enqueueing 1,000-job batches was a third faster.
"""

from __future__ import annotations

import functools
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
_EVENT_TYPES: Final = (
    "bigint",
    "bigint",
    "text",
    "integer",
    "text",
    "text",
    "text",
    "text",
    "text",
)
"""`statements.CHAIN_COLUMNS`, in order."""


def _arrays(types: Sequence[str]) -> str:
    return ", ".join(f"%b::{kind}[]" for kind in types)


EVENT_INSERT: Final = (
    f"INSERT INTO events ({sql.CHAIN_COLUMNS}) SELECT * FROM unnest({_arrays(_EVENT_TYPES)})"
)
JOB_INSERT: Final = (
    f"INSERT INTO jobs ({sql.JOB_COLUMNS}) SELECT * FROM "
    f"unnest({_arrays([_TYPES.get(c, 'text') for c in COLUMNS])})"
)
JOB_UPDATE: Final = (
    "UPDATE jobs SET "
    + ", ".join(f"{c} = v.{c}" for c in MUTABLE_COLUMNS)
    + f" FROM unnest({_arrays([_TYPES.get(c, 'text') for c in (*MUTABLE_COLUMNS, 'id')])}) "
    + f"AS v({', '.join((*MUTABLE_COLUMNS, 'id'))}) WHERE jobs.id = v.id"
)
COUNTER_UPSERT: Final = (
    f"INSERT INTO counters ({sql.COUNTER_COLUMNS}) "
    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[]) "
    "ON CONFLICT (queue, task, status) DO UPDATE SET n = counters.n + excluded.n"
)


def columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows of values as one list per column: the parameters of the statements above."""
    return [list(column) for column in zip(*rows, strict=True)]


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
    one per table, most of an append's client-side cost (docs/performance.md,
    "PostgreSQL, second round"). They touch different tables (or different `jobs` rows:
    a batch's new jobs are inserted, the others updated), so running them under one
    snapshot changes nothing; their statements are those a caller would run alone."""
    queries = ", ".join(f"w{i} AS ({WRITES[part]})" for i, part in enumerate(parts))
    tail = ", ".join(["pg_notify(%s, %s)"] * notify) or "1"
    return f"WITH {queries} SELECT {tail}"
