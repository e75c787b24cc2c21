"""`conductor worker --app conductor.integrations.django.project`: set Django up (from
`DJANGO_SETTINGS_MODULE`) and register the project's Django tasks, so the worker runs
them. `python manage.py conductor_worker` passes it for you; so do the children of
`--processes`, which inherit the settings module from the environment."""

from __future__ import annotations

import django

django.setup()

from conductor.integrations.django.running import register  # noqa: E402 - needs setup

REGISTERED = register()
