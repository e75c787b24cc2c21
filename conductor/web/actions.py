"""Operator actions from the dashboard: cancel, retry, bulk retry or cancel of a filter,
queue pause/resume and limits, schedule pause/resume.

Each is a POST, from a page's form (then redirected back, with a note of what happened) or
from a script under `/api` (then answered in JSON). Each checks the CSRF token first
(`conductor.web.security.check_csrf`) and calls the same `Conductor` method the CLI does,
with `by=` the signed-in user or token name, so the operator event names who did it. The
confirmation a person gives before acting is the page's business; the server acts on
any valid request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from conductor.client import Conductor
from conductor.client.queues import KEEP, Keep
from conductor.domain import queue_controls as rules
from conductor.domain.reports import ActionReport
from conductor.web import views
from conductor.web.security import CSRF_FIELD, check_csrf

R = TypeVar("R")
Act = Callable[[Conductor, str, Mapping[str, str]], dict[str, Any]]


def guard(request: Request, form: FormData) -> None:
    value = form.get(CSRF_FIELD)
    check_csrf(request, value if isinstance(value, str) else None)


def _report(action: str, report: ActionReport, *, single: bool = False) -> dict[str, Any]:
    """An action's report as JSON; for an action on one job, its refusal is the error
    (409 or 404), as `Conductor.cancel` raises it."""
    if single and report.refused:
        raise next(iter(report.refused.values()))
    return {
        "action": action,
        "batch": report.batch,
        "by": report.by,
        "reason": report.reason,
        "done": list(report.done),
        "refused": {str(job_id): str(error) for job_id, error in report.refused.items()},
    }


def cancel_job(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    job_id = int(params["job_id"])
    report = app.cancel_many((job_id,), by=who, reason=_reason(params, "cancelled"))
    return _report("cancel", report, single=True)


def retry_job(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    job_id = int(params["job_id"])
    report = app.retry_many((job_id,), by=who, reason=_reason(params, "requeued"))
    return _report("retry", report, single=True)


def retry_where(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    where = views.Where.from_params(params)
    return _report(
        "retry", app.retry_where(by=who, reason=_reason(params, "requeued"), **where.kwargs())
    )


def cancel_where(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    where = views.Where.from_params(params)
    return _report(
        "cancel", app.cancel_where(by=who, reason=_reason(params, "cancelled"), **where.kwargs())
    )


def pause_queue(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    changed = app.pause_queue(params["name"], by=who, reason=params.get("reason", ""))
    return {"queue": params["name"], "paused": True, "changed": changed}


def resume_queue(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    changed = app.resume_queue(params["name"], by=who, reason=params.get("reason", ""))
    return {"queue": params["name"], "paused": False, "changed": changed}


def limit_queue(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    """Set or clear the queue's limits, typed as for `conductor queue limit` and read by
    the same parsers; a field left out keeps its limit, an empty one clears it (the form
    shows each limit in its field, so emptying the field is how a person removes it)."""
    name = params["name"]
    changed = app.limit_queue(
        name,
        concurrency=_setting(params, "concurrency", rules.parse_concurrency_setting),
        rate=_setting(params, "rate", rules.parse_rate_setting),
        by=who,
        reason=params.get("reason", ""),
    )
    held = next(summary for summary in app.queues() if summary.name == name)
    return {
        "queue": name,
        "concurrency": held.concurrency,
        "rate": held.rate,
        "per": held.per,
        "changed": changed,
    }


def _setting(params: Mapping[str, str], field: str, parse: Callable[[str], R]) -> R | Keep:
    if field not in params:
        return KEEP
    return parse(params[field].strip() or rules.CLEAR)


def pause_schedule(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    app.pause_schedule(params["name"], by=who, reason=params.get("reason", ""))
    return {"schedule": params["name"], "paused": True}


def resume_schedule(app: Conductor, who: str, params: Mapping[str, str]) -> dict[str, Any]:
    app.resume_schedule(params["name"], by=who, reason=params.get("reason", ""))
    return {"schedule": params["name"], "paused": False}


def _reason(params: Mapping[str, str], default: str) -> str:
    return params.get("reason", "").strip() or default


def endpoint(act: Act, *, api: bool) -> Callable[[Request], Any]:
    """The POST handler running `act`: CSRF check, the action in a worker thread (the
    ledger's calls block), then JSON for the API or a redirect back for a form."""

    async def handle(request: Request) -> Response:
        form = await request.form()
        guard(request, form)
        params = {
            **{k: v for k, v in form.items() if isinstance(v, str)},
            **{k: str(v) for k, v in request.path_params.items()},
        }
        user: str = request.state.user
        done = await run_in_threadpool(
            lambda: act(request.app.state.dashboard.facades.get(), user, params)
        )
        if api:
            return JSONResponse(done)
        request.session["flash"] = views.describe(done)
        return RedirectResponse(_back(request, params), status_code=303)

    return handle


def _back(request: Request, params: Mapping[str, str]) -> str:
    """Where a form goes after acting: the page it came from (a path on this site)."""
    target = params.get("next", "")
    root: str = request.scope.get("root_path", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return root + target
    return request.url_for("overview").path


_ACTIONS: tuple[tuple[str, Act, str], ...] = (
    ("/jobs/{job_id:int}/cancel", cancel_job, "cancel_job"),
    ("/jobs/{job_id:int}/retry", retry_job, "retry_job"),
    ("/jobs/retry", retry_where, "retry_where"),
    ("/jobs/cancel", cancel_where, "cancel_where"),
    ("/queues/{name}/pause", pause_queue, "pause_queue"),
    ("/queues/{name}/resume", resume_queue, "resume_queue"),
    ("/queues/{name}/limit", limit_queue, "limit_queue"),
    ("/cron/{name}/pause", pause_schedule, "pause_schedule"),
    ("/cron/{name}/resume", resume_schedule, "resume_schedule"),
)

ROUTES = tuple(
    Route(path, endpoint(act, api=False), methods=["POST"], name=name)
    for path, act, name in _ACTIONS
)
API_ROUTES = tuple(
    Route(path, endpoint(act, api=True), methods=["POST"], name=f"api_{name}")
    for path, act, name in _ACTIONS
)
