"""The embedded worker and the ASGI lifespan, on both backends: jobs run in the
application's process, the server's signals stay the server's, shutdown is graceful
(nothing lost, nothing run twice), and bad configuration is one error naming the setting."""

from __future__ import annotations

import asyncio
import signal
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conductor import AsyncConductor, Conductor, ConfigurationError
from conductor.integrations.asgi import embedded_worker, lifespan
from conductor.integrations.embedded import OPTIONS, worker_config
from tests.integrations.support import no_conductor_threads, registry, until

QUICK: dict[str, Any] = {"poll_interval": 0.2, "maintenance_interval": 0.2}


def test_the_lifespan_runs_jobs_enqueued_by_requests_and_leaves_the_servers_signals_alone(
    db: str,
) -> None:
    def handlers() -> dict[int, Any]:
        return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    async def main() -> tuple[object, dict[int, Any], dict[int, Any], dict[int, Any]]:
        before = handlers()  # the server's (here asyncio.run's own SIGINT handler)
        async with lifespan(db, registry=registry(), concurrency=2, **QUICK)(None) as state:
            app: AsyncConductor = state["conductor"]
            job = await app.enqueue({"task": "echo", "value": {"hello": "world"}})
            value = await app.result(job, timeout=None)
            during = handlers()
        return value, before, during, handlers()

    value, before, during, after = asyncio.run(main())
    assert value == {"hello": "world"}
    assert during == before
    assert after == before
    assert no_conductor_threads()


def test_shutdown_lets_the_running_job_finish_and_gives_back_the_one_not_started(
    db: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"

    async def main() -> int:
        async with AsyncConductor(db) as app:
            worker = embedded_worker(db, registry=registry(), concurrency=1, grace=60, **QUICK)
            await worker.start()
            running = await app.enqueue({"task": "gated", "gate": str(gate), "value": 1})
            await until(lambda: _status(app, running, "in_progress"), "the first job to run")
            waiting = await app.enqueue({"task": "echo", "value": 2})
            engine = worker.engine
            assert engine is not None
            stopping = asyncio.create_task(worker.stop())
            await until(_is_set(engine.stop_requested), "the stop to be asked for")
            assert not stopping.done()  # the running job holds the shutdown up
            gate.touch()
            code = await stopping
            assert not worker.running
            assert (await app.job(running))["status"] == "completed"
            assert (await app.job(waiting))["status"] == "pending"
            return code

    assert asyncio.run(main()) == 0
    with Conductor(db) as app:
        first, second = (app.ledger.history(job) for job in (1, 2))
        assert [e.type for e in first].count("run_started") == 1
        assert "run_started" not in [e.type for e in second]

    async def again() -> object:  # the job given back is anyone's, and runs once
        async with (
            AsyncConductor(db) as app,
            embedded_worker(db, registry=registry(), **QUICK),
        ):
            return await app.result(2, timeout=None)

    assert asyncio.run(again()) == 2
    with Conductor(db) as app:
        assert [e.type for e in app.ledger.history(2)].count("run_started") == 1


async def _status(app: AsyncConductor, job: int, status: str) -> bool:
    return (await app.job(job))["status"] == status


def _is_set(event: Any) -> Any:
    async def check() -> bool:
        return bool(event.is_set())

    return check


BAD: list[tuple[dict[str, Any], str]] = [
    ({"concurency": 2}, r"unknown option 'concurency'; expected one of concurrency, grace,"),
    ({"concurrency": 0}, r"invalid concurrency 0: expected 1 to 1024"),
    ({"concurrency": "4"}, r"invalid concurrency '4': expected a whole number"),
    ({"queues": "mail,,bulk"}, r"invalid queue '': expected 1-100 letters"),
    ({"grace": "soon"}, r"invalid grace 'soon': expected a non-negative number"),
    ({"poll_interval": -1}, r"invalid poll_interval -1: expected seconds, more than 0"),
    ({"app": "no_such_module_here"}, r"cannot import the embedded worker's app= 'no_such"),
    ({"threads": 0}, r"invalid threads 0: expected a whole number, at least 1"),
    ({"worker": False, "concurrency": 2}, r"worker option 'concurrency' given with worker=False"),
]


@pytest.mark.parametrize(("options", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_option_fails_the_start_with_one_error_naming_it_and_opens_nothing(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    db = tmp_path / "never.db"

    async def main() -> None:
        async with lifespan(str(db), **options)(None):
            pytest.fail("started despite a bad option")

    with pytest.raises(ConfigurationError, match=message) as failed:
        asyncio.run(main())
    _one_short_error(failed.value)
    assert not db.exists()


def test_a_database_that_cannot_be_used_fails_the_start_naming_the_setting(
    db: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "sqlite":
        missing = str(tmp_path / "no-such-dir" / "app.db")
        said = r"cannot create .*no-such-dir/app\.db"
    else:
        missing = db.replace(
            db.rsplit("/", 1)[1].split("?", maxsplit=1)[0], "conductor_no_such_database"
        )
        said = r'database "conductor_no_such_database" does not exist'
    monkeypatch.setenv("CONDUCTOR_DB", missing)

    async def main() -> None:
        async with lifespan(registry=registry())(None):
            pytest.fail("started on a database that cannot be used")

    with pytest.raises(
        ConfigurationError, match=rf"setting \(CONDUCTOR_DB\) cannot be used: .*{said}"
    ):
        asyncio.run(main())

    async def refused() -> None:  # create=False: a database that does not exist yet
        async with embedded_worker(str(tmp_path / "absent.db"), create=False):
            pytest.fail("started on a missing database")

    with pytest.raises(ConfigurationError, match=r"setting \(db=\) cannot be used") as failed:
        asyncio.run(refused())
    _one_short_error(failed.value)
    assert not (tmp_path / "absent.db").exists()
    assert no_conductor_threads()


def _one_short_error(error: BaseException) -> None:
    """The error stands alone (no chained driver exception) and its traceback ends where
    conductor enters, not deep inside it: the server prints it at start-up, and its last
    line must be all that matters."""
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    innermost = traceback.extract_tb(error.__traceback__)[-1]
    assert innermost.name == "__aenter__"
    assert "conductor/integrations/" in innermost.filename


@given(name=st.from_regex(r"[a-z_]{1,20}", fullmatch=True).filter(lambda n: n not in OPTIONS))
def test_any_option_the_worker_does_not_have_is_refused_by_its_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"unknown option '{name}'; expected one of"):
        worker_config({"concurrency": 2, name: 1})


@given(
    concurrency=st.integers(-(10**6), 10**6), queues=st.lists(st.sampled_from("abc"), min_size=1)
)
def test_an_option_in_range_is_taken_as_given_and_one_out_of_range_is_refused_by_name(
    concurrency: int, queues: list[str]
) -> None:
    if 1 <= concurrency <= 1024:
        config = worker_config({"concurrency": concurrency, "queues": ",".join(queues)})
        assert (config.concurrency, config.queues) == (concurrency, tuple(queues))
    else:
        with pytest.raises(ConfigurationError, match=rf"invalid concurrency {concurrency}:"):
            worker_config({"concurrency": concurrency, "queues": queues})
