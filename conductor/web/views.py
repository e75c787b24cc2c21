"""What the pages and the JSON API show, read through the `Conductor` facade.

Each function returns plain JSON-ready values (dicts, lists, strings, numbers), so a page
renders exactly what `/api` returns: one reading of the ledger, two presentations.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import attrs

from conductor.client import STATUSES, Conductor
from conductor.client.listing import MAX_PAGE
from conductor.domain.bulk import movable
from conductor.domain.clock import stamp
from conductor.domain.config import PRIORITY_NAMES, parse_time
from conductor.domain.control_events import ControlEvent
from conductor.domain.errors import InvalidInput, UnknownJob
from conductor.domain.events import JobEnqueued, RecordedEvent
from conductor.domain.job_row import JobRow
from conductor.web import redaction
from projections.history import trace_id

CANCELLABLE: Final = movable("cancel")
RETRYABLE: Final = movable("retry")
MAX_RUNNING: Final = 500
"""The most held jobs the overview reads to group by worker (one keyset page)."""
PAGE_SIZE: Final = 50
MAX_ID: Final = 2**63 - 1


def _whole(params: Mapping[str, str], name: str, default: int | None, top: int) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= top:
        raise InvalidInput(f"invalid {name} {raw!r}: expected a whole number from 1 to {top}")
    return int(raw)


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value.strip() or None if value is not None else None


def _names(params: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A filter's values: comma-separated, blanks dropped."""
    raw = params.get(name) or ""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@attrs.frozen(kw_only=True)
class Where:
    """Which jobs: the filters a jobs listing shows and a bulk action acts on, the same
    ones, so "retry everything matching this filter" acts on what the page lists. Times
    bound when a job last changed (`updated_at`), as `conductor retry --since` does."""

    statuses: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str], now: dt.datetime | None = None) -> Where:
        statuses = _names(params, "status")
        for status in statuses:
            if status not in STATUSES:
                raise InvalidInput(
                    f"invalid status {status!r}: expected one of {', '.join(STATUSES)}"
                )
        at = now or dt.datetime.now(dt.UTC)
        since, until = _text(params, "since"), _text(params, "until")
        return cls(
            statuses=statuses,
            queues=_names(params, "queue"),
            tasks=_names(params, "task"),
            since=None if since is None else parse_time(since, at, "since"),
            until=None if until is None else parse_time(until, at, "until"),
        )

    @property
    def empty(self) -> bool:
        return not (self.statuses or self.queues or self.tasks or self.since or self.until)

    def params(self) -> dict[str, str]:
        """The filters as query parameters (what a bulk action's form posts back)."""
        found = {
            "status": ",".join(self.statuses),
            "queue": ",".join(self.queues),
            "task": ",".join(self.tasks),
            "since": "" if self.since is None else stamp(self.since),
            "until": "" if self.until is None else stamp(self.until),
        }
        return {name: value for name, value in found.items() if value}

    def kwargs(self) -> dict[str, Any]:
        """As `Conductor.retry_where`/`cancel_where` take them."""
        return {
            "statuses": self.statuses,
            "queues": self.queues,
            "tasks": self.tasks,
            "since": self.since,
            "until": self.until,
        }


@attrs.frozen(kw_only=True)
class JobQuery:
    """A jobs listing: its filters, its page (`before`: the id the page starts below),
    or one job searched by id."""

    where: Where = Where()
    before: int | None = None
    limit: int = PAGE_SIZE
    job_id: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> JobQuery:
        limit = _whole(params, "limit", PAGE_SIZE, MAX_PAGE)
        return cls(
            where=Where.from_params(params),
            before=_whole(params, "before", None, MAX_ID),
            limit=PAGE_SIZE if limit is None else limit,
            job_id=_whole(params, "id", None, MAX_ID),
        )


@attrs.frozen(kw_only=True)
class EventQuery:
    """An audit events query."""

    job_id: int | None = None
    type: str | None = None
    limit: int = PAGE_SIZE

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> EventQuery:
        limit = _whole(params, "limit", PAGE_SIZE, MAX_PAGE)
        return cls(
            job_id=_whole(params, "job", None, MAX_ID),
            type=_text(params, "type"),
            limit=PAGE_SIZE if limit is None else limit,
        )


def job_json(row: JobRow) -> dict[str, Any]:
    """A job row as the API shows it: the payload decoded and redacted."""
    shown: dict[str, Any] = dict(row)
    shown["payload"] = redaction.payload(row["task"], row["payload"])
    shown["priority_name"] = PRIORITY_NAMES.get(row["priority"], str(row["priority"]))
    return shown


def overview(app: Conductor, activity: dict[str, Any]) -> dict[str, Any]:
    """Counts by status and queue, the last hour's `activity`, the workers holding jobs
    (claimed or running, with how many of each) and the tasks with failed jobs."""
    stats = app.stats()
    held = app.page(statuses=("claimed", "in_progress"), limit=MAX_RUNNING).jobs
    workers: dict[str, Counter[str]] = {}
    for row in held:
        workers.setdefault(row["worker"] or "?", Counter())[row["status"]] += 1
    failing = sorted(
        ((name, counts.failed) for name, counts in stats.tasks.items() if counts.failed),
        key=lambda item: (-item[1], item[0]),
    )
    return {
        "stats": stats.as_dict(),
        "queues": queues(app),
        "activity": activity,
        "workers": [
            {"worker": worker, "running": counts["in_progress"], "claimed": counts["claimed"]}
            for worker, counts in sorted(workers.items())
        ],
        "failing": [{"task": name, "failed": n} for name, n in failing],
    }


def jobs_page(app: Conductor, query: JobQuery) -> dict[str, Any]:
    """One page of jobs, newest first, and the query strings of the first and the next
    (older) page; with an id search, that job alone (or none)."""
    where = query.where
    if query.job_id is not None:
        try:
            found = [app.job(query.job_id)]
        except UnknownJob:
            found = []
        return {
            "jobs": [job_json(row) for row in found],
            "total": len(found),
            "filtered": False,
            "filter": {},
            "first": None,
            "next": None,
            "before": None,
        }
    page = app.page(**where.kwargs(), before=query.before, limit=query.limit)
    base = {**where.params(), **({"limit": str(query.limit)} if query.limit != PAGE_SIZE else {})}
    return {
        "jobs": [job_json(row) for row in page.jobs],
        "total": page.total,
        "filtered": not where.empty,
        "filter": where.params(),
        "first": urlencode(base) if query.before is not None else None,
        "next": None if page.before is None else urlencode({**base, "before": page.before}),
        "before": page.before,
    }


def job_detail(app: Conductor, job_id: int) -> dict[str, Any]:
    """One job: its row, every failed attempt with its traceback, its timeline from the
    ledger (with the time between events), its result and trace id."""
    row = app.job(job_id)
    timeline = app.history(job_id)
    outcome = app.outcome(job_id) if row["status"] == "completed" else None
    return {
        **job_json(row),
        "trace_id": trace_id(row["trace"]),
        "result": None if outcome is None else outcome.value,
        "can_cancel": row["status"] in CANCELLABLE,
        "can_retry": row["status"] in RETRYABLE,
        "attempts_failed": [
            {
                "seq": rec.seq,
                "at": rec.at,
                "attempt": failed.attempt,
                "error_type": failed.error_type,
                "message": failed.message,
                "traceback": failed.traceback,
            }
            for rec, failed in app.failures(job_id)
        ],
        "events": [
            {
                "seq": entry.seq,
                "at": entry.at,
                "type": entry.type,
                "since_previous": entry.since_previous,
                "facts": {key: _plain(value) for key, value in entry.facts.items()},
                "trace_id": entry.trace_id,
            }
            for entry in timeline
        ],
    }


def _plain(value: object) -> object:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def queues(app: Conductor) -> list[dict[str, Any]]:
    return [summary.as_json() for summary in app.queues()]


def schedules(app: Conductor) -> list[dict[str, Any]]:
    return [schedule.as_json() for schedule in app.schedules()]


def chain(app: Conductor) -> dict[str, Any]:
    report = app.audit()
    return attrs.asdict(report) | {"ok": report.ok}


def events(app: Conductor, query: EventQuery) -> list[dict[str, Any]]:
    found = app.events(
        job_id=query.job_id,
        types=() if query.type is None else (query.type,),
        limit=query.limit,
    )
    found.reverse()
    return [event_json(rec) for rec in found]


def event_json(rec: RecordedEvent) -> dict[str, Any]:
    """An event as the API shows it: its stored fields, a payload redacted."""
    event = rec.event
    return {
        "seq": rec.seq,
        "job_id": rec.job_id,
        "subject": ":".join(event.subject()) if isinstance(event, ControlEvent) else None,
        "type": rec.type,
        "at": rec.at,
        "data": event_data(rec),
        "trace": rec.trace,
    }


def event_data(rec: RecordedEvent) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(rec.event.encode())
    if isinstance(rec.event, JobEnqueued):
        data["payload"] = redaction.payload(rec.event.task, rec.event.payload)
    return data


def describe(done: Mapping[str, Any]) -> str:
    """One sentence for the page after an action (`done` as the API answers it)."""
    if "action" in done:
        verb = "cancelled" if done["action"] == "cancel" else "retried"
        moved = len(done["done"])
        line = f"{moved} job{'s' if moved != 1 else ''} {verb} by {done['by']}"
        if done["refused"]:
            line += f"; {len(done['refused'])} refused"
        return line + (f" (batch {done['batch']})." if done["batch"] else ".")
    if "concurrency" in done:
        return _described_limits(done)
    subject = f"queue {done['queue']}" if "queue" in done else f"schedule {done['schedule']}"
    state = "paused" if done["paused"] else "resumed"
    if done.get("changed") is False:
        return f"{subject.capitalize()} was already {state}; nothing changed."
    return f"{subject.capitalize()} {state}."


def _described_limits(done: Mapping[str, Any]) -> str:
    """`Queue mail: concurrency 5, rate 100/minute.`, as `conductor queue limit` says it."""
    concurrency = "none" if done["concurrency"] is None else done["concurrency"]
    rate = "none" if done["rate"] is None else f"{done['rate']}/{done['per']}"
    line = f"Queue {done['queue']}: concurrency {concurrency}, rate {rate}"
    return line + ("." if done["changed"] else "; nothing changed.")


def seconds(value: float | None) -> str:
    """A duration for people: `-`, `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    whole = int(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def pretty(value: object, indent: int | None = 2) -> str:
    """A JSON value indented for a <pre>, characters as they are: the template's
    autoescaping makes `<script>` text (Jinja's `tojson` would show it as `\\u003c`)."""
    return json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=True, default=str)
