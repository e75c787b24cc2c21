"""Prometheus's own linter accepts what conductor exposes: a real worker's `/metrics`
scraped over HTTP and `conductor metrics`, each piped to `promtool check metrics`."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.domain.config import Settings
from tests.conftest import CONDUCTOR, run_cli
from tests.engine.conftest import wait_until
from tests.observability.test_metrics import free_port, parse, try_scrape

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found on PATH (Debian package `prometheus`; .ci/run installs it)",
)


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@needs_promtool
def test_promtool_accepts_a_workers_scrape_and_conductor_metrics(db_path: Path) -> None:
    with Conductor(settings=Settings(db=str(db_path))) as app:
        done = app.enqueue({"task": "noop"})
        failed = app.enqueue({"task": "fail"}, max_retries=0)
        app.enqueue({"task": "noop"}, queue="elsewhere")  # pending: the gauges have a row
        port = free_port()
        worker = subprocess.Popen(
            [CONDUCTOR, "worker", "--db", str(db_path), "--metrics-port", str(port), "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(
                lambda: (
                    app.job(done)["status"] == "completed" and app.job(failed)["status"] == "failed"
                ),
                timeout=300,
                what="the worker to finish both jobs",
            )

            def settled() -> str | None:
                text = try_scrape(port)
                timed = (
                    text is not None
                    and sum(
                        value
                        for name, _, value in parse(text)
                        if name == "conductor_attempt_duration_seconds_count"
                    )
                    == 2.0
                )
                return text if timed else None

            scraped = wait_until(settled, timeout=300, what="both attempts in the scrape")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(300)
    printed = run_cli("metrics", db=db_path)
    assert printed.code == 0, printed.stderr

    for source, text in (("worker /metrics", scraped), ("conductor metrics", printed.stdout)):
        names = {name for name, _, _ in parse(text)}
        assert "conductor_jobs" in names, source  # the gauge that used to end in _count
        checked = promtool_check(text)
        assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", ""), source
