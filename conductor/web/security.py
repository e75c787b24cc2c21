"""The dashboard's defences: security headers, sign-in, and CSRF tokens.

`SecurityHeaders` adds a strict Content-Security-Policy (no inline script or style:
every script and stylesheet is a file under /static), refuses framing and MIME sniffing,
keeps pages out of caches, and reports the server's time to answer (`Server-Timing`).
`Guard` lets a request in when there are no credentials (a loopback bind), or it carries
a valid `Authorization: Bearer` token, or a signed session cookie from the login form;
otherwise a page redirects to the login form and `/api` answers 401. Every POST from a
browser session must carry the session's CSRF token (`check_csrf`): a bearer token is
not sent by browsers on their own, so requests with one need none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.parse
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conductor.client.queues import operator
from conductor.domain.errors import ConductorError
from conductor.web.auth import Credentials

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "x-csrf-token"
PUBLIC: Final = ("/login", "/static/")
"""Paths (below the app's mount point) open without signing in."""


class Refused(ConductorError):
    """A request the dashboard will not serve: `status` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SecurityHeaders:
    """Adds `HEADERS` to every response, and `Cache-Control: no-store` to all but
    static files (pages show operational data that should not linger in caches)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = route_path(scope).startswith("/static/")
        began = time.perf_counter()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(HEADERS)
                # How long the server took to start answering (benchmarks read it).
                spent = (time.perf_counter() - began) * 1000
                headers.append((b"server-timing", f"app;dur={spent:.2f}".encode()))
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def route_path(scope: Scope) -> str:
    """The request's path below the app's mount point."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def fingerprint(token: str) -> str:
    """What a session keeps of the token it signed in with: enough to notice the token
    was withdrawn (the session then ends), not enough to recover it."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class Guard:
    """Lets signed-in requests through and puts the operator's name in
    `request.state.user` (the OS user of the dashboard when there are no credentials);
    `request.state.bearer` says it came with a bearer token."""

    def __init__(self, app: ASGIApp, credentials: Credentials | None) -> None:
        self.app = app
        self.credentials = credentials
        self.fingerprints = (
            {}
            if credentials is None
            else {fingerprint(token): name for token, name in credentials.tokens.items()}
        )
        self.local_user = operator(None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["bearer"] = False
        path = route_path(scope)
        state["api"] = path == "/api" or path.startswith("/api/")
        if self.credentials is None:
            state["user"] = self.local_user
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            name = self.credentials.who(token.strip()) if scheme.lower() == "bearer" else None
            if name is None:
                refusal = JSONResponse(
                    {"error": "invalid bearer token: expected Authorization: Bearer TOKEN"},
                    status_code=401,
                    headers={"www-authenticate": 'Bearer realm="conductor"'},
                )
                await refusal(scope, receive, send)
                return
            state["user"], state["bearer"] = name, True
            await self.app(scope, receive, send)
            return
        session = scope.get("session", {})
        name = self.fingerprints.get(session.get("key", ""))
        if name is not None:
            state["user"] = name
            await self.app(scope, receive, send)
            return
        if path == "/login" or path.startswith(PUBLIC[1]):
            state["user"] = None
            await self.app(scope, receive, send)
            return
        response: Response
        if state["api"]:
            response = JSONResponse(
                {"error": "not signed in: expected Authorization: Bearer TOKEN"},
                status_code=401,
                headers={"www-authenticate": 'Bearer realm="conductor"'},
            )
        else:
            wanted = path + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
            login = f"{scope.get('root_path', '')}/login?next={urllib.parse.quote(wanted)}"
            response = RedirectResponse(login, status_code=303)
        await response(scope, receive, send)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use; every form carries it."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse (403) a browser POST without the session's CSRF token, or sent from another
    origin. A request with a bearer token passes: browsers never add one on their own."""
    if request.state.bearer:
        return
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = urllib.parse.urlsplit(origin).netloc
        if host != request.headers.get("host"):
            raise Refused(f"cross-origin request from {origin} refused", 403)
    expected = request.session.get("csrf")
    given = submitted or request.headers.get(CSRF_HEADER)
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise Refused(
            "missing or wrong CSRF token: expected the form's csrf_token (or an "
            "X-CSRF-Token header) from this session; reload the page",
            403,
        )
