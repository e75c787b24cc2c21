"""The ledger contract suite runs once per backend listed here.

Each test gets a fresh SQLite file, and a fresh schema on the real PostgreSQL server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conductor.domain.config import Settings
from conductor.ledger.base import Ledger
from conductor.ledger.open import open_ledger

LedgerFactory = Callable[[], Ledger]


def _sqlite(tmp_path: Path) -> Callable[[], Ledger]:
    def make() -> Ledger:
        return open_ledger(Settings(db=str(tmp_path / "contract.db")), create=True)

    return make


def _postgres(request: pytest.FixtureRequest) -> Callable[[], Ledger]:
    url = request.getfixturevalue("pg_url")

    def make() -> Ledger:
        return open_ledger(Settings(db=url), create=True)

    return make


BACKENDS = {
    "sqlite": lambda request: _sqlite(request.getfixturevalue("tmp_path")),
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(BACKENDS))
def make_ledger(request: pytest.FixtureRequest) -> Iterator[LedgerFactory]:
    opened: list[Ledger] = []
    factory = BACKENDS[request.param](request)

    def make() -> Ledger:
        ledger = factory()
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: LedgerFactory) -> Ledger:
    return make_ledger()
