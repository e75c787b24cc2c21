"""`--db django:SETTINGS[:ALIAS]` (or `CONDUCTOR_DB`): the ledger of a Django project's
conductor task backend, for every `conductor` command, read from its settings module
(`django:` alone: `DJANGO_SETTINGS_MODULE`), backend `ALIAS` (`default`)."""

from __future__ import annotations

import os
import sys
from typing import Final

from conductor.domain.errors import InvalidInput

PREFIX: Final = "django:"


def resolve(value: str) -> str:
    """The ledger location that `value` (`django:...`) names, as `--db` takes it."""
    module, _, alias = value[len(PREFIX) :].partition(":")
    module = module or os.environ.get("DJANGO_SETTINGS_MODULE", "")
    if not module:
        raise InvalidInput(
            f"invalid --db {value!r}: names no settings module and DJANGO_SETTINGS_MODULE "
            "is not set; expected django:myproject.settings"
        )
    try:
        import django
    except ImportError:
        raise InvalidInput(
            f"invalid --db {value!r}: Django is not installed; expected "
            "pip install 'conductor[django]'"
        ) from None
    from django.core.exceptions import ImproperlyConfigured

    os.environ["DJANGO_SETTINGS_MODULE"] = module
    # As manage.py does: the project's packages are importable from where it runs.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        django.setup()
        from conductor.integrations.django.backend import ledger_url

        return ledger_url(alias or "default")
    except (ImproperlyConfigured, ImportError) as e:
        raise InvalidInput(f"invalid --db {value!r}: {' '.join(str(e).split())}") from None
