"""Fixtures of the dashboard tests: a ledger with the dashboard serving it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from tests.web.support import Running, start_dashboard


@pytest.fixture
def ledger(db: str) -> Iterator[Conductor]:
    """The test's ledger (created), for arranging jobs and checking what actions did."""
    with Conductor(db) as app:
        yield app


@pytest.fixture
def dashboard(ledger: Conductor, db: str, tmp_path: Path) -> Iterator[Running]:
    """`conductor dashboard` over the test's ledger, on loopback without credentials."""
    with start_dashboard(db, log=tmp_path / "dashboard.log") as running:
        yield running
