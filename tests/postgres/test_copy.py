"""`conductor copy` between SQLite files and PostgreSQL schemas on a real server: the
events and chain arrive exactly as stored, both ends verify, the projections and counts
match; a broken source or a non-empty destination is refused, nothing written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from conductor.ledger.postgres.connection import parse
from tests.conftest import db_snapshot, run_cli

LISTINGS = (("jobs", "--limit", "0"), ("events", "--limit", "0"), ("stats",))


def fill(db: Path) -> None:
    """A ledger with jobs in every final state and some waiting: completed, failed (after
    retries), cancelled, pending, and one scheduled for later."""
    for payload, *options in (
        ('{"task": "noop"}',),
        ('{"task": "noop", "n": 2}',),
        ('{"task": "fail"}', "--max-retries", "1"),
        ('{"task": "noop", "n": 3}', "--delay", "1h"),
    ):
        assert run_cli("enqueue", "--payload", payload, *options, db=db).code == 0
    assert run_cli("worker", "--burst", "-q", db=db, timeout=300).code == 0
    assert run_cli("enqueue", "--payload", '{"task": "noop", "n": 4}', db=db).code == 0
    assert run_cli("enqueue", "--payload", '{"task": "noop", "n": 5}', db=db).code == 0
    assert run_cli("cancel", "6", db=db).code == 0


def shown(db: str) -> list[str]:
    """What the read commands print (of `stats`, the counts: its activity figures are
    rates over windows ending now)."""
    return [run_cli(*command, "--db", db).stdout.split("\n\n")[0] for command in LISTINGS]


def assert_verified(db: str) -> str:
    audit = run_cli("audit", "verify", "--db", db)
    assert audit.code == 0, audit.stdout
    replay = run_cli("replay", "--verify", "--db", db)
    assert replay.code == 0, replay.stdout
    return audit.stdout


def test_a_sqlite_ledger_copied_to_postgresql_and_back_is_the_same_ledger(
    tmp_path: Path, pg_url: str
) -> None:
    source = tmp_path / "conductor.db"
    fill(source)
    copied = run_cli("copy", "--from", str(source), "--to", pg_url)
    assert copied.code == 0, copied.stderr
    assert "projections match" in copied.stdout
    head = assert_verified(str(source))
    assert assert_verified(pg_url) == head
    assert shown(pg_url) == shown(str(source))
    back = tmp_path / "back.db"
    assert run_cli("copy", "--from", pg_url, "--to", str(back)).code == 0
    assert assert_verified(str(back)) == head
    assert shown(str(back)) == shown(str(source))
    # The copy is a working ledger: new jobs continue the ids and the chain.
    enqueued = run_cli("enqueue", "--payload", '{"task": "noop"}', "--db", pg_url)
    assert enqueued.stdout.strip().endswith("7"), enqueued.stdout
    assert run_cli("audit", "verify", "--db", pg_url).code == 0


def test_a_source_whose_chain_does_not_verify_is_refused_and_nothing_is_written(
    tmp_path: Path, pg_url: str, pg_database: str
) -> None:
    source = tmp_path / "conductor.db"
    fill(source)
    with sqlite3.connect(source) as conn:
        conn.execute("DROP TRIGGER events_refuse_update")
        conn.execute("UPDATE events SET data = replace(data, 'noop', 'spin') WHERE seq = 2")
    for destination in (pg_url, str(tmp_path / "copy.db")):
        refused = run_cli("copy", "--from", str(source), "--to", destination)
        assert refused.code == 1
        assert refused.stderr.count("\n") == 1
        assert "its chain breaks at seq 2" in refused.stderr
    assert not (tmp_path / "copy.db").exists()
    with psycopg.connect(pg_database) as conn:
        schema = parse(pg_url).schema
        found = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        assert found.fetchone() == (0,)


def test_a_destination_that_holds_a_ledger_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    source, destination = tmp_path / "a.db", tmp_path / "b.db"
    fill(source)
    assert run_cli("enqueue", "--payload", '{"task": "noop"}', db=destination).code == 0
    before = db_snapshot(destination)
    refused = run_cli("copy", "--from", str(source), "--to", str(destination))
    assert refused.code == 1
    assert "already holds a ledger" in refused.stderr
    assert db_snapshot(destination) == before


def test_copy_usage_errors_are_one_line(tmp_path: Path) -> None:
    source = tmp_path / "a.db"
    missing = run_cli("copy", "--from", str(source))
    assert missing.code == 2
    assert "--to" in missing.stderr
    same = run_cli("copy", "--from", str(source), "--to", str(source))
    assert same.code == 2
    assert "same database" in same.stderr
    absent = run_cli("copy", "--from", str(source), "--to", str(tmp_path / "b.db"))
    assert absent.code == 1
    assert "no conductor database" in absent.stderr
    assert not source.exists()
    assert not (tmp_path / "b.db").exists()
