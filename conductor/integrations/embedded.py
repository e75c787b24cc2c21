"""An embedded worker: the engine of `conductor worker`, run inside an application's own
process, started and stopped from its event loop.

For small deployments, where a second process to run and watch is more than the work
deserves. The engine runs on threads of its own (its actors, and one thread for its main
loop, which sleeps on the wake-up socket), so the event loop only awaits its start and
its stop. It installs **no signal handlers**: the server owns SIGINT and SIGTERM, and
stopping the application (the lifespan's shutdown) is what stops the worker, gracefully,
by the rules of `conductor worker`: stop claiming, give back prefetched jobs, let running
attempts finish within `grace`, release the rest (`released` events, so any worker takes
them at once). No job is lost, none runs twice.

Bad configuration - an unknown option, a malformed value, a database that is missing or
cannot be written, an `app` module that does not import - raises one `ConfigurationError`
when the worker starts, naming the setting and what is expected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypedDict, TypeVar

from conductor.domain.config import Settings, WorkerConfig, parse_duration
from conductor.domain.errors import (
    ConductorError,
    ConfigurationError,
    InvalidInput,
    LedgerError,
)
from conductor.domain.registry import REGISTRY, Registry, load_app
from conductor.engine.runtime import Engine
from conductor.ledger.base import Ledger
from conductor.ledger.open import open_ledger
from conductor.observe import logs

if TYPE_CHECKING:
    from typing import Unpack

T = TypeVar("T")

WHO: Final = "conductor embedded worker"
"""How the errors of this module begin: which part of the application is misconfigured."""


class WorkerOptions(TypedDict, total=False):
    """The options of an embedded worker, as `conductor worker` has them (see
    docs/operations.md). Durations are seconds, a `timedelta` or text such as `30s`."""

    concurrency: int
    queues: str | Sequence[str]
    prefetch: int | None
    lease: float | dt.timedelta | str
    grace: float | dt.timedelta | str
    poll_interval: float
    maintenance_interval: float


OPTIONS: Final = tuple(sorted(WorkerOptions.__optional_keys__))
_DURATIONS: Final = ("lease", "grace")
_SECONDS: Final = ("poll_interval", "maintenance_interval")


def worker_config(options: Mapping[str, object]) -> WorkerConfig:
    """The `WorkerConfig` of `options`; `ConfigurationError` naming the first bad one."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"{WHO}: unknown option {unknown[0]!r}; expected one of {', '.join(OPTIONS)}"
        )
    given: dict[str, Any] = {}
    for name, value in options.items():
        given[name] = _option(name, value)
    try:
        return WorkerConfig(**given)
    except InvalidInput as e:
        raise ConfigurationError(f"{WHO}: {e}") from None


def _option(name: str, value: object) -> object:
    bad = ConfigurationError(f"{WHO}: invalid {name} {value!r}: expected {_EXPECTED[name]}")
    if name in ("concurrency", "prefetch"):
        if (value is None and name == "prefetch") or (
            isinstance(value, int) and not isinstance(value, bool)
        ):
            return value
        raise bad
    if name == "queues":
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, Sequence) or not all(isinstance(q, str) for q in names):
            raise bad
        return tuple(q.strip() for q in names)
    if name in _DURATIONS:
        if isinstance(value, dt.timedelta):
            return value
        if isinstance(value, str):
            try:
                return parse_duration(value, name)
            except InvalidInput as e:
                raise ConfigurationError(f"{WHO}: {e}") from None
        value = _seconds(value, bad)
        return dt.timedelta(seconds=float(value))
    return _seconds(value, bad)


def _seconds(value: object, bad: ConfigurationError) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 86_400:
        return float(value)
    raise bad


_EXPECTED: Final = {
    "concurrency": "a whole number from 1 to 1024",
    "prefetch": "a whole number from 0 to 10000, or None to adapt it",
    "queues": "queue names, as a list or comma-separated text",
    "lease": "seconds, a timedelta or a duration such as 30s",
    "grace": "seconds, a timedelta or a duration such as 30s",
    "poll_interval": "seconds, more than 0",
    "maintenance_interval": "seconds, more than 0",
}


def resolve_settings(db: str | None, settings: Settings | None) -> Settings:
    """The settings an integration runs with: given, or from `db` and `CONDUCTOR_*`."""
    if settings is not None:
        return settings
    try:
        return Settings.from_env(db)
    except InvalidInput as e:
        raise ConfigurationError(f"conductor: {e}") from None


def unusable_db(db: str | None, settings: Settings | None, error: LedgerError) -> str:
    """The message for a database that cannot be used, naming where the setting came from
    (the error itself names the database, without a password)."""
    if settings is not None:
        source = "settings.db"
    elif db is not None:
        source = "db="
    elif os.environ.get("CONDUCTOR_DB"):
        source = "CONDUCTOR_DB"
    else:
        source = "the default ./conductor.db; set db= or CONDUCTOR_DB"
    return f"conductor: the database setting ({source}) cannot be used: {error}"


class EmbeddedWorker:
    """An async context manager running an `Engine` in this process (see the module's
    docstring); build it with `embedded_worker(...)`."""

    def __init__(
        self,
        db: str | None,
        *,
        app: str | Sequence[str] | None,
        registry: Registry | None,
        settings: Settings | None,
        create: bool,
        options: Mapping[str, object],
    ) -> None:
        self._db = db
        self._app = app
        self._registry = registry or REGISTRY
        self._given = settings
        self._create = create
        self._options = dict(options)
        self.engine: Engine | None = None
        """The running engine, from start until stop."""
        self.exit_code: int | None = None
        """0 after a clean stop; 1 when the engine stopped after a failure (its log says
        why); None while it runs or before it starts."""
        self._done: asyncio.Future[int] | None = None

    @property
    def running(self) -> bool:
        """Whether the engine runs (False before start, after stop, or if it stopped on
        its own after a failure, such as a database that became unwritable)."""
        return self._done is not None and not self._done.done()

    async def __aenter__(self) -> EmbeddedWorker:
        try:
            await self.start()
        except ConfigurationError as e:
            raise e.with_traceback(None) from None  # its one line says it all
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def check(self) -> tuple[Settings, WorkerConfig]:
        """The settings and options, checked, and the `app` modules imported, without
        touching the database: `ConfigurationError` naming the first bad setting."""
        settings = resolve_settings(self._db, self._given)
        config = worker_config(self._options)
        modules = [self._app] if isinstance(self._app, str) else list(self._app or ())
        for module in modules:
            try:
                load_app(module, "the embedded worker's app=")
            except InvalidInput as e:
                raise ConfigurationError(f"{WHO}: {e}") from None
        return settings, config

    async def start(self) -> None:
        """Check the configuration, open (or create) the database, start the engine."""
        if self._done is not None:
            raise ConfigurationError(f"{WHO}: already started; expected one start per worker")
        settings, config = self.check()
        create = self._create

        def opener(given: Settings) -> Ledger:
            return open_ledger(given, create=create)

        engine = Engine(settings, config, registry=self._registry, open_ledger=opener)
        starting = _in_thread(lambda: _start(engine), "conductor-start")
        try:
            await asyncio.shield(asyncio.wrap_future(starting))
        except LedgerError as e:
            raise ConfigurationError(unusable_db(self._db, self._given, e)) from None
        except ConductorError as e:  # a schedule declared in code that the ledger refuses
            raise ConfigurationError(f"{WHO}: {e}") from None
        except asyncio.CancelledError:
            # The application gave up starting: the engine may be half way; stop it once
            # it is up, releasing anything it took.
            engine.request_stop(force=True)
            _in_thread(lambda: _abandon(engine, starting), "conductor-stop")
            raise
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._done = done
        self.engine = engine
        logs.note(
            f"embedded worker starting: queues={','.join(config.queues)} "
            f"concurrency={config.concurrency}"
        )
        _in_thread(lambda: _run(engine, loop, done), "conductor-engine")

    async def stop(self) -> int:
        """Stop gracefully (the rules of `conductor worker` on SIGTERM) and return the
        exit code; cancelling the wait forces the stop (running attempts are released at
        once, as a second signal does)."""
        engine, done = self.engine, self._done
        if engine is None or done is None:
            return self.exit_code or 0
        engine.request_stop()
        try:
            code = await asyncio.shield(done)
        except asyncio.CancelledError:
            engine.request_stop(force=True)
            await asyncio.shield(done)
            raise
        finally:
            self.engine = None
        self.exit_code = code
        return code


def embedded_worker(
    db: str | None = None,
    *,
    app: str | Sequence[str] | None = None,
    registry: Registry | None = None,
    settings: Settings | None = None,
    create: bool = True,
    **options: Unpack[WorkerOptions],
) -> EmbeddedWorker:
    """A worker to run inside this process: `async with embedded_worker(...):`.

    `db` (else `CONDUCTOR_DB`, else `./conductor.db`) or `settings` say which ledger;
    `app` names modules to import so their tasks register (as `conductor worker --app`);
    `registry` is the tasks' registry (the global one by default). `create=False` refuses
    a database that does not exist yet. `options` are `WorkerOptions`: `concurrency`,
    `queues`, `prefetch`, `lease`, `grace`, `poll_interval`, `maintenance_interval`.
    Nothing is checked until it starts."""
    return EmbeddedWorker(
        db, app=app, registry=registry, settings=settings, create=create, options=options
    )


def _start(engine: Engine) -> None:
    try:
        engine.prepare()
        engine.start()
    except BaseException:
        engine.close()
        raise


def _abandon(engine: Engine, starting: concurrent.futures.Future[None]) -> None:
    if starting.exception() is None:  # it started: run its (forced) shutdown
        try:
            engine.run()
        finally:
            engine.close()


def _run(engine: Engine, loop: asyncio.AbstractEventLoop, done: asyncio.Future[int]) -> None:
    try:
        code = engine.run()
    except Exception as e:  # noqa: BLE001 - a database that became unusable, said once
        logs.note(f"embedded worker stopped: {e}", warning=True)
        code = 1
    finally:
        engine.close()
    if code:
        logs.note(f"embedded worker stopped with exit code {code}", warning=True)
    with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for this worker
        loop.call_soon_threadsafe(_settle, done, code)


def _settle(done: asyncio.Future[int], code: int) -> None:
    if not done.done():
        done.set_result(code)


def _in_thread(work: Callable[[], T], name: str) -> concurrent.futures.Future[T]:
    """`work()` in a thread of its own (not the loop's executor: the engine's main loop
    runs for the application's whole life)."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as e:  # noqa: BLE001 - the awaiting coroutine receives it
            future.set_exception(e)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
