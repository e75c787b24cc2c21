"""Who holds a lease: worker ids, and whether their process is still alive.

A worker id is `host:pid:start`: the process that holds the lease, where `start` is the
process's start time in clock ticks since boot (from /proc), so a recycled pid is not
mistaken for the original process.
A job held by a dead process on this host is rescued at once; one held on another host
waits for its lease to expire.

`host` is the machine's hostname, or `CONDUCTOR_HOST` where hostnames are not unique among
the hosts sharing a PostgreSQL ledger (network namespaces or containers that share a
hostname): two hosts with one name would take each other's live workers for dead ones.
"""

from __future__ import annotations

import functools
import os
import re
import socket

from conductor.domain.errors import InvalidInput

_HOST_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@functools.cache
def host() -> str:
    """This host's name in worker ids (raises `InvalidInput` for a bad CONDUCTOR_HOST)."""
    given = os.environ.get("CONDUCTOR_HOST", "").strip()
    if not given:
        return socket.gethostname()
    if not _HOST_NAME.match(given):
        raise InvalidInput(
            f"invalid CONDUCTOR_HOST {given!r}: expected 1-100 letters, digits or _ . -"
        )
    return given


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return "?"
    # The command name (field 2) may hold spaces; fields after the last ')' are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


@functools.cache
def process_id() -> str:
    """This process's identity: `host:pid:start`."""
    pid = os.getpid()
    return f"{host()}:{pid}:{_start_ticks(pid)}"


def holder_gone(worker: str | None) -> bool:
    """True only if `worker` ran on this host and its process no longer exists."""
    if not worker:
        return False
    process = worker.split("/", 1)[0]
    parts = process.split(":")
    if len(parts) != 3 or parts[0] != host():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if f"{host()}:{pid}:{parts[2]}" == process_id():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    return parts[2] != "?" and _start_ticks(pid) not in (parts[2], "?")
