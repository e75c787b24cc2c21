"""`conductor dashboard`: serve the web dashboard (conductor.web) with uvicorn.

Binds 127.0.0.1 by default. Any other address needs credentials (a token from
`CONDUCTOR_DASHBOARD_TOKEN` or `--token-file`): a dashboard that can cancel and retry jobs
is never served to the network open. Bad options are one line and exit 2, before anything
listens; a database that does not exist is one line and exit 1.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

import click

from conductor.cli.options import Whole, db_option, utf8
from conductor.domain.config import Settings
from conductor.domain.errors import InvalidInput


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine reaches (`localhost` counts; any
    other name is treated as reachable from the network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=utf8,
    help="Address to listen on; other than loopback, credentials are required.",
)
@click.option(
    "--port",
    type=Whole(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0 picks a free one, printed at start).",
)
@click.option(
    "--token-file",
    metavar="PATH",
    callback=utf8,
    help="Access tokens, one per line as NAME:TOKEN (or TOKEN, named dashboard); "
    "default: env CONDUCTOR_DASHBOARD_TOKEN.",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE",
    help="Import this module to register its tasks, so their redacted payload fields "
    "are masked (repeatable).",
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark the session cookie Secure (serve through HTTPS, e.g. behind a proxy).",
)
@db_option
def dashboard(
    host: str,
    port: int,
    token_file: str | None,
    apps: tuple[str, ...],
    secure_cookies: bool,
    db: str | None,
) -> None:
    """Serve the web dashboard: overview, jobs, queues, cron, audit, a JSON API under
    /api and live updates. See docs/dashboard.md.
    """
    from conductor.web.auth import Credentials

    try:
        credentials = Credentials.load(token_file)
    except InvalidInput as e:
        raise click.UsageError(str(e)) from None
    if credentials is None and not is_loopback(host):
        raise click.UsageError(
            f"refusing to serve the dashboard on {host} without credentials: expected "
            "CONDUCTOR_DASHBOARD_TOKEN or --token-file (or a loopback --host such as 127.0.0.1)"
        )
    settings = Settings.from_env(db)
    from conductor.client import Conductor
    from conductor.domain.registry import load_app

    for module in apps:
        load_app(module)
    with Conductor(settings=settings, create=False):
        pass  # a database that is missing or not conductor's is refused before listening
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.socket(family, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Connections inherit it: a response's head and body, written separately, must
        # not wait for the client's delayed ACK (40 ms per keep-alive request otherwise).
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listening.bind((host.strip("[]"), port))
        # Listening before the address is announced: a client that connects while the
        # server still starts waits in the backlog instead of being refused.
        listening.listen(2048)
    except (OSError, UnicodeError) as e:
        raise InvalidInput(
            f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}; "
            "expected a free port on an address of this machine"
        ) from None
    _serve(listening, settings, credentials, secure_cookies)


def _serve(listening: socket.socket, settings: Settings, credentials: object, secure: bool) -> None:
    import uvicorn

    from conductor.web import create_app
    from conductor.web.auth import Credentials

    assert credentials is None or isinstance(credentials, Credentials)
    app = create_app(settings, auth=credentials, https_only=secure)
    host, port = listening.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"conductor dashboard at http://{shown}:{port}/ (Ctrl-C to stop)\n")
    sys.stderr.flush()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[listening])
