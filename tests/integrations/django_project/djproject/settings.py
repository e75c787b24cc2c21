"""A minimal Django project whose tasks run on conductor (tests/integrations).

Its databases and task backends come from the environment, so the tests, this
process's children (`manage.py conductor_worker`) and `conductor --db django:...` all
read one configuration:

- `TEST_SQLITE_DB`: the `default` database, a SQLite file.
- `TEST_PG_DB`: the `pg` database's name on the test PostgreSQL server.
- `TEST_TASKS`: the TASKS setting as JSON (`tasks()` below without it).
"""

import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "tests-only-not-secret"  # noqa: S105 - a test project's placeholder
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_tasks",
    "conductor.integrations.django",
    "djshop",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TEST_SQLITE_DB", str(BASE_DIR / "db.sqlite3")),
    },
}
if os.environ.get("TEST_PG_DB"):
    DATABASES["pg"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["TEST_PG_DB"],
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
    }


def tasks(ledger: str) -> dict[str, dict[str, object]]:
    """TASKS with one conductor backend whose ledger is `ledger`."""
    return {
        "default": {
            "BACKEND": "conductor.integrations.django.ConductorBackend",
            "QUEUES": ["default", "mail"],
            "OPTIONS": {"DB": ledger},
        }
    }


TASKS = (
    json.loads(os.environ["TEST_TASKS"]) if "TEST_TASKS" in os.environ else tasks("conductor.db")
)
