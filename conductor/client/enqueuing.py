"""Enqueue, for `Conductor`: one job or many, with the task's defaults, unique keys and
transactional enqueue on PostgreSQL.

A mixin so the facade (`conductor.client`) stays a table of contents: `Conductor`
inherits these methods and provides the attributes declared below.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from conductor.domain import decisions as decide
from conductor.domain import unique
from conductor.domain.clock import Clock
from conductor.domain.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    Settings,
    parse_priority,
)
from conductor.domain.errors import InvalidInput
from conductor.domain.payloads import Payload, parse_payload
from conductor.domain.reports import Enqueued
from conductor.ledger.base import Ledger
from conductor.observe import observed

if TYPE_CHECKING:
    from conductor.domain.registry import TaskSpec

PayloadInput = Payload | Mapping[str, Any] | str | bytes
UniqueKey = str | Callable[[dict[str, Any]], str | None]


class EnqueueOptions(TypedDict, total=False):
    """The options of an enqueue as `Enqueuing.enqueue` takes them (all but `connection`),
    for facades that pass them on unchanged (`conductor.client.aio`)."""

    queue: str | None
    priority: str | int | None
    max_retries: int | None
    delay: dt.timedelta | None
    at: dt.datetime | None
    trace: str | None
    unique_key: UniqueKey | None
    unique_for: dt.timedelta | None


"""A unique key, or a function of the payload (as a dict) giving one (None: no key)."""

T = TypeVar("T")


def _first(*choices: T | None) -> T:
    """The first option that was given: explicit, then the task's, then conductor's."""
    for choice in choices:
        if choice is not None:
            return choice
    raise AssertionError("the last choice is always a default")


@contextlib.contextmanager
def _no_span() -> Iterator[None]:
    yield None


def _key(given: UniqueKey | None, payload: Payload) -> str | None:
    """The job's unique key: as given, or computed from its payload."""
    if given is None or isinstance(given, str):
        return None if given is None else unique.check_key(given)
    key = given(json.loads(payload.text))
    if key is not None and not isinstance(key, str):
        raise InvalidInput(
            f"invalid unique key {key!r} from the unique_key function of task "
            f"{payload.task!r}: expected a string or None"
        )
    return None if key is None else unique.check_key(key)


class Enqueuing:
    """`Conductor.enqueue`, `enqueue_many` and `enqueue_each`."""

    ledger: Ledger
    clock: Clock
    settings: Settings

    def _payload(self, raw: PayloadInput) -> Payload:
        if isinstance(raw, Payload):
            return raw
        return parse_payload(
            dict(raw) if isinstance(raw, Mapping) else raw, self.settings.max_payload_bytes
        )

    def enqueue(
        self,
        payload: PayloadInput,
        *,
        queue: str | None = None,
        priority: str | int | None = None,
        max_retries: int | None = None,
        delay: dt.timedelta | None = None,
        at: dt.datetime | None = None,
        trace: str | None = None,
        connection: object | None = None,
        unique_key: UniqueKey | None = None,
        unique_for: dt.timedelta | None = None,
    ) -> int:
        """Enqueue one job and return its id. The payload is a JSON object naming its task.

        Options left out take the registered task's defaults (`@task(queue=..., ...)`)
        when this process knows the task, else conductor's (queue `default`, priority
        `medium`, 3 retries, no unique key). A priority is a name (`high`, `medium`,
        `low`) or a rank from -99 to 101, lower sooner (`config.PRIORITY_RANKS`).

        With `unique_key`, the job is enqueued only if no job holds that key: one still
        pending or running, or with `unique_for`, one enqueued within that period,
        whatever its state. Otherwise nothing is appended and the id returned is the
        existing job's (`enqueue_each` says which it was). A function of the payload may
        stand for the key.

        With `connection` (a psycopg 3 connection to a PostgreSQL ledger's database), the
        job is written inside that connection's open transaction and shares its fate: it
        exists once the caller commits, and a rollback leaves no job and no event
        (transactional enqueue, docs/operations.md). Not with a unique key.
        """
        return self.enqueue_many(
            [payload],
            queue=queue,
            priority=priority,
            max_retries=max_retries,
            delay=delay,
            at=at,
            trace=trace,
            connection=connection,
            unique_key=unique_key,
            unique_for=unique_for,
        )[0]

    def enqueue_many(
        self,
        payloads: Iterable[PayloadInput],
        *,
        queue: str | None = None,
        priority: str | int | None = None,
        max_retries: int | None = None,
        delay: dt.timedelta | None = None,
        at: dt.datetime | None = None,
        trace: str | None = None,
        connection: object | None = None,
        unique_key: UniqueKey | None = None,
        unique_for: dt.timedelta | None = None,
    ) -> list[int]:
        """Enqueue many jobs in one transaction: all of them, or none if any is invalid.
        With `connection`, in that connection's transaction; with `unique_key` (a key for
        each job: most useful as a function of the payload), a duplicate's id is the
        existing job's (see `enqueue`)."""
        return [
            done.id
            for done in self.enqueue_each(
                payloads,
                queue=queue,
                priority=priority,
                max_retries=max_retries,
                delay=delay,
                at=at,
                trace=trace,
                connection=connection,
                unique_key=unique_key,
                unique_for=unique_for,
            )
        ]

    def enqueue_each(
        self,
        payloads: Iterable[PayloadInput],
        *,
        queue: str | None = None,
        priority: str | int | None = None,
        max_retries: int | None = None,
        delay: dt.timedelta | None = None,
        at: dt.datetime | None = None,
        trace: str | None = None,
        connection: object | None = None,
        unique_key: UniqueKey | None = None,
        unique_for: dt.timedelta | None = None,
    ) -> list[Enqueued]:
        """`enqueue_many`, saying for each payload whether it made a new job or was a
        duplicate of an existing one (`Enqueued`)."""
        if delay is not None and at is not None:
            raise InvalidInput("invalid schedule: got both a delay and a time; expected one")
        if delay is not None and delay < dt.timedelta(0):
            raise InvalidInput(f"invalid delay {delay}: expected a non-negative duration")
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        if priority is not None:
            parse_priority(priority)
        period = None if unique_for is None else unique.check_period(unique_for)
        # Imported before the stamp: the `enqueued` time is when the job could first be
        # picked up, so nothing that can wait (imports, parsing) may sit between the stamp
        # and the commit, nor between the commit and the wake-up.
        from conductor.domain.registry import REGISTRY
        from conductor.ledger import wakeup

        if connection is not None and unique_key is not None:
            raise InvalidInput(_NO_KEY_WITHIN)
        planned = []
        for index, raw in enumerate(payloads, start=1):
            try:
                parsed = self._payload(raw)
                spec = REGISTRY.get(parsed.task)
                key, scope = _uniqueness(parsed, spec, unique_key, period, connection)
                planned.append((parsed, *_options(spec, queue, priority, max_retries), key, scope))
            except InvalidInput as e:
                raise InvalidInput(f"item {index}: {e}") from None
        if trace is None and observed.may_be("trace"):
            from conductor.observe import tracing

            producing: Any = tracing.producer(plan[1] for plan in planned)
        else:
            producing = _no_span()
        with producing as span:
            traceparent = trace if span is None else span.traceparent
            now = self.clock.now()
            run_at = now + delay if delay is not None else at
            events = [
                decide.enqueue(
                    parsed,
                    queue=job_queue,
                    priority=level,
                    max_retries=retries,
                    run_at=run_at,
                    now=now,
                    trace=traceparent,
                    unique_key=key,
                    unique_for=scope,
                )
                for parsed, job_queue, level, retries, key, scope in planned
            ]
            if connection is not None:
                # Not in the log until the caller commits: no wake-up or count yet (the
                # commit's NOTIFY wakes the workers, whose claim ingests the jobs).
                done = [
                    Enqueued(id=job_id, duplicate=False, unique_key=None)
                    for job_id in self.ledger.enqueue_within(connection, events)
                ]
                recorded = []
            else:
                admitted = self.ledger.enqueue(events)
                done = [
                    Enqueued(id=one.job_id, duplicate=one.duplicate, unique_key=plan[4])
                    for one, plan in zip(admitted, planned, strict=True)
                ]
                recorded = [one.recorded for one in admitted if one.recorded is not None]
            if span is not None:
                span.sent([one.id for one in done])
        if recorded:
            wakeup.notify(self.settings.db)
            observed.count_appended(recorded)
        return done


_NO_KEY_WITHIN = (
    "cannot enqueue a job with a unique key on your own connection: the key is checked "
    "under the log's write lock, which a transaction of yours must not hold; expected a "
    "plain enqueue (no connection=) for a unique job"
)


def _uniqueness(
    payload: Payload,
    spec: TaskSpec | None,
    given: UniqueKey | None,
    period: int | None,
    connection: object | None,
) -> tuple[str | None, int | None]:
    """A job's unique key and scope: as given, else its task's, else none."""
    if given is None and spec is not None:
        given = spec.unique_key
    if given is None and period is not None:
        raise InvalidInput("invalid unique_for: given without a unique key; expected a key too")
    key = _key(given, payload)
    if key is None:
        return None, None
    if connection is not None:
        raise InvalidInput(_NO_KEY_WITHIN)
    return key, period if period is not None or spec is None else spec.unique_for


def _options(
    spec: TaskSpec | None,
    queue: str | None,
    priority: str | int | None,
    max_retries: int | None,
) -> tuple[str, int, int]:
    """A job's queue, priority level and retries: given, else its task's, else conductor's."""
    return (
        _first(queue, spec.queue if spec else None, DEFAULT_QUEUE),
        parse_priority(
            priority
            if priority is not None
            else _first(spec.priority if spec else None, DEFAULT_PRIORITY)
        ),
        _first(max_retries, spec.max_retries if spec else None, DEFAULT_MAX_RETRIES),
    )
