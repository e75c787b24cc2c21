"""Browser tests: a real `conductor dashboard` subprocess over real HTTP, driven by Debian's
chromium through Playwright.

One chromium per test session (`browser`): launching it is the slow part, so each test gets
only a fresh context (its own cookies) and page. The dashboard is a subprocess per test on a
free port against that test's fresh ledger (`db`, so every page test runs on both backends).
Playwright never downloads a browser here: it is pointed at /usr/bin/chromium, and the whole
directory skips, saying why, when that binary or the playwright package is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from tests.conftest import CONDUCTOR, run_cli

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("CONDUCTOR_TEST_CHROMIUM", "/usr/bin/chromium")
"""Debian's chromium; Playwright's own browser download is not reachable from CI."""

STARTUP_TIMEOUT = 60.0
"""A hang guard for the dashboard's start, not a speed check: a loaded machine is slow."""

EXPECT_TIMEOUT_MS = 15_000
"""How long Playwright's `expect` waits for the DOM: a hang guard, the tests wait on the
DOM itself. Generous because two cores are shared by many processes."""


def _chromium_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless chromium for the whole session."""
    missing = _chromium_missing()
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
    """What a page did that a test may forbid: dialogs it opened, console errors (a CSP
    violation is one) and uncaught exceptions."""

    dialogs: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def page(browser: Browser, watch: PageWatch) -> Iterator[Page]:
    """A fresh context (no cookies) and page; dialogs are recorded and dismissed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    opened = context.new_page()

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    opened.on("dialog", on_dialog)
    opened.on(
        "console", lambda msg: watch.errors.append(msg.text) if msg.type == "error" else None
    )
    opened.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    try:
        yield opened
    finally:
        context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@attrs.define
class Dashboard:
    """A running `conductor dashboard` subprocess."""

    url: str
    db: str
    process: subprocess.Popen[str]
    log: Path

    def cli(self, *args: str) -> Any:
        """The `conductor` CLI against this dashboard's ledger."""
        return run_cli(*args, db=self.db)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_dashboard(
    db: str,
    log: Path,
    *,
    host: str = "127.0.0.1",
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    ready_path: str = "/",
) -> Dashboard:
    """Start `conductor dashboard` and wait (polling over HTTP, with a hang guard) until it
    answers `ready_path` with anything but a connection error."""
    port = free_port()
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CONDUCTOR_DB", None)
    handle = log.open("w")
    process = subprocess.Popen(
        [CONDUCTOR, "dashboard", "--db", db, "--host", host, "--port", str(port), *extra],
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
    )
    handle.close()
    connect_host = "127.0.0.1" if host in {"0.0.0.0", "127.0.0.1"} else host  # noqa: S104
    url = f"http://{connect_host}:{port}"
    board = Dashboard(url=url, db=db, process=process, log=log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited {process.returncode}:\n{board.output()}")
        try:
            with urllib.request.urlopen(url + ready_path, timeout=5):  # noqa: S310
                break
        except urllib.error.HTTPError:
            break  # it answered: up (a 401/403 before signing in is still an answer)
        except OSError:
            if time.monotonic() > deadline:
                stop(board)
                raise AssertionError(
                    f"the dashboard did not answer in {STARTUP_TIMEOUT}s:\n{board.output()}"
                ) from None
            time.sleep(0.05)  # polling the port, not waiting for an outcome
    return board


def stop(board: Dashboard) -> None:
    if board.process.poll() is None:
        board.process.terminate()
        try:
            board.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            board.process.kill()
            board.process.wait()


@pytest.fixture
def dashboard(db: str, tmp_path: Path) -> Iterator[Dashboard]:
    """`conductor dashboard` on a free loopback port over the test's fresh ledger (created
    first, since the dashboard opens only an existing one)."""
    Conductor(settings=Settings(db=db)).close()
    board = start_dashboard(db, tmp_path / "dashboard.log")
    try:
        yield board
    finally:
        stop(board)


def enqueue(db: str, payload: str, *options: str) -> int:
    """Enqueue through another process (the `conductor enqueue` CLI); the new job's id."""
    done = run_cli("enqueue", "--payload", payload, *options, db=db)
    assert done.code == 0, done.stderr
    return int(done.stdout.strip().split()[-1])
