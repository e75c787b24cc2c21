"""Fixtures of the dashboard tests: a ledger with the dashboard serving it, and for the
browser tests Debian's chromium driven by Playwright.

One chromium per test module (`browser`): launching it is the slow part, so each test gets
only a fresh context (its own cookies) and page. Not one per session: Playwright's sync API
keeps an asyncio loop marked running on the main thread while it is open, and a later test
of another module that calls `asyncio.run` (the stream's tests) would fail; pytest closes a
module's fixtures before it runs another module's tests. Playwright never downloads a browser here:
it is pointed at /usr/bin/chromium, and a browser test skips, saying why, when that binary
or the playwright package is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from conductor import Conductor
from tests.web.support import Running, start_dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("CONDUCTOR_TEST_CHROMIUM", "/usr/bin/chromium")
"""Debian's chromium; Playwright's own browser download is not reachable from CI."""

EXPECT_TIMEOUT_MS = 20_000
"""How long Playwright waits for the DOM: a hang guard, the tests wait on the DOM itself.
Generous because two cores are shared by many processes."""


@pytest.fixture
def ledger(db: str) -> Iterator[Conductor]:
    """The test's ledger (created), for arranging jobs and checking what actions did."""
    with Conductor(db) as app:
        yield app


@pytest.fixture
def dashboard(ledger: Conductor, db: str, tmp_path: Path) -> Iterator[Running]:
    """`conductor dashboard` over the test's ledger, on loopback without credentials."""
    with start_dashboard(db, log=tmp_path / "dashboard.log") as running:
        yield running


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium for the module's tests."""
    missing = chromium_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@attrs.define
class PageWatch:
    """What a page did that a test may forbid: the dialogs it opened, console errors (a
    CSP violation is one) and uncaught exceptions. Dialogs are answered with `answer`:
    dismissed unless a test agrees to them."""

    dialogs: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)
    answer: bool = False


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def page(browser: Browser, watch: PageWatch) -> Iterator[Page]:
    """A fresh context (no cookies) and page, watched (`watch`)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    opened = context.new_page()

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        if watch.answer:
            dialog.accept()
        else:
            dialog.dismiss()

    def on_console(message: Any) -> None:
        if message.type == "error":
            watch.errors.append(message.text)

    opened.on("dialog", on_dialog)
    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    try:
        yield opened
    finally:
        context.close()
