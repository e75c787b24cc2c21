"""One name per thing (issue 13, item 10): a priority by its name and the lease by the
event's field name wherever a person reads them, refusals in the words of what was asked,
several ids per operator action, `worker --queue` as `enqueue --queue`, a public API
that lists only itself, and a demo that never mixes its jobs with others."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import conductor
from conductor import Conductor, InvalidTransition, Settings, UnknownJob
from tests.cli.support import every_state_db, refused, seed, start, table_rows
from tests.conftest import db_snapshot, run_cli


@pytest.fixture(scope="module")
def every_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return every_state_db(tmp_path_factory.mktemp("names") / "conductor.db")


# -- priority and lease names -----------------------------------------------------------
def test_history_names_the_priority_and_the_lease_as_everywhere_else(every_state: Path) -> None:
    result = run_cli("history", "3", db=every_state)
    assert (result.code, result.stderr) == (0, ""), result
    _, rows = table_rows(result.stdout)
    details = {row["Event"]: row["Details"] for row in rows}
    assert "priority=medium" in details["enqueued"]
    assert "lease_expires_at=" in details["started"]
    assert "priority=1" not in result.stdout
    assert "lease_until" not in result.stdout

    as_json = json.loads(run_cli("history", "3", "--json", db=every_state).stdout)
    assert as_json[0]["facts"]["priority"] == "medium"
    assert "lease_expires_at" in as_json[1]["facts"]


def test_events_table_names_the_priority_and_json_keeps_the_stored_event(
    every_state: Path,
) -> None:
    result = run_cli("events", "--type", "enqueued", db=every_state)
    assert (result.code, result.stderr) == (0, ""), result
    _, rows = table_rows(result.stdout)
    by_job = {row["Job"]: row["Details"] for row in rows}
    assert "priority=medium" in by_job["1"]
    assert "priority=low" in by_job["6"]
    assert "priority=1" not in result.stdout
    # --json prints the event as stored and hashed: the number the chain covers.
    stored = json.loads(run_cli("events", "--type", "enqueued", "--json", db=every_state).stdout)
    assert stored[0]["data"]["priority"] == 1


# -- refusals in the user's words -------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "job_id", "expected"),
    [
        ("retry", 6, "job 6 is pending; only failed or cancelled jobs can be retried"),
        (
            "cancel",
            2,
            "job 2 is completed; only pending, claimed or in_progress jobs can be cancelled",
        ),
    ],
)
def test_a_refused_action_says_what_was_asked_and_why(
    every_state: Path, command: str, job_id: int, expected: str
) -> None:
    line = refused(every_state, command, str(job_id))
    assert line == f"error: {expected}"
    assert "cannot apply" not in line


def test_the_python_api_refuses_in_the_same_words(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "send_email")
    with (
        Conductor(settings=Settings(db=str(db))) as app,
        pytest.raises(InvalidTransition) as caught,
    ):
        app.retry(1)
    assert str(caught.value) == "job 1 is pending; only failed or cancelled jobs can be retried"
    assert caught.value.event_type == "requeued"


# -- several ids per action -------------------------------------------------------------
def statuses(db: Path) -> dict[int, str]:
    with Conductor(settings=Settings(db=str(db))) as app:
        return {row["id"]: row["status"] for row in app.jobs()}


def test_cancel_takes_several_ids_and_does_the_valid_ones_when_some_are_refused(
    tmp_path: Path,
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a", "b", "c")
    run_cli("cancel", "2", db=db)
    result = run_cli("cancel", "1", "2", "9", "3", db=db)
    assert result.code == 1, result
    assert result.stdout.splitlines()[:2] == ["job 1 cancelled", "job 3 cancelled"]
    assert re.fullmatch(
        r"batch \S+: 2 cancelled, 2 refused, by .+: cancelled\n",
        result.stdout.splitlines(keepends=True)[2],
    )
    assert result.stderr.splitlines() == [
        "error: job 2 is cancelled; only pending, claimed or in_progress jobs can be cancelled",
        "error: no job with id 9; expected an id shown by `conductor jobs`",
    ]
    assert "Traceback" not in result.stderr
    assert statuses(db) == {1: "cancelled", 2: "cancelled", 3: "cancelled"}


def test_retry_of_several_ids_reports_each_in_json_and_exits_0_when_all_were_done(
    tmp_path: Path,
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a", "b", "c")
    assert run_cli("cancel", "1", "3", db=db).code == 0
    result = run_cli("retry", "3", "1", "3", "--json", db=db)
    assert (result.code, result.stderr) == (0, ""), result
    report = json.loads(result.stdout)
    assert (report["requeued"], report["refused"], report["dry_run"]) == ([3, 1], [], False)
    assert [job["id"] for job in report["jobs"]] == [3, 1]
    assert statuses(db) == {1: "pending", 2: "pending", 3: "pending"}


def test_cancel_json_lists_the_refused_ids_with_their_reasons(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a")
    result = run_cli("cancel", "1", "5", "--json", db=db)
    assert result.code == 1
    report = json.loads(result.stdout)
    assert (report["cancelled"], report["refused"]) == (
        [1],
        [{"id": 5, "error": "no job with id 5; expected an id shown by `conductor jobs`"}],
    )
    assert result.stderr.startswith("error: no job with id 5")


def test_one_bad_id_among_several_is_a_usage_error_that_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a", "b")
    refused(db, "cancel", "1", "x", "2", code=2, mentions=["'x'", "ID"])
    assert statuses(db) == {1: "pending", 2: "pending"}


def test_the_python_api_acts_on_several_jobs_and_reports_each_refusal(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "a", "b", "c")
    start(db, limit=1)
    with Conductor(settings=Settings(db=str(db))) as app:
        app.cancel(3)
        report = app.cancel_many([1, 2, 3, 77])
        assert report.done == (1, 2)
        assert not report.ok
        assert isinstance(report.refused[3], InvalidTransition)
        assert isinstance(report.refused[77], UnknownJob)
        again = app.retry_many([3, 1])
        assert (again.done, again.refused, again.ok) == ((3, 1), {}, True)


# -- worker --queue ---------------------------------------------------------------------
def test_worker_takes_queue_like_enqueue_repeatable_and_comma_separated(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    for queue in ("a", "b", "c", "d", "default"):
        seed(db, "noop", queue=queue)
    result = run_cli(
        "worker", "--app", "conductor.examples", "--burst", "-q",
        "--queue", "a", "--queue", "b,c", db=db,
    )  # fmt: skip
    assert result.code == 0, result
    assert statuses(db) == {
        1: "completed",
        2: "completed",
        3: "completed",
        4: "pending",
        5: "pending",
    }
    # The old spelling still works, so no script breaks; it is no longer in the help.
    old = run_cli("worker", "--app", "conductor.examples", "--burst", "-q", "--queues", "d", db=db)
    assert old.code == 0, old
    assert statuses(db)[4] == "completed"
    help_text = run_cli("worker", "--help").stdout
    assert "--queue NAME" in help_text
    assert "--queues" not in help_text


# -- the public API ---------------------------------------------------------------------
def test_dir_of_conductor_lists_the_public_api_and_module_basics_only() -> None:
    listed = set(dir(conductor))
    assert set(conductor.__all__) <= listed
    extras = listed - set(conductor.__all__)
    assert extras <= {"__all__", "__doc__", "__file__", "__name__", "__path__", "__version__"}
    for internal in ("Any", "TYPE_CHECKING", "importlib", "annotations", "_MODULES"):
        assert internal not in listed


def test_every_public_name_resolves() -> None:
    for name in conductor.__all__:
        assert getattr(conductor, name) is not None


# -- demo -------------------------------------------------------------------------------
def test_a_demo_into_a_database_that_holds_jobs_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "mine")
    before = db_snapshot(db)
    refused(db, "demo", mentions=["already holds 1 job", "--db", "empty database"])
    assert db_snapshot(db) == before
