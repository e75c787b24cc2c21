"""The dashboard's defences, against a real `conductor dashboard` process: sign-in when
it has credentials (pages redirect to the login form, the API answers 401), a non-loopback
bind refused without credentials, and the security headers on every answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conductor import Conductor
from tests.conftest import run_cli
from tests.web.support import Running, start_dashboard

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the bind a test expects refused or guarded
TOKEN = "ops-token-0123456789abcdef"  # noqa: S105 - a test token


@pytest.fixture
def guarded(ledger: Conductor, db: str, tmp_path: Path) -> Running:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who may sign in\nbob:{TOKEN}\n")
    with start_dashboard(db, "--token-file", str(tokens), log=tmp_path / "d.log") as running:
        yield running  # type: ignore[misc]


def test_without_signing_in_pages_redirect_to_login_and_the_api_is_401(guarded: Running) -> None:
    page = guarded.http.get("/jobs?status=failed")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/jobs%3Fstatus%3Dfailed"
    for path in ("/api/stats", "/api/jobs", "/api/stream"):
        answer = guarded.http.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"].startswith("Bearer")
    wrong = guarded.http.get("/api/stats", headers={"authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert guarded.http.post("/api/jobs/retry", data={"status": "failed"}).status_code == 401
    assert guarded.http.get("/login").status_code == 200
    assert guarded.http.get("/static/dashboard.css").status_code == 200


def test_a_wrong_token_on_the_login_form_is_refused(guarded: Running) -> None:
    answer = guarded.http.post("/login", data={"token": "guess-guess-guess-guess"})
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert guarded.http.get("/").status_code == 303


def test_signing_in_returns_to_the_page_asked_for_and_signing_out_ends_it(
    guarded: Running,
) -> None:
    answer = guarded.http.post("/login?next=/queues", data={"token": TOKEN})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/queues"
    assert guarded.http.get("/queues").status_code == 200
    assert guarded.http.get("/api/stats").status_code == 200  # the session serves the API
    assert guarded.http.post("/logout", data={"csrf_token": guarded.csrf()}).status_code == 303
    assert guarded.http.get("/queues").status_code == 303


def test_login_never_redirects_to_another_site(guarded: Running) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = guarded.http.post("/login", params={"next": target}, data={"token": TOKEN})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/", target


def test_a_bearer_token_reads_the_api(guarded: Running) -> None:
    answer = guarded.http.get("/api/stats", headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.json()["total"] == 0


def test_every_answer_carries_the_security_headers(dashboard: Running, ledger: Conductor) -> None:
    job = ledger.enqueue({"task": "noop"})
    for path in ("/", f"/jobs/{job}", "/api/stats", "/jobs/424242", "/static/dashboard.js"):
        headers = dashboard.http.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    assert dashboard.http.get("/").headers["cache-control"] == "no-store"
    with dashboard.client() as fresh:
        cookie = fresh.get("/").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_pages_have_no_inline_script_or_style(dashboard: Running, ledger: Conductor) -> None:
    ledger.enqueue({"task": "noop"})
    for path in ("/", "/jobs", "/jobs/1", "/queues", "/cron", "/audit"):
        html = dashboard.http.get(path).text
        assert "<script>" not in html, path
        assert " style=" not in html, path
        assert " onclick=" not in html.lower(), path


def test_a_non_loopback_bind_without_credentials_is_refused_in_one_line(
    ledger: Conductor, db: str
) -> None:
    done = run_cli(
        "dashboard",
        "--host",
        ALL_INTERFACES,
        "--port",
        "0",
        db=db,
        env={"CONDUCTOR_DASHBOARD_TOKEN": ""},
    )
    assert done.code == 2
    assert done.stderr.count("\n") == 1
    assert "without credentials" in done.stderr
    assert "CONDUCTOR_DASHBOARD_TOKEN" in done.stderr


def test_a_non_loopback_bind_with_a_token_asks_for_it(
    ledger: Conductor, db: str, tmp_path: Path
) -> None:
    env = {"CONDUCTOR_DASHBOARD_TOKEN": TOKEN}
    with start_dashboard(db, "--host", ALL_INTERFACES, env=env, log=tmp_path / "d.log") as running:
        port = running.url.rsplit(":", 1)[1].strip("/")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            assert http.get("/").headers["location"].startswith("/login")
            assert http.get("/api/stats").status_code == 401
