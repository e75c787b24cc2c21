"""The dashboard in a real browser: Debian's chromium (Playwright) against a real
`conductor dashboard` subprocess over real HTTP, with the ledger changed by other processes
(`conductor enqueue`, `conductor queue pause`) and checked afterwards through the CLI.

No test sleeps: each waits on the DOM with Playwright's `expect` (which polls until its
hang guard), so a slow machine only makes them slower.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import run_cli
from tests.web.conftest import PageWatch
from tests.web.support import Running, start_dashboard

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def at(board: Running, path: str) -> str:
    return board.url.rstrip("/") + path


def cli(db: str, *args: str) -> str:
    done = run_cli(*args, db=db)
    assert done.code == 0, done.stderr
    return done.stdout


def enqueue(db: str, payload: str, *options: str) -> int:
    """Enqueue from another process (the `conductor enqueue` CLI); the new job's id."""
    return int(cli(db, "enqueue", "--payload", payload, *options).strip())


def events_of(db: str, job_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(cli(db, "events", "--job", str(job_id), "--json"))
    return found


def status_of(db: str, job_id: int) -> str:
    status: str = json.loads(cli(db, "show", str(job_id), "--json"))["status"]
    return status


def mark_page(page: Page) -> None:
    """Leave a mark on the loaded document: it survives htmx swaps but not a reload."""
    page.evaluate("window.conductorTestMark = 'same document'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.conductorTestMark") == "same document"


def live(page: Page) -> None:
    """Wait until the page's event stream is open (so what follows is pushed, not loaded)."""
    expect(page.locator("body")).to_have_attribute("data-stream-state", "open")


@contextmanager
def signed_in_dashboard(db: str, tmp_path: Path, token: str, *args: str) -> Iterator[Running]:
    env = {"CONDUCTOR_DASHBOARD_TOKEN": token}
    with start_dashboard(db, *args, env=env, log=tmp_path / "dashboard.log") as running:
        yield running


def sign_in(page: Page, token: str) -> None:
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_the_overview_loads_with_counts_charts_and_no_policy_violation(
    db: str, dashboard: Running, page: Page, watch: PageWatch
) -> None:
    enqueue(db, '{"task": "noop"}', "--queue", "mail")
    page.goto(at(dashboard, "/"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#count-pending .n")).to_have_text("1")
    expect(page.locator("#queue-counts")).to_contain_text("mail")
    for kind in ("throughput", "latency"):
        expect(page.locator(f".chart[data-kind={kind}]")).to_have_attribute("data-drawn", "1")
    live(page)
    assert watch.errors == []  # a CSP violation (inline script or style) logs an error
    assert watch.dialogs == []


def test_a_job_enqueued_by_another_process_appears_without_a_reload(
    db: str, dashboard: Running, page: Page
) -> None:
    page.goto(at(dashboard, "/jobs"))
    live(page)
    mark_page(page)
    job_id = enqueue(db, '{"task": "send_email", "email": "a@example.com"}')
    row = page.locator(f"#job-{job_id}")
    expect(row).to_contain_text("send_email")
    expect(row.locator(".badge")).to_have_text("pending")
    assert_not_reloaded(page)
    page.goto(at(dashboard, "/"))
    live(page)
    mark_page(page)
    enqueue(db, '{"task": "noop"}')
    expect(page.locator("#count-pending .n")).to_have_text("2")
    assert_not_reloaded(page)


def test_cancel_from_the_page_asks_first_then_cancels_in_the_ledger(
    db: str, dashboard: Running, page: Page, watch: PageWatch
) -> None:
    job_id = enqueue(db, '{"task": "noop"}')
    page.goto(at(dashboard, f"/jobs/{job_id}"))
    with page.expect_event("dialog") as asked:
        page.get_by_role("button", name="Cancel").click()
    assert f"Cancel job {job_id}" in asked.value.message
    assert status_of(db, job_id) == "pending"  # declined: nothing was sent
    watch.answer = True
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-status")).to_have_text("cancelled")
    assert status_of(db, job_id) == "cancelled"
    cancelled = [e for e in events_of(db, job_id) if e["type"] == "cancelled"]
    assert len(cancelled) == 1
    who = cancelled[0]["data"]["by"]
    assert who  # the operator is named: the dashboard's OS user on a loopback bind
    expect(page.locator(".flash")).to_contain_text(f"cancelled by {who}")
    expect(page.locator("#timeline")).to_contain_text(f"by={who}")


def test_retry_from_the_page_names_the_signed_in_user_in_the_ledger(
    db: str, ledger: Any, tmp_path: Path, page: Page, watch: PageWatch
) -> None:
    token = secrets.token_urlsafe(24)
    job_id = enqueue(db, '{"task": "noop"}')
    cli(db, "cancel", str(job_id), "--by", "bob")
    with signed_in_dashboard(db, tmp_path, f"alice:{token}") as board:
        page.goto(at(board, f"/jobs/{job_id}"))
        sign_in(page, token)
        expect(page.locator("#job-status")).to_have_text("cancelled")
        watch.answer = True
        page.get_by_role("button", name="Retry").click()
        expect(page.locator("#job-status")).to_have_text("pending")
        assert watch.dialogs == [f"confirm: Retry job {job_id} (noop) with a fresh retry budget?"]
    assert status_of(db, job_id) == "pending"
    requeued = [e for e in events_of(db, job_id) if e["type"] == "requeued"]
    assert [e["data"]["by"] for e in requeued] == ["alice"]


def test_bulk_retry_of_the_current_filter_retries_exactly_the_jobs_it_shows(
    db: str, dashboard: Running, page: Page, watch: PageWatch
) -> None:
    mail = [enqueue(db, '{"task": "send_email", "email": "x@y"}') for _ in range(2)]
    other = enqueue(db, '{"task": "noop"}')
    for job_id in (*mail, other):
        cli(db, "cancel", str(job_id))
    page.goto(at(dashboard, "/jobs?status=cancelled&task=send_email"))
    expect(page.locator("tbody tr.job")).to_have_count(2)
    watch.answer = True
    page.get_by_role("button", name="Retry all matching").click()
    expect(page.locator(".flash")).to_contain_text("2 jobs retried")
    assert "task=send_email" in watch.dialogs[0]
    assert [status_of(db, job_id) for job_id in mail] == ["pending", "pending"]
    assert status_of(db, other) == "cancelled"


def test_a_queue_paused_by_another_process_shows_paused(
    db: str, dashboard: Running, page: Page, watch: PageWatch
) -> None:
    enqueue(db, '{"task": "noop"}', "--queue", "reports")
    page.goto(at(dashboard, "/queues"))
    live(page)
    row = page.locator("#queue-reports")
    expect(row.locator(".badge")).to_have_text("active")
    mark_page(page)
    cli(db, "queue", "pause", "reports", "--by", "carol")
    expect(row.locator(".badge")).to_have_text("paused")
    expect(row).to_contain_text("by carol")
    assert_not_reloaded(page)
    watch.answer = True
    row.get_by_role("button", name="Resume").click()
    expect(page.locator("#queue-reports .badge")).to_have_text("active")
    queues = json.loads(cli(db, "queues", "--json"))
    assert [q["paused"] for q in queues if q["name"] == "reports"] == [False]


def test_limits_set_on_the_queues_page_survive_live_updates_and_reach_the_ledger(
    db: str, dashboard: Running, page: Page, watch: PageWatch
) -> None:
    enqueue(db, '{"task": "noop"}', "--queue", "reports")
    page.goto(at(dashboard, "/queues"))
    live(page)
    row = page.locator("#queue-reports")
    concurrency = row.get_by_label("Concurrency of queue reports")
    rate = row.get_by_label("Rate of queue reports")
    expect(concurrency).to_have_value("")
    concurrency.fill("2")
    rate.fill("30/m")
    # The ledger moves while the operator types: the table is not refreshed under them.
    page.evaluate(
        """document.addEventListener("htmx:beforeRequest", (e) => {
          if (e.defaultPrevented) document.body.dataset.refreshSkipped = "yes";
        });"""
    )
    mark_page(page)
    enqueue(db, '{"task": "noop"}', "--queue", "reports")
    expect(page.locator("body")).to_have_attribute("data-refresh-skipped", "yes")
    assert_not_reloaded(page)
    expect(concurrency).to_have_value("2")
    expect(rate).to_have_value("30/m")
    watch.answer = True
    row.get_by_role("button", name="Set").click()
    expect(page.locator(".flash")).to_have_text("Queue reports: concurrency 2, rate 30/minute.")
    assert watch.dialogs == ["confirm: Limit queue reports to concurrency 2, rate 30/m?"]
    expect(page.locator("#queue-reports")).to_contain_text("30/minute (0 used)")
    expect(page.get_by_label("Concurrency of queue reports")).to_have_value("2")
    [queue] = [q for q in json.loads(cli(db, "queues", "--json")) if q["name"] == "reports"]
    assert (queue["concurrency"], queue["rate"], queue["per"]) == (2, 30, "minute")
    events = json.loads(cli(db, "events", "--json", "--type", "queue_limit_set"))
    assert [(e["data"]["limit"], e["data"]["value"]) for e in events] == [
        ("concurrency", 2),
        ("rate", 30),
    ]
    assert {e["data"]["by"] for e in events} == {queue["by"]}
    assert watch.errors == []
    # Bad input is refused with what is expected, and nothing is appended.
    page.get_by_label("Rate of queue reports").fill("fast")
    page.get_by_label("Rate of queue reports").press("Enter")
    expect(page.locator(".flash.error")).to_contain_text("invalid rate 'fast': expected N/s")
    page.get_by_role("link", name="Back", exact=True).click()
    expect(page.get_by_label("Rate of queue reports")).to_have_value("30/minute")
    assert len(json.loads(cli(db, "events", "--json", "--type", "queue_limit_set"))) == 2


def test_a_payload_holding_a_script_renders_as_inert_text(
    db: str, dashboard: Running, page: Page, watch: PageWatch
) -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)><b id=injected>x</b>"
    job_id = enqueue(db, json.dumps({"task": "noop", "note": hostile}))
    page.goto(at(dashboard, f"/jobs/{job_id}"))
    expect(page.locator("#payload")).to_contain_text(hostile)
    for path in (f"/jobs/{job_id}", f"/audit?job={job_id}"):
        page.goto(at(dashboard, path))
        expect(page.locator("main")).to_contain_text("<script>alert(1)</script>")
        assert page.locator("#injected").count() == 0
        assert page.locator("main img").count() == 0
        assert page.locator("script:not([src])").count() == 0
    assert watch.dialogs == []
    assert watch.errors == []


@pytest.mark.sqlite_only("about signing in over HTTP, not about the ledger")
def test_a_non_loopback_bind_asks_for_the_token_and_refuses_a_wrong_one(
    db: str, ledger: Any, tmp_path: Path, page: Page
) -> None:
    token = secrets.token_urlsafe(24)
    with signed_in_dashboard(db, tmp_path, f"ops:{token}", "--host", "0.0.0.0") as board:  # noqa: S104
        page.goto(at(board, "/jobs"))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        sign_in(page, "wrong-token-wrong-token")
        expect(page.locator(".flash.error")).to_contain_text("not valid")
        expect(page.get_by_role("heading", name="Jobs")).to_have_count(0)
        sign_in(page, token)
        expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
        expect(page.locator("header .who")).to_contain_text("ops")
