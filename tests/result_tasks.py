"""Tasks that return things, for the results and burst-horizon tests:
`conductor worker --app tests.result_tasks` (with `tests.gated_tasks.app_env()`)."""

from __future__ import annotations

import os
from typing import Any

from conductor import current_job, task

APP = "tests.result_tasks"


@task("give")
def give(value: Any = None, **_: object) -> Any:
    """Returns `value` as it came in the payload."""
    return value


@task("give_set")
def give_set(**_: object) -> set[int]:
    """Returns a set, which JSON cannot hold."""
    return {1, 2}


@task("give_text")
def give_text(length: int, **_: object) -> str:
    """Returns `length` characters."""
    return "x" * length


@task("give_after_gate")
def give_after_gate(gate: str, value: Any = None, **_: object) -> Any:
    """Waits (cancellably) until the file `gate` exists, then returns `value`."""
    job = current_job()
    while not os.path.exists(gate):
        if job.sleep(0.02):
            return None
    return value


@task("fail_once", backoff=0.2)
def fail_once(**_: object) -> dict[str, int]:
    """Fails its first attempt (retried after 0.1-0.2 s), then returns its attempt."""
    attempt = current_job().attempt
    if attempt == 1:
        raise RuntimeError("the first attempt fails")
    return {"attempt": attempt}
