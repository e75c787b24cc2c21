"""What the Writer tells tracing once a commit is in: the end of each attempt's `process`
span, and marker spans for outcomes recorded away from any running attempt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from conductor.domain.decisions import Outcome
from conductor.domain.events import RecordedEvent
from conductor.observe import tracing

MARKED: Final = frozenset({"rescued", "released", "failed"})
"""Outcomes recorded away from any running attempt that get a marker span of their own."""


def end_spans(outcomes: Sequence[Outcome], recorded: Sequence[RecordedEvent]) -> None:
    """End each traced attempt's `process` span with what was committed for it."""
    spans = {outcome.job_id: outcome.span for outcome in outcomes if outcome.span is not None}
    if not spans:
        return
    committed: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for rec in recorded:
        # `run_started` is the span's own start: not an event of it.
        if rec.job_id in spans and rec.type != "run_started":
            committed.setdefault(rec.job_id, []).append((rec.type, tracing.event_attributes(rec)))
    for job_id, span in spans.items():
        tracing.settled(span, committed.get(job_id, ()))


def mark(
    recorded: Sequence[RecordedEvent], traces: Mapping[int, tuple[str, str | None]] | None
) -> None:
    """A marker span for each rescue, release or failure recorded for a job in `traces`
    (job id -> its queue and traceparent)."""
    if not traces:
        return
    for rec in recorded:
        if rec.job_id in traces and rec.type in MARKED:
            queue, traceparent = traces[rec.job_id]
            tracing.marker(
                rec.type,
                queue=queue,
                job_id=rec.job_id,
                traceparent=traceparent,
                attributes=tracing.event_attributes(rec),
            )
