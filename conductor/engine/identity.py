"""Who holds a lease: worker ids, and whether their process is still alive.

A worker id is `host:pid:start`: the process that holds the lease, where `start` is the
process's start time in clock ticks since boot (from /proc), so a recycled pid is not
mistaken for the original process.
A job held by a dead process on this host is rescued at once; one held on another host
waits for its lease to expire.
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Final

HOST: Final = socket.gethostname()


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
    return f"{HOST}:{pid}:{_start_ticks(pid)}"


def holder_gone(worker: str | None) -> bool:
    """True only if `worker` ran on this host and its process no longer exists."""
    if not worker:
        return False
    process = worker.split("/", 1)[0]
    parts = process.split(":")
    if len(parts) != 3 or parts[0] != HOST:
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if f"{HOST}:{pid}:{parts[2]}" == process_id():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    return parts[2] != "?" and _start_ticks(pid) not in (parts[2], "?")
