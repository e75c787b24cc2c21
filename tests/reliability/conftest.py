"""Reliability tests run real engines too: share the engine fixtures. After every test,
every ledger the test left under its temporary directory must keep the invariants of
`tests/reliability/invariants.py`, and so must the PostgreSQL schemas it used; a test that
breaks a ledger on purpose (tampering, corruption) says so with
`@pytest.mark.breaks_ledger("why")`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URLS
from tests.engine.conftest import WorkerProcesses, registry, start_engine
from tests.reliability.invariants import holds_ledger, is_ledger, ledger_problems

__all__ = ["ledger_invariants", "registry", "start_engine", "workers"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "breaks_ledger(why): the test damages its ledger on purpose; skip invariants"
    )


@pytest.fixture(autouse=True)
def ledger_invariants(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    yield
    if request.node.get_closest_marker("breaks_ledger"):
        return
    files = [p for p in sorted(tmp_path.rglob("*.db")) if p.is_file() and is_ledger(p)]
    schemas = [url for url in request.node.stash.get(PG_URLS, []) if holds_ledger(url)]
    problems = [problem for db in [*files, *schemas] for problem in ledger_problems(db)]
    assert problems == [], "\n".join(problems[:20])


@pytest.fixture
def workers(db: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    """`conductor worker` processes on `db`, logging under `tmp_path`, killed after."""
    pool = WorkerProcesses(db, tmp_path)
    yield pool
    pool.stop_all()
