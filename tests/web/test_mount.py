"""The dashboard mounted in a user's own ASGI application: the example of
docs/dashboard.md, served by uvicorn in a subprocess, over real HTTP. Links, redirects,
sign-in and assets follow the mount point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conductor import Conductor
from tests.gated_tasks import REPO

TOKEN = "ops:mount-token-0123456789"  # noqa: S105 - a test token
_RUNNING = re.compile(r"Uvicorn running on (http://\S+)")


def example() -> str:
    doc = (REPO / "docs" / "dashboard.md").read_text()
    found = re.search(r"```python\n# myapp\.py\n(.*?)```", doc, re.DOTALL)
    assert found, "docs/dashboard.md has no myapp.py example"
    return found.group(1)


def test_the_documented_mount_serves_the_dashboard_under_its_path(db: str, tmp_path: Path) -> None:
    with Conductor(db) as app:
        job = app.enqueue({"task": "send_email", "email": "mounted@example.com"})
    (tmp_path / "myapp.py").write_text(example().replace('"conductor.db"', repr(db)))
    log = tmp_path / "uvicorn.log"
    env = {
        **os.environ,
        "OPS_TOKEN": TOKEN,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "myapp:app", "--port", "0", "--log-level", "info"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := _RUNNING.search(log.read_text(errors="replace"))):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # polling the log for uvicorn's address, with a deadline
        with httpx.Client(base_url=found.group(1), trust_env=False, timeout=60) as http:
            assert http.get("/").text == "my application"
            first = http.get("/conductor/jobs")
            assert first.status_code == 303
            assert first.headers["location"] == "/conductor/login?next=/jobs"
            bearer = {"authorization": "Bearer mount-token-0123456789"}
            stats = http.get("/conductor/api/stats", headers=bearer)
            assert stats.json()["pending"] == 1
            signed_in = http.post(
                "/conductor/login?next=/jobs", data={"token": "mount-token-0123456789"}
            )
            assert signed_in.headers["location"] == "/conductor/jobs"
            page = http.get("/conductor/jobs").text
            assert f'href="/conductor/jobs/{job}"' in page
            assert 'href="/conductor/static/dashboard.css"' in page
            assert http.get("/conductor/static/dashboard.css").status_code == 200
            token = re.search(r'name="csrf-token" content="([^"]+)"', page)
            assert token
            cancelled = http.post(
                f"/conductor/jobs/{job}/cancel",
                data={"csrf_token": token.group(1), "next": f"/jobs/{job}"},
            )
            assert cancelled.headers["location"] == f"/conductor/jobs/{job}"
        with Conductor(db) as app:
            assert app.job(job)["status"] == "cancelled"
            assert app.events(job_id=job)[-1].event.by == "ops"  # type: ignore[union-attr]
    finally:
        server.terminate()
        server.wait(timeout=60)
