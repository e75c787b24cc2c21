"""Every page of the dashboard, served by a real `conductor dashboard` process over real
HTTP, on both backends: each renders the ledger's data, and nothing from a payload or
an error is ever markup."""

from __future__ import annotations

from conductor import Conductor
from tests.web.support import Running

PAGES = ("/", "/jobs", "/queues", "/cron", "/audit")


def test_every_page_renders_with_the_navigation(dashboard: Running, ledger: Conductor) -> None:
    ledger.enqueue({"task": "send_email", "email": "a@example.com"})
    for page in PAGES:
        answer = dashboard.http.get(page)
        assert answer.status_code == 200, (page, answer.text[:300])
        for label in ("Overview", "Jobs", "Queues", "Cron", "Audit"):
            assert f">{label}</a>" in answer.text


def test_a_job_page_shows_its_payload_and_its_timeline(
    dashboard: Running, ledger: Conductor
) -> None:
    job = ledger.enqueue({"task": "send_email", "email": "someone@example.com"})
    answer = dashboard.http.get(f"/jobs/{job}")
    assert answer.status_code == 200
    assert "someone@example.com" in answer.text
    assert "enqueued" in answer.text


def test_a_script_tag_in_a_payload_comes_back_as_text(
    dashboard: Running, ledger: Conductor
) -> None:
    job = ledger.enqueue({"task": "send_email", "email": "<script>alert('owned')</script>"})
    ledger.cancel(job, by="<script>alert('by')</script>", reason="<b>bold</b>")
    for page in (f"/jobs/{job}", "/jobs", "/audit"):
        html = dashboard.http.get(page).text
        assert "<script>alert" not in html, page
        assert "<b>bold" not in html, page
    assert "&lt;script&gt;alert(&#39;by&#39;)" in dashboard.http.get("/audit").text or (
        "\\u003cscript\\u003e" in dashboard.http.get("/audit").text
    )


def test_an_unknown_job_is_a_not_found_page(dashboard: Running, ledger: Conductor) -> None:
    ledger.enqueue({"task": "noop"})
    answer = dashboard.http.get("/jobs/424242")
    assert answer.status_code == 404
    assert "424242" in answer.text
