"""conductor as the backend of Django's Tasks framework (docs/django.md).

In settings: `"conductor.integrations.django"` in `INSTALLED_APPS` and
`TASKS = {"default": {"BACKEND": "conductor.integrations.django.ConductorBackend",
"OPTIONS": {"DB": "conductor.db"}}}`; then `python manage.py conductor_worker`.
"""

from conductor.integrations.django.backend import ConductorBackend

__all__ = ["ConductorBackend"]
