"""Observability tests run real engines too: share the engine fixtures.

They run on SQLite only: what they check (metric names, spans, the -wal gauge, exporters)
is the observe layer's, and they read the ledger through `db_path`."""

from pathlib import Path

import pytest

from tests.engine.conftest import registry, start_engine

__all__ = ["db", "registry", "start_engine"]


@pytest.fixture
def db(db_path: Path) -> str:
    """The engine fixtures' ledger: this suite's SQLite file, not one per backend."""
    return str(db_path)
