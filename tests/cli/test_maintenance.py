"""`conductor replay` (and `--verify`) and `conductor audit verify`, including what they
report after someone with file access edits the database behind conductor's back."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import every_state_db
from tests.conftest import db_snapshot, run_cli

EVENTS = 13  # in every_state_db


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return every_state_db(tmp_path / "conductor.db")


def edit(db: Path, *statements: str) -> None:
    """Change the file directly with the sqlite3 module, as someone with file access could."""
    conn = sqlite3.connect(db)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def test_replay_rebuilds_the_projections_and_says_how_many_events(db: Path) -> None:
    before = db_snapshot(db)
    result = run_cli("replay", db=db)
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == f"rebuilt projections from {EVENTS} events\n"
    assert db_snapshot(db) == before, "rebuilding consistent projections changed a row"


def test_replay_verify_on_a_clean_database_exits_0_and_changes_nothing(db: Path) -> None:
    before = db_snapshot(db)
    result = run_cli("replay", "--verify", db=db)
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == f"projections match the log ({EVENTS} events)\n"
    assert db_snapshot(db) == before


def test_replay_verify_names_a_hand_edited_job_and_column_and_replay_repairs_it(
    db: Path,
) -> None:
    clean = db_snapshot(db)
    edit(db, "UPDATE jobs SET status = 'completed' WHERE id = 4")
    tampered = db_snapshot(db)

    verify = run_cli("replay", "--verify", db=db)
    assert verify.code == 1, verify
    assert "Traceback" not in verify.stderr
    assert verify.stdout.splitlines() == ["jobs 4: status: live='completed' log='pending'"]
    assert db_snapshot(db) == tampered, "--verify must change nothing"

    repair = run_cli("replay", db=db)
    assert (repair.code, repair.stdout) == (0, f"rebuilt projections from {EVENTS} events\n")
    assert db_snapshot(db) == clean

    again = run_cli("replay", "--verify", db=db)
    assert (again.code, again.stdout) == (0, f"projections match the log ({EVENTS} events)\n")


def test_replay_verify_reports_a_deleted_job_row_and_a_wrong_counter(db: Path) -> None:
    edit(
        db,
        "DELETE FROM jobs WHERE id = 2",
        "UPDATE counters SET n = n + 5 WHERE queue = 'reports' AND status = 'pending'",
    )
    verify = run_cli("replay", "--verify", db=db)
    assert verify.code == 1, verify
    lines = verify.stdout.splitlines()
    assert "jobs 2: missing from live tables" in lines
    assert any(line.startswith("counters reports/data_import/pending") for line in lines), lines


def test_audit_verify_on_an_intact_log_exits_0(db: Path) -> None:
    result = run_cli("audit", "verify", db=db)
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout.startswith(f"chain verified: {EVENTS} events; head seq {EVENTS} hash ")
    report = json.loads(run_cli("audit", "verify", "--json", db=db).stdout)
    assert (report["ok"], report["events"], report["first_bad_seq"]) == (True, EVENTS, None)


def test_the_database_refuses_to_update_or_delete_events(db: Path) -> None:
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        edit(db, "UPDATE events SET data = '{}' WHERE seq = 3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        edit(db, "DELETE FROM events WHERE seq = 3")


def test_audit_verify_names_the_seq_of_an_altered_event(db: Path) -> None:
    edit(
        db,
        "DROP TRIGGER events_refuse_update",
        "UPDATE events SET data = replace(data, 'customers.csv', 'evil.csv') WHERE seq = 3",
    )
    result = run_cli("audit", "verify", db=db)
    assert result.code == 1, result
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("chain broken at seq 3:")
    assert "altered" in result.stdout
    report = json.loads(run_cli("audit", "verify", "--json", db=db).stdout)
    assert (report["ok"], report["first_bad_seq"]) == (False, 3)


def test_audit_verify_names_the_seq_of_a_deleted_event(db: Path) -> None:
    edit(db, "DROP TRIGGER events_refuse_delete", "DELETE FROM events WHERE seq = 8")
    result = run_cli("audit", "verify", db=db)
    assert result.code == 1, result
    assert result.stdout.startswith("chain broken at seq 8:")
    assert "missing" in result.stdout


def test_python_dash_m_conductor_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conductor", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: ")
    for command in ("enqueue", "jobs", "show", "history", "events", "stats", "replay", "audit"):
        assert command in done.stdout
