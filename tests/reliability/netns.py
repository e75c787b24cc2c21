"""Worker "hosts" in network namespaces, for the multi-host tests (issue 14).

`network_hosts(n)` gives n namespaces, each joined to the root namespace by its own veth
pair on a /30 of its own, and relays TCP from each pair's root-side address to the
PostgreSQL server. A command runs inside a namespace with `CONDUCTOR_HOST` naming its host,
and `cut(host)` partitions one host the way a real network fails: its packets vanish, so
established connections hang (nothing closes them) and new ones time out; `restore(host)`
heals the link and hung connections carry on if they have not given up meanwhile.

Choices, and why:

* The server listens on 127.0.0.1 only, and a namespace's 127.0.0.1 is its own loopback.
  A relay in the root namespace (relay.py: an asyncio thread in the test process) listens
  on each host's root-side address, port 5432, and connects to the server from 127.0.0.1,
  where trust auth applies. DNAT with `route_localnet` would avoid the relay but needs
  iptables or nft, which these machines do not have, and would touch global firewall
  state that parallel runs share; the relay touches nothing outside its own sockets and
  dies with the test process. It stands in for the server's TCP timeouts toward a host
  (see relay.py), which could not fire through it.
* A cut sets the root-side veth down. tc netem and tc filters are missing from these
  kernels, and there is no firewall tool. Link down drops silently in both directions:
  the namespace's end loses its carrier (its packets are discarded, no error reaches a
  socket), and the root side loses its route to the host (the relay's retransmissions fail
  locally, a soft error TCP keeps retrying through). Static neighbour entries on both ends
  keep ARP out of it, so whether a packet passes depends on the link alone, and a restored
  link carries traffic without first resolving a neighbour the cut left failed.
* Addresses come from 10.200.0.0/13, one /24 per harness, chosen from the pid and checked
  against every address and route on the machine, so parallel runs never share a subnet.
  Names carry the pid, so parallel runs never share a namespace or an interface either.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import pytest

from tests.reliability.relay import GUARD, Relay, ServerTcp

__all__ = ["GUARD", "Host", "NetworkHosts", "ServerTcp", "network_hosts"]

POOL = ipaddress.IPv4Network("10.200.0.0/13")
"""Private addresses for the veth pairs: 2,048 blocks of /24, one per harness."""
PORT = 5432
"""Where each host finds the server: its gateway address, PostgreSQL's usual port."""
_instances = itertools.count()


@attrs.frozen
class Host:
    """One worker "host": a namespace with a veth pair to the root namespace."""

    index: int
    name: str
    """The host identity its commands get as CONDUCTOR_HOST."""
    netns: str
    outer: str
    """The root-side veth: the one cut and restore set down and up."""
    gateway: str
    """The root-side address, where the relay listens for this host."""
    address: str
    """The namespace-side address (on `eth0` inside the namespace)."""
    outer_mac: str
    inner_mac: str


def _ip(command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`ip` with the words of `command` (none of which holds a space)."""
    argv = ["ip", *command.split()]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=GUARD)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {command} failed: {done.stderr.strip()}")
    return done


def _wait(predicate: Any, what: str, timeout: float = GUARD) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return value


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network an address or route on this machine covers."""
    found = []
    for line in _ip("-o -4 addr show").stdout.splitlines():
        match = re.search(r"\binet (\S+)", line)
        if match:
            found.append(ipaddress.IPv4Network(match.group(1), strict=False))
    kinds = {"local", "broadcast", "unicast", "multicast", "blackhole", "unreachable", "prohibit"}
    for line in _ip("-o -4 route show table all").stdout.splitlines():
        words = line.split()
        if not words:
            continue
        target = words[1] if words and words[0] in kinds and len(words) > 1 else words[0]
        with contextlib.suppress(ValueError):
            found.append(ipaddress.IPv4Network(target, strict=False))
    return [net for net in found if net.prefixlen > 0]


def _free_block() -> ipaddress.IPv4Network:
    blocks = list(POOL.subnets(new_prefix=24))
    used = _networks_in_use()
    start = os.getpid() % len(blocks)
    for k in range(len(blocks)):
        block = blocks[(start + k) % len(blocks)]
        if not any(block.overlaps(net) for net in used):
            return block
    raise RuntimeError(f"no free /24 left in {POOL}")


def _link_up(host: Host, *, up: bool) -> bool:
    """Whether both ends of `host`'s pair report the carrier state `up`."""
    outer = json.loads(_ip(f"-j link show {host.outer}").stdout)[0]
    inner = json.loads(_ip(f"-n {host.netns} -j link show eth0").stdout)[0]
    return all(("LOWER_UP" in end["flags"]) == up for end in (outer, inner))


def _sweep_stale(prefix: str) -> None:
    """Remove namespaces a killed run left behind: named for a pid that no longer exists
    and holding no process."""
    for line in _ip("netns list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{prefix}-(\d+)-\d+-h\d+", name)
        if not match or os.path.exists(f"/proc/{match.group(1)}"):
            continue
        if not _ip(f"netns pids {name}", check=False).stdout.strip():
            _ip(f"netns del {name}", check=False)


class NetworkHosts:
    """The namespaces of one test: see the module docstring. Use `network_hosts`."""

    def __init__(
        self,
        count: int,
        *,
        target: tuple[str, int],
        connect_timeout: int,
        server_tcp: ServerTcp | None,
    ) -> None:
        self.count = count
        self.target = target
        self.connect_timeout = connect_timeout
        self.server_tcp = server_tcp
        self.hosts: list[Host] = []
        self.relay: Relay | None = None
        self.processes: list[subprocess.Popen[Any]] = []
        self._cut: set[str] = set()

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    # Set-up and tear-down

    def setup(self, prefix: str = "cnd") -> None:
        instance = next(_instances)
        pid = os.getpid()
        _sweep_stale(prefix)
        block = _free_block()
        if self.count > 64:
            raise ValueError(f"at most 64 hosts per harness, not {self.count}")
        for i, subnet in zip(range(self.count), block.subnets(new_prefix=30), strict=False):
            gateway, address = (str(a) for a in itertools.islice(subnet.hosts(), 2))
            host = Host(
                index=i,
                name=f"host-{i}",
                netns=f"{prefix}-{pid}-{instance}-h{i}",
                outer=f"c{pid}x{instance}h{i}",  # at most 15 characters
                gateway=gateway,
                address=address,
                outer_mac=f"02:cd:{block.network_address.packed[2]:02x}:{i:02x}:00:01",
                inner_mac=f"02:cd:{block.network_address.packed[2]:02x}:{i:02x}:00:02",
            )
            self._add(host, subnet.prefixlen)
        self.relay = Relay(self.target, self.server_tcp)
        for host in self.hosts:
            self.relay.listen(host.gateway, PORT)

    def _add(self, host: Host, prefixlen: int) -> None:
        added = _ip(f"netns add {host.netns}", check=False)
        if added.returncode != 0:
            pytest.skip(f"cannot create a network namespace: {added.stderr.strip()}")
        self.hosts.append(host)
        outer, inner = f"{host.outer} address {host.outer_mac}", f"eth0 address {host.inner_mac}"
        paired = _ip(f"link add {outer} type veth peer {inner} netns {host.netns}", check=False)
        if paired.returncode != 0:
            pytest.skip(f"cannot create a veth pair: {paired.stderr.strip()}")
        _ip(f"addr add {host.gateway}/{prefixlen} dev {host.outer}")
        _ip(f"-n {host.netns} addr add {host.address}/{prefixlen} dev eth0")
        _ip(f"-n {host.netns} link set lo up")
        _ip(f"-n {host.netns} link set eth0 up")
        _ip(f"link set {host.outer} up")
        self._neighbours(host, inner=True)
        _wait(lambda: _link_up(host, up=True), f"{host.name}'s link to come up")

    @staticmethod
    def _neighbours(host: Host, *, inner: bool) -> None:
        # Setting the root end down flushes its entries (even permanent ones); the inner
        # end only loses its carrier, which keeps permanent entries.
        _ip(f"neigh replace {host.address} lladdr {host.inner_mac} dev {host.outer} nud permanent")
        if inner:
            entry = f"{host.gateway} lladdr {host.outer_mac} dev eth0 nud permanent"
            _ip(f"-n {host.netns} neigh replace {entry}")

    def teardown(self) -> None:
        """Kill what runs in the namespaces, stop the relay, delete the links and the
        namespaces. Every step runs even when an earlier one fails."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(GUARD)
        for host in self.hosts:
            # Anything still inside was started there by this test (a daemonised child).
            for pid in _ip(f"netns pids {host.netns}", check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        if self.relay is not None:
            self.relay.close()
        for host in self.hosts:
            _ip(f"link del {host.outer}", check=False)
            _ip(f"netns del {host.netns}", check=False)

    # Using the hosts

    def url(self, host: Host, database_url: str) -> str:
        """`database_url` (a postgresql:// URL naming the server) as `host` reaches it."""
        parts = urllib.parse.urlsplit(database_url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@{host.gateway}:{PORT}" if user else f"{host.gateway}:{PORT}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def env(self, host: Host, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a command on `host`: this process's, plus its identity and
        a connect timeout (libpq's default waits as long as the kernel keeps trying)."""
        return {
            **os.environ,
            "CONDUCTOR_HOST": host.name,
            "PGCONNECT_TIMEOUT": str(self.connect_timeout),
            **(extra or {}),
        }

    def popen(
        self,
        host: Host,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> subprocess.Popen[Any]:
        """Start `argv` inside `host`'s namespace, in a session of its own (so teardown
        kills its children too), with `env` over `self.env(host)`."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, *argv],
            env=self.env(host, env),
            start_new_session=True,
            **options,
        )
        self.processes.append(process)
        return process

    def run(
        self,
        host: Host,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = GUARD,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside `host`'s namespace to the end; `timeout` is a hang guard."""
        process = self.popen(
            host, argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def cut(self, host: Host) -> None:
        """Partition `host`: from now on every packet between it and the root namespace is
        dropped silently. Returns once both ends report the link down."""
        _ip(f"link set {host.outer} down")
        self._cut.add(host.name)
        _wait(lambda: _link_up(host, up=False), f"{host.name}'s link to go down")

    def restore(self, host: Host) -> None:
        """Heal `host`'s link; returns once both ends report it up."""
        _ip(f"link set {host.outer} up")
        self._neighbours(host, inner=False)
        self._cut.discard(host.name)
        _wait(lambda: _link_up(host, up=True), f"{host.name}'s link to come back")

    def is_cut(self, host: Host) -> bool:
        return host.name in self._cut

    def server_ports(self, host: Host) -> set[int]:
        """The `client_port`s the server sees for `host`'s open connections."""
        assert self.relay is not None
        return set(self.relay.upstream[host.gateway])

    def retransmissions(self, host: Host, local_port: int) -> int:
        """How many segments `host`'s TCP connection from `local_port` has retransmitted:
        a sign, not a timing, that its packets are not getting through."""
        done = self.run(host, ["ss", "-Htin", "state", "established", f"( sport = :{local_port} )"])
        match = re.search(r"\bretrans:\d+/(\d+)", done.stdout)
        return int(match.group(1)) if match else 0


@contextlib.contextmanager
def network_hosts(
    count: int,
    *,
    target: tuple[str, int] = ("127.0.0.1", 5432),
    connect_timeout: int = 10,
    server_tcp: ServerTcp | None = None,
) -> Iterator[NetworkHosts]:
    """`count` hosts in network namespaces, torn down on exit even after a failure.

    Skips the test (with the reason) when not root, without the `ip` tool, or when the
    kernel refuses a namespace or a veth pair."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("network namespaces need the ip tool (iproute2)")
    hosts = NetworkHosts(
        count, target=target, connect_timeout=connect_timeout, server_tcp=server_tcp
    )
    try:
        hosts.setup()
        yield hosts
    finally:
        hosts.teardown()
