"""`conductor migrate` on a real PostgreSQL server and on SQLite files: it shows without
changing, applies once however many processes start at once, and refuses a newer schema
in one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg

from conductor.ledger.postgres.connection import parse
from conductor.ledger.postgres.schema import DESCRIPTIONS, SCHEMA_VERSION
from conductor.ledger.sqlite import schema as sqlite_schema
from tests.conftest import CONDUCTOR, run_cli
from tests.engine.conftest import wait_until


def schema_exists(pg_database: str, schema: str) -> bool:
    with psycopg.connect(pg_database) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        return row.fetchone() == (1,)


def migration_rows(pg_database: str, schema: str) -> list[str]:
    with psycopg.connect(pg_database) as conn:
        return [
            key
            for (key,) in conn.execute(
                f"SELECT key FROM \"{schema}\".meta WHERE key LIKE 'migration %' ORDER BY key"
            )
        ]


def test_migrate_shows_the_pending_migrations_and_changes_nothing(
    pg_url: str, pg_database: str
) -> None:
    shown = run_cli("migrate", "--db", pg_url)
    assert shown.code == 0, shown.stderr
    assert f"schema version: 0 (this conductor: {SCHEMA_VERSION})" in shown.stdout
    for number, description in enumerate(DESCRIPTIONS, start=1):
        assert f"{number}  pending  {description}" in shown.stdout
    assert "run `conductor migrate --apply`" in shown.stdout
    assert not schema_exists(pg_database, parse(pg_url).schema)


def test_migrate_apply_applies_each_migration_once_and_says_so(
    pg_url: str, pg_database: str
) -> None:
    applied = run_cli("migrate", "--apply", "--db", pg_url)
    assert applied.code == 0, applied.stderr
    assert f"applied {SCHEMA_VERSION} migrations" in applied.stdout
    again = run_cli("migrate", "--apply", "--json", "--db", pg_url)
    report = json.loads(again.stdout)
    assert report["applied_now"] == []
    assert report["version"] == report["latest"] == SCHEMA_VERSION
    assert all(m["applied"] and m["applied_at"] for m in report["migrations"])
    assert run_cli("migrate", "--db", pg_url).stdout.rstrip().endswith("up to date")
    schema = parse(pg_url).schema
    assert migration_rows(pg_database, schema) == [
        f"migration {n}" for n in range(1, SCHEMA_VERSION + 1)
    ]


def test_a_newer_schema_is_refused_in_one_line(pg_url: str, pg_database: str) -> None:
    assert run_cli("migrate", "--apply", "--db", pg_url).code == 0
    schema = parse(pg_url).schema
    with psycopg.connect(pg_database) as conn:
        conn.execute(f"UPDATE \"{schema}\".meta SET value = '99' WHERE key = 'schema_version'")
    for command in (("migrate",), ("migrate", "--apply"), ("jobs",)):
        refused = run_cli(*command, "--db", pg_url)
        assert refused.code == 1
        assert refused.stderr.count("\n") == 1
        assert "schema version 99, newer than this conductor" in refused.stderr


def test_six_workers_starting_at_once_on_a_fresh_schema_all_succeed_and_migrate_it_once(
    pg_url: str, pg_database: str, tmp_path: Path
) -> None:
    target = parse(pg_url)
    lock = psycopg.connect(pg_database, autocommit=True)
    try:
        # The migration lock held here: every worker reaches it and waits, so all six
        # race for the first migration at the moment it is released.
        lock.execute("SELECT pg_advisory_lock(%s)", (target.migration_lock,))
        logs = [(tmp_path / f"w{n}.log").open("wb") for n in range(6)]
        workers = [
            subprocess.Popen(
                [CONDUCTOR, "worker", "--burst", "-q", "--db", pg_url],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        wait_until(
            lambda: _waiting_for(lock, target.migration_lock) == 6,
            timeout=300,
            what="six workers waiting on the migration lock",
        )
        lock.execute("SELECT pg_advisory_unlock(%s)", (target.migration_lock,))
        codes = [worker.wait(300) for worker in workers]
    finally:
        lock.close()
    assert codes == [0] * 6, [(tmp_path / f"w{n}.log").read_text() for n in range(6)]
    assert migration_rows(pg_database, target.schema) == [
        f"migration {n}" for n in range(1, SCHEMA_VERSION + 1)
    ]


def _waiting_for(conn: psycopg.Connection[tuple[object, ...]], key: int) -> int:
    """Sessions waiting for the advisory lock `key` (a bigint lock shows as its high and
    low 32 bits in classid and objid)."""
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
        (high, low),
    ).fetchone()
    return int(row[0]) if row else 0


def test_migrate_on_sqlite_shows_the_user_version_and_applies(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    missing = run_cli("migrate", db=db)
    assert missing.code == 1
    assert "no conductor database" in missing.stderr
    assert not db.exists()
    applied = run_cli("migrate", "--apply", db=db)
    assert applied.code == 0, applied.stderr
    latest = sqlite_schema.SCHEMA_VERSION
    numbers = ", ".join(str(n) for n in range(1, latest + 1))
    assert f"applied {latest} migrations: {numbers}" in applied.stdout
    assert f"schema version: {latest} (this conductor: {latest})" in applied.stdout
    assert run_cli("migrate", db=db).stdout.rstrip().endswith("up to date")


def test_a_sqlite_file_from_before_the_operations_stream_gains_controls_and_verifies(
    tmp_path: Path,
) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    assert run_cli("enqueue", "--payload", '{"task": "noop"}', db=db).code == 0
    # What a version-1 file looked like: no controls table, no unique-key columns.
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE controls")
    for index in ("jobs_unique_active", "jobs_unique_recent"):
        conn.execute(f"DROP INDEX {index}")
    for column in ("unique_key", "unique_for"):
        conn.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    shown = run_cli("migrate", db=db)
    latest = sqlite_schema.SCHEMA_VERSION
    assert f"schema version: 1 (this conductor: {latest})" in shown.stdout
    assert f"{latest - 1} migrations pending" in shown.stdout
    assert run_cli("migrate", "--apply", db=db).code == 0
    assert run_cli("replay", "--verify", db=db).code == 0
    assert run_cli("audit", "verify", db=db).code == 0


def test_roles_are_refused_for_sqlite_and_bad_role_names_in_one_line(
    tmp_path: Path, pg_url: str
) -> None:
    lite = run_cli("migrate", "--print-grants", "app", db=tmp_path / "c.db")
    assert lite.code == 1
    assert "roles are PostgreSQL's" in lite.stderr
    bad = run_cli("migrate", "--grant", "Robert'); DROP TABLE", "--db", pg_url)
    assert bad.code == 1
    assert "invalid role" in bad.stderr
    assert bad.stderr.count("\n") == 1
