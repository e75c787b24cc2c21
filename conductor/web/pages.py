"""The HTML pages: overview, jobs, one job, queues, cron schedules, audit, sign-in.

Each page reads through the request thread's `Conductor` (`conductor.web.facade`) and
renders a template in `templates/`, where Jinja's autoescaping turns every value from a
payload or an error into text. Actions are POST forms (`conductor.web.actions`).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from conductor.client import STATUSES, Conductor
from conductor.domain.errors import (
    InvalidInput,
    LedgerError,
    UnknownJob,
    UnknownSchedule,
)
from conductor.domain.events import EVENT_TYPES
from conductor.web import actions, views
from conductor.web.security import Refused, csrf_token, fingerprint


def _app(request: Request) -> Conductor:
    return request.app.state.dashboard.facades.get()  # type: ignore[no-any-return]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    dashboard = request.app.state.dashboard
    path = request.url.path
    root = request.scope.get("root_path", "")
    here = path[len(root) :] if root and path.startswith(root) else path
    full = {
        "user": request.state.user,
        "signed_in": dashboard.credentials is not None and request.state.user is not None,
        "csrf_token": csrf_token(request),
        "flash": request.session.pop("flash", None),
        "active": here.strip("/").split("/")[0] or "overview",
        "here": here + (f"?{request.url.query}" if request.url.query else ""),
        "params": request.query_params,
        "statuses": STATUSES,
        "event_types": EVENT_TYPES,
        **context,
    }
    return dashboard.templates.TemplateResponse(request, name, full, status_code=status)  # type: ignore[no-any-return]


def overview(request: Request) -> Response:
    app = _app(request)
    activity = request.app.state.dashboard.charts.snapshot()
    return render(request, "overview.html", views.overview(app, activity))


def jobs(request: Request) -> Response:
    app = _app(request)
    query = views.JobQuery.from_params(request.query_params)
    page = views.jobs_page(app, query)
    if query.job_id is not None and page["jobs"]:
        return RedirectResponse(request.url_for("job", job_id=query.job_id).path, status_code=303)
    return render(request, "jobs.html", {"page": page, "query": query})


def job(request: Request) -> Response:
    app = _app(request)
    detail = views.job_detail(app, request.path_params["job_id"])
    return render(request, "job.html", {"job": detail})


def queues(request: Request) -> Response:
    return render(request, "queues.html", {"queues": views.queues(_app(request))})


def cron(request: Request) -> Response:
    return render(request, "cron.html", {"schedules": views.schedules(_app(request))})


def audit(request: Request) -> Response:
    app = _app(request)
    query = views.EventQuery.from_params(request.query_params)
    chain = views.chain(app) if request.query_params.get("verify") == "1" else None
    return render(
        request,
        "audit.html",
        {"chain": chain, "query": query, "events": views.events(app, query)},
    )


async def login(request: Request) -> Response:
    dashboard = request.app.state.dashboard
    target = _next(request.query_params.get("next"))
    if dashboard.credentials is None:
        return RedirectResponse(request.url_for("overview").path, status_code=303)
    error = None
    if request.method == "POST":
        form = await request.form()
        token = str(form.get("token", ""))
        name = dashboard.credentials.who(token)
        if name is not None:
            request.session.clear()
            request.session["key"] = fingerprint(token)
            root = request.scope.get("root_path", "")
            to = root + target if target else request.url_for("overview").path
            return RedirectResponse(to, status_code=303)
        error = "That token is not valid."
    return render(
        request, "login.html", {"error": error, "next": target or ""}, 401 if error else 200
    )


async def logout(request: Request) -> Response:
    form = await request.form()
    actions.guard(request, form)
    request.session.clear()
    return RedirectResponse(request.url_for("login").path, status_code=303)


def status_of(error: Exception) -> int:
    """The HTTP status of a refused request: 404 for what does not exist, 400 for bad
    input, 409 for an action the job's state refuses, 503 when the database is away."""
    if isinstance(error, Refused):
        return error.status
    if isinstance(error, UnknownJob | UnknownSchedule):
        return 404
    if isinstance(error, InvalidInput):
        return 400
    if isinstance(error, LedgerError):
        return 503
    return 409


async def failure(request: Request, error: Exception) -> Response:
    """Every `ConductorError` a handler raises: JSON `{"error": ...}` under `/api`, else
    the error page; the message is escaped like every other value."""
    status = status_of(error)
    if getattr(request.state, "api", False):
        return JSONResponse({"error": str(error)}, status_code=status)
    if not hasattr(request.state, "user"):
        request.state.user = None
    titles = {400: "Bad request", 403: "Refused", 404: "Not found", 503: "Database unavailable"}
    return render(
        request,
        "error.html",
        {
            "title": titles.get(status, "Not done"),
            "message": str(error),
            "back": _referrer(request),
        },
        status,
    )


def _referrer(request: Request) -> str | None:
    """The page of this site a refused form was sent from (browsers send it: the
    Referrer-Policy is same-origin), to link back to it; None for anything else."""
    referer = urllib.parse.urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.headers.get("host") or referer.scheme not in ("http", "https"):
        return None
    path = _next(referer.path)
    return None if path is None else path + (f"?{referer.query}" if referer.query else "")


def _next(value: str | None) -> str | None:
    """A redirect target after sign-in: a path on this site only (never another host)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


ROUTES = (
    Route("/", overview, name="overview"),
    Route("/jobs", jobs, name="jobs"),
    Route("/jobs/{job_id:int}", job, name="job"),
    Route("/queues", queues, name="queues"),
    Route("/cron", cron, name="cron"),
    Route("/audit", audit, name="audit"),
    *actions.ROUTES,
)
