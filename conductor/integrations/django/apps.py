"""The Django app: it brings the `conductor_worker` management command."""

from __future__ import annotations

from django.apps import AppConfig


class ConductorConfig(AppConfig):  # type: ignore[misc]
    name = "conductor.integrations.django"
    label = "conductor"
    verbose_name = "conductor"
