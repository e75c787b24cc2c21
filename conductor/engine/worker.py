"""Workers: one actor per concurrency slot, each running one attempt at a time.

`execute` is the plain function that runs a handler and turns whatever happens into an
`Outcome`; the actor only routes. After an attempt a worker takes the next job waiting
in the Queue's buffer, when there is one, and runs it next (a `Run` to itself, so other
messages keep their turn); the Queue hears of it in the `Finished` it is sent. A
handler's exception is an attempt failure, never an actor crash. An actor-level fault (a
bug in the worker itself, or `InjectFault` in tests) reaches `on_failure`, which tells the
Supervisor so it can start a fresh actor and have the attempt rescued.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from conductor.domain import context, results
from conductor.domain.clock import Clock
from conductor.domain.decisions import Outcome
from conductor.domain.errors import ResultNotJSON, ResultTooLarge
from conductor.domain.registry import Registry, TaskSpec
from conductor.engine.inbox import ThreadActor
from conductor.engine.messages import (
    Began,
    Dispatch,
    Finished,
    InjectFault,
    LateResult,
    Run,
    WorkerCrashed,
)
from conductor.ledger.base import ClaimedJob
from conductor.observe import tracing
from conductor.observe.conventions import error_type


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def _failure(job: ClaimedJob, error: BaseException, started: float, **extra: Any) -> Outcome:
    tracing.failed(tracing.current_span(), error)
    return Outcome(
        job_id=job.id,
        attempt=job.attempt,
        task=job.task,
        error_type=type(error).__name__,
        error_class=error_type(error),
        message=str(error),
        traceback="".join(traceback.format_exception(error)),
        duration=time.perf_counter() - started,
        jitter=random.random(),  # noqa: S311 - backoff jitter
        **extra,
    )


_SIGNATURES: dict[Callable[..., Any], inspect.Signature] = {}
"""Each handler's signature, read once (`inspect.signature` costs more than a no-op job)."""


def _arguments(spec: TaskSpec, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload minus `task`, checked against the handler's signature up front so
    that a payload the function rejects is told apart from a TypeError inside it."""
    arguments = {key: value for key, value in payload.items() if key != "task"}
    signature = _SIGNATURES.get(spec.function)
    if signature is None:
        signature = _SIGNATURES[spec.function] = inspect.signature(spec.function)
    signature.bind(**arguments)
    return arguments


LateSink = Callable[[Outcome], None]
"""Where the eventual outcome of a timed-out attempt goes (recorded as `result_ignored`)."""


def execute(
    dispatch: Dispatch,
    registry: Registry,
    late: LateSink | None = None,
    result_cap: int = results.DEFAULT_MAX_RESULT_BYTES,
) -> Outcome:
    """Run one attempt, inside its `process` span when tracing is on, and describe what
    happened. The span stays open in the Outcome until the Writer has committed it. The
    handler's return value travels in the Outcome as JSON text of at most `result_cap`
    bytes (`conductor.domain.results`); one that does not fit fails the attempt."""
    job = dispatch.job
    span = tracing.start_process(
        job_id=job.id, queue=job.queue, task=job.task, attempt=job.attempt, traceparent=job.trace
    )
    with tracing.current(span):
        outcome = _execute(dispatch, registry, late, result_cap)
    if span is None:
        return outcome
    return attrs.evolve(outcome, span=span, trace=tracing.traceparent_of(span))


def _execute(
    dispatch: Dispatch, registry: Registry, late: LateSink | None, result_cap: int
) -> Outcome:
    job = dispatch.job
    started = time.perf_counter()
    spec = registry.get(job.task)
    if spec is None:
        known = ", ".join(registry.names()) or "none"
        unknown = LookupError(f"unknown task {job.task!r}; registered tasks: {known}")
        return _failure(job, unknown, started, retryable=False)
    try:
        arguments = _arguments(spec, json.loads(job.payload))
    except TypeError as e:
        misfit = TypeError(f"payload does not fit {job.task}(): {e}")
        return _failure(job, misfit, started, retryable=False, backoff=spec.backoff)
    job_context = context.JobContext(
        job_id=job.id,
        attempt=job.attempt,
        task=job.task,
        queue=job.queue,
        cancel_event=dispatch.cancel,
    )
    token = context.bind(job_context)
    try:
        if spec.timeout is None:
            value = _call(spec, arguments)
        else:
            value = _run_with_timeout(spec, arguments, dispatch, job_context, started, late)
    # BaseException too: a handler calling sys.exit() fails its attempt, not the worker.
    except BaseException as e:  # noqa: BLE001
        return _failure(job, e, started, backoff=spec.backoff, interrupted=job_context.interrupted)
    finally:
        context.unbind(token)
    try:
        # None (most handlers) costs one comparison: no encoding, nothing stored.
        result = None if value is None else results.encode(value, result_cap)
    except (ResultNotJSON, ResultTooLarge) as e:
        # Not retried: the same code returns the same kind of value again.
        return _failure(job, e, started, retryable=False, interrupted=job_context.interrupted)
    return Outcome(
        job_id=job.id,
        attempt=job.attempt,
        task=job.task,
        duration=time.perf_counter() - started,
        backoff=spec.backoff,
        interrupted=job_context.interrupted,
        result=result,
    )


def _call(spec: TaskSpec, arguments: dict[str, Any]) -> Any:
    result = spec.function(**arguments)
    if inspect.iscoroutine(result):
        return asyncio.run(result)  # an `async def` task runs to completion on its own loop
    return result


def _run_with_timeout(
    spec: TaskSpec,
    arguments: dict[str, Any],
    dispatch: Dispatch,
    job_context: context.JobContext,
    started: float,
    late: LateSink | None,
) -> Any:
    """Run the handler in its own thread and stop waiting after the task's timeout.

    Python cannot kill a thread: on timeout the attempt fails and its slot is freed, the
    job's cancellation flag is set so a cooperative handler stops, and a handler that
    ignores it finishes in the background; its eventual outcome goes to `late`, which
    records it as `result_ignored` (the attempt no longer holds the job).
    """
    assert spec.timeout is not None
    errors: list[BaseException] = []
    values: list[Any] = []
    run = contextvars.copy_context().run
    timed_out = threading.Event()
    job = dispatch.job

    def target() -> None:
        try:
            values.append(run(_call, spec, arguments))
        except BaseException as e:  # noqa: BLE001 - re-raised in the worker below
            errors.append(e)
        if timed_out.is_set() and late is not None:
            interrupted = job_context.interrupted
            late(
                _failure(job, errors[0], started, interrupted=interrupted)
                if errors
                else Outcome(
                    job_id=job.id, attempt=job.attempt, task=job.task, interrupted=interrupted
                )
            )

    thread = threading.Thread(target=target, name=f"task-{dispatch.job.id}", daemon=True)
    thread.start()
    thread.join(spec.timeout.total_seconds())
    if thread.is_alive():
        timed_out.set()
        dispatch.cancel.set()
        raise TimeoutError(f"timeout after {_format_seconds(spec.timeout.total_seconds())}")
    if errors:
        raise errors[0]
    return values[0]


class Worker(ThreadActor):
    # Daemon threads: a handler still running when the process exits after its grace
    # period must not keep the process alive (its attempt was released first).
    use_daemon_thread = True

    def __init__(
        self,
        slot: str,
        queue: pykka.ActorRef[Any],
        supervisor: pykka.ActorRef[Any],
        registry: Registry,
        waiting: deque[Dispatch],
        clock: Clock,
        result_cap: int = results.DEFAULT_MAX_RESULT_BYTES,
    ) -> None:
        """`waiting` is the Queue's buffer of claimed jobs, shared (see `queue.py`)."""
        super().__init__()
        self._result_cap = result_cap
        self._clock = clock
        self.slot = slot
        self._waiting = waiting
        self._queue = queue
        self._supervisor = supervisor
        self._registry = registry
        self._current: ClaimedJob | None = None
        self._fault_armed = False

    def on_receive(self, message: Any) -> None:
        if isinstance(message, Run):
            self._current = message.dispatch.job
            if self._fault_armed:
                raise RuntimeError(f"injected actor fault in worker {self.slot}")
            job = message.dispatch.job
            # The `run_started` fact, stamped now: the Writer commits it with the next batch.
            self._queue.tell(Began(job_id=job.id, attempt=job.attempt, at=self._clock.now()))
            outcome = execute(message.dispatch, self._registry, self._late, self._result_cap)
            self._current = None
            try:
                took: Dispatch | None = self._waiting.popleft()
            except IndexError:
                took = None
            self._queue.tell(Finished(self.slot, outcome, took))
            if took is not None:
                self.actor_ref.tell(Run(took))
        elif isinstance(message, InjectFault):
            self._fault_armed = True

    def _late(self, outcome: Outcome) -> None:
        self._queue.tell(LateResult(outcome))

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: Any,
    ) -> None:
        self._supervisor.tell(
            WorkerCrashed(slot=self.slot, job=self._current, error=repr(exception_value))
        )
