"""The same CLI over PostgreSQL: every command a user runs against a SQLite file works
against a `postgresql://` URL (given with --db or CONDUCTOR_DB), on the real server."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def ok(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = run_cli(*args, env=env, timeout=timeout)
    assert done.code == 0, done
    return done.stdout


def test_the_demo_runs_on_postgresql(pg_url: str) -> None:
    out = ok("demo", "--db", pg_url, timeout=600)
    assert "completed" in out
    assert "failed" in out  # the demo's failing job, after its retries
    assert "chain verified" in ok("audit", "verify", "--db", pg_url)
    assert "projections match the log" in ok("replay", "--verify", "--db", pg_url)


def test_every_command_reads_and_acts_on_a_postgresql_ledger(pg_url: str) -> None:
    env = {"CONDUCTOR_DB": pg_url}
    first = ok("enqueue", "--payload", '{"task": "send_email", "email": "a@b.c"}', env=env)
    second = ok("enqueue", "--payload", '{"task": "noop"}', "--queue", "bulk", env=env)
    assert (first.strip(), second.strip()) == ("1", "2")
    assert ok("cancel", "2", env=env).startswith("job 2 cancelled\nbatch ")
    assert ok("retry", "2", env=env).startswith("job 2 requeued\nbatch ")
    ok("worker", "--burst", "-q", "--queue", "default", "--queue", "bulk", env=env)
    jobs = json.loads(ok("jobs", "--json", env=env))
    assert [(row["id"], row["status"]) for row in jobs] == [(1, "completed"), (2, "completed")]
    shown = json.loads(ok("show", "1", "--json", env=env))
    assert shown["status"] == "completed"
    history = ok("history", "2", env=env)
    for event_type in ("enqueued", "cancelled", "requeued", "claimed", "completed"):
        assert event_type in history
    events = json.loads(ok("events", "--type", "completed", "--json", env=env))
    assert {event["job_id"] for event in events} == {1, 2}
    stats = json.loads(ok("stats", "--json", env=env))
    assert (stats["total"], stats["completed"]) == (2, 2)
    assert "conductor_jobs{" in ok("metrics", env=env)
    assert "chain verified: 10 events" in ok("audit", "verify", env=env)
    assert "projections match the log" in ok("replay", "--verify", env=env)
    ok("replay", env=env)
    assert json.loads(ok("jobs", "--json", env=env)) == jobs
