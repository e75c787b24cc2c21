"""`conductor cron` through the installed executable, on each backend: add, list (with the
next runs), pause, resume and remove, each an event naming who acted; and bad input, each
refused in one line (exit 2 for a bad expression, zone, payload or option) with nothing
created or changed."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from tests.cli.support import assert_one_line_error, refused, seed
from tests.conftest import run_cli

PAYLOAD = '{"task": "data_import", "source": "nightly.csv"}'


def add(db: str | Path, name: str, *options: str) -> None:
    done = run_cli("cron", "add", name, "--payload", PAYLOAD, *options, db=db)
    assert done.code == 0, done.stderr


def listed(db: str | Path) -> list[dict[str, object]]:
    done = run_cli("cron", "list", "--json", db=db)
    assert done.code == 0, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


def events(db: str | Path) -> list[dict[str, object]]:
    with Conductor(settings=Settings(db=str(db))) as app:
        return [
            {"type": rec.type, **rec.event.fields()}
            for rec in app.events()
            if rec.type.startswith("schedule_")
        ]


def test_cron_add_records_the_schedule_and_lists_it_with_its_next_runs(db: str) -> None:
    done = run_cli(
        "cron",
        "add",
        "nightly",
        "--schedule",
        "0 3 * * *",
        "--tz",
        "Europe/Paris",
        "--payload",
        PAYLOAD,
        "--queue",
        "imports",
        "--priority",
        "high",
        "--max-retries",
        "5",
        "--missed",
        "all",
        "--catch-up-max",
        "4",
        "--by",
        "alice",
        db=db,
    )
    assert done.code == 0, done.stderr
    assert done.stdout.startswith("schedule nightly: 0 3 * * * (Europe/Paris); next run ")
    assert done.stdout.rstrip().endswith(("03:00+01:00", "03:00+02:00"))
    [schedule] = listed(db)
    assert {key: schedule[key] for key in ("name", "expression", "zone", "task", "queue")} == {
        "name": "nightly",
        "expression": "0 3 * * *",
        "zone": "Europe/Paris",
        "task": "data_import",
        "queue": "imports",
    }
    assert (schedule["priority"], schedule["max_retries"], schedule["missed"]) == ("high", 5, "all")
    assert schedule["payload"] == {"source": "nightly.csv", "task": "data_import"}
    runs = schedule["next_runs"]
    assert isinstance(runs, list)
    assert len(runs) == 3
    assert runs == sorted(runs)
    assert all(run[11:13] in ("01", "02") for run in runs)  # 03:00 in Paris, in UTC
    [added] = events(db)
    assert (added["type"], added["by"], added["catch_up_max"]) == ("schedule_added", "alice", 4)
    table = run_cli("cron", "list", db=db)
    assert table.stdout.splitlines()[0].split()[:3] == ["Name", "Schedule", "Zone"]
    assert "nightly" in table.stdout.splitlines()[1]


def test_pause_resume_and_remove_are_events_naming_who_acted(db: str) -> None:
    add(db, "hourly", "--schedule", "@hourly")
    for action in ("pause", "resume"):
        done = run_cli("cron", action, "hourly", "--by", "bob", "--reason", "upgrade", db=db)
        assert done.code == 0, done.stderr
    assert [schedule["paused"] for schedule in listed(db)] == [False]
    done = run_cli("cron", "pause", "hourly", db=db)
    assert done.stdout == "schedule hourly paused\n"
    [schedule] = listed(db)
    assert (schedule["paused"], schedule["next_runs"]) == (True, [])
    assert run_cli("cron", "remove", "hourly", db=db).code == 0
    assert listed(db) == []
    recorded = events(db)
    assert [event["type"] for event in recorded] == [
        "schedule_added",
        "schedule_paused",
        "schedule_resumed",
        "schedule_paused",
        "schedule_removed",
    ]
    assert [event["by"] for event in recorded[1:3]] == ["bob", "bob"]
    assert recorded[1]["reason"] == "upgrade"
    assert recorded[3]["by"] == recorded[0]["by"] == getpass.getuser()  # the OS user


def test_a_taken_name_is_refused_unless_replaced(db: str) -> None:
    add(db, "nightly", "--schedule", "0 3 * * *")
    taken = run_cli(
        "cron", "add", "nightly", "--schedule", "0 4 * * *", "--payload", PAYLOAD, db=db
    )
    assert_one_line_error(taken, code=1, mentions=["'nightly' already exists", "--replace"])
    same = run_cli("cron", "add", "nightly", "--schedule", "0 3 * * *", "--payload", PAYLOAD, db=db)
    assert_one_line_error(same, code=1, mentions=["nothing changed"])
    add(db, "nightly", "--schedule", "0 4 * * *", "--replace")
    assert [schedule["expression"] for schedule in listed(db)] == ["0 4 * * *"]
    assert [event["type"] for event in events(db)] == ["schedule_added", "schedule_changed"]


def test_operator_commands_on_an_unknown_or_unchanged_schedule_fail_in_one_line(db: str) -> None:
    add(db, "hourly", "--schedule", "@hourly")
    for action in ("pause", "resume", "remove"):
        done = run_cli("cron", action, "ghost", db=db)
        assert_one_line_error(done, code=1, mentions=["no schedule named 'ghost'"])
    assert_one_line_error(
        run_cli("cron", "resume", "hourly", db=db), code=1, mentions=["is not paused"]
    )
    assert len(events(db)) == 1


@pytest.fixture(params=["existing-db", "no-db-yet"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    db = tmp_path / "conductor.db"
    if request.param == "existing-db":
        seed(db, "already_there")
    return db


@pytest.mark.parametrize(
    ("options", "mentions"),
    [
        (("--schedule", "0 25 * * *"), ["invalid cron expression '0 25 * * *'", "expected"]),
        (("--schedule", "* * * *"), ["it has 4 fields", "expected 5 fields"]),
        (("--schedule", "0 0 30 2 *"), ["never matches a date"]),
        (("--schedule", "H * * * *"), ["hashed or random"]),
        (("--schedule", "@daily", "--tz", "Europe/Pariss"), ["invalid time zone 'Europe/Pariss'"]),
        (("--schedule", "@daily", "--tz", ""), ["invalid time zone ''"]),
        (("--schedule", "@daily", "--queue", "a/b"), ["invalid queue 'a/b'"]),
        (("--schedule", "@daily", "--missed", "some"), ["'some' is not one of"]),
        (("--schedule", "@daily", "--catch-up-max", "0"), ["--catch-up-max"]),
        (("--schedule", "@daily", "--priority", "urgent"), ["--priority"]),
        (("--payload", "not json"), ["--schedule"]),
    ],
    ids=[
        "hour-25",
        "four-fields",
        "30-february",
        "hashed",
        "unknown-zone",
        "empty-zone",
        "bad-queue",
        "bad-policy",
        "zero-cap",
        "bad-priority",
        "no-schedule",
    ],
)
def test_a_bad_schedule_is_a_usage_error_and_changes_nothing(
    target: Path, options: tuple[str, ...], mentions: list[str]
) -> None:
    payload = () if "--payload" in options else ("--payload", PAYLOAD)
    refused(target, "cron", "add", "nightly", *payload, *options, code=2, mentions=mentions)


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        ('{"task": }', ["invalid payload JSON"]),
        ('["data_import"]', ["got a JSON list"]),
        ('{"source": "x"}', ['no "task" string']),
        ('{"task": "a", "task": "b"}', ["appears more than once"]),
    ],
    ids=["not-json", "not-an-object", "no-task", "key-twice"],
)
def test_a_bad_payload_is_a_usage_error_and_changes_nothing(
    target: Path, payload: str, mentions: list[str]
) -> None:
    refused(
        target,
        "cron",
        "add",
        "nightly",
        "--schedule",
        "@daily",
        "--payload",
        payload,
        code=2,
        mentions=mentions,
    )


@pytest.mark.parametrize("name", ["has space", "", "x" * 101, "a/b"])
def test_a_bad_schedule_name_is_a_usage_error(target: Path, name: str) -> None:
    refused(
        target,
        "cron",
        "add",
        name,
        "--schedule",
        "@daily",
        "--payload",
        PAYLOAD,
        code=2,
        mentions=["invalid schedule name"],
    )
    refused(target, "cron", "pause", name, code=2, mentions=["invalid schedule name"])


def test_cron_commands_other_than_add_never_create_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for args in (("list",), ("pause", "x"), ("resume", "x"), ("remove", "x")):
        refused(missing, "cron", *args, code=1, mentions=["no conductor database"])
