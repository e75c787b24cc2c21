"""`conductor events` shows an operations-stream event with its subject, not job id 0."""

from __future__ import annotations

import json

from conductor import Conductor, Settings
from conductor.domain.clock import stamp
from conductor.domain.control_events import OPERATIONS, QueuePaused
from conductor.domain.events import NewEvent
from tests.conftest import run_cli


def test_events_names_a_queue_event_by_its_queue_and_history_of_job_0_is_no_job(
    db: str,
) -> None:
    with Conductor(settings=Settings(db=db)) as app:
        app.enqueue({"task": "noop"})
        paused = QueuePaused(queue="mail", by="alice", reason="relay down")
        app.ledger.append([NewEvent(job_id=OPERATIONS, at=stamp(app.clock.now()), event=paused)])
    shown = run_cli("events", db=db)
    assert shown.code == 0, shown.stderr
    row = next(line.split() for line in shown.stdout.splitlines() if "queue_paused" in line)
    assert row[3:5] == ["queue:mail", "queue_paused"]
    as_json = json.loads(run_cli("events", "--json", db=db).stdout)
    assert [(e["job_id"], e["subject"]) for e in as_json] == [(1, None), (0, "queue:mail")]
    assert as_json[1]["data"] == {"by": "alice", "queue": "mail", "reason": "relay down"}
    assert run_cli("jobs", "--json", db=db).stdout.count('"id"') == 1
