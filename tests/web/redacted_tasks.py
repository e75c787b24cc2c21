"""A task declaring payload fields to redact, loaded by the dashboard with
`--app tests.web.redacted_tasks` (the repository root on PYTHONPATH: `app_env`)."""

from __future__ import annotations

from typing import Any

from conductor import task

APP = "tests.web.redacted_tasks"


@task("signup", redact=("password", "card.number"))
def signup(payload: dict[str, Any]) -> None:
    """Never run by these tests: the dashboard only needs the declaration."""
