"""Operator actions through the dashboard, over real HTTP on both backends: each changes
the ledger through the `Conductor` facade and records who did it (the signed-in token's
name, or the dashboard's OS user on an open loopback dashboard); a browser form needs the
session's CSRF token, a script's bearer token does not."""

from __future__ import annotations

import datetime as dt
import getpass
import html
import re
from pathlib import Path

import httpx

from conductor import Conductor
from tests.bulk_jobs import make_jobs
from tests.web.support import Running, start_dashboard

NOW = dt.datetime.now(dt.UTC)
TOKEN = "alice:correct-horse-battery-staple"  # noqa: S105 - a test token


def form(
    dashboard: Running, path: str, client: httpx.Client | None = None, **fields: str
) -> httpx.Response:
    http = client or dashboard.http
    token = dashboard.csrf(http)
    return http.post(path, data={"csrf_token": token, **fields})


def last_event(ledger: Conductor, job_id: int) -> dict[str, object]:
    rec = ledger.events(job_id=job_id)[-1]
    return {"type": rec.type, **rec.event.fields()}


def test_cancel_from_a_form_cancels_the_job_and_names_the_user(
    dashboard: Running, ledger: Conductor
) -> None:
    job = ledger.enqueue({"task": "noop"})
    answer = form(dashboard, f"/jobs/{job}/cancel", next=f"/jobs/{job}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/jobs/{job}"
    assert ledger.job(job)["status"] == "cancelled"
    assert last_event(ledger, job)["by"] == getpass.getuser()
    page = dashboard.http.get(f"/jobs/{job}").text
    assert "1 job cancelled by" in page


def test_retry_from_a_form_requeues_a_failed_job(dashboard: Running, ledger: Conductor) -> None:
    [job] = make_jobs(ledger.ledger, [("t", "q", "failed", NOW)])
    assert form(dashboard, f"/jobs/{job}/retry").status_code == 303
    assert ledger.job(job)["status"] == "pending"
    assert last_event(ledger, job)["type"] == "requeued"


def test_an_action_the_jobs_state_refuses_is_409_and_changes_nothing(
    dashboard: Running, ledger: Conductor
) -> None:
    [job] = make_jobs(ledger.ledger, [("t", "q", "completed", NOW)])
    seq = ledger.ledger.last_seq()
    answer = dashboard.http.post(f"/api/jobs/{job}/cancel", data={"csrf_token": dashboard.csrf()})
    assert answer.status_code == 409
    assert "completed" in answer.json()["error"]
    assert ledger.ledger.last_seq() == seq


def test_bulk_retry_acts_on_exactly_the_filtered_jobs_as_one_batch(
    dashboard: Running, ledger: Conductor
) -> None:
    ids = make_jobs(
        ledger.ledger,
        [
            ("a", "q", "failed", NOW),
            ("b", "q", "failed", NOW),
            ("a", "q", "cancelled", NOW),
            ("a", "q", "completed", NOW),
        ],
    )
    answer = dashboard.http.post(
        "/api/jobs/retry",
        data={"csrf_token": dashboard.csrf(), "task": "a", "reason": "deploy fixed it"},
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert sorted(report["done"]) == [ids[0], ids[2]]
    assert report["by"] == getpass.getuser()
    batch = ledger.batch_events(report["batch"])
    assert sorted(rec.job_id for rec in batch) == [ids[0], ids[2]]
    assert {rec.event.reason for rec in batch} == {"deploy fixed it"}  # type: ignore[union-attr]
    assert [ledger.job(i)["status"] for i in ids] == ["pending", "failed", "pending", "completed"]


def test_a_bulk_action_without_a_filter_is_refused(dashboard: Running, ledger: Conductor) -> None:
    make_jobs(ledger.ledger, [("a", "q", "failed", NOW)])
    seq = ledger.ledger.last_seq()
    answer = dashboard.http.post("/api/jobs/retry", data={"csrf_token": dashboard.csrf()})
    assert answer.status_code == 400
    assert "at least one filter" in answer.json()["error"]
    assert ledger.ledger.last_seq() == seq


def test_queue_and_schedule_pause_and_resume_are_recorded(
    dashboard: Running, ledger: Conductor
) -> None:
    ledger.enqueue({"task": "noop"}, queue="mail")
    ledger.add_schedule("nightly", schedule="0 3 * * *", payload={"task": "noop"})
    assert form(dashboard, "/queues/mail/pause", next="/queues").status_code == 303
    [mail] = [q for q in ledger.queues() if q.name == "mail"]
    assert (mail.paused, mail.by) == (True, getpass.getuser())
    assert "paused" in dashboard.http.get("/queues").text
    assert form(dashboard, "/queues/mail/resume").status_code == 303
    assert not next(q for q in ledger.queues() if q.name == "mail").paused
    assert form(dashboard, "/cron/nightly/pause").status_code == 303
    assert ledger.schedule("nightly").paused
    assert ledger.schedule("nightly").next_runs == ()
    assert form(dashboard, "/cron/nightly/resume").status_code == 303
    assert not ledger.schedule("nightly").paused


def limits_of(ledger: Conductor, name: str) -> tuple[int | None, int | None, str | None]:
    [queue] = [q for q in ledger.queues() if q.name == name]
    return queue.concurrency, queue.rate, queue.per


def limit_events(ledger: Conductor) -> list[tuple[str, str, object, str]]:
    """The operations stream's limit changes: (type, limit, value, by)."""
    found = ledger.events(job_id=0, types=("queue_limit_set", "queue_limit_cleared"))
    return [
        (rec.type, str(e["limit"]), e.get("value"), str(e["by"]))
        for rec in found
        for e in (rec.event.fields(),)
    ]


def test_queue_limits_set_from_the_form_are_recorded_shown_and_not_repeated(
    dashboard: Running, ledger: Conductor
) -> None:
    ledger.enqueue({"task": "noop"}, queue="mail")
    me = getpass.getuser()
    answer = form(dashboard, "/queues/mail/limit", next="/queues", concurrency="3", rate="10/m")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/queues"
    assert limits_of(ledger, "mail") == (3, 10, "minute")
    assert limit_events(ledger) == [
        ("queue_limit_set", "concurrency", 3, me),
        ("queue_limit_set", "rate", 10, me),
    ]
    page = dashboard.http.get("/queues").text
    assert "Queue mail: concurrency 3, rate 10/minute." in page
    assert re.search(r'name="concurrency"[^>]*value="3"', page)
    assert re.search(r'name="rate"[^>]*value="10/minute"', page)
    # The form sends both fields as shown: what already holds appends nothing.
    seq = ledger.ledger.last_seq()
    form(dashboard, "/queues/mail/limit", concurrency="3", rate="10/minute")
    assert ledger.ledger.last_seq() == seq
    assert "nothing changed" in dashboard.http.get("/queues").text
    # An emptied field clears its limit; a field left out (a script's call) keeps it.
    assert form(dashboard, "/queues/mail/limit", concurrency="", rate="10/m").status_code == 303
    assert limits_of(ledger, "mail") == (None, 10, "minute")
    answer = dashboard.http.post(
        "/api/queues/mail/limit", data={"csrf_token": dashboard.csrf(), "concurrency": "7"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "queue": "mail",
        "concurrency": 7,
        "rate": 10,
        "per": "minute",
        "changed": ["concurrency"],
    }
    answer = dashboard.http.post(
        "/api/queues/mail/limit", data={"csrf_token": dashboard.csrf(), "rate": "none"}
    )
    assert answer.json()["changed"] == ["rate"]
    assert limits_of(ledger, "mail") == (7, None, None)
    assert limit_events(ledger)[2:] == [
        ("queue_limit_cleared", "concurrency", None, me),
        ("queue_limit_set", "concurrency", 7, me),
        ("queue_limit_cleared", "rate", None, me),
    ]


def test_bad_queue_limits_are_refused_with_what_is_expected_and_change_nothing(
    dashboard: Running, ledger: Conductor
) -> None:
    ledger.enqueue({"task": "noop"}, queue="mail")
    ledger.limit_queue("mail", concurrency=2)
    seq = ledger.ledger.last_seq()
    bad = [
        ({"rate": "fast"}, "invalid rate 'fast': expected N/s, N/m or N/h"),
        ({"concurrency": "-1"}, "invalid concurrency '-1': expected a whole number from 1"),
        ({"concurrency": "0", "rate": "5/m"}, "invalid concurrency '0'"),
        ({"concurrency": "3", "rate": "5/d"}, "invalid rate '5/d'"),
        ({"concurrency": "1" * 5000}, "invalid concurrency"),
        ({}, "nothing to change"),
    ]
    for fields, message in bad:
        answer = dashboard.http.post(
            "/api/queues/mail/limit", data={"csrf_token": dashboard.csrf(), **fields}
        )
        assert answer.status_code == 400, (fields, answer.text)
        assert answer.json()["error"].startswith(message)
        page = form(dashboard, "/queues/mail/limit", next="/queues", **fields)
        assert page.status_code == 400
        assert message in html.unescape(page.text)
        assert "Traceback" not in page.text
    # The refusal links back to the page the form was on, never to another site.
    for referer, link in (
        (dashboard.url + "queues?x=1", '<a href="/queues?x=1">Back</a>'),
        ("http://evil.example/queues", "Back to the overview"),
    ):
        page = dashboard.http.post(
            "/queues/mail/limit",
            data={"csrf_token": dashboard.csrf(), "rate": "fast"},
            headers={"referer": referer},
        )
        assert link in page.text
    refused = form(dashboard, "/queues/bad name/limit", concurrency="3")
    assert refused.status_code == 400
    assert "invalid queue" in refused.text
    for path in ("/queues/mail/limit", "/api/queues/mail/limit"):
        answer = dashboard.http.post(path, data={"concurrency": "9", "csrf_token": "forged"})
        assert answer.status_code == 403
        assert "CSRF" in answer.text
    assert ledger.ledger.last_seq() == seq
    assert limits_of(ledger, "mail") == (2, None, None)


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    dashboard: Running, ledger: Conductor
) -> None:
    job = ledger.enqueue({"task": "noop"})
    dashboard.csrf()  # the session exists: only the token is missing or wrong
    for data in ({}, {"csrf_token": "forged"}):
        for path in (f"/jobs/{job}/cancel", f"/api/jobs/{job}/cancel"):
            answer = dashboard.http.post(path, data=data)
            assert answer.status_code == 403, (path, data)
            assert "CSRF" in answer.text
    # Another browser's session token is not this one's.
    other = dashboard.client()
    assert (
        dashboard.http.post(
            f"/jobs/{job}/cancel", data={"csrf_token": dashboard.csrf(other)}
        ).status_code
        == 403
    )
    # A page of another site posting with a stolen-looking token is refused by origin.
    answer = dashboard.http.post(
        f"/jobs/{job}/cancel",
        data={"csrf_token": dashboard.csrf()},
        headers={"origin": "http://evil.example"},
    )
    assert answer.status_code == 403
    assert ledger.job(job)["status"] == "pending"


def test_with_a_token_actions_name_the_tokens_user_and_bearer_needs_no_csrf(
    ledger: Conductor, db: str, tmp_path: Path
) -> None:
    job = ledger.enqueue({"task": "noop"})
    other = ledger.enqueue({"task": "noop"})
    env = {"CONDUCTOR_DASHBOARD_TOKEN": TOKEN}
    with start_dashboard(db, env=env, log=tmp_path / "d.log") as dashboard:
        bearer = {"authorization": "Bearer correct-horse-battery-staple"}
        answer = dashboard.http.post(f"/api/jobs/{job}/cancel", headers=bearer)
        assert answer.status_code == 200, answer.text
        assert answer.json()["by"] == "alice"
        assert last_event(ledger, job)["by"] == "alice"
        # A browser signs in on the form; its actions carry the same name.
        browser = dashboard.client()
        login = browser.post("/login", data={"token": "correct-horse-battery-staple"})
        assert login.status_code == 303
        assert form(dashboard, f"/jobs/{other}/cancel", client=browser).status_code == 303
        assert last_event(ledger, other)["by"] == "alice"
        assert (
            form(dashboard, "/queues/default/limit", client=browser, concurrency="4").status_code
            == 303
        )
        assert limit_events(ledger) == [("queue_limit_set", "concurrency", 4, "alice")]
        assert re.search(r'class="user">alice<', browser.get("/").text)
