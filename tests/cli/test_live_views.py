"""Live views: `stats` activity figures, `stats --watch` / `top`, `events --follow`, and
trace ids in `history`.

Every command runs as the installed executable: the live ones in a real pseudo-terminal
(`Terminal`, Python's `pty`), stopped the way a user stops them (Ctrl-C typed into the
terminal) or the way a supervisor does (SIGTERM), or with stdout a pipe. Tests wait for
output with deadlines, never with sleeps. Events with chosen stamps are written through
the Python API on the same database file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conductor import Conductor, Settings
from conductor.domain import decisions as decide
from conductor.domain.clock import stamp, unstamp
from conductor.domain.events import (
    JobAttemptFailed,
    JobCompleted,
    JobFailed,
    JobStarted,
    NewEvent,
)
from conductor.domain.payloads import parse_payload
from tests.cli.support import _open, append, seed, start, table_rows
from tests.conftest import CONDUCTOR, run_cli

DEADLINE = 60.0
"""Seconds a test waits for output it expects: a hang guard, generous because a loaded
2-core machine may take many seconds to start the CLI."""


def _env() -> dict[str, str]:
    env = {**os.environ, "TERM": "xterm", "PYTHONUNBUFFERED": "1"}
    env.pop("CONDUCTOR_DB", None)
    return env


class Terminal:
    """A `conductor` command in a pseudo-terminal: its controlling terminal, so Ctrl-C
    typed here reaches it as SIGINT, exactly as from a shell."""

    def __init__(self, *args: str, db: Path) -> None:
        argv = [CONDUCTOR, *args, "--db", str(db)]
        env = _env()
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the command
            try:
                # As from an interactive shell: Ctrl-C interrupts, even when this test run was
                # started in the background (which leaves SIGINT ignored, and exec keeps that).
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.execve(argv[0], argv, env)  # noqa: S606 - the installed executable
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 220, 0, 0))
        self.output = ""
        self.code: int | None = None

    def _read(self, timeout: float) -> bool:
        """Append what arrives within `timeout`; False at end of output."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            return False
        self.output += data.decode("utf-8", "replace")
        return bool(data)

    def wait_for(self, check: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + DEADLINE
        while not check(self.output):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError(f"no {what} within {DEADLINE}s; screen: {self.output!r}")
        return self.output

    def ctrl_c(self) -> int:
        """Type Ctrl-C and return the exit code once the command has ended."""
        os.write(self.fd, b"\x03")
        deadline = time.monotonic() + DEADLINE
        while self._read(deadline - time.monotonic()):
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after Ctrl-C: {self.output[-500:]!r}")
        _, status = os.waitpid(self.pid, 0)
        self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def close(self) -> None:
        if self.code is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminals() -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(*args: str, db: Path) -> Terminal:
        opened.append(Terminal(*args, db=db))
        return opened[-1]

    yield open_terminal
    for terminal in opened:
        terminal.close()


def _default_sigint() -> None:
    """SIGINT as from an interactive shell, even when this test run was started in the
    background (which leaves it ignored, and exec keeps that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Piped:
    """A `conductor` command with stdout and stderr on pipes, read as it writes."""

    def __init__(self, *args: str, db: Path) -> None:
        self.process = subprocess.Popen(
            [CONDUCTOR, *args, "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
            preexec_fn=_default_sigint,  # noqa: PLW1509 - one signal call, no locks taken
        )
        self.output = ""

    def wait_for(self, check: Callable[[str], bool], what: str) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + DEADLINE
        while not check(self.output):
            remaining = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(remaining, 0))[0] if remaining > 0 else []
            data = os.read(fd, 65536) if ready else b""
            if not data:
                raise AssertionError(f"no {what} within {DEADLINE}s; stdout: {self.output!r}")
            self.output += data.decode()
        return self.output

    def stop(self, signum: int) -> tuple[int, str, str]:
        """Send `signum`; return (exit code, the rest of stdout, stderr)."""
        self.process.send_signal(signum)
        rest, err = self.process.communicate(timeout=DEADLINE)
        return self.process.returncode, rest.decode(), err.decode()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def pipes() -> Iterator[Callable[..., Piped]]:
    opened: list[Piped] = []

    def open_piped(*args: str, db: Path) -> Piped:
        opened.append(Piped(*args, db=db))
        return opened[-1]

    yield open_piped
    for piped in opened:
        piped.close()


def frames(output: str) -> list[str]:
    """The complete screens a redrawing view drew: each starts at cursor-home and ends
    with clear-below; line ends and clear-to-end-of-line codes removed."""
    shown = []
    for chunk in output.split("\x1b[H")[1:]:
        if "\x1b[J" in chunk:
            screen = chunk.split("\x1b[J", 1)[0]
            shown.append(screen.replace("\x1b[K", "").replace("\r\n", "\n"))
    return shown


def counts_row(screen: str) -> dict[str, str]:
    """The `all` row of a stats screen's job-counts table."""
    block = next(part for part in screen.split("\n\n") if part.startswith("Queue"))
    return table_rows(block)[1][0]


# -- stats figures ---------------------------------------------------------------------
def at(seconds_ago: float, now: dt.datetime | None = None) -> str:
    """The stamp `seconds_ago` before `now` (default: the real time, as the CLI sees it)."""
    return stamp((now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=seconds_ago))


def enqueued(seconds_ago: float, now: dt.datetime) -> NewEvent:
    payload = parse_payload({"task": "send_email"}, 1 << 20)
    when = now - dt.timedelta(seconds=seconds_ago)
    return decide.enqueue(
        payload, queue="default", priority=1, max_retries=0, run_at=None, now=when
    )


def started(job_id: int, seconds_ago: float, now: dt.datetime) -> NewEvent:
    return NewEvent(
        job_id=job_id,
        at=at(seconds_ago, now),
        event=JobStarted(attempt=1, worker="w", lease_expires_at=at(seconds_ago - 300, now)),
    )


def completed(job_id: int, seconds_ago: float, now: dt.datetime | None = None) -> NewEvent:
    return NewEvent(job_id=job_id, at=at(seconds_ago, now), event=JobCompleted(attempt=1))


@pytest.fixture
def activity_db(tmp_path: Path) -> Path:
    """Six jobs at known times before now, appended in time order as a live system would
    (the minute window keeps the last six events until 40 s after the fixture ran: the CLI
    must read its clock within that margin, which holds on a machine loaded several times
    over; the hour window leaves a margin of an hour):

    === ============================================= =========== ==========
    job events (seconds before NOW)                    wait        run
    === ============================================= =========== ==========
    1   enqueued 10800, started 10799, completed 10798 (3 h ago: in no window)
    2   enqueued 7200, started 1800, completed 1740     5400 s      60 s (hour only)
    3   enqueued 20, started 19, completed 18.5          1 s         0.5 s
    4   enqueued 20, started 18, completed 16.5          2 s         1.5 s
    5   enqueued 20, started 17, completed 14.5          3 s         2.5 s
    6   enqueued 15, started 14, attempt failed 13 + failed   1 s   1 s
    === ============================================= =========== ==========

    Job 2's `enqueued` lies before the hour: its wait needs the lead-in look-up.
    """
    db = tmp_path / "conductor.db"
    now = dt.datetime.now(dt.UTC)
    failure = JobAttemptFailed(attempt=1, error_type="E", message="boom", traceback="")
    gave_up = JobFailed(attempt=1, reason="gave up")
    timeline = [
        (10800, enqueued(10800, now)),
        (10799, started(1, 10799, now)),
        (10798, completed(1, 10798, now)),
        (7200, enqueued(7200, now)),
        (1800, started(2, 1800, now)),
        (1740, completed(2, 1740, now)),
        (20, enqueued(20, now)),
        (20, enqueued(20, now)),
        (20, enqueued(20, now)),
        (19, started(3, 19, now)),
        (18.5, completed(3, 18.5, now)),
        (18, started(4, 18, now)),
        (17, started(5, 17, now)),
        (16.5, completed(4, 16.5, now)),
        (15, enqueued(15, now)),
        (14.5, completed(5, 14.5, now)),
        (14, started(6, 14, now)),
        (13, NewEvent(job_id=6, at=at(13, now), event=failure)),
        (13, NewEvent(job_id=6, at=at(13, now), event=gave_up)),
    ]
    assert [ago for ago, _ in timeline] == sorted((ago for ago, _ in timeline), reverse=True)
    append(db, [event for _, event in timeline])
    return db


def test_stats_json_reports_throughput_and_percentiles_of_each_window(activity_db: Path) -> None:
    result = run_cli("stats", "--json", db=activity_db)
    assert (result.code, result.stderr) == (0, ""), result
    activity = json.loads(result.stdout)["activity"]
    assert activity["last_minute"] == {
        "seconds": 60,
        "sampled": False,
        "since_first_event": False,
        "completed": 3,
        "failed": 1,
        "attempts_failed": 1,
        "completed_per_second": 3 / 60,
        "failed_per_second": 1 / 60,
        # Nearest rank: waits 1, 1, 2, 3 and runs 0.5, 1, 1.5, 2.5.
        "wait_seconds": {"count": 4, "p50": 1.0, "p95": 3.0},
        "run_seconds": {"count": 4, "p50": 1.0, "p95": 2.5},
    }
    assert activity["last_hour"] == {
        "seconds": 3600,
        "sampled": False,
        "since_first_event": False,
        "completed": 4,
        "failed": 1,
        "attempts_failed": 1,
        "completed_per_second": 4 / 3600,
        "failed_per_second": 1 / 3600,
        "wait_seconds": {"count": 5, "p50": 2.0, "p95": 5400.0},
        "run_seconds": {"count": 5, "p50": 1.5, "p95": 60.0},
    }


def test_stats_table_shows_the_activity_of_the_last_minute_and_hour(activity_db: Path) -> None:
    result = run_cli("stats", db=activity_db)
    assert (result.code, result.stderr) == (0, ""), result
    counts, figures = result.stdout.split("\n\n")
    assert table_rows(counts)[1][0]["Completed"] == "5"  # job 1 too, 3 h ago
    headings, rows = table_rows(figures)
    assert headings == ["Activity", "Last minute", "Last hour"]
    assert {row["Activity"]: (row["Last minute"], row["Last hour"]) for row in rows} == {
        "Completed": ("3", "4"),
        "Completed/s": ("0.05", "0.00111"),
        "Failed": ("1", "1"),
        "Failed/s": ("0.0167", "0.000278"),
        "Attempts failed": ("1", "1"),
        "Wait p50": ("1.00s", "2.00s"),
        "Wait p95": ("3.00s", "90.0m"),
        "Run p50": ("1.00s", "1.50s"),
        "Run p95": ("2.50s", "60.00s"),
    }


def test_a_database_younger_than_the_window_reports_rates_over_its_age(tmp_path: Path) -> None:
    """A database whose first event is 30 s old: an hour's rate divided by 3600 s would
    read 120 times too low; it is over the time since the first event, and labelled so."""
    db = tmp_path / "conductor.db"
    now = dt.datetime.now(dt.UTC)
    append(db, [enqueued(30, now), enqueued(30, now), started(1, 29, now), completed(1, 28, now)])
    result = run_cli("stats", "--json", db=db)
    assert (result.code, result.stderr) == (0, ""), result
    hour = json.loads(result.stdout)["activity"]["last_hour"]
    assert hour["since_first_event"] is True
    assert hour["sampled"] is False
    assert 30 <= hour["seconds"] < 120, "the database's age when stats ran, not 3600"
    assert hour["completed_per_second"] == 1 / hour["seconds"]

    text = run_cli("stats", db=db)
    assert (text.code, text.stderr) == (0, ""), text
    figures = text.stdout.split("\n\n")[1]
    header, *_, footnote = figures.splitlines()
    assert header.split() == ["Activity", "Last", "minute^", "Last", "hour^"]
    assert footnote.startswith("^ over the ")
    assert footnote.endswith("since the first event: the database is younger than the window")


# -- stats --watch and top -------------------------------------------------------------
def test_stats_watch_redraws_in_a_terminal_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, terminals: Callable[..., Terminal]
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "send_email")
    view = terminals("stats", "--watch", "--interval", "100ms", db=db)
    view.wait_for(lambda out: len(frames(out)) >= 1, "first screen")
    first = frames(view.output)[0]
    assert view.output.startswith("\x1b[2J\x1b[H"), "the first screen clears the terminal"
    assert first.startswith("conductor stats: ")
    assert (counts_row(first)["Total"], counts_row(first)["Pending"]) == ("1", "1")
    assert "Activity" in first

    # Work happens while it watches: a new job, and the first one runs and completes.
    seed(db, "resize")
    (job,) = start(db, limit=1)
    append(db, [completed(job, -1)])
    view.wait_for(
        lambda out: any(counts_row(s)["Completed"] == "1" for s in frames(out)),
        "a screen with the completed job",
    )
    screen = next(s for s in frames(view.output) if counts_row(s)["Completed"] == "1")
    assert (counts_row(screen)["Total"], counts_row(screen)["Pending"]) == ("2", "1")
    _, rows = table_rows(screen.split("\n\n")[2])
    # A database seconds old: the figures cover the time since its first event (^).
    assert {r["Activity"]: r["Last minute^"] for r in rows}["Completed"] == "1"

    assert view.ctrl_c() == 0
    assert "Traceback" not in view.output
    assert "error" not in view.output.split("^C")[-1]


def test_top_through_a_pipe_prints_snapshots_a_blank_line_apart_until_sigterm(
    tmp_path: Path, pipes: Callable[..., Piped]
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "send_email", "send_email")
    view = pipes("top", "--interval", "100ms", db=db)
    view.wait_for(lambda out: out.count("\nRun p95") >= 2, "two snapshots")
    code, rest, err = view.stop(signal.SIGTERM)
    assert (code, err) == (0, "")
    output = view.output + rest
    assert "\x1b[" not in output, "no terminal codes into a pipe"
    assert output.startswith("conductor stats: ")
    snapshots = re.split(r"\n\n(?=conductor stats: )", output.rstrip("\n"))
    assert len(snapshots) >= 2
    for snapshot in snapshots[:2]:
        heading, counts, figures = snapshot.split("\n\n")
        assert heading.startswith("conductor stats: ")
        assert table_rows(counts)[1][0]["Total"] == "2"
        assert table_rows(figures)[0] == ["Activity", "Last minute^", "Last hour^"]


def test_a_watch_interval_below_100ms_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "send_email")
    result = run_cli("top", "--interval", "10ms", db=db)
    assert result.code == 1
    assert result.stderr == "error: invalid --interval '10ms': expected at least 100ms\n"


# -- events --follow -------------------------------------------------------------------
def follow_rows(output: str) -> list[tuple[int, int, str]]:
    """(seq, job, event) of every event row a followed table printed."""
    pattern = re.compile(r"^(\d+)\s+\d{4}-\d\d-\d\d \S+\s+(\d+)\s+(\w+)", re.MULTILINE)
    return [(int(s), int(j), e) for s, j, e in pattern.findall(output.replace("\r\n", "\n"))]


def test_events_follow_tails_matching_events_in_a_terminal_until_ctrl_c(
    tmp_path: Path, terminals: Callable[..., Terminal]
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "send_email", "resize", "send_email")  # jobs 1-3, seqs 1-3
    view = terminals("events", "--follow", "--task", "send_email", "--limit", "1", db=db)
    view.wait_for(lambda out: follow_rows(out) == [(3, 3, "enqueued")], "the newest match")
    assert "Seq" in view.output.splitlines()[0]

    # An enqueue wakes it at once; the resize job (seq 4) is not its task.
    seed(db, "resize", "send_email")  # jobs 4 and 5, seqs 4 and 5
    view.wait_for(lambda out: (5, 5, "enqueued") in follow_rows(out), "the new enqueue")
    # A claim, as a worker appends it (no wake-up): found by the poll.
    assert start(db, limit=1) == [1]
    view.wait_for(lambda out: (6, 1, "started") in follow_rows(out), "the claim")
    assert follow_rows(view.output) == [(3, 3, "enqueued"), (5, 5, "enqueued"), (6, 1, "started")]

    assert view.ctrl_c() == 0
    assert "Traceback" not in view.output


def test_events_follow_json_streams_one_object_per_line_through_a_pipe(
    tmp_path: Path, pipes: Callable[..., Piped]
) -> None:
    db = tmp_path / "conductor.db"
    seed(db, "send_email", "send_email")
    view = pipes("events", "--follow", "--json", "--type", "enqueued", "--type", "completed", db=db)
    view.wait_for(lambda out: out.count("\n") == 2, "the two enqueues")
    (job,) = start(db, limit=1)
    append(db, [completed(job, -1)])
    seed(db, "send_email")
    view.wait_for(lambda out: out.count("\n") == 4, "the completion and the third enqueue")
    code, rest, err = view.stop(signal.SIGINT)
    assert (code, err) == (0, "")
    lines = (view.output + rest).splitlines()
    events: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert [(e["seq"], e["job_id"], e["type"]) for e in events] == [
        (1, 1, "enqueued"),
        (2, 2, "enqueued"),
        (4, 1, "completed"),
        (5, 3, "enqueued"),
    ]
    assert events[2]["data"] == {"attempt": 1, "result": None}


# -- history trace ids -----------------------------------------------------------------
TRACE_1 = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_2 = "0af7651916cd43dd8448eb211c80319c"


def test_history_shows_the_trace_id_of_each_event_that_carries_a_traceparent(
    tmp_path: Path,
) -> None:
    db = tmp_path / "conductor.db"
    with _open(db) as app:
        app.enqueue({"task": "send_email"}, trace=f"00-{TRACE_1}-00f067aa0ba902b7-01")
    start(db, limit=1)
    append(
        db,
        [
            NewEvent(
                job_id=1,
                at=at(-1),
                event=JobCompleted(attempt=1),
                trace=f"00-{TRACE_2}-b7ad6b7169203331-01",
            )
        ],
    )
    result = run_cli("history", "1", db=db)
    assert (result.code, result.stderr) == (0, "")
    headings, rows = table_rows(result.stdout)
    assert headings == ["Seq", "Time", "Since prev", "Event", "Trace", "Details"]
    assert [(r["Event"], r["Trace"]) for r in rows] == [
        ("enqueued", TRACE_1),
        ("started", ""),
        ("completed", TRACE_2),
    ]
    entries = json.loads(run_cli("history", "1", "--json", db=db).stdout)
    assert [e["trace_id"] for e in entries] == [TRACE_1, None, TRACE_2]
    assert entries[2]["trace"] == f"00-{TRACE_2}-b7ad6b7169203331-01"


def test_a_window_with_more_events_than_stats_reads_is_reported_over_what_was_read(
    activity_db: Path,
) -> None:
    from conductor.cli.stats import _stats_text
    from conductor.observe.activity import ActivityReader

    with Conductor(settings=Settings(db=str(activity_db))) as app:
        newest = app.events()[-5:]
        reader = ActivityReader(app.ledger, max_events=5)
        now = app.clock.now()
        activity = reader.read(now)
        text = _stats_text(app.stats(), activity)
    covered = (now - unstamp(newest[0].at)).total_seconds()
    minute, hour = activity.windows
    assert minute.sampled
    assert hour.sampled
    assert minute.seconds == hour.seconds == math.ceil(covered)
    completed_read = sum(rec.type == "completed" for rec in newest)
    assert minute.completed == hour.completed == completed_read
    headings, _ = table_rows(text.split("\n\n")[1])
    assert headings == ["Activity", "Last minute*", "Last hour*"]
    assert "* over the last" in text.splitlines()[-1]
