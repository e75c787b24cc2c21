"""Applies the projections: to a batch on the append path, and to the whole log on rebuild.

Both paths use the same folds, so "rebuild equals incremental application" holds by
construction and is checked by a property test. The runner is pure; the ledger backend
loads the rows it needs, calls in here, and writes what comes back in its transaction.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from conductor.domain.control_events import OPERATIONS
from conductor.domain.errors import InvalidTransition
from conductor.domain.events import EVENT_CLASSES, RecordedEvent, decode_event
from conductor.domain.job_row import JobRow
from projections import controls, counters, job_status
from projections.controls import ControlRow
from projections.controls import Key as ControlKey
from projections.counters import Bucket

StoredEvent = tuple[int, int, str, int, str, str, str | None]
"""(job_id, seq, type, version, at, data, trace): the stored columns a fold reads."""


@attrs.frozen(kw_only=True)
class BatchEffect:
    """What one append changes in the read models."""

    rows: dict[int, JobRow]
    """The final row of every job the batch touched."""
    counter_deltas: Counter[Bucket]
    """How each (queue, task, status) count moves; zero entries are dropped."""
    controls: dict[ControlKey, ControlRow] = attrs.Factory(dict)
    """The final `controls` row of every subject the batch's operations events touched."""


def control_keys(events: Iterable[RecordedEvent]) -> set[ControlKey]:
    """The (kind, name) of the `controls` rows a batch folds into: what a backend loads
    (under its lock) before `apply_batch`."""
    return {
        controls.subject(rec.event.TYPE, rec.event.fields())
        for rec in events
        if rec.job_id == OPERATIONS
    }


def apply_batch(
    current: Mapping[int, JobRow],
    events: Sequence[RecordedEvent],
    current_controls: Mapping[ControlKey, ControlRow] | None = None,
) -> BatchEffect:
    """Fold `events` (seq order) over the current rows of the jobs they touch, and the
    operations stream's events (job id 0) over `current_controls`, the rows of the
    subjects they name (`control_keys`).

    Jobs absent from `current` are new, and so are subjects absent from `current_controls`.
    Raises `InvalidTransition` on an illegal job event, or the refusal a control fold
    raises, before anything is written.
    """
    rows: dict[int, JobRow] = {}
    deltas: Counter[Bucket] = Counter()
    last_type: dict[int, str] = {}
    changed: dict[ControlKey, ControlRow] = {}
    for rec in events:
        job_id = rec.job_id
        if job_id == OPERATIONS:
            _fold_control(changed, current_controls or {}, rec)
            continue
        row = rows.get(job_id)
        if row is None:
            before = current.get(job_id)
            # Folded in place on the batch's own copy: `apply` (a copy per event) folded
            # over the batch, without the copies.
            row = None if before is None else before.copy()
        status_before = None if row is None else row["status"]
        event = rec.event
        row = job_status.advance(
            row, job_id, rec.seq, rec.at, rec.trace, event.TYPE, event.fields()
        )
        counters.shift(deltas, row, status_before)
        rows[job_id] = row
        last_type[job_id] = rec.type
    for job_id, event_type in last_type.items():
        if event_type == "attempt_failed":
            # states.py: an attempt failure is always followed, in the same append, by the
            # decision (retry_scheduled or failed); alone it would leave the job stranded.
            raise InvalidTransition(
                job_id,
                "in_progress",
                "attempt_failed without retry_scheduled or failed after it",
                expected="it appended together with its retry_scheduled or failed",
            )
    return BatchEffect(
        rows=rows,
        counter_deltas=Counter({k: n for k, n in deltas.items() if n}),
        controls=changed,
    )


def _fold_control(
    changed: dict[ControlKey, ControlRow],
    current: Mapping[ControlKey, ControlRow],
    rec: RecordedEvent,
) -> None:
    fields = rec.event.fields()
    key = controls.subject(rec.event.TYPE, fields)
    if key not in changed and key in current:
        row = current[key]
        changed[key] = {**row, "state": dict(row["state"])}
    controls.advance(changed, rec.seq, rec.at, rec.event.TYPE, fields)


def rebuild_rows(events_by_job: Iterable[RecordedEvent]) -> Iterator[JobRow]:
    """Rows folded from the whole log, given its events ordered by (job_id, seq).

    Streaming by job keeps memory to one job's events, so a replay of millions of events
    runs in constant space.
    """
    for job_id, events in itertools.groupby(events_by_job, key=lambda rec: rec.job_id):
        if job_id == OPERATIONS:
            continue  # the operations stream folds into `controls`, not into a job row
        row = job_status.fold(events)
        if row is not None:
            yield row


def rebuild_rows_stored(
    stored: Iterable[StoredEvent], into_controls: dict[ControlKey, ControlRow] | None = None
) -> Iterator[JobRow]:
    """`rebuild_rows` over stored columns, as a replay reads them: the same rows, faster.

    Equal by construction. `rebuild_rows` folds each job's events with `job_status.fold`,
    i.e. `apply` event by event, and `apply(row, rec)` is `job_status.advance` on a copy of
    `row`, given the envelope of `rec` and the fields of `rec.event`. Here every event goes
    through the same `advance` with the same envelope and the fields `decode_event` would
    have built the event from (`_stored_fields`), into one dict per job that nothing else
    sees, so leaving out the copies changes nothing. An event `decode_event` refuses makes
    this raise as well: `advance` accepts exactly the fields of the event's class. What it
    saves per event is building the event object, its `RecordedEvent` and a copy of the
    row, and, where an event has the same data as the previous one of its type, decoding
    it again (decoding is a pure function).
    """
    advance = job_status.advance
    # The last event decoded of each type: (version, data, fields). Consecutive events of a
    # type often have the same data (every `completed` of a first attempt, the `started`
    # events of one claim), and then decoding again would give the same fields.
    last: dict[str, tuple[int, str, Mapping[str, Any]]] = {}
    row: JobRow | None = None
    current: int | None = None
    for job_id, seq, event_type, version, at, data, trace in stored:
        if job_id == OPERATIONS:
            if into_controls is None:
                raise ValueError("the log has operations events: pass into_controls")
            fields = _stored_fields(event_type, version, data)
            controls.advance(into_controls, seq, at, event_type, fields)
            continue
        if job_id != current:
            if row is not None:
                yield row
            row = None
            current = job_id
        previous = last.get(event_type)
        if previous is not None and previous[1] == data and previous[0] == version:
            fields = previous[2]
        else:
            fields = _stored_fields(event_type, version, data)
            last[event_type] = (version, data, fields)
        row = advance(row, job_id, seq, at, trace, event_type, fields)
    if row is not None:
        yield row


def _stored_fields(event_type: str, version: int, data: str) -> Mapping[str, Any]:
    """The fields of the event `decode_event(event_type, version, data)` returns.

    For a known type at its current version `decode_event` returns `cls.decode(data)`,
    which is `cls(**cls.decode_fields(data))`: the fields are `cls.decode_fields(data)`.
    Anything else (an older version to upcast, a newer one or an unknown type to refuse)
    goes through `decode_event` itself.
    """
    cls = EVENT_CLASSES.get(event_type)
    if cls is not None and version == cls.VERSION:
        fields: dict[str, Any] = cls.decode_fields(data)
        return fields
    return attrs.asdict(decode_event(event_type, version, data), recurse=False)
