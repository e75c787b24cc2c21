"""`conductor worker --processes P`: a parent supervising P real worker processes."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conductor import Conductor
from conductor.cli.worker import child_arguments
from conductor.cli.worker import worker as worker_command
from conductor.domain.config import Settings
from conductor.engine import processes
from tests.conftest import CONDUCTOR, db_snapshot, run_cli
from tests.engine.conftest import wait_until
from tests.gated_tasks import APP, app_env

SUPERVISING = re.compile(r"supervising (\d+) worker processes: pids ([\d, ]+)")
GATED = ("--app", APP)
RESTARTED = re.compile(r"worker process (\d+) killed by SIGKILL; restarted it as (\d+)")


class Pool:
    """One `conductor worker --processes ...` parent, logging to a file."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text()

    def children(self) -> list[int]:
        """The pids the parent announced it started."""
        found = wait_until(lambda: SUPERVISING.search(self.log()), what="the supervising line")
        return [int(pid) for pid in found.group(2).split(", ")]

    def every_child(self) -> set[int]:
        """Every child pid the log names: the first ones and any restarted."""
        log = self.log()
        restarted = {int(m.group(2)) for m in RESTARTED.finditer(log)}
        return {*self.children(), *restarted}


def alive(pid: int) -> bool:
    """True while `pid` is a running process (a zombie has already ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def is_our_child(pid: int) -> bool:
    try:
        return b"conductor.cli.child" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture
def start_pool(db: str, tmp_path: Path) -> Iterator[Callable[..., Pool]]:
    pools: list[Pool] = []

    def start(*args: str, **popen: object) -> Pool:
        log_path = tmp_path / f"pool-{len(pools)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # type: ignore[call-overload]
                [CONDUCTOR, "worker", "--db", db, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                **popen,
            )
        pool = Pool(process, log_path)
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        if pool.process.poll() is None:
            pool.process.kill()
            pool.process.wait(300)
        for pid in pool.every_child() if SUPERVISING.search(pool.log()) else ():
            if alive(pid) and is_our_child(pid):
                os.kill(pid, signal.SIGKILL)


def open_app(db: str) -> Conductor:
    return Conductor(settings=Settings(db=db))


def worker_pid(worker: str) -> int:
    """The pid in a worker id `host:pid:start`."""
    return int(worker.split(":")[1])


def held_by(app: Conductor) -> dict[int, int]:
    """job id -> pid of the process holding it, for every job in progress."""
    return {row["id"]: worker_pid(row["worker"]) for row in app.jobs(status="in_progress")}


def assert_each_job_completed_once(app: Conductor, jobs: int) -> None:
    completed = collections.Counter(r.job_id for r in app.events(types=["completed"]))
    assert completed == dict.fromkeys(range(1, jobs + 1), 1)


def assert_clean(db: str) -> None:
    assert run_cli("replay", "--verify", db=db).code == 0
    assert run_cli("audit", "verify", db=db).code == 0


# -- real processes ---------------------------------------------------------------------
def test_two_burst_processes_share_the_jobs_and_the_parent_exits_zero_when_both_have(
    db: str, tmp_path: Path, start_pool: Callable[..., Pool]
) -> None:
    # Six jobs that wait for the test, one at a time per process: the gate opens only once
    # both children hold one, so each child has run a job however far apart they started.
    gate = tmp_path / "gate"
    with open_app(db) as app:
        app.enqueue_many([{"task": "gated", "gate": str(gate)}] * 6)
    pool = start_pool(
        "--processes", "2", "--burst", "-c", "1", "--prefetch", "0", *GATED, env=app_env()
    )
    with open_app(db) as app:
        wait_until(lambda: len(set(held_by(app).values())) == 2, what="each child holding a job")
    gate.touch()
    assert pool.process.wait(300) == 0, pool.log()
    children = pool.children()
    assert len(set(children)) == 2
    assert pool.process.pid not in children
    with open_app(db) as app:
        assert_each_job_completed_once(app, 6)
        workers = {worker_pid(r.event.worker) for r in app.events(types=["claimed"])}  # type: ignore[union-attr]
    assert workers == set(children), "each child should have run jobs, and only the children"
    assert not any(alive(pid) for pid in children)
    log = pool.log()
    assert log.count("] worker starting:") == 2
    assert all(f"[{pid}] worker starting:" in log for pid in children)
    assert "all 2 worker processes finished; restarts: 0" in log
    assert_clean(db)


def test_a_child_killed_mid_job_is_restarted_and_its_job_is_rescued_and_run_once(
    db: str, tmp_path: Path, start_pool: Callable[..., Pool]
) -> None:
    # Jobs that wait for the test: the victim's job cannot end between the look and the kill.
    gate = tmp_path / "gate"
    with open_app(db) as app:
        app.enqueue_many([{"task": "gated", "gate": str(gate)}] * 4)
    pool = start_pool(
        "--processes", "2", "--burst", "-c", "1", "--prefetch", "0", *GATED, env=app_env()
    )
    with open_app(db) as app:
        holders = wait_until(lambda: len(held_by(app)) == 2 and held_by(app), what="2 jobs held")
        victim_job, victim = min(holders.items())
        assert victim in pool.children()
        os.kill(victim, signal.SIGKILL)
        gate.touch()
        assert pool.process.wait(300) == 0, pool.log()

        restart = RESTARTED.search(pool.log())
        assert restart is not None, pool.log()
        assert int(restart.group(1)) == victim
        replacement = int(restart.group(2))
        assert replacement not in (victim, pool.process.pid, *pool.children())
        assert f"[{replacement}] worker starting:" in pool.log()
        assert "restarts: 1" in pool.log().splitlines()[-1]

        # Rescued because the holder's pid is gone (the parent reaped it at once), not
        # after the 30 s lease: then this test would have timed out.
        history = [(r.type, r.event) for r in app.ledger.history(victim_job)]
        assert [kind for kind, _ in history] == [
            "enqueued",
            "claimed",
            "run_started",
            "rescued",
            "claimed",
            "run_started",
            "completed",
        ]
        rescued = history[3][1]
        assert f":{victim}:" in rescued.reason  # type: ignore[attr-defined]
        assert rescued.reason.endswith("is gone")  # type: ignore[attr-defined]
        assert worker_pid(history[4][1].worker) != victim  # type: ignore[attr-defined]
        assert_each_job_completed_once(app, 4)
    assert not alive(victim)
    assert not any(alive(pid) for pid in pool.every_child())
    assert_clean(db)


def test_sigterm_to_the_parent_stops_every_child_gracefully_and_exits_zero(
    db: str, start_pool: Callable[..., Pool]
) -> None:
    with open_app(db) as app:
        app.enqueue_many([{"task": "sleep", "seconds": 60}] * 2)
    pool = start_pool("--processes", "2", "-c", "1", "--prefetch", "0", "--grace", "0.3s")
    with open_app(db) as app:
        wait_until(lambda: len(set(held_by(app).values())) == 2, what="each child holding a job")
        children = pool.children()
        pool.process.send_signal(signal.SIGTERM)
        assert pool.process.wait(300) == 0, pool.log()
        assert not any(alive(pid) for pid in children), "no child may outlive the parent"
        assert app.stats().overall.in_progress == 0
        released = {r.job_id for r in app.events(types=["released"])}
        assert released == {1, 2}, "each child should have handed its job back"
    log = pool.log()
    assert "SIGTERM: stopping 2 worker processes" in log
    for pid in children:
        assert f"[{pid}] SIGTERM: stopping" in log
    assert "second signal" not in log
    assert "restarts: 0" in log.splitlines()[-1]


def test_a_second_signal_makes_the_children_release_their_jobs_at_once(
    db: str, start_pool: Callable[..., Pool]
) -> None:
    with open_app(db) as app:
        app.enqueue_many([{"task": "sleep", "seconds": 600}] * 2)
    pool = start_pool("--processes", "2", "-c", "1", "--prefetch", "0", "--grace", "600s")
    with open_app(db) as app:
        wait_until(lambda: len(set(held_by(app).values())) == 2, what="each child holding a job")
        children = pool.children()
        pool.process.send_signal(signal.SIGINT)
        wait_until(
            lambda: all(f"[{pid}] SIGTERM: stopping" in pool.log() for pid in children),
            what="the children to start stopping",
        )
        pool.process.send_signal(signal.SIGINT)
        assert pool.process.wait(300) == 0, pool.log()
        assert {r.job_id for r in app.events(types=["released"])} == {1, 2}
    assert "second signal" in pool.log()
    assert not any(alive(pid) for pid in children)


def test_ctrl_c_in_a_terminal_reaches_the_children_once_through_the_parent(
    db: str, start_pool: Callable[..., Pool]
) -> None:
    # A terminal sends SIGINT to its whole foreground process group. Were the children in
    # the parent's group, each would get it twice (directly and forwarded), and the second
    # would cut the running job off instead of letting it finish.
    with open_app(db) as app:
        app.enqueue_many([{"task": "sleep", "seconds": 1}])
    pool = start_pool("--processes", "2", "-c", "1", "--grace", "30s", process_group=0)
    with open_app(db) as app:
        wait_until(lambda: held_by(app), what="the job in flight")
        children = pool.children()
        os.killpg(pool.process.pid, signal.SIGINT)
        assert pool.process.wait(300) == 0, pool.log()
        assert app.job(1)["status"] == "completed"
    assert "second signal" not in pool.log()
    assert not any(alive(pid) for pid in children)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_of_a_killed_parent_stop_gracefully_on_their_own(
    db: str, start_pool: Callable[..., Pool]
) -> None:
    with open_app(db) as app:
        app.enqueue_many([{"task": "sleep", "seconds": 60}] * 2)
    pool = start_pool("--processes", "2", "-c", "1", "--prefetch", "0", "--grace", "0.3s")
    with open_app(db) as app:
        wait_until(lambda: len(set(held_by(app).values())) == 2, what="each child holding a job")
        children = pool.children()
        pool.process.kill()
        pool.process.wait(300)
        wait_until(lambda: not any(alive(pid) for pid in children), what="the orphans to stop")
        assert {r.job_id for r in app.events(types=["released"])} == {1, 2}


@pytest.mark.parametrize("value", ["0", "-1", "65", "99999999999999999999999", "two", "\uff12"])
def test_a_bad_process_count_is_a_one_line_usage_error_that_changes_nothing(
    db_path: Path, value: str
) -> None:
    result = run_cli("worker", "--processes", value, "--burst", db=db_path)
    assert result.code == 2
    assert result.stderr.startswith("error: ")
    assert "--processes" in result.stderr
    assert result.stderr.count("\n") == 1
    assert db_snapshot(db_path) == "absent"


def test_metrics_ports_past_65535_are_a_usage_error(db_path: Path) -> None:
    result = run_cli("worker", "--processes", "2", "--metrics-port", "65535", db=db_path)
    assert result.code == 2
    assert "--metrics-port" in result.stderr
    assert result.stderr.count("\n") == 1
    assert db_snapshot(db_path) == "absent"


# -- the supervisor with stand-in children ----------------------------------------------
def counting_child(tmp_path: Path, fail_times: int, code: int = 1) -> list[str]:
    """A child that exits `code` its first `fail_times` runs, then 0."""
    script = (
        "import pathlib, sys\n"
        f"runs = pathlib.Path({str(tmp_path / 'runs')!r})\n"
        "with runs.open('a') as f: f.write('x')\n"
        f"sys.exit({code} if len(runs.read_text()) <= {fail_times} else 0)\n"
    )
    return [sys.executable, "-c", script]


def test_a_crashing_child_is_restarted_with_growing_delays_until_it_succeeds(
    tmp_path: Path,
) -> None:
    pool = processes.ProcessPool(
        lambda index: [],
        1,
        burst=True,
        grace=1.0,
        command=counting_child(tmp_path, fail_times=4),
    )
    began = time.monotonic()
    assert pool.run() == 0
    assert pool.restarts == 4
    assert (tmp_path / "runs").read_text() == "xxxxx"
    # 0.1 + 0.2 + 0.4 + 0.8 s of backoff: restarting at once would be a crash loop.
    assert time.monotonic() - began >= 1.5


def test_a_child_with_a_usage_error_stops_the_pool_instead_of_looping(tmp_path: Path) -> None:
    pool = processes.ProcessPool(
        lambda index: [],
        2,
        burst=True,
        grace=1.0,
        command=counting_child(tmp_path, fail_times=100, code=2),
    )
    assert pool.run() == 1
    assert pool.restarts == 0


def test_restart_delays_double_from_a_tenth_of_a_second_up_to_five() -> None:
    delays = [processes.restart_delay(n) for n in range(1, 10)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert processes.restart_delay(10_000) == 5.0


def test_how_a_child_ended_names_the_signal_or_the_status() -> None:
    assert processes.how_it_ended(-9) == "killed by SIGKILL"
    assert processes.how_it_ended(1) == "exited with status 1"


def test_children_get_the_parents_options_without_processes_and_a_port_each() -> None:
    argv = [
        "--processes", "3", "-c", "2", "--app", "a.tasks", "--app", "b", "--burst",
        "--grace", "1s", "--metrics-port", "9000", "--db", "x.db",
    ]  # fmt: skip
    ctx = worker_command.make_context("worker", argv)
    arguments = child_arguments(ctx)
    assert arguments(0) == [
        "worker", "--concurrency", "2", "--app", "a.tasks", "--app", "b", "--burst",
        "--grace", "1s", "--db", "x.db", "--metrics-port", "9000",
    ]  # fmt: skip
    assert arguments(2)[-2:] == ["--metrics-port", "9002"]
    free = child_arguments(worker_command.make_context("worker", ["--metrics-port", "0"]))
    assert free(1) == ["worker", "--metrics-port", "0"]
