"""Bad configuration is one clear error naming the setting: Django's
ImproperlyConfigured in the application, one line on stderr and exit 1 from
`manage.py conductor_worker` and from `conductor --db django:...`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.integrations.conftest import PROJECT, Manage, conductor_tasks

OPTION = "TASKS['default']['OPTIONS']"


@pytest.mark.parametrize(
    ("given", "named", "expected"),
    [
        ({"DB": "x.db", "COLOR": "red"}, "['COLOR']", "expected one of DB, DATABASE"),
        ({}, "['DB']", "neither is set"),
        ({"DB": "x.db", "DATABASE": "pg"}, "['DB']", "both are set"),
        ({"DB": ""}, "['DB']", "expected a non-empty string"),
        ({"DB": "x.db", "MAX_RETRIES": -1}, "['MAX_RETRIES']", "from 0 to 10000"),
        ({"DB": "x.db", "TASK_MODULES": "shop.jobs"}, "['TASK_MODULES']", "a list of module"),
        ({"DB": "x.db", "SCHEMA": "s"}, "['SCHEMA']", "only with"),
        ({"DATABASE": "missing"}, "['DATABASE']", "not in DATABASES"),
        ({"DATABASE": "default"}, "['DATABASE']", "expected a PostgreSQL one"),
    ],
)
def test_a_bad_option_is_improperly_configured_naming_the_setting(
    django_env: dict[str, str], given: dict[str, Any], named: str, expected: str
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from conductor.integrations.django import ConductorBackend

    with pytest.raises(ImproperlyConfigured) as raised:
        ConductorBackend("default", {"OPTIONS": given}).ledger_url  # noqa: B018 - reads it
    message = str(raised.value)
    assert message.startswith(f"{OPTION}{named}")
    assert expected in message
    assert "\n" not in message


def test_the_worker_command_reports_a_bad_option_in_one_line(
    use_tasks: Any, manage: Manage, tmp_path: Path
) -> None:
    env = use_tasks(conductor_tasks(str(tmp_path / "l.db"), COLOR="red"))
    done = manage("conductor_worker", "--burst", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {OPTION}['COLOR'] is not an option")
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "l.db").exists()

    unknown = manage("conductor_worker", "--burst", "--backend", "other", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr == "error: TASKS['other'] is not in TASKS: expected a backend\n"


def test_the_cli_reports_a_django_ledger_it_cannot_find_in_one_line(
    use_tasks: Any, tmp_path: Path
) -> None:
    env = use_tasks(conductor_tasks("", DATABASE="nowhere"))
    done = run_cli("jobs", "--db", "django:djproject.settings", env=env, cwd=PROJECT)
    assert done.code == 1
    assert done.stderr.startswith(
        "error: invalid --db 'django:djproject.settings': "
        f"{OPTION}['DATABASE'] is 'nowhere', which is not in DATABASES"
    )
    assert done.stderr.count("\n") == 1
    nameless = run_cli(
        "jobs", "--db", "django:", env={**env, "DJANGO_SETTINGS_MODULE": ""}, cwd=tmp_path
    )
    assert nameless.code == 1
    assert "expected django:myproject.settings" in nameless.stderr


def test_without_a_tasks_framework_the_backend_says_what_to_install() -> None:
    """Neither Django 6's django.tasks nor the django-tasks backport importable: loading
    the backend is one ImproperlyConfigured naming both, not a ModuleNotFoundError."""

    hide = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('django.tasks', 'django_tasks'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from django.core.exceptions import ImproperlyConfigured\n"
        "try:\n"
        "    import conductor.integrations.django.compat\n"
        "except ImproperlyConfigured as e:\n"
        "    print('refused:', e)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, timeout=60, check=True
    )
    assert shown.stdout.startswith("refused: conductor.integrations.django needs Django's")
    assert "django-tasks" in shown.stdout
    assert "Django 6" in shown.stdout
