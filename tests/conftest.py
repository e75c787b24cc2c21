"""Shared fixtures: a real database (a SQLite file on disk, or a schema on the real
PostgreSQL server) and the installed `conductor` executable.

A test that asks for `db` runs once per backend (`[sqlite]`, `[postgres]`), as River's
driver suite does: the engine and reliability suites hold every backend to the same
tests. A test about SQLite itself (its files, WAL, locks, fault injection) is marked
`@pytest.mark.sqlite_only("why")` and runs on SQLite only; `db_path` is its file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, settings

from conductor import Conductor, ManualClock
from conductor.domain.config import Settings

# Hypothesis' default 200 ms deadline measures the machine, not the rule: a loaded 2-core
# machine (or a parallel worker's garbage collection) pushes one example past it.
settings.register_profile("conductor", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("conductor")


PG_SERVER = os.environ.get("CONDUCTOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
"""The real PostgreSQL server the tests use (`.ci/run` starts it when it is down)."""


BACKENDS = ("sqlite", "postgres")
"""The backends a `db` test runs on."""

PG_URLS = pytest.StashKey[list[str]]()
"""The PostgreSQL ledgers a test used (on its item's stash), for checks after it."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(why): the test is about SQLite itself; its `db` is a SQLite file only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that asks for `db` (directly or through a fixture) runs per backend."""
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", ["sqlite"] if only else list(BACKENDS))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test process's own on the real server, dropped at the end: the
    URL of it, without a schema."""
    import psycopg

    name = f"conductor_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_SERVER.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A schema of its own for one test (created on first use), as a `--db` URL."""
    url = f"{pg_database}?schema=t_{secrets.token_hex(6)}"
    request.node.stash.setdefault(PG_URLS, []).append(url)
    yield url
    # A process keeps a pool per schema until it exits: closed after each test, or a
    # long run would hold an idle connection per test and exhaust max_connections.
    from conductor.ledger.postgres import connection

    connection._close_pools()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "conductor.db"


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest, db_path: Path) -> str:
    """The test's ledger location as `--db` takes it, once per backend: `db_path` on
    SQLite, a fresh schema on the real PostgreSQL server (`pg_url`)."""
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(db_path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(db_path: Path, clock: ManualClock) -> Iterator[Conductor]:
    with Conductor(settings=Settings(db=str(db_path)), clock=clock) as handle:
        yield handle


@attrs.frozen
class CliResult:
    code: int
    stdout: str
    stderr: str


CONDUCTOR = shutil.which("conductor") or "conductor"


def run_cli(
    *args: str,
    db: Path | str | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> CliResult:
    """Run the installed `conductor` executable in a subprocess (in `cwd` if given).

    `timeout` is a hang guard, not a speed check: a command that does real work (a bench, the
    demo) gets 300 s or more, because a loaded machine may take many times its idle time."""
    argv = [CONDUCTOR, *args]
    if db is not None:
        argv += ["--db", str(db)]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CONDUCTOR_DB", None) if db is not None else None
    done = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def db_snapshot(path: Path) -> str:
    """A digest of every row of every table (or "absent"), to assert a command changed
    nothing. Logical rather than byte-level: closing a WAL database checkpoints it, which
    rewrites pages without changing a row.

    It reads a copy (the file and its -wal), because even a read-only connection leaves
    -wal/-shm files beside a WAL database, and those would change what the next command
    sees (a read-only directory, say, would suddenly hold the -shm it needs)."""
    if not path.exists():
        return "absent"
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "snapshot.db"
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        conn = sqlite3.connect(copy)
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
                )
            ]
            for table in tables:
                digest.update(table.encode())
                for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                    digest.update(repr(row).encode())
        finally:
            conn.close()
    return digest.hexdigest()
