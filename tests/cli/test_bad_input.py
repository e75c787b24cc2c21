"""Bad input, each case a test: one line on stderr naming the problem and what is expected,
exit 1 (click usage errors 2), no traceback, and the database exactly as it was - a
database that did not exist still does not exist (see `support.refused`)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import refused, seed
from tests.conftest import db_snapshot, run_cli


@pytest.fixture(params=["existing-db", "no-db-yet"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Enqueue refusals are checked against a database with a job in it, and against a
    path with no database yet (which a refused enqueue must not create)."""
    db = tmp_path / "conductor.db"
    if request.param == "existing-db":
        seed(db, "already_there")
    return db


def refused_enqueue(db: Path, *options: str, code: int = 1, mentions: list[str]) -> str:
    return refused(db, "enqueue", *options, code=code, mentions=mentions)


# -- payloads --------------------------------------------------------------------------
def test_invalid_json_is_refused(target: Path) -> None:
    refused_enqueue(
        target,
        "--payload",
        '{"task": "send_email", "email": }',
        mentions=["invalid payload JSON", "line 1 column", "expected a JSON object"],
    )


def test_a_payload_that_is_not_an_object_is_refused(target: Path) -> None:
    refused_enqueue(
        target,
        "--payload",
        '["send_email", "test@example.com"]',
        mentions=["got a JSON list", "expected an object"],
    )


@pytest.mark.parametrize(
    "payload",
    ['{"email": "test@example.com"}', '{"task": 42}', '{"task": null}'],
    ids=["missing", "number", "null"],
)
def test_a_payload_without_a_task_string_is_refused(target: Path, payload: str) -> None:
    refused_enqueue(target, "--payload", payload, mentions=['no "task" string', "expected"])


@pytest.mark.parametrize("payload", ['{"task": ""}', '{"task": "   "}'], ids=["empty", "blank"])
def test_a_payload_whose_task_name_is_empty_says_the_name_is_empty(
    target: Path, payload: str
) -> None:
    refused_enqueue(target, "--payload", payload, mentions=['"task" name', "is empty", "expected"])


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ('{"task": "noop", "task": "fail"}', '"task"'),
        ('{"task": "noop", "user": {"id": 1, "id": 2}}', '"id"'),
        ('{"task": "noop", "rows": [{"a": 1}, {"b": 2, "b": 3}]}', '"b"'),
    ],
    ids=["top-level", "nested", "in-a-list"],
)
def test_a_payload_with_a_key_given_twice_is_refused_naming_the_key(
    target: Path, payload: str, key: str
) -> None:
    refused_enqueue(
        target, "--payload", payload, mentions=[f"key {key} appears more than once", "expected"]
    )


def test_a_file_line_with_a_key_given_twice_is_refused_and_no_line_is_enqueued(
    target: Path,
) -> None:
    lines = '{"task": "a"}\n{"task": "noop", "task": "fail"}\n'
    file = target.parent / "jobs.jsonl"
    file.write_text(lines)
    refused_enqueue(target, "--file", str(file), mentions=["line 2", 'key "task"'])


HUGE_INTEGER = "1" * 5001
"""Past Python's 4300-digit limit on int parsing, which raised ValueError mid-parse."""


def test_a_payload_with_a_5001_digit_integer_is_refused(target: Path) -> None:
    refused_enqueue(
        target,
        "--payload",
        '{"task": "a", "n": ' + HUGE_INTEGER + "}",
        mentions=["more than 4300 digits", "expected"],
    )


def test_a_file_with_a_5001_digit_integer_is_refused(target: Path) -> None:
    file = target.parent / "jobs.jsonl"
    file.write_text('{"task": "a"}\n{"task": "a", "n": ' + HUGE_INTEGER + "}\n")
    refused_enqueue(target, "--file", str(file), mentions=["line 2", "more than 4300 digits"])


def test_a_payload_with_nan_is_refused(target: Path) -> None:
    refused_enqueue(target, "--payload", '{"task": "a", "x": NaN}', mentions=["NaN", "expected"])


def test_a_payload_over_the_size_limit_is_refused(target: Path) -> None:
    refused(
        target,
        "enqueue",
        "--payload",
        '{"task": "a", "blob": "' + "x" * 200 + '"}',
        env={"CONDUCTOR_MAX_PAYLOAD_BYTES": "100"},
        mentions=["100-byte limit", "expected a smaller JSON object"],
    )


NOT_UTF8 = "\udcff"
"""The byte 0xff in an argument, as Python spells it (subprocess passes the raw byte)."""


def test_a_payload_that_is_not_utf8_is_refused(target: Path) -> None:
    refused_enqueue(
        target, "--payload", '{"task": "' + NOT_UTF8 + '"}', mentions=["not UTF-8", "expected"]
    )


# -- enqueue options -------------------------------------------------------------------
PAYLOAD = ("--payload", '{"task": "send_email"}')


def test_an_unknown_priority_is_a_usage_error(target: Path) -> None:
    refused_enqueue(
        target, *PAYLOAD, "--priority", "urgent", code=2, mentions=["'urgent'", "high", "low"]
    )


def test_a_negative_delay_is_refused(target: Path) -> None:
    refused_enqueue(target, *PAYLOAD, "--delay", "-5m", mentions=["'-5m'", "non-negative"])


@pytest.mark.parametrize("delay", ["soon", "5 minutes", "5mm", "1e3", ""])
def test_a_garbled_delay_is_refused(target: Path, delay: str) -> None:
    refused_enqueue(target, *PAYLOAD, "--delay", delay, mentions=[f"{delay!r}", "e.g. 30s, 5m"])


def test_a_delay_over_ten_years_is_refused(target: Path) -> None:
    refused_enqueue(target, *PAYLOAD, "--delay", "4000d", mentions=["at most 10 years"])


@pytest.mark.parametrize("at", ["tomorrow", "2026-13-01T00:00:00Z", "9999-12-31T23:59:59-01:00"])
def test_at_that_is_not_a_time_is_refused(target: Path, at: str) -> None:
    refused_enqueue(target, *PAYLOAD, "--at", at, mentions=[f"{at!r}", "ISO-8601"])


def test_a_negative_max_retries_is_a_usage_error(target: Path) -> None:
    refused_enqueue(
        target, *PAYLOAD, "--max-retries", "-1", code=2, mentions=["--max-retries", "-1"]
    )


def test_an_invalid_queue_name_is_refused(target: Path) -> None:
    refused_enqueue(target, *PAYLOAD, "--queue", "a/b", mentions=["'a/b'", "expected"])


@pytest.mark.parametrize(
    "options",
    [
        (),
        (*PAYLOAD, "--file", "jobs.jsonl"),
        (*PAYLOAD, "--delay", "5m", "--at", "2031-01-01T00:00:00Z"),
    ],
    ids=["neither-payload-nor-file", "payload-and-file", "delay-and-at"],
)
def test_conflicting_or_missing_enqueue_options_are_usage_errors(
    target: Path, options: tuple[str, ...]
) -> None:
    refused_enqueue(target, *options, code=2, mentions=["give", "--help"])


@pytest.mark.parametrize(
    ("key", "mentions"),
    [
        ("", ["--unique-key", "non-blank"]),
        ("  ", ["--unique-key", "non-blank"]),
        ("k" * 201, ["--unique-key", "201 characters", "at most 200"]),
        ("a\x1bb", ["--unique-key", "control character", "printable"]),
    ],
    ids=["empty", "blank", "too-long", "control-character"],
)
def test_a_bad_unique_key_is_a_usage_error(target: Path, key: str, mentions: list[str]) -> None:
    refused_enqueue(target, *PAYLOAD, "--unique-key", key, code=2, mentions=mentions)


@pytest.mark.parametrize(
    ("period", "mentions"),
    [
        ("soon", ["'soon'", "e.g. 30s, 5m"]),
        ("0s", ["'0s'", "whole seconds from 1s to 10 years"]),
        ("1500ms", ["'1500ms'", "whole seconds"]),
        ("4000d", ["'4000d'", "at most 10 years"]),
    ],
)
def test_a_bad_unique_period_is_a_usage_error(
    target: Path, period: str, mentions: list[str]
) -> None:
    refused_enqueue(
        target, *PAYLOAD, "--unique-key", "k", "--unique-for", period, code=2, mentions=mentions
    )


def test_a_unique_period_without_a_key_is_a_usage_error(target: Path) -> None:
    refused_enqueue(
        target, *PAYLOAD, "--unique-for", "10m", code=2, mentions=["--unique-for", "--unique-key"]
    )


def test_a_unique_key_with_a_file_is_a_usage_error(target: Path, tmp_path: Path) -> None:
    file = tmp_path / "jobs.jsonl"
    file.write_text('{"task": "a"}\n{"task": "b"}\n')
    refused_enqueue(
        target,
        "--file",
        str(file),
        "--unique-key",
        "k",
        code=2,
        mentions=["--unique-key", "--payload"],
    )


# -- job ids ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["show", "history", "cancel", "retry", "result"])
def test_an_unknown_job_id_is_refused(tmp_path: Path, command: str) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a", "b")
    refused(db, command, "3", mentions=["no job with id 3", "conductor jobs"])


@pytest.mark.parametrize(
    ("command", "job_id"),
    [
        ("show", "0"),
        ("history", "1.5"),
        ("cancel", "one"),
        ("retry", "99999999999999999999"),
        ("result", "0"),
        ("result", "\uff11"),
    ],
)
def test_a_job_id_that_is_not_a_positive_integer_is_a_usage_error(
    tmp_path: Path, command: str, job_id: str
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a")
    refused(db, command, job_id, code=2, mentions=["ID", job_id])


def test_a_huge_event_filter_or_limit_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a")
    refused(db, "events", "--job", "99999999999999999999", code=2, mentions=["--job"])
    refused(db, "jobs", "--limit", "99999999999999999999", code=2, mentions=["--limit"])


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_events_time_that_is_not_a_time_is_refused(tmp_path: Path, option: str) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a")
    refused(db, "events", option, "last tuesday", mentions=[option, "ISO-8601", "1h"])


def test_events_time_out_of_range_in_utc_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a")
    refused(db, "events", "--since", "9999-12-31T23:59:59-01:00", mentions=["--since"])


# -- the database file -----------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [("jobs", "--task", NOT_UTF8), ("jobs", "--queue", NOT_UTF8), ("events", "--task", NOT_UTF8)],
    ids=["jobs-task", "jobs-queue", "events-task"],
)
def test_a_filter_that_is_not_utf8_is_a_usage_error(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a")
    refused(db, *command, code=2, mentions=["not valid UTF-8", "expected UTF-8 text"])


def test_a_db_path_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    refused(
        tmp_path / f"{NOT_UTF8}.db",
        "enqueue",
        *PAYLOAD,
        code=2,
        mentions=["--db", "not valid UTF-8"],
    )


COMMANDS = [("enqueue", *PAYLOAD), ("jobs",), ("stats",), ("audit", "verify")]
COMMAND_IDS = ["enqueue", "jobs", "stats", "audit"]


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_a_db_that_is_a_directory_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    refused(directory, *command, mentions=["is a directory", "expected a database file"])


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_a_db_that_is_not_sqlite_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("shopping list\n- eggs\n- more eggs\n" * 100)
    refused(text, *command, mentions=["not a SQLite database", "expected a conductor database"])


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_a_db_of_another_application_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    other = tmp_path / "app.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    refused(other, *command, mentions=["not a conductor one", "expected a file created by"])


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_a_db_from_a_newer_schema_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    db = tmp_path / "conductor.db"
    assert run_cli("enqueue", *PAYLOAD, db=db).code == 0
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    refused(db, *command, mentions=["schema version 99", "expected an upgraded conductor"])
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (99,)
    conn.close()


@pytest.mark.parametrize(
    "command",
    [
        ("jobs",),
        ("stats",),
        ("events",),
        ("history", "1"),
        ("show", "1"),
        ("cancel", "1"),
        ("retry", "1"),
        ("result", "1"),
        ("result", "1", "--wait", "1s"),
        ("replay",),
        ("replay", "--verify"),
        ("audit", "verify"),
    ],
    ids=" ".join,
)
def test_commands_other_than_enqueue_never_create_a_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    refused(tmp_path / "conductor.db", *command, mentions=["no conductor database at"])


def test_an_empty_file_is_not_taken_for_a_database_by_read_commands(tmp_path: Path) -> None:
    empty = tmp_path / "conductor.db"
    empty.touch()
    refused(empty, "jobs", mentions=["holds no conductor data", "conductor enqueue"])
    assert empty.stat().st_size == 0


def test_enqueue_into_a_missing_directory_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "dir" / "conductor.db"
    refused(db, "enqueue", *PAYLOAD, mentions=["cannot create", "expected a writable directory"])


def test_an_invalid_busy_timeout_setting_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a")
    refused(
        db,
        "enqueue",
        *PAYLOAD,
        env={"CONDUCTOR_BUSY_TIMEOUT": "a while"},
        mentions=["CONDUCTOR_BUSY_TIMEOUT", "expected a non-negative number"],
    )


# -- a read-only database file ---------------------------------------------------------
@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(writable path, read-only path) of one conductor database, through a read-only bind
    mount of its directory: as root, file permissions would not stop a write."""
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("needs mount and umount to make a read-only bind mount")
    writable, mounted = tmp_path / "rw", tmp_path / "ro"
    writable.mkdir()
    mounted.mkdir()
    seed(writable / "conductor.db", "send_email", "data_import")
    bind = subprocess.run(
        ["mount", "--bind", str(writable), str(mounted)],
        capture_output=True,
        text=True,
        check=False,
    )
    if bind.returncode != 0:
        pytest.skip(f"cannot make a bind mount (needs root/CAP_SYS_ADMIN): {bind.stderr.strip()}")
    try:
        remount = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(mounted)],
            capture_output=True,
            text=True,
            check=False,
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount the bind mount read-only: {remount.stderr.strip()}")
        try:
            (mounted / "probe").touch()
        except OSError:
            pass
        else:
            pytest.skip("the read-only bind mount accepted a write")
        yield writable / "conductor.db", mounted / "conductor.db"
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True, check=False)


@pytest.mark.parametrize(
    "command", [("jobs",), ("stats",), ("events",), ("history", "1"), ("show", "1")], ids=" ".join
)
def test_read_commands_work_on_a_read_only_database(
    read_only: tuple[Path, Path], command: tuple[str, ...]
) -> None:
    writable, mounted = read_only
    before = db_snapshot(writable)
    result = run_cli(*command, db=mounted)
    assert (result.code, result.stderr) == (0, ""), result
    assert result.stdout.strip()
    assert db_snapshot(writable) == before


def test_enqueue_on_a_read_only_database_fails_in_one_line_and_changes_nothing(
    read_only: tuple[Path, Path],
) -> None:
    writable, mounted = read_only
    refused(writable, "enqueue", *PAYLOAD, db=mounted, mentions=[str(mounted)])


def test_enqueue_on_a_read_only_database_says_it_is_read_only(
    read_only: tuple[Path, Path],
) -> None:
    writable, mounted = read_only
    refused(writable, "enqueue", *PAYLOAD, db=mounted, mentions=["read-only"])


# -- a database held by another writer -------------------------------------------------
@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A conductor database whose write lock another connection holds (`BEGIN IMMEDIATE`)."""
    db = tmp_path / "conductor.db"
    seed(db, "send_email")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield db
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(
    "command", [("enqueue", *PAYLOAD), ("cancel", "1")], ids=["enqueue", "cancel"]
)
def test_a_database_locked_past_the_busy_timeout_is_refused_in_one_line(
    locked: Path, command: tuple[str, ...]
) -> None:
    refused(
        locked,
        *command,
        env={"CONDUCTOR_BUSY_TIMEOUT": "0.2"},
        mentions=["locked", "CONDUCTOR_BUSY_TIMEOUT"],
    )


def test_reads_still_work_while_another_writer_holds_the_lock(locked: Path) -> None:
    result = run_cli("jobs", db=locked, env={"CONDUCTOR_BUSY_TIMEOUT": "0.2"})
    assert (result.code, result.stderr) == (0, ""), result
    assert "send_email" in result.stdout


def test_a_prefetch_that_is_neither_auto_nor_a_number_is_a_usage_error(target: Path) -> None:
    refused(target, "worker", "--burst", "--prefetch", "deep", code=2, mentions=["auto"])


def test_prefetch_auto_and_a_number_are_both_accepted(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    for prefetch in ("auto", "3"):
        [job_id] = seed(db, "noop")
        result = run_cli("worker", "--burst", "-q", "--prefetch", prefetch, db=db)
        assert result.code == 0, result.stderr
        shown = run_cli("show", str(job_id), "--json", db=db)
        assert '"status": "completed"' in shown.stdout


@pytest.mark.parametrize("wait", ["forever", "-5s", "1y", "4000d", ""])
def test_a_result_wait_that_is_not_a_duration_is_refused(tmp_path: Path, wait: str) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "noop")
    refused(db, "result", "1", "--wait", wait, mentions=["invalid --wait", "expected"])


def test_result_without_an_id_or_with_two_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "noop", "noop")
    refused(db, "result", code=2, mentions=["ID"])
    refused(db, "result", "1", "2", code=2, mentions=["unexpected extra argument"])
    refused(db, "result", "1", "--json=yes", code=2, mentions=["--json"])


def test_a_horizon_without_burst_is_a_usage_error(target: Path) -> None:
    refused(target, "worker", "--horizon", "1m", code=2, mentions=["--horizon", "--burst"])


@pytest.mark.parametrize("horizon", ["soon", "-1m", "4000d"])
def test_a_horizon_that_is_not_a_duration_is_refused(target: Path, horizon: str) -> None:
    refused(
        target,
        "worker",
        "--burst",
        "--horizon",
        horizon,
        mentions=["invalid --horizon", "expected"],
    )
