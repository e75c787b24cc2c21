"""The ledger contract suite runs once per backend listed here.

A PostgreSQL backend joins by adding a factory to BACKENDS; every test in this folder then
runs against it too.
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


BACKENDS = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerFactory]:
    opened: list[Ledger] = []

    def make() -> Ledger:
        ledger = BACKENDS[request.param](tmp_path)()
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: LedgerFactory) -> Ledger:
    return make_ledger()
