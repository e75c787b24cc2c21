"""The JSON API under `/api`: what the pages show, for scripts and other dashboards.

Every answer is read through the `Conductor` facade (`conductor.web.views`), the same
readings the pages render; actions are the POST routes of `conductor.web.actions`.
docs/dashboard.md is the reference.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conductor.client import Conductor
from conductor.web import actions, views
from conductor.web.stream import events as stream_events


def _app(request: Request) -> Conductor:
    return request.app.state.dashboard.facades.get()  # type: ignore[no-any-return]


def stats(request: Request) -> Response:
    return JSONResponse(_app(request).stats().as_dict())


def queues(request: Request) -> Response:
    return JSONResponse(views.queues(_app(request)))


def jobs(request: Request) -> Response:
    query = views.JobQuery.from_params(request.query_params)
    return JSONResponse(views.jobs_page(_app(request), query))


def job(request: Request) -> Response:
    return JSONResponse(views.job_detail(_app(request), request.path_params["job_id"]))


def job_events(request: Request) -> Response:
    detail = views.job_detail(_app(request), request.path_params["job_id"])
    return JSONResponse(detail["events"])


def schedules(request: Request) -> Response:
    return JSONResponse(views.schedules(_app(request)))


def audit(request: Request) -> Response:
    return JSONResponse(views.chain(_app(request)))


def events(request: Request) -> Response:
    query = views.EventQuery.from_params(request.query_params)
    return JSONResponse(views.events(_app(request), query))


def activity(request: Request) -> Response:
    return JSONResponse(request.app.state.dashboard.charts.snapshot())


def overview(request: Request) -> Response:
    """Everything the overview page shows, in one answer."""
    activity = request.app.state.dashboard.charts.snapshot()
    return JSONResponse(views.overview(_app(request), activity))


def stream(request: Request) -> Response:
    """Server-sent events: `changed` with the last seq and the status counts, within a
    second of any event (`conductor.web.stream`)."""
    watcher = request.app.state.dashboard.watcher
    return StreamingResponse(
        stream_events(watcher),
        media_type="text/event-stream",
        headers={"x-accel-buffering": "no"},
    )


ROUTES = (
    Route("/stream", stream, name="api_stream"),
    Route("/stats", stats, name="api_stats"),
    Route("/queues", queues, name="api_queues"),
    Route("/jobs", jobs, name="api_jobs"),
    Route("/jobs/{job_id:int}", job, name="api_job"),
    Route("/jobs/{job_id:int}/events", job_events, name="api_job_events"),
    Route("/schedules", schedules, name="api_schedules"),
    Route("/audit", audit, name="api_audit"),
    Route("/events", events, name="api_events"),
    Route("/activity", activity, name="api_activity"),
    Route("/overview", overview, name="api_overview"),
    *actions.API_ROUTES,
)
