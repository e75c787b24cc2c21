"""conductor in ASGI applications (FastAPI, Starlette): a lifespan that opens an
`AsyncConductor` for the requests and, for small deployments, runs an embedded worker.

```python
from fastapi import FastAPI, Request
from conductor.integrations.asgi import lifespan

api = FastAPI(lifespan=lifespan("conductor.db", concurrency=4))

@api.post("/signup")
async def signup(request: Request) -> dict[str, int]:
    job = await request.state.conductor.enqueue({"task": "send_email", "email": "a@b.c"})
    return {"job": job}
```

It imports no web framework: a lifespan is an async context manager factory, which
Starlette, FastAPI and any framework following Starlette's `lifespan=` accept. The state
it yields (`{"conductor": AsyncConductor}`) is what Starlette hands each request as
`request.state`. Inside a lifespan of your own, use `embedded_worker` and `AsyncConductor`
directly (docs/asgi.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from conductor.client.aio import DEFAULT_THREADS, AsyncConductor
from conductor.domain.config import Settings
from conductor.domain.errors import ConfigurationError, InvalidInput, LedgerError
from conductor.domain.registry import Registry
from conductor.integrations.embedded import (
    EmbeddedWorker,
    WorkerOptions,
    embedded_worker,
    resolve_settings,
    unusable_db,
)

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["EmbeddedWorker", "WorkerOptions", "embedded_worker", "lifespan", "open_conductor"]

Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[dict[str, Any]]]
"""What `Starlette(lifespan=...)` takes: a function of the application giving an async
context manager, whose value becomes the requests' state."""


def lifespan(
    db: str | None = None,
    *,
    worker: bool = True,
    app: str | Sequence[str] | None = None,
    registry: Registry | None = None,
    settings: Settings | None = None,
    create: bool = True,
    threads: int = DEFAULT_THREADS,
    **options: Unpack[WorkerOptions],
) -> Lifespan:
    """A lifespan for `FastAPI(lifespan=...)` or `Starlette(lifespan=...)`.

    At start-up it opens an `AsyncConductor` on the ledger (`db`, else `CONDUCTOR_DB`,
    else `./conductor.db`; or `settings`), which requests reach as
    `request.state.conductor`, and with `worker=True` (the default) starts an embedded
    worker on it (`app`, `registry`, `options`: as `embedded_worker`). At shutdown the
    worker stops gracefully, then the facade closes. `worker=False` for an application
    that only enqueues while `conductor worker` processes run the jobs.

    Bad configuration fails the start-up with one `ConfigurationError` naming the
    setting; nothing is checked before then (importing the application never fails).
    """

    def run(_asgi_app: Any) -> _Running:
        if not worker and options:
            problem: ConfigurationError | None = ConfigurationError(
                f"conductor lifespan: worker option {sorted(options)[0]!r} given with "
                "worker=False; expected worker=True, or no worker options"
            )
        else:
            problem = None

        async def enter(stack: contextlib.AsyncExitStack) -> dict[str, Any]:
            if problem is not None:
                raise problem
            resolved = resolve_settings(db, settings)
            running = embedded_worker(
                app=app, registry=registry, settings=resolved, create=create, **options
            )
            if worker:
                running.check()  # a bad option fails before the database is opened
            opening = open_conductor(
                db, settings=resolved, given=settings, create=create, threads=threads
            )
            conductor = await stack.enter_async_context(opening)
            if worker:
                await stack.enter_async_context(running)
            return {"conductor": conductor}

        return _Running(enter)

    return run


class _Running:
    """One run of the application: what `lifespan(...)(app)` returns. A class rather than
    a generator, so that a configuration error fails the start-up with a traceback of two
    frames (the server's and this one) above its one line, not the whole way down."""

    def __init__(self, enter: Callable[[contextlib.AsyncExitStack], Awaitable[dict[str, Any]]]):
        self._enter = enter
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> dict[str, Any]:
        try:
            return await self._enter(self._stack)
        except BaseException as e:
            await self._stack.aclose()
            if isinstance(e, ConfigurationError):
                raise e.with_traceback(None) from None
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()


@contextlib.asynccontextmanager
async def open_conductor(
    db: str | None = None,
    *,
    settings: Settings | None = None,
    given: Settings | None = None,
    create: bool = True,
    threads: int = DEFAULT_THREADS,
) -> AsyncIterator[AsyncConductor]:
    """An open `AsyncConductor`, with a missing or unusable database (or a bad `threads`)
    reported as one `ConfigurationError` naming the setting; closed on exit."""
    resolved = settings or resolve_settings(db, None)
    try:
        conductor = AsyncConductor(settings=resolved, create=create, threads=threads)
    except InvalidInput as e:
        raise ConfigurationError(f"conductor: {e}") from None
    try:
        await conductor.open()
    except LedgerError as e:
        await conductor.close()
        raise ConfigurationError(unusable_db(db, given, e)) from None
    try:
        yield conductor
    finally:
        await conductor.close()
