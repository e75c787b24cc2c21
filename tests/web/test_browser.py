"""The dashboard in a real browser: Debian's chromium (Playwright) against a real
`conductor dashboard` subprocess over real HTTP, with the ledger changed by other processes
(`conductor enqueue`, `conductor queue pause`) and checked afterwards through the CLI.

No test sleeps: each waits on the DOM with Playwright's `expect` (which polls until its
hang guard), so a slow machine only makes them slower.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.web.conftest import Dashboard, PageWatch, enqueue, start_dashboard, stop

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def events_of(board: Dashboard, job_id: int) -> list[dict[str, Any]]:
    done = board.cli("events", "--job", str(job_id), "--json")
    assert done.code == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def status_of(board: Dashboard, job_id: int) -> str:
    done = board.cli("show", str(job_id), "--json")
    assert done.code == 0, done.stderr
    status: str = json.loads(done.stdout)["status"]
    return status


def mark_page(page: Page) -> None:
    """Leave a mark on the loaded document: it survives htmx swaps but not a reload."""
    page.evaluate("window.conductorTestMark = 'same document'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.conductorTestMark") == "same document"


def test_the_overview_loads_with_counts_charts_and_no_policy_violation(
    dashboard: Dashboard, page: Page, watch: PageWatch
) -> None:
    enqueue(dashboard.db, '{"task": "noop"}', "--queue", "mail")
    page.goto(dashboard.url + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#count-pending .n")).to_have_text("1")
    expect(page.locator("#queue-counts")).to_contain_text("mail")
    for kind in ("throughput", "latency"):
        expect(page.locator(f".chart[data-kind={kind}]")).to_have_attribute("data-drawn", "1")
    expect(page.locator("body")).to_have_attribute("data-stream-state", "open")
    assert watch.errors == []  # a CSP violation (inline script or style) logs an error
    assert watch.dialogs == []


def test_a_job_enqueued_by_another_process_appears_without_a_reload(
    dashboard: Dashboard, page: Page
) -> None:
    page.goto(dashboard.url + "/jobs")
    expect(page.locator("body")).to_have_attribute("data-stream-state", "open")
    mark_page(page)
    job_id = enqueue(dashboard.db, '{"task": "send_email", "email": "a@example.com"}')
    row = page.locator(f"#job-{job_id}")
    expect(row).to_be_visible()
    expect(row).to_contain_text("send_email")
    expect(row.locator(".badge")).to_have_text("pending")
    page.goto(dashboard.url + "/")
    expect(page.locator("body")).to_have_attribute("data-stream-state", "open")
    mark_page(page)
    enqueue(dashboard.db, '{"task": "noop"}')
    expect(page.locator("#count-pending .n")).to_have_text("2")
    assert_not_reloaded(page)


def test_cancel_from_the_page_asks_first_then_cancels_in_the_ledger(
    dashboard: Dashboard, page: Page
) -> None:
    job_id = enqueue(dashboard.db, '{"task": "noop"}')
    page.goto(f"{dashboard.url}/jobs/{job_id}")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name=re.compile("Cancel job"))).to_be_visible()
    assert status_of(dashboard, job_id) == "pending"  # asking changed nothing
    page.get_by_role("button", name=f"Cancel job {job_id}").click()
    expect(page.locator("#job-status")).to_have_text("cancelled")
    assert status_of(dashboard, job_id) == "cancelled"
    cancelled = [e for e in events_of(dashboard, job_id) if e["type"] == "cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0]["data"]["by"]  # the operator is named
    expect(page.locator("#timeline")).to_contain_text(cancelled[0]["data"]["by"])


def test_retry_from_the_page_names_the_signed_in_user_in_the_ledger(
    db: str, tmp_path: Path, page: Page
) -> None:
    token = "alice-token-0123456789abcdef"
    from conductor import Conductor
    from conductor.domain.config import Settings

    Conductor(settings=Settings(db=db)).close()
    board = start_dashboard(
        db, tmp_path / "dashboard.log", env={"CONDUCTOR_DASHBOARD_TOKEN": f"alice:{token}"}
    )
    try:
        job_id = enqueue(db, '{"task": "noop"}')
        assert board.cli("cancel", str(job_id), "--by", "bob").code == 0
        page.goto(f"{board.url}/jobs/{job_id}")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#job-status")).to_have_text("cancelled")
        page.get_by_role("link", name="Retry").click()
        page.get_by_role("button", name=f"Retry job {job_id}").click()
        expect(page.locator("#job-status")).to_have_text("pending")
        assert status_of(board, job_id) == "pending"
        requeued = [e for e in events_of(board, job_id) if e["type"] == "requeued"]
        assert [e["data"]["by"] for e in requeued] == ["alice"]
    finally:
        stop(board)


def test_bulk_retry_of_the_current_filter_retries_exactly_the_jobs_it_shows(
    dashboard: Dashboard, page: Page
) -> None:
    mail = [enqueue(dashboard.db, '{"task": "send_email", "email": "x@y"}') for _ in range(2)]
    other = enqueue(dashboard.db, '{"task": "noop"}')
    for job_id in (*mail, other):
        assert dashboard.cli("cancel", str(job_id)).code == 0
    page.goto(f"{dashboard.url}/jobs?status=cancelled&task=send_email")
    expect(page.locator("tbody tr.job")).to_have_count(2)
    page.get_by_role("link", name="Retry all matching").click()
    expect(page.locator(".confirm")).to_contain_text("send_email")
    page.get_by_role("button", name=re.compile("Retry the matching jobs")).click()
    expect(page.locator(".flash")).to_contain_text("2")
    assert [status_of(dashboard, job_id) for job_id in mail] == ["pending", "pending"]
    assert status_of(dashboard, other) == "cancelled"


def test_a_queue_paused_by_another_process_shows_paused(dashboard: Dashboard, page: Page) -> None:
    enqueue(dashboard.db, '{"task": "noop"}', "--queue", "reports")
    page.goto(dashboard.url + "/queues")
    row = page.locator("#queue-reports")
    expect(row.locator(".badge")).to_have_text("active")
    mark_page(page)
    assert dashboard.cli("queue", "pause", "reports", "--by", "carol").code == 0
    expect(row.locator(".badge")).to_have_text("paused")
    assert_not_reloaded(page)
    row.get_by_role("link", name="Resume").click()
    page.get_by_role("button", name="Resume queue reports").click()
    expect(page.locator("#queue-reports .badge")).to_have_text("active")
    queues = json.loads(dashboard.cli("queues", "--json").stdout)
    assert [q["paused"] for q in queues if q["name"] == "reports"] == [False]


def test_a_payload_holding_a_script_renders_as_inert_text(
    dashboard: Dashboard, page: Page, watch: PageWatch
) -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)><b id=injected>x</b>"
    job_id = enqueue(dashboard.db, json.dumps({"task": "noop", "note": hostile}))
    for path in (f"/jobs/{job_id}", "/jobs", f"/audit?job={job_id}"):
        page.goto(dashboard.url + path)
        expect(page.locator("main")).to_contain_text("<script>alert(1)</script>")
        assert page.locator("#injected").count() == 0
        assert page.locator("main img").count() == 0
        assert page.locator("main script").count() == 0
        assert page.locator("script:not([src])").count() == 0
    assert watch.dialogs == []


@pytest.mark.sqlite_only("about signing in over HTTP, not about the ledger")
def test_a_non_loopback_bind_asks_for_the_token_and_refuses_a_wrong_one(
    db: str, tmp_path: Path, page: Page
) -> None:
    token = "s3cret-token-for-the-test-0001"
    from conductor import Conductor
    from conductor.domain.config import Settings

    Conductor(settings=Settings(db=db)).close()
    board = start_dashboard(
        db,
        tmp_path / "dashboard.log",
        host="0.0.0.0",  # noqa: S104
        env={"CONDUCTOR_DASHBOARD_TOKEN": f"ops:{token}"},
    )
    try:
        page.goto(board.url + "/jobs")
        expect(page.get_by_label("Token")).to_be_visible()
        page.get_by_label("Token").fill("wrong-token-wrong-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".flash.error")).to_contain_text("not valid")
        expect(page.get_by_role("heading", name="Jobs")).to_have_count(0)
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
        expect(page.locator("header .who")).to_contain_text("ops")
    finally:
        stop(board)
