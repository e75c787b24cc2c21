"""The network-namespace harness itself (tests/reliability/netns.py): three hosts reach
the real PostgreSQL server only through their relays, and a cut is a real partition:
new connections time out, established ones hang and carry on after the restore."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.engine.conftest import wait_until
from tests.gated_tasks import app_env
from tests.reliability.netns import GUARD, Host, NetworkHosts, ServerTcp, network_hosts

SELECT_ONE = """
import sys, psycopg
with psycopg.connect(sys.argv[1], connect_timeout=int(sys.argv[2])) as conn:
    print(conn.execute("SELECT 1").fetchone()[0])
"""

HELD = """
import os, socket, sys, psycopg
conn = psycopg.connect(sys.argv[1], connect_timeout=30, keepalives=0, autocommit=True)
backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
port = socket.socket(fileno=os.dup(conn.fileno())).getsockname()[1]
print("ready", backend, port, flush=True)
sys.stdin.readline()
print("answer", conn.execute("SELECT pg_backend_pid()").fetchone()[0], flush=True)
"""
"""Holds one connection (TCP keepalive off): queries once, waits for a line on stdin,
then queries again on the same connection and prints the server process that answered."""


@pytest.fixture
def hosts() -> Iterator[NetworkHosts]:
    with network_hosts(3) as made:
        yield made


def select_one(
    hosts: NetworkHosts, host: Host, database: str, connect_timeout: int
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", SELECT_ONE, hosts.url(host, database), str(connect_timeout)]
    return hosts.run(host, argv)


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The lines `process` prints, as they come (a queue to wait on with a hang guard)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.strip())

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_each_host_reaches_the_server_through_its_own_relay(
    hosts: NetworkHosts, pg_database: str
) -> None:
    for host in hosts:
        done = select_one(hosts, host, pg_database, connect_timeout=60)
        assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr
    assert hosts.relay is not None
    assert {host.gateway: 1 for host in hosts} == dict(hosts.relay.accepted)


def test_a_host_sees_only_its_own_loopback(hosts: NetworkHosts, pg_database: str) -> None:
    """Inside a namespace 127.0.0.1 is the namespace's own (up, and with no server on it):
    the relay is the only way out."""
    argv = [sys.executable, "-c", SELECT_ONE, pg_database, "60"]
    done = hosts.run(hosts[0], argv)
    assert done.returncode != 0
    assert "Connection refused" in done.stderr


def test_commands_run_with_their_host_identity(hosts: NetworkHosts) -> None:
    show = "import os; print(os.environ['CONDUCTOR_HOST'], os.environ['PGCONNECT_TIMEOUT'])"
    for host in hosts:
        done = hosts.run(host, [sys.executable, "-c", show])
        assert done.stdout.split() == [host.name, str(hosts.connect_timeout)]


def test_a_cut_host_cannot_connect_while_the_others_can_until_restored(
    hosts: NetworkHosts, pg_database: str
) -> None:
    cut, *others = list(hosts)
    hosts.cut(cut)

    refused = select_one(hosts, cut, pg_database, connect_timeout=2)
    assert refused.returncode != 0
    assert "timeout expired" in refused.stderr, refused.stderr
    for host in others:
        done = select_one(hosts, host, pg_database, connect_timeout=60)
        assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr

    hosts.restore(cut)
    done = select_one(hosts, cut, pg_database, connect_timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr


def test_a_connection_made_before_a_cut_hangs_through_it_and_resumes_after(
    hosts: NetworkHosts, pg_database: str
) -> None:
    host = hosts[1]
    held = hosts.popen(
        host,
        [sys.executable, "-c", HELD, hosts.url(host, pg_database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = lines_of(held)
    word, backend, port = lines.get(timeout=GUARD).split()
    assert word == "ready"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        ports = list(hosts.server_ports(host))
        query = "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)"
        assert conn.execute(query, [ports]).fetchall() == [(int(backend),)]

    hosts.cut(host)
    assert held.stdin is not None
    held.stdin.write("query again\n")
    held.stdin.flush()

    # The query's segment goes unacknowledged and is sent again: it is not getting through,
    # so its answer cannot have come back.
    def resent() -> bool:
        assert held.poll() is None, "the held connection's process ended during the cut"
        return hosts.retransmissions(host, int(port)) >= 1

    wait_until(resent, what="a retransmission")
    assert lines.empty()

    hosts.restore(host)
    assert lines.get(timeout=GUARD) == f"answer {backend}"
    assert held.wait(GUARD) == 0


ASKED = "?options=" + urllib.parse.quote(
    "-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1s --tcp-keepalives-count=2 "
    "-c tcp_user_timeout=3000"
)
"""A session asking the server to give up on it after about three seconds of silence."""


@pytest.mark.parametrize(
    ("configured", "asked"),
    [(ServerTcp(1, 1, 2, 3000), ""), (None, ASKED)],
    ids=["server-configured", "session-asked"],
)
def test_with_tcp_timeouts_the_server_ends_a_cut_hosts_backend(
    pg_database: str, configured: ServerTcp | None, asked: str
) -> None:
    """The relay's TCP timeouts toward the host stand in for the server's own, configured
    or asked for by the session: when the host stops answering, its backend ends (and so
    would its transaction and its locks)."""
    with network_hosts(1, server_tcp=configured) as hosts:
        host = hosts[0]
        argv = [sys.executable, "-c", HELD, hosts.url(host, pg_database + asked)]
        held = hosts.popen(host, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        backend = int(lines_of(held).get(timeout=GUARD).split()[1])
        assert hosts.relay is not None
        assert hosts.relay.applied == [ServerTcp(1, 1, 2, 3000)]
        hosts.cut(host)
        with psycopg.connect(pg_database, autocommit=True) as conn:
            alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"

            def ended() -> bool:
                row = conn.execute(alive, [backend]).fetchone()
                return row is not None and row[0] == 0

            wait_until(ended, what="the server to end the cut host's backend")


def test_the_relay_reads_the_timeouts_a_session_asks_for_in_any_spelling() -> None:
    server = ServerTcp(keepalives_idle=600)
    packet = b"\0\3\0\0user\0postgres\0options\0%s\0\0"
    assert server.asked(packet % b"-c search_path=x") == server
    options = b"-c tcp_keepalives_idle=2min -c tcp-keepalives-interval=5 --tcp_user_timeout=1500ms"
    assert server.asked(packet % options) == ServerTcp(120, 5, None, 1500)
    assert server.asked(packet % b"-c tcp_keepalives_idle=0") == ServerTcp(0)


def test_teardown_removes_namespaces_links_and_what_ran_inside_even_after_a_failure() -> None:
    seen: dict[str, object] = {}

    def failing_test() -> None:
        with network_hosts(2) as hosts:
            seen["hosts"] = list(hosts)
            hosts.cut(hosts[0])
            seen["sleeper"] = hosts.popen(hosts[0], ["sleep", "3600"])
            # A child in a session of its own: out of reach of its parent's process group.
            daemon = "setsid sleep 3600 >/dev/null 2>&1 & echo $!"
            seen["escaped"] = escaped = int(hosts.run(hosts[1], ["sh", "-c", daemon]).stdout)
            assert Path(f"/proc/{escaped}").exists()
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_test()
    hosts: list[Host] = seen["hosts"]  # type: ignore[assignment]
    sleeper: subprocess.Popen[bytes] = seen["sleeper"]  # type: ignore[assignment]
    assert sleeper.returncode is not None
    escaped = Path(f"/proc/{seen['escaped']}")
    wait_until(lambda: not escaped.exists(), what="the escaped child's end")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert not {host.netns for host in hosts} & set(listed.stdout.split())
    for host in hosts:
        assert not Path(f"/sys/class/net/{host.outer}").exists()
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True)
    assert not any(f"{host.gateway}:" in listening.stdout for host in hosts)


REFUSED = """
from tests.reliability.netns import network_hosts
try:
    with network_hosts(1):
        pass
except BaseException as e:
    print(type(e).__name__, e)
"""


def test_where_namespaces_are_refused_the_harness_skips_with_the_reason() -> None:
    """Root without CAP_SYS_ADMIN and CAP_NET_ADMIN, as in an unprivileged container."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop capabilities")
    argv = ["setpriv", "--bounding-set=-sys_admin,-net_admin", sys.executable, "-c", REFUSED]
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=app_env()
    )
    out, err = child.communicate(timeout=GUARD)
    assert out.startswith("Skipped cannot create a network namespace: "), (out, err)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert f"-{child.pid}-" not in listed.stdout
