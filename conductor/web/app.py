"""`create_app`: the dashboard as one Starlette application.

Mount it inside your own ASGI application (`Mount("/conductor", app=create_app(db))`) or
run it with `conductor dashboard`. Every page and every `/api` answer is read through the
same `Conductor` facade the CLI uses (`conductor.web.facade`); every action is a POST that
records who did it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from conductor.domain.config import Settings
from conductor.domain.errors import ConductorError
from conductor.web import api, pages, views
from conductor.web.auth import Credentials
from conductor.web.charts import Charts
from conductor.web.facade import Facades
from conductor.web.security import Guard, SecurityHeaders
from conductor.web.stream import Watcher

HERE: Final = Path(__file__).parent
SESSION_COOKIE: Final = "conductor_session"


class Dashboard:
    """What every handler shares, kept on `app.state.dashboard`."""

    def __init__(self, settings: Settings, credentials: Credentials | None) -> None:
        self.settings = settings
        self.credentials = credentials
        self.facades = Facades(settings)
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every value from a payload or an error renders as text
            undefined=jinja2.StrictUndefined,
        )
        environment.filters["seconds"] = views.seconds
        environment.filters["pretty"] = views.pretty
        self.templates = Jinja2Templates(env=environment)
        environment.globals["url_for"] = path_for
        self.watcher = Watcher(settings)
        self.charts = Charts(settings)


@jinja2.pass_context
def path_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """A route's path (with the mount point), not an absolute URL: links keep working
    behind a proxy that rewrites the host or scheme."""
    request: Request = context["request"]
    return request.url_for(name, **params).path


def create_app(
    settings_or_db: Settings | str | None = None,
    *,
    auth: Credentials | str | None = None,
    secret_key: str | None = None,
    https_only: bool = False,
) -> Starlette:
    """The dashboard over one ledger (a `Settings`, a `--db` location, or None for
    `CONDUCTOR_DB`/`./conductor.db`).

    `auth`: None lets every request in (for a loopback bind, or behind your own
    authentication); a token string or `Credentials` requires a signed-in session or an
    `Authorization: Bearer` token. `secret_key` signs the session cookie (a random key per
    process when left out: sessions end with the process). `https_only` marks the cookie
    Secure, for a dashboard served over TLS.
    """
    settings = (
        settings_or_db
        if isinstance(settings_or_db, Settings)
        else Settings.from_env(settings_or_db)
    )
    credentials = Credentials.parse(auth, "auth") if isinstance(auth, str) else auth
    dashboard = Dashboard(settings, credentials)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            dashboard.watcher.close()
            dashboard.charts.close()
            dashboard.facades.close()

    app = Starlette(
        routes=[
            *pages.ROUTES,
            Mount("/api", routes=list(api.ROUTES)),
            Route("/login", pages.login, methods=["GET", "POST"], name="login"),
            Route("/logout", pages.logout, methods=["POST"], name="logout"),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret_key or secrets.token_urlsafe(32),
                session_cookie=SESSION_COOKIE,
                same_site="strict",
                https_only=https_only,
            ),
            Middleware(Guard, credentials=credentials),
        ],
        exception_handlers={ConductorError: pages.failure},
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    return app
