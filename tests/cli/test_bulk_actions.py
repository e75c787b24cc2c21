"""`conductor cancel` and `retry` by filter, `--dry-run`, batches and the audit trail
(`conductor batch`, `events --batch`), on every backend."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Sequence
from typing import Any

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from conductor.domain.events import JobRequeued
from conductor.ledger.base import JobFilter
from tests.bulk_jobs import make_jobs, moves
from tests.cli.support import assert_one_line_error
from tests.conftest import run_cli

NOW = dt.datetime.now(dt.UTC)


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


def open_app(db: str) -> Conductor:
    return Conductor(settings=Settings(db=db))


def jobs(db: str, specs: Sequence[tuple[str, str, str, dt.datetime]]) -> list[int]:
    with open_app(db) as app:
        return make_jobs(app.ledger, specs)


def state(db: str) -> tuple[Any, ...]:
    """Everything an action could change: the log's head, every row, the counters."""
    with open_app(db) as app:
        return (app.ledger.last_seq(), app.ledger.jobs(JobFilter()), app.ledger.counts())


def statuses(db: str) -> dict[int, str]:
    with open_app(db) as app:
        return {row["id"]: row["status"] for row in app.ledger.jobs(JobFilter())}


def ok_json(*args: str, db: str) -> Any:
    result = run_cli(*args, "--json", db=db)
    assert (result.code, result.stderr) == (0, ""), result
    return json.loads(result.stdout)


MIXED = [
    ("imp", "nightly", "failed", ago(10)),  # 1
    ("imp", "nightly", "failed", ago(120)),  # 2: failed two hours ago
    ("imp", "nightly", "cancelled", ago(10)),  # 3
    ("imp", "nightly", "completed", ago(10)),  # 4
    ("mail", "nightly", "failed", ago(10)),  # 5
    ("imp", "daily", "failed", ago(10)),  # 6
    ("imp", "nightly", "pending", ago(10)),  # 7
    ("imp", "nightly", "in_progress", ago(10)),  # 8
]


def test_a_dry_run_lists_exactly_what_the_action_then_does_and_appends_nothing(db: str) -> None:
    jobs(db, MIXED)
    before = state(db)
    plan = ok_json("retry", "--task", "imp", "--queue", "nightly", "--dry-run", db=db)
    assert state(db) == before
    assert plan["dry_run"] is True
    assert plan["jobs"] == [
        {"id": 1, "task": "imp", "queue": "nightly", "status": "failed"},
        {"id": 2, "task": "imp", "queue": "nightly", "status": "failed"},
        {"id": 3, "task": "imp", "queue": "nightly", "status": "cancelled"},
    ]
    human = run_cli("retry", "--task", "imp", "--queue", "nightly", "--dry-run", db=db)
    assert human.code == 0, human
    assert human.stdout.splitlines()[-1] == (
        "dry run: 3 jobs would be requeued, 0 refused; nothing changed"
    )
    assert state(db) == before
    done = ok_json("retry", "--task", "imp", "--queue", "nightly", db=db)
    assert (done["requeued"], done["jobs"], done["dry_run"]) == ([1, 2, 3], plan["jobs"], False)
    assert [statuses(db)[i] for i in (1, 2, 3)] == ["pending"] * 3


def test_filters_combine_and_since_compares_when_the_job_last_changed(db: str) -> None:
    jobs(db, MIXED)
    # Job 9 was enqueued three hours ago but failed ten minutes ago: --since 1h takes it.
    (late,) = jobs(db, [("imp", "nightly", "pending", ago(180))])
    with open_app(db) as app:
        app.ledger.append(moves(late, "failed", ago(10)))
    done = ok_json(
        "retry", "--status", "failed", "--task", "imp", "--queue", "nightly", "--since", "1h",
        db=db,
    )  # fmt: skip
    assert done["requeued"] == [1, late]
    assert ok_json("retry", "--status", "failed", "--until", "1h", db=db)["requeued"] == [2]
    cancelled = ok_json("cancel", "--queue", "nightly", "--task", "imp", db=db)
    # Without --status, every status cancel can move: the pending, in-progress and the
    # two just requeued; completed and failed ones are not chosen, so not refused either.
    assert (cancelled["cancelled"], cancelled["refused"]) == ([1, 2, 7, 8, late], [])


def test_ids_with_filters_act_on_the_named_jobs_the_filters_choose_and_refuse_the_rest(
    db: str,
) -> None:
    jobs(db, MIXED)
    result = run_cli("retry", "1", "5", "4", "--task", "imp", "--json", db=db)
    assert result.code == 1, result
    report = json.loads(result.stdout)
    assert report["requeued"] == [1]
    assert report["refused"] == [
        {"id": 5, "error": "job 5 has task 'mail'; the filter chooses task 'imp'"},
        {"id": 4, "error": "job 4 is completed; only failed or cancelled jobs can be retried"},
    ]
    assert result.stderr.splitlines() == [f"error: {r['error']}" for r in report["refused"]]
    assert [statuses(db)[i] for i in (1, 4, 5)] == ["pending", "completed", "failed"]


def test_a_filter_that_matches_nothing_says_so_changes_nothing_and_exits_0(db: str) -> None:
    jobs(db, MIXED)
    before = state(db)
    result = run_cli("cancel", "--queue", "nowhere", db=db)
    assert (result.code, result.stdout, result.stderr) == (
        0,
        "no job matched the filters; nothing changed\n",
        "",
    )
    assert state(db) == before


def test_four_thousand_failed_jobs_retried_in_one_command_carry_one_batch_operator_and_reason(
    db: str,
) -> None:
    wanted = jobs(db, [("imp", "nightly", "failed", ago(5))] * 4000)
    others = jobs(
        db,
        [("imp", "nightly", "failed", ago(180)), ("mail", "nightly", "failed", ago(5))] * 20,
    )
    report = ok_json(
        "retry", "--status", "failed", "--task", "imp", "--since", "1h",
        "--by", "alice", "--reason", "upstream fixed", db=db,
    )  # fmt: skip
    assert (report["requeued"], report["refused"]) == (wanted, [])
    batch = report["batch"]
    with open_app(db) as app:
        trail = app.batch_events(batch)
        assert sorted(rec.job_id for rec in trail) == wanted
        assert {
            (rec.event.by, rec.event.reason, rec.event.batch)
            for rec in trail
            if isinstance(rec.event, JobRequeued)
        } == {("alice", "upstream fixed", batch)}
        assert len(trail) == 4000
        rows = {row["id"]: row["status"] for row in app.ledger.jobs(JobFilter())}
    assert {rows[i] for i in wanted} == {"pending"}
    assert {rows[i] for i in others} == {"failed"}
    summary = ok_json("batch", batch, db=db)
    assert (summary["event"], summary["by"], summary["reason"]) == (
        "requeued",
        "alice",
        "upstream fixed",
    )
    assert summary["jobs"] == wanted
    human = run_cli("batch", batch, db=db)
    assert human.stdout.splitlines()[0] == f"batch {batch}: requeued 4000 jobs"
    assert f"jobs    {wanted[0]}-{wanted[-1]}" in human.stdout
    listed = run_cli("events", "--batch", batch, "--limit", "0", "--json", db=db)
    assert len(json.loads(listed.stdout)) == 4000
    assert run_cli("replay", "--verify", db=db).code == 0


def test_a_single_id_action_is_a_batch_too_named_after_the_os_user(db: str) -> None:
    jobs(db, [("imp", "q", "pending", ago(1))])
    result = run_cli("cancel", "1", db=db)
    assert result.code == 0, result
    batch = result.stdout.splitlines()[-1].split()[1].rstrip(":")
    events = ok_json("events", "--batch", batch, db=db)
    assert [(e["job_id"], e["type"], e["version"]) for e in events] == [(1, "cancelled", 2)]
    assert events[0]["data"] == {"by": getpass.getuser(), "reason": "cancelled", "batch": batch}


def test_a_batch_no_event_carries_is_an_error(db: str) -> None:
    jobs(db, [("imp", "q", "pending", ago(1))])
    result = run_cli("batch", "20200101-000000-abcdef", db=db)
    assert_one_line_error(result, code=1, mentions=["no events carry batch", "expected"])


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["retry", "--status", "bogus"], ["'bogus'", "expected one of", "pending"]),
        (["retry", "--status", "pending"], ["'pending'", "only failed or cancelled"]),
        (["cancel", "--status", "completed"], ["'completed'", "only pending, claimed"]),
        (["retry", "--status", "failed", "--since", "yesterday"], ["--since", "ISO-8601"]),
        (["retry", "--until", "soon"], ["--until", "expected"]),
        (["retry", "--since", "1h", "--until", "2h"], ["since", "expected since earlier"]),
        (["retry"], ["nothing chosen to retry", "job ids or at least one filter"]),
        (["cancel", "--dry-run", "--reason", "x"], ["nothing chosen to cancel"]),
        (["cancel", "1", "x"], ["'x'", "integer"]),
        (["retry", "1", "2.5", "--status", "failed"], ["'2.5'", "integer"]),
        (["cancel", "0"], ["0"]),
        (["retry", "--status", "failed", "--by", " "], ["--by", "expected who"]),
        (["batch", "not-a-batch"], ["invalid batch id", "expected"]),
        (["events", "--batch", "12"], ["invalid batch id"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) and value[0] in (
        "retry", "cancel", "batch", "events"
    ) else None,
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    db: str, args: list[str], mentions: list[str]
) -> None:
    jobs(db, MIXED)
    before = state(db)
    assert_one_line_error(run_cli(*args, db=db), code=2, mentions=mentions)
    assert state(db) == before


def test_a_big_filtered_action_shows_progress_on_a_terminal_and_nothing_when_piped(
    db: str,
) -> None:
    from conductor.cli import progress
    from tests.cli.test_progress import on_terminal

    size = progress.MIN_JOBS
    jobs(db, [("imp", "q", "failed", ago(5))] * size + [("imp", "r", "failed", ago(5))] * size)
    run = on_terminal("retry", "--queue", "q", "--by", "alice", db=db)  # type: ignore[arg-type]
    assert run.code == 0, run
    assert f"retrying {size:,} jobs" in run.stderr
    assert f"{size:,}/{size:,}" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.splitlines()[-1].endswith(f": {size} requeued, 0 refused, by alice: requeued")
    piped = run_cli("retry", "--queue", "r", "--by", "alice", db=db)
    assert (piped.code, piped.stderr) == (0, ""), piped


def test_each_chunk_is_stamped_when_it_is_decided_so_a_long_action_keeps_the_log_in_time(
    db: str,
) -> None:
    from conductor import ManualClock
    from conductor.client.bulk import CHUNK

    wanted = jobs(db, [("imp", "q", "failed", ago(5))] * (CHUNK + 3))
    clock = ManualClock(NOW)
    with Conductor(settings=Settings(db=db), clock=clock) as app:
        report = app.retry_where(
            by="ops", statuses=["failed"], progress=lambda done, total: clock.advance(120)
        )
        trail = app.batch_events(report.batch)
    assert report.done == tuple(wanted)
    stamps = {rec.job_id: rec.at for rec in trail}
    first, second = {stamps[i] for i in wanted[:CHUNK]}, {stamps[i] for i in wanted[CHUNK:]}
    assert len(first) == len(second) == 1
    assert first.pop() < second.pop()
    assert report.batch.startswith(NOW.strftime("%Y%m%d-%H%M%S"))
