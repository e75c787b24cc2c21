"""The JSON API over real HTTP against a `conductor dashboard` process, on both backends:
each endpoint answers what the `Conductor` facade says, filters and pages agree with the
ledger, bad parameters are 400 with one sentence, unknown jobs 404."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from conductor import Conductor
from conductor.domain.clock import stamp
from tests.bulk_jobs import WORKER, make_jobs
from tests.gated_tasks import app_env
from tests.web import redacted_tasks
from tests.web.support import Running, start_dashboard

MASK = "[redacted]"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


def test_stats_counts_jobs_by_status_and_queue(dashboard: Running, ledger: Conductor) -> None:
    make_jobs(
        ledger.ledger,
        [
            ("a", "mail", "failed", ago(3)),
            ("a", "mail", "pending", ago(2)),
            ("b", "reports", "completed", ago(1)),
        ],
    )
    stats = dashboard.http.get("/api/stats").json()
    assert (stats["total"], stats["failed"], stats["pending"], stats["completed"]) == (3, 1, 1, 1)
    assert stats["queues"]["mail"]["failed"] == 1
    assert stats["queues"]["reports"]["completed"] == 1
    assert stats == ledger.stats().as_dict()


def test_jobs_are_listed_newest_first_and_filtered(dashboard: Running, ledger: Conductor) -> None:
    ids = make_jobs(
        ledger.ledger,
        [
            ("a", "mail", "failed", ago(50)),
            ("b", "mail", "failed", ago(40)),
            ("a", "reports", "cancelled", ago(30)),
            ("a", "mail", "completed", ago(20)),
            ("a", "mail", "failed", ago(5)),
        ],
    )

    def listed(**params: str) -> list[int]:
        answer = dashboard.http.get("/api/jobs", params=params)
        assert answer.status_code == 200, answer.text
        return [job["id"] for job in answer.json()["jobs"]]

    assert listed() == ids[::-1]
    assert listed(status="failed") == [ids[4], ids[1], ids[0]]
    assert listed(status="failed,cancelled", task="a") == [ids[4], ids[2], ids[0]]
    assert listed(queue="reports") == [ids[2]]
    # Times as stamps, not ages: the test may run long after NOW was taken.
    assert listed(since=stamp(ago(35))) == [ids[4], ids[3], ids[2]]
    assert listed(since=stamp(ago(45)), until=stamp(ago(10))) == [ids[3], ids[2], ids[1]]
    assert listed(id=str(ids[1])) == [ids[1]]
    assert listed(id="999999") == []
    assert dashboard.http.get("/api/jobs", params={"status": "failed"}).json()["total"] == 3
    assert dashboard.http.get("/api/jobs", params={"since": "1h"}).json()["total"] is None


def test_pages_follow_the_before_cursor_to_the_last_job(
    dashboard: Running, ledger: Conductor
) -> None:
    ids = make_jobs(ledger.ledger, [("t", "q", "pending", ago(1))] * 12)
    seen: list[int] = []
    params: dict[str, str] = {"limit": "5"}
    pages = 0
    while True:
        body = dashboard.http.get("/api/jobs", params=params).json()
        pages += 1
        seen += [job["id"] for job in body["jobs"]]
        if body["before"] is None:
            break
        params = {"limit": "5", "before": str(body["before"])}
    assert seen == ids[::-1]
    assert pages == 3


def test_one_job_has_its_payload_attempts_with_tracebacks_events_and_trace(
    dashboard: Running, ledger: Conductor
) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    job = ledger.enqueue({"task": "send_email", "email": "x@example.com"}, trace=trace)
    [failed] = make_jobs(ledger.ledger, [("t", "q", "failed", ago(1))])
    body = dashboard.http.get(f"/api/jobs/{job}").json()
    assert body["payload"] == {"task": "send_email", "email": "x@example.com"}
    assert body["status"] == "pending"
    assert body["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert [event["type"] for event in body["events"]] == ["enqueued"]
    detail = dashboard.http.get(f"/api/jobs/{failed}").json()
    assert [(a["attempt"], a["error_type"], a["traceback"]) for a in detail["attempts_failed"]] == [
        (1, "E", "tb")
    ]
    assert detail["can_retry"]
    assert not detail["can_cancel"]
    events = dashboard.http.get(f"/api/jobs/{failed}/events").json()
    assert [event["type"] for event in events][-2:] == ["attempt_failed", "failed"]
    assert events[0]["since_previous"] is None
    assert all(event["since_previous"] is not None for event in events[1:])


def test_a_completed_jobs_result_is_shown(dashboard: Running, ledger: Conductor) -> None:
    from conductor.domain.events import JobClaimed, JobCompleted, JobRunStarted, NewEvent

    job = ledger.enqueue({"task": "noop"})
    at = "2026-12-07T10:00:00.000000Z"
    ledger.ledger.append(
        [
            NewEvent(
                job_id=job,
                at=at,
                event=JobClaimed(attempt=1, worker="h:1:1", lease_expires_at=at),
            ),
            NewEvent(job_id=job, at=at, event=JobRunStarted(attempt=1)),
            NewEvent(job_id=job, at=at, event=JobCompleted(attempt=1, result='{"sent":3}')),
        ]
    )
    assert dashboard.http.get(f"/api/jobs/{job}").json()["result"] == {"sent": 3}


def test_queues_show_paused_state_and_limits(dashboard: Running, ledger: Conductor) -> None:
    ledger.enqueue({"task": "noop"}, queue="mail")
    ledger.pause_queue("mail", by="alice", reason="maintenance")
    ledger.limit_queue("reports", concurrency=2, rate="10/m", by="bob")
    queues = {q["name"]: q for q in dashboard.http.get("/api/queues").json()}
    assert queues["mail"]["paused"] is True
    assert queues["mail"]["by"] == "alice"
    assert queues["mail"]["counts"] == {"pending": 1}
    assert (queues["reports"]["concurrency"], queues["reports"]["rate"]) == (2, 10)


def test_schedules_list_their_next_runs(dashboard: Running, ledger: Conductor) -> None:
    ledger.add_schedule("nightly", schedule="0 3 * * *", payload={"task": "noop"}, by="carol")
    [schedule] = dashboard.http.get("/api/schedules").json()
    assert schedule["name"] == "nightly"
    assert schedule["paused"] is False
    assert len(schedule["next_runs"]) >= 1
    assert all(run.endswith("T03:00:00.000000Z") for run in schedule["next_runs"])


def test_audit_verifies_the_chain_and_queries_events(dashboard: Running, ledger: Conductor) -> None:
    first = ledger.enqueue({"task": "noop"})
    second = ledger.enqueue({"task": "noop"})
    ledger.cancel(second, by="dave")
    chain = dashboard.http.get("/api/audit").json()
    assert chain["ok"] is True
    assert chain["head_seq"] == ledger.ledger.last_seq() == 3
    events = dashboard.http.get("/api/events", params={"type": "cancelled"}).json()
    assert [(e["job_id"], e["data"]["by"]) for e in events] == [(second, "dave")]
    assert [e["seq"] for e in dashboard.http.get("/api/events").json()] == [3, 2, 1]
    of_first = dashboard.http.get("/api/events", params={"job": str(first)}).json()
    assert [e["type"] for e in of_first] == ["enqueued"]


def test_activity_reports_the_last_hour_and_a_point_per_minute(
    dashboard: Running, ledger: Conductor
) -> None:
    make_jobs(ledger.ledger, [("t", "q", "completed", ago(10)), ("t", "q", "failed", ago(5))])
    activity = dashboard.http.get("/api/activity").json()
    assert activity["last_hour"]["completed"] == 1
    assert activity["last_hour"]["failed"] == 1
    series = activity["series"]
    assert len(series) == 60
    assert activity["slice_seconds"] == 60
    assert sum(point["completed"] for point in series) == 1
    assert sum(point["failed"] for point in series) == 1
    assert [point["start"] for point in series] == sorted(point["start"] for point in series)
    # Later events are read incrementally by the same reader, and counted.
    make_jobs(ledger.ledger, [("t", "q", "completed", ago(1))])
    again = dashboard.http.get("/api/activity").json()
    assert again["last_hour"]["completed"] == 2


def test_the_overview_names_the_workers_holding_jobs_and_the_failing_tasks(
    dashboard: Running, ledger: Conductor
) -> None:
    make_jobs(
        ledger.ledger,
        [
            ("a", "q", "in_progress", ago(1)),
            ("a", "q", "claimed", ago(1)),
            ("b", "q", "failed", ago(1)),
            ("b", "q", "failed", ago(1)),
            ("c", "q", "failed", ago(1)),
        ],
    )
    overview = dashboard.http.get("/api/overview").json()
    assert overview["workers"] == [{"worker": WORKER, "running": 1, "claimed": 1}]
    assert overview["failing"] == [{"task": "b", "failed": 2}, {"task": "c", "failed": 1}]
    assert overview["stats"]["total"] == 5
    page = dashboard.http.get("/").text
    assert WORKER in page


def test_bad_parameters_are_400_and_unknown_jobs_404(dashboard: Running, ledger: Conductor) -> None:
    ledger.enqueue({"task": "noop"})
    for params in ({"status": "bogus"}, {"limit": "0"}, {"limit": "x"}, {"since": "yesterday"}):
        answer = dashboard.http.get("/api/jobs", params=params)
        assert answer.status_code == 400, params
        assert "expected" in answer.json()["error"]
    assert dashboard.http.get("/api/events", params={"type": "exploded"}).status_code == 400
    missing = dashboard.http.get("/api/jobs/4242")
    assert missing.status_code == 404
    assert "4242" in missing.json()["error"]
    assert dashboard.http.get("/api/jobs/4242/events").status_code == 404


def test_redacted_payload_fields_are_masked_in_the_api_and_the_pages(
    ledger: Conductor, db: str, tmp_path: Path
) -> None:
    job = ledger.enqueue(
        {
            "task": "signup",
            "email": "eve@example.com",
            "password": "hunter2-secret",
            "card": {"number": "4111-1111", "expiry": "12/30"},
        }
    )
    with start_dashboard(
        db, "--app", redacted_tasks.APP, env=app_env(), log=tmp_path / "d.log"
    ) as dashboard:
        payload = dashboard.http.get(f"/api/jobs/{job}").json()["payload"]
        assert payload["password"] == MASK
        assert payload["card"] == {"number": MASK, "expiry": "12/30"}
        assert payload["email"] == "eve@example.com"
        listed = dashboard.http.get("/api/jobs").json()["jobs"][0]["payload"]
        assert listed["password"] == MASK
        [enqueued] = dashboard.http.get("/api/events", params={"job": str(job)}).json()
        assert enqueued["data"]["payload"]["password"] == MASK
        for page in (f"/jobs/{job}", "/jobs", "/audit"):
            html = dashboard.http.get(page).text
            assert "hunter2-secret" not in html, page
            assert "4111-1111" not in html, page
