"""A small FastAPI application with conductor: POST /signup enqueues a welcome email,
GET /jobs/{id} shows where that job stands. An embedded worker runs the jobs in this
process (docs/asgi.md); run it with `uvicorn fastapi_app:api`.

The database is CONDUCTOR_DB (a file path or a postgresql:// URL), else ./conductor.db.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from conductor import AsyncConductor, UnknownJob, task
from conductor.integrations.asgi import lifespan


@task("welcome_email", max_retries=5)
async def welcome_email(email: str) -> str:
    """An async task: the worker runs it on a loop of its own, not the server's."""
    return f"welcomed {email}"


api = FastAPI(lifespan=lifespan(concurrency=2, grace=10))


class Signup(BaseModel):
    email: str


def conductor(request: Request) -> AsyncConductor:
    handle: AsyncConductor = request.state.conductor
    return handle


@api.post("/signup", status_code=202)
async def signup(body: Signup, request: Request) -> dict[str, int]:
    job = await conductor(request).enqueue({"task": "welcome_email", "email": body.email})
    return {"job": job}


@api.get("/jobs/{job_id}")
async def job_status(job_id: int, request: Request) -> dict[str, Any]:
    app = conductor(request)
    try:
        outcome = await app.outcome(job_id)  # looks once; timeout=... would wait
    except UnknownJob:
        raise HTTPException(status_code=404, detail=f"no job {job_id}") from None
    return {
        "job": job_id,
        "status": outcome.status,
        "result": outcome.value if outcome.status == "completed" else None,
        "error": None if outcome.error is None else str(outcome.error),
    }
