"""`python manage.py conductor_worker [--backend ALIAS] [options of conductor worker]`.

The options are `conductor worker`'s own, parsed by its click command (not copied):
this command adds the ledger of the Django task backend `ALIAS` (`default`) as `--db`,
unless one is given; that backend's `QUEUES` as `--queue`, unless one is given; and
`--app conductor.integrations.django.project`, which registers the project's Django
tasks in the worker and in each child of `--processes`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand

PROJECT_APP = "conductor.integrations.django.project"
DJANGO_OPTIONS = ("--settings", "--pythonpath")
"""Every command's options that manage.py itself handles before the command runs."""


def worker_argv(args: list[str]) -> list[str]:
    """`conductor worker`'s arguments for this command's: `--backend` taken out, the
    backend's ledger and the project's tasks put in."""
    from conductor.integrations.django.backend import backend_named

    alias, rest, given = "default", [], iter(args)
    for arg in given:
        name, equals, value = arg.partition("=")
        if name == "--backend":
            alias = value if equals else next(given, "")
        elif name in DJANGO_OPTIONS:
            # manage.py applied it before this command ran; `conductor worker` has no such option
            _ = equals or next(given, "")
        else:
            rest.append(arg)
    backend = backend_named(alias)
    named = any(arg.split("=")[0] in ("--queue", "--queues") for arg in rest)
    queues = (
        [] if named else [item for name in sorted(backend.queues) for item in ("--queue", name)]
    )
    return ["worker", "--db", backend.ledger_url, *queues, *rest, "--app", PROJECT_APP]


class Command(BaseCommand):  # type: ignore[misc]
    help = (
        "Run a conductor worker for this project's Django tasks. Takes the options of "
        "`conductor worker` (see `manage.py conductor_worker --help`), and --backend ALIAS "
        "to pick the TASKS backend whose ledger it works on (default: default)."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        # conductor worker's click command parses the options, so argparse must not.
        self.work(argv[2:])

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("worker_args", nargs="*", help="Options of `conductor worker`.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.work([*args, *options.get("worker_args", [])])

    def work(self, args: list[str]) -> None:
        from conductor.cli.app import main

        try:
            argv = worker_argv(args)
        except ImproperlyConfigured as e:
            sys.stderr.write(f"error: {' '.join(str(e).split())}\n")
            sys.exit(1)
        main(argv)
