"""Long commands show progress on a terminal and stay quiet otherwise (issue 13, item 12).

Each command runs as the installed executable with its stderr on a real pseudo-terminal
(the slave end of `pty.openpty()`, read through the master) and its stdout on a pipe, as
in `conductor enqueue --file big.jsonl > ids.txt` typed at a shell; the same command with
stderr piped, or with --json, must write nothing extra there.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import attrs
import pytest

from conductor import Conductor, Settings
from conductor.cli import progress
from tests.conftest import CONDUCTOR, run_cli

DEADLINE = 60.0
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@attrs.frozen
class TerminalRun:
    code: int
    stdout: str
    stderr: str
    """What reached the terminal, with its escape sequences removed."""


def on_terminal(*args: str, db: Path | None) -> TerminalRun:
    """Run `conductor ARGS [--db DB]` with stderr on a pseudo-terminal, stdout on a pipe."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("CONDUCTOR_DB", None)
    child = subprocess.Popen(
        [CONDUCTOR, *args, *(() if db is None else ("--db", str(db)))],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not data:
                break
            seen += data
        assert child.stdout is not None
        out = child.stdout.read().decode()
        code = child.wait(timeout=DEADLINE)
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()
            child.wait()
    return TerminalRun(code, out, _ESCAPES.sub("", seen.decode("utf-8", "replace")))


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of exactly `MIN_EVENTS` events: big enough for replay and audit progress."""
    db = tmp_path_factory.mktemp("progress") / "conductor.db"
    with Conductor(settings=Settings(db=str(db))) as app:
        app.enqueue_many({"task": "noop", "n": n} for n in range(progress.MIN_EVENTS))
    return db


def payload_file(folder: Path, lines: int) -> Path:
    file = folder / "jobs.jsonl"
    file.write_text("".join(json.dumps({"task": "noop", "n": n}) + "\n" for n in range(lines)))
    return file


# -- enqueue --file ---------------------------------------------------------------------
def test_a_big_file_enqueue_on_a_terminal_shows_its_progress(tmp_path: Path) -> None:
    file = payload_file(tmp_path, progress.MIN_LINES)
    run = on_terminal("enqueue", "--file", str(file), db=tmp_path / "conductor.db")
    assert run.code == 0, run
    assert run.stdout == f"enqueued {progress.MIN_LINES} jobs: 1-{progress.MIN_LINES}\n"
    assert "reading jobs.jsonl" in run.stderr
    assert f"{progress.MIN_LINES:,}" in run.stderr
    assert f"enqueuing {progress.MIN_LINES:,} jobs in one transaction" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_big_file_enqueue_piped_or_with_json_writes_nothing_to_stderr(tmp_path: Path) -> None:
    file = payload_file(tmp_path, progress.MIN_LINES)
    piped = run_cli("enqueue", "--file", str(file), db=tmp_path / "piped.db")
    assert (piped.code, piped.stderr) == (0, ""), piped
    as_json = on_terminal("enqueue", "--file", str(file), "--json", db=tmp_path / "json.db")
    assert as_json.code == 0, as_json
    assert len(json.loads(as_json.stdout)["ids"]) == progress.MIN_LINES
    assert as_json.stderr == ""


def test_a_small_file_enqueue_on_a_terminal_draws_nothing(tmp_path: Path) -> None:
    file = payload_file(tmp_path, 10)
    run = on_terminal("enqueue", "--file", str(file), db=tmp_path / "conductor.db")
    assert (run.code, run.stdout, run.stderr) == (0, "enqueued 10 jobs: 1-10\n", ""), run


def test_a_refused_file_on_a_terminal_ends_with_one_error_line(tmp_path: Path) -> None:
    file = payload_file(tmp_path, progress.MIN_LINES)
    with file.open("a") as handle:
        handle.write('{"task": "noop", "task": "fail"}\n')
    db = tmp_path / "conductor.db"
    run = on_terminal("enqueue", "--file", str(file), db=db)
    assert run.code == 1, run
    assert run.stdout == ""
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: line {progress.MIN_LINES + 1}: "), run.stderr[-400:]
    assert "Traceback" not in run.stderr
    assert not db.exists()


# -- replay and audit verify ------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "shown", "printed"),
    [
        (("replay",), "rebuilding projections from 50,000 events", "rebuilt projections"),
        (("replay", "--verify"), "into scratch tables", "projections match the log"),
        (("audit", "verify"), "verifying the hash chain of 50,000 events", "chain verified"),
    ],
    ids=["replay", "replay-verify", "audit-verify"],
)
def test_replay_and_audit_on_a_big_log_show_progress_on_a_terminal_only(
    big_db: Path, command: tuple[str, ...], shown: str, printed: str
) -> None:
    run = on_terminal(*command, db=big_db)
    assert run.code == 0, run
    assert run.stdout.startswith(printed)
    assert shown in run.stderr
    piped = run_cli(*command, db=big_db)
    assert (piped.code, piped.stderr) == (0, ""), piped
    assert piped.stdout == run.stdout


def test_audit_verify_json_on_a_terminal_draws_nothing(big_db: Path) -> None:
    run = on_terminal("audit", "verify", "--json", db=big_db)
    assert run.code == 0, run
    assert json.loads(run.stdout)["events"] == progress.MIN_EVENTS
    assert run.stderr == ""


def test_audit_verify_of_a_small_log_on_a_terminal_draws_nothing(tmp_path: Path) -> None:
    db = tmp_path / "conductor.db"
    with Conductor(settings=Settings(db=str(db))) as app:
        app.enqueue({"task": "noop"})
    run = on_terminal("audit", "verify", db=db)
    assert (run.code, run.stderr) == (0, ""), run


# -- bench ------------------------------------------------------------------------------
BENCH = ("bench", "--jobs", "50", "--only", "enqueue")


def test_bench_shows_each_scenario_on_a_terminal_and_nothing_when_piped() -> None:
    run = on_terminal(*BENCH, db=None)
    assert run.code == 0, run
    assert run.stdout.startswith("conductor bench: ")
    assert "bench: enqueue" in run.stderr
    assert "1/1" in run.stderr
    piped = run_cli(*BENCH)
    assert (piped.code, piped.stderr) == (0, ""), piped
