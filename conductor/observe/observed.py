"""Whether anything can observe this process, asked without importing OpenTelemetry.

A short command such as `conductor enqueue` records a span and a count only when a
provider could receive them; finding that out must not cost the imports it saves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Final

from conductor.domain.events import RecordedEvent

_OBSERVERS: Final = {
    "trace": ("conductor.observe.tracing", "opentelemetry.trace", "OTEL_PYTHON_TRACER_PROVIDER"),
    "metrics": ("conductor.observe.metrics", "opentelemetry.metrics", "OTEL_PYTHON_METER_PROVIDER"),
}


def may_be(signal: str) -> bool:
    """Whether an OpenTelemetry provider for `signal` can be installed in this process.

    One is installed through OpenTelemetry's API or conductor's module for the signal
    (imported by then), or named in the environment; an application span to continue
    needs the API too. With none of them the span or count is skipped without importing
    OpenTelemetry, which every `conductor enqueue` command (and a process's first
    enqueue) otherwise paid for: about 35 ms for the metrics modules alone, measured with
    `python -X importtime` on the fourth round's VM."""
    ours, api, variable = _OBSERVERS[signal]
    return ours in sys.modules or api in sys.modules or variable in os.environ


def count_appended(
    recorded: Sequence[RecordedEvent], labels: Mapping[int, tuple[str, str]] | None = None
) -> None:
    """Count an append in conductor's metrics, when a meter provider can exist."""
    if not may_be("metrics"):
        return
    from conductor.observe import metrics

    metrics.count_appended(recorded, labels)
