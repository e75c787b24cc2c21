"""A real Django project (django_project/: settings, the `djshop` app and its tasks) set
up once per test process, over a SQLite file and a PostgreSQL database of its own; each
test points its task backend at a fresh ledger (`use_tasks`), and `manage` runs the
project's manage.py as a subprocess with the same configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).parent / "django_project"

Manage = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def django_env(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The project's environment, and Django set up in this process with it. The
    variables are this process's only while Django reads its settings: later tests in the
    process (the docs' examples make Django projects of their own) must not inherit them."""
    pytest.importorskip("django")
    env = {
        "DJANGO_SETTINGS_MODULE": "djproject.settings",
        "TEST_SQLITE_DB": str(tmp_path_factory.mktemp("django") / "app.sqlite3"),
        "TEST_PG_DB": pg_database.rsplit("/", 1)[1],
    }
    before = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    import django
    from django.conf import settings
    from django.core.management import call_command

    try:
        django.setup()
        settings.DATABASES  # noqa: B018 - read now, while the variables are set
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for alias in ("default", "pg"):
        call_command("migrate", run_syncdb=True, database=alias, verbosity=0)
    return env


@pytest.fixture
def use_tasks(
    django_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, Any]], dict[str, str]]]:
    """Point TASKS at a configuration for this test (here and in `manage`'s children);
    returns the children's environment."""
    from django.test import override_settings

    overrides: list[Any] = []

    def use(tasks: dict[str, Any]) -> dict[str, str]:
        monkeypatch.setenv("TEST_TASKS", json.dumps(tasks))
        override = override_settings(TASKS=tasks)
        override.enable()
        overrides.append(override)
        return {**django_env, "TEST_TASKS": json.dumps(tasks)}

    yield use
    for override in reversed(overrides):
        override.disable()


def conductor_tasks(ledger: str, **options: Any) -> dict[str, Any]:
    """TASKS with one conductor backend, `default`, on `ledger` (or `options` alone)."""
    return {
        "default": {
            "BACKEND": "conductor.integrations.django.ConductorBackend",
            "QUEUES": ["default", "mail"],
            "OPTIONS": {"DB": ledger, **options} if ledger else options,
        }
    }


@pytest.fixture
def manage(tmp_path: Path) -> Manage:
    """Run `python manage.py ARGS` in the project with `env`; a hang guard, not a clock."""

    def run(*args: str, env: dict[str, str], timeout: float = 180) -> Any:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
