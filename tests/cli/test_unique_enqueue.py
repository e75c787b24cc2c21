"""Unique jobs through the CLI and the Python API, on every backend: what a duplicate
prints and returns, scopes under an injected clock, task defaults, and the key freed by a
real worker finishing its job."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor import Conductor, ManualClock
from conductor.domain.config import Settings
from conductor.domain.errors import InvalidInput
from conductor.domain.registry import REGISTRY
from conductor.ledger.open import is_postgres
from tests.conftest import run_cli
from tests.engine.conftest import WorkerProcesses

PAYLOAD = '{"task": "noop"}'


@pytest.fixture
def app(db: str, clock: ManualClock) -> Iterator[Conductor]:
    with Conductor(settings=Settings(db=db), clock=clock) as handle:
        yield handle


def _task_name() -> str:
    """A task name no other test registers (the registry is the process's own)."""
    return f"unique_{secrets.token_hex(4)}"


# -- the CLI ------------------------------------------------------------------------------
def test_a_duplicate_prints_the_existing_id_and_says_whose_key_it_is(db: str) -> None:
    first = run_cli("enqueue", "--payload", PAYLOAD, "--unique-key", "nightly", db=db)
    assert (first.code, first.stderr) == (0, "")
    job_id = first.stdout.strip()
    again = run_cli("enqueue", "--payload", '{"task": "other"}', "--unique-key", "nightly", db=db)
    assert (again.code, again.stdout) == (0, f"{job_id}\n")
    assert again.stderr == (
        f"duplicate: job {job_id} holds unique key 'nightly'; nothing was enqueued\n"
    )
    listing = json.loads(run_cli("jobs", "--json", db=db).stdout)
    assert [(job["id"], job["task"], job["unique_key"]) for job in listing] == [
        (int(job_id), "noop", "nightly")
    ]


def test_json_output_flags_a_duplicate_and_names_the_key(db: str) -> None:
    answers = [
        json.loads(
            run_cli(
                "enqueue",
                "--payload",
                PAYLOAD,
                "--unique-key",
                "k",
                "--unique-for",
                "1h",
                "--json",
                db=db,
            ).stdout
        )
        for _ in range(2)
    ]
    job_id = answers[0]["ids"][0]
    assert answers == [
        {"ids": [job_id], "duplicate": False, "unique_key": "k"},
        {"ids": [job_id], "duplicate": True, "unique_key": "k"},
    ]
    shown = run_cli("show", str(job_id), db=db).stdout
    assert "Unique key:  k (for 3600s)" in shown


def test_json_output_without_a_key_is_unchanged(db: str) -> None:
    result = run_cli("enqueue", "--payload", PAYLOAD, "--json", db=db)
    assert json.loads(result.stdout).keys() == {"ids"}


def test_file_lines_of_a_task_with_a_default_key_are_each_checked(db: str, tmp_path: Path) -> None:
    (tmp_path / "digest_tasks.py").write_text(
        "from conductor import task\n\n\n"
        '@task("digest", unique_key=lambda payload: "digest:" + payload["user"])\n'
        "def digest(user: str) -> None: ...\n"
    )
    lines = [f'{{"task": "digest", "user": "{user}"}}' for user in ("ann", "bob", "ann")]
    (tmp_path / "digests.jsonl").write_text("\n".join(lines) + "\n")
    args = ("enqueue", "--app", "digest_tasks", "--file", "digests.jsonl")
    first = run_cli(*args, "--json", db=db, cwd=tmp_path)
    assert first.code == 0, first.stderr
    ids = json.loads(first.stdout)["ids"]
    assert json.loads(first.stdout) == {"ids": ids, "duplicate": [False, False, True]}
    assert ids[2] == ids[0]
    again = run_cli(*args, db=db, cwd=tmp_path)
    assert (again.code, again.stdout) == (
        0,
        "enqueued 0 jobs; 3 duplicates of jobs holding their unique keys\n",
    )
    # Without --app the task's key is unknown here: plain jobs.
    plain = run_cli("enqueue", "--file", str(tmp_path / "digests.jsonl"), db=db)
    assert plain.stdout.startswith("enqueued 3 jobs: "), plain.stdout


def test_the_key_is_free_again_once_a_worker_has_completed_its_job(db: str, tmp_path: Path) -> None:
    first = run_cli("enqueue", "--payload", PAYLOAD, "--unique-key", "once", db=db).stdout
    drain = WorkerProcesses(db, tmp_path).start("--burst")  # type: ignore[arg-type]
    assert drain.wait(300) == 0
    again = run_cli("enqueue", "--payload", PAYLOAD, "--unique-key", "once", db=db)
    assert (again.code, again.stderr) == (0, "")
    assert int(again.stdout) > int(first)


# -- the API, with an injected clock -------------------------------------------------------
def test_a_period_blocks_until_it_has_passed_then_frees_the_key(
    app: Conductor, clock: ManualClock
) -> None:
    ten_minutes = dt.timedelta(minutes=10)
    first = app.enqueue({"task": "noop"}, unique_key="k", unique_for=ten_minutes)
    app.cancel(first)  # finished: only the period holds the key now
    clock.advance(ten_minutes)
    assert (
        app.enqueue_each([{"task": "noop"}], unique_key="k", unique_for=ten_minutes)[0].id == first
    )
    clock.advance(dt.timedelta(seconds=1))
    [second] = app.enqueue_each([{"task": "noop"}], unique_key="k", unique_for=ten_minutes)
    assert (second.duplicate, second.id > first) == (False, True)


def test_without_a_period_an_old_pending_job_still_holds_the_key(
    app: Conductor, clock: ManualClock
) -> None:
    first = app.enqueue({"task": "noop"}, unique_key="k")
    clock.advance(dt.timedelta(days=30))
    [again] = app.enqueue_each([{"task": "noop"}], unique_key="k")
    assert (again.id, again.duplicate, again.unique_key) == (first, True, "k")


def test_enqueue_many_takes_a_key_function_of_the_payload(app: Conductor) -> None:
    ids = app.enqueue_many(
        [{"task": "imp", "file": name} for name in ("a", "b", "a", "c", "b")],
        unique_key=lambda payload: f"import:{payload['file']}",
    )
    assert ids[2] == ids[0]
    assert ids[4] == ids[1]
    assert len(set(ids)) == 3
    assert len(app.jobs()) == 3


def test_a_task_default_key_makes_a_singleton_task(app: Conductor) -> None:
    name = _task_name()
    REGISTRY.task(name, unique_key="the-one")(lambda: None)
    first = app.enqueue({"task": name})
    assert app.enqueue({"task": name, "n": 2}) == first
    # An explicit key overrides the task's.
    assert app.enqueue({"task": name}, unique_key="another") != first


def test_a_task_default_key_function_and_period_apply(app: Conductor, clock: ManualClock) -> None:
    name = _task_name()
    REGISTRY.task(name, unique_key=lambda p: p.get("user"), unique_for=60)(lambda **_: None)
    first = app.enqueue({"task": name, "user": "ann"})
    assert app.job(first)["unique_for"] == 60
    app.cancel(first)
    assert app.enqueue({"task": name, "user": "ann"}) == first
    # The function gives no key for this payload: no uniqueness.
    assert app.enqueue({"task": name}) != app.enqueue({"task": name})
    clock.advance(dt.timedelta(seconds=61))
    assert app.enqueue({"task": name, "user": "ann"}) != first


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"unique_key": ""}, "non-blank"),
        ({"unique_key": "k", "unique_for": dt.timedelta(0)}, "whole seconds"),
        ({"unique_key": "k", "unique_for": dt.timedelta(milliseconds=1500)}, "whole seconds"),
        ({"unique_for": dt.timedelta(minutes=1)}, "without a unique key"),
        ({"unique_key": lambda p: 5}, "expected a string or None"),
    ],
    ids=["empty-key", "zero-period", "fractional-period", "period-without-key", "bad-function"],
)
def test_bad_unique_options_are_refused_and_append_nothing(
    app: Conductor, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        app.enqueue({"task": "noop"}, **options)  # type: ignore[arg-type]
    assert app.ledger.last_seq() == 0


def test_a_unique_key_on_the_callers_own_connection_is_refused(app: Conductor, db: str) -> None:
    """Refused before anything is written, whatever the backend (SQLite has no
    transactional enqueue at all; the unique key is what is named)."""
    if not is_postgres(db):
        with pytest.raises(InvalidInput, match="unique key on your own connection"):
            app.enqueue({"task": "noop"}, unique_key="k", connection=object())
        assert app.ledger.last_seq() == 0
        return
    import psycopg

    from conductor.ledger.postgres.connection import parse

    with psycopg.connect(parse(db).conninfo) as conn:
        for key in ("k", lambda payload: "k"):
            with pytest.raises(InvalidInput, match="unique key on your own connection"):
                app.enqueue({"task": "noop"}, unique_key=key, connection=conn)
        conn.commit()
    assert app.jobs() == []
