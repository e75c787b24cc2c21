"""A real dashboard for tests: `conductor dashboard --port 0` in a subprocess, spoken to
over real HTTP (httpx, ignoring any proxy settings of the environment).

`start_dashboard` waits for the line announcing the address (a deadline, never a sleep)
and the returned `Running` stops the process (SIGTERM, then SIGKILL) when closed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import CONDUCTOR

START_TIMEOUT = 60.0
"""A hang guard for start-up on a loaded machine, not a speed check."""
_ANNOUNCED = re.compile(r"conductor dashboard at (http://\S+/) ")


class Running:
    """A dashboard process and an HTTP client pointed at it."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log
        self.http = httpx.Client(base_url=url, trust_env=False, timeout=60.0)

    def client(self, **options: object) -> httpx.Client:
        """Another client (its own cookies), e.g. a second browser or a script."""
        return httpx.Client(base_url=self.url, trust_env=False, timeout=60.0, **options)  # type: ignore[arg-type]

    def csrf(self, client: httpx.Client | None = None, page: str = "/") -> str:
        """The CSRF token of `client`'s session, read from a page as a browser would."""
        answer = (client or self.http).get(page)
        found = re.search(r'name="csrf-token" content="([^"]+)"', answer.text)
        assert found, answer.text[:500]
        return found.group(1)

    def close(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch(
    db: str, *args: str, env: dict[str, str] | None = None, log: Path
) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CONDUCTOR_DB", None)
    if env is None or "CONDUCTOR_DASHBOARD_TOKEN" not in env:
        full_env.pop("CONDUCTOR_DASHBOARD_TOKEN", None)
    with log.open("wb") as sink:
        return subprocess.Popen(
            [CONDUCTOR, "dashboard", "--db", db, "--port", "0", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=full_env,
        )


@contextmanager
def start_dashboard(
    db: str, *args: str, env: dict[str, str] | None = None, log: Path
) -> Iterator[Running]:
    """A running dashboard over `db` (which must exist), closed afterwards."""
    process = launch(db, *args, env=env, log=log)
    deadline = time.monotonic() + START_TIMEOUT
    url = None
    while url is None:
        found = _ANNOUNCED.search(log.read_text(errors="replace"))
        if found:
            url = found.group(1)
        elif process.poll() is not None:
            raise AssertionError(f"dashboard exited {process.returncode}: {log.read_text()}")
        elif time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"dashboard did not start: {log.read_text()}")
        else:
            time.sleep(0.05)  # polling the log file for the announcement, with a deadline
    running = Running(process, url, log)
    try:
        yield running
    finally:
        running.close()
