"""The documented role (`conductor migrate --grant ROLE`) on a real server: enough for
workers and producers, and never enough to change or remove an event - even once the
owner has dropped the triggers that refuse it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import errors as pg

from conductor import Conductor
from conductor.ledger.postgres.connection import parse
from tests.conftest import run_cli


@pytest.fixture
def role(pg_database: str) -> Iterator[str]:
    name = f"conductor_app_{secrets.token_hex(4)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def test_the_granted_role_enqueues_and_works_but_cannot_change_events(
    pg_url: str, pg_database: str, role: str
) -> None:
    granted = run_cli("migrate", "--apply", "--grant", role, "--db", pg_url)
    assert granted.code == 0, granted.stderr
    assert f"granted role {role}" in granted.stdout
    mine = as_role(pg_url, role)
    enqueued = run_cli("enqueue", "--payload", '{"task": "noop"}', "--db", mine)
    assert enqueued.code == 0, enqueued.stderr
    with Conductor(mine) as app, psycopg.connect(as_role(pg_database, role)) as conn:
        app.enqueue({"task": "noop"}, connection=conn)
        conn.commit()
    drained = run_cli("worker", "--burst", "-q", "--db", mine, timeout=300)
    assert drained.code == 0, drained.stderr
    with Conductor(mine) as app:
        assert [row["status"] for row in app.jobs()] == ["completed", "completed"]
        assert app.audit().ok
    schema = parse(pg_url).schema
    with psycopg.connect(pg_database, autocommit=True) as owner:
        owner.execute(f'DROP TRIGGER events_refuse_update ON "{schema}".events')
        owner.execute(f'DROP TRIGGER events_refuse_truncate ON "{schema}".events')
    attempts = (
        f"UPDATE \"{schema}\".events SET data = '{{}}' WHERE seq = 1",
        f'DELETE FROM "{schema}".events WHERE seq = 1',
        f'TRUNCATE "{schema}".events',
        f'CREATE TABLE "{schema}".mine (id int)',
        f'DROP TABLE "{schema}".events',
    )
    with psycopg.connect(as_role(pg_database, role), autocommit=True) as conn:
        for statement in attempts:
            with pytest.raises(pg.InsufficientPrivilege):
                conn.execute(statement)
    with Conductor(pg_url) as app:
        assert app.audit().ok
        assert app.ledger.last_seq() == 8


def test_print_grants_prints_exactly_what_grant_runs(pg_url: str, tmp_path: Path) -> None:
    printed = run_cli("migrate", "--print-grants", "conductor_app", "--db", pg_url)
    assert printed.code == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert 'GRANT SELECT, INSERT ON "' in printed.stdout
    events = [line for line in lines if ".events " in line and line.startswith("GRANT")]
    assert events == [
        f'GRANT SELECT, INSERT ON "{parse(pg_url).schema}".events TO "conductor_app";'
    ]
    assert not any("CREATE" in line for line in lines)


def test_granting_a_role_the_server_lacks_is_refused_before_any_migration(
    pg_url: str, pg_database: str
) -> None:
    refused = run_cli("migrate", "--apply", "--grant", "no_such_role_here", "--db", pg_url)
    assert refused.code == 1
    assert refused.stderr.count("\n") == 1
    assert "no role no_such_role_here" in refused.stderr
    with psycopg.connect(pg_database) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (parse(pg_url).schema,)
        )
        assert found.fetchone() == (0,)
