"""The `conductor` group and its entry point.

Each command lives in a module of its own and is imported only when it runs (or when help
lists them all): a command pays at start-up for its own imports, not for every command's.
Errors a user can cause become one line on stderr (`error: ...`) with exit code 1, or 2
for usage errors; never a traceback. A group run without a command prints its help.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import Any, Final

import click

from conductor.domain.errors import ConductorError

COMMANDS: Final = {
    "enqueue": "conductor.cli.enqueue:enqueue",
    "jobs": "conductor.cli.listings:jobs",
    "show": "conductor.cli.listings:show",
    "history": "conductor.cli.listings:history",
    "result": "conductor.cli.results:result",
    "events": "conductor.cli.events:events",
    "stats": "conductor.cli.stats:stats",
    "top": "conductor.cli.stats:top",
    "metrics": "conductor.cli.stats:metrics_once",
    "cancel": "conductor.cli.operator:cancel",
    "retry": "conductor.cli.operator:retry",
    "batch": "conductor.cli.batch:batch",
    "cron": "conductor.cli.cron:cron",
    "queues": "conductor.cli.queues:queues",
    "queue": "conductor.cli.queues:queue",
    "replay": "conductor.cli.maintenance:replay",
    "audit": "conductor.cli.maintenance:audit",
    "migrate": "conductor.cli.migrate:migrate",
    "copy": "conductor.cli.copy:copy",
    "worker": "conductor.cli.worker:worker",
    "bench": "conductor.cli.benchmark:bench",
    "demo": "conductor.cli.demo:demo",
    "dashboard": "conductor.cli.dashboard:dashboard",
}
"""Each command's name and where it is defined (`module:attribute`)."""


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented lazy pattern)."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            return load(self.lazy[cmd_name])
        return super().get_command(ctx, cmd_name)


@functools.cache
def load(where: str) -> click.Command:
    """The click command at `module:attribute`."""
    module, _, attribute = where.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{where} is not a click command")
    return command


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="conductor", prog_name="conductor")
def cli() -> None:
    """conductor: background jobs on an append-only, hash-chained event ledger."""


def _one_line(message: str) -> str:
    text = " ".join(message.split("\n"))
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {_one_line(message)}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every expected failure into one stderr line."""
    if (sys.argv[1:] if argv is None else argv)[:1] == ["worker"]:
        # Before click and the command's imports: a worker stopped while it starts exits
        # gracefully (conductor.engine.signals).
        from conductor.engine import signals

        signals.WORKER.install()
    try:
        if os.environ.get("OTEL_TRACES_EXPORTER") or os.environ.get("OTEL_METRICS_EXPORTER"):
            from conductor.observe import export

            export.configure_from_env()
        code = cli.main(args=argv, prog_name="conductor", standalone_mode=False)
    except ConductorError as e:
        _fail(str(e), 1)
    except click.exceptions.NoArgsIsHelpError as e:
        # A group given no command (`conductor`, `conductor audit`) is asking for help,
        # as with docker: the help on stdout, exit 0, rather than a usage error.
        click.echo(e.ctx.get_help())
        sys.exit(0)
    except click.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        _fail(e.format_message() + hint, e.exit_code)
    except click.ClickException as e:
        _fail(e.format_message(), e.exit_code)
    except click.Abort:
        _fail("aborted", 130)
    except (RecursionError, MemoryError) as e:
        _fail(f"input too large or deeply nested ({type(e).__name__}); expected smaller input", 1)
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The `conductor` console script: `main`, then a quick exit where nothing is left
    for the interpreter's own shutdown to do.

    Tearing the interpreter down (freeing every module and object) costs a short command
    about a tenth of its run time. After a command that started no thread and loaded no
    telemetry or logging (whose exit hooks flush data), only the standard streams hold
    anything, so they are flushed and the process ends at once. `main` itself exits
    normally: tests and embedding programs call it in-process."""
    try:
        main()
    except SystemExit as e:
        code = e.code
    else:  # pragma: no cover - main always exits
        code = 0
    if not isinstance(code, int) or not _nothing_to_tear_down():
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # a closed or broken stream: let the interpreter report it
    os._exit(code)


_NEEDS_SHUTDOWN: Final = ("opentelemetry", "logging", "conductor.engine", "rich")
"""Modules whose exit hooks or threads the quick exit would skip."""


def _nothing_to_tear_down() -> bool:
    import threading

    if threading.active_count() > 1:
        return False
    return not any(
        name == prefix or name.startswith(prefix + ".")
        for name in sys.modules
        for prefix in _NEEDS_SHUTDOWN
    )


@functools.cache
def commands() -> dict[str, click.Command]:
    """Every command path (e.g. `audit verify`) and its click command, for the docs."""
    found: dict[str, click.Command] = {}
    context = click.Context(cli)

    def walk(prefix: str, command: click.Command) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None:
                    walk(f"{prefix} {name}".strip(), sub)
        else:
            found[prefix] = command

    walk("", cli)
    return found
