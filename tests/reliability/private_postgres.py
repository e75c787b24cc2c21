"""A PostgreSQL 15 server of a test's own, to restart, stop and start at will.

The shared server (127.0.0.1:5432) serves every other test running in parallel, so an
outage test must never touch it: this starts a throwaway cluster in a temporary directory
(`initdb`, trust auth, listening on 127.0.0.1 only, on a free port) and drives it with
`pg_ctl`. PostgreSQL refuses to run as root, so under root the binaries run as the
`postgres` OS user, in a directory it owns. `PrivatePostgres.create` skips the test, with
the reason, when the binaries or that user are missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import attrs
import pytest

BIN: Final = Path(os.environ.get("CONDUCTOR_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT: Final = 120
"""Seconds `pg_ctl -w` may wait for the server (a hang guard for a loaded machine)."""
_PORT_TRIES: Final = 5
"""Free ports tried: another process may take a port between our look and the start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@attrs.define
class PrivatePostgres:
    """One running cluster: `url(database)` to reach it, `restart`/`stop`/`start`."""

    directory: Path
    port: int
    as_user: tuple[str, ...]
    """The command prefix that runs a binary as the cluster's owner (empty if we are)."""

    @classmethod
    def create(cls) -> PrivatePostgres:
        """initdb a fresh cluster and start it; skips the test when that is impossible."""
        if not (BIN / "initdb").exists() or not (BIN / "pg_ctl").exists():
            pytest.skip(f"PostgreSQL server binaries not found in {BIN} (CONDUCTOR_TEST_PG_BIN)")
        as_user: tuple[str, ...] = ()
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no `postgres` user to run a server as")
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.skip("running as root and `runuser` is missing to run a server as postgres")
            as_user = (runuser, "-u", "postgres", "--")
        directory = Path(tempfile.mkdtemp(prefix="conductor-pg-"))
        if owner is not None:
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        server = cls(directory=directory, port=0, as_user=as_user)
        server._run(
            "initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "--no-sync",
            "-E", "UTF8",
        )  # fmt: skip
        for _ in range(_PORT_TRIES):
            server.port = _free_port()
            (server.directory / "port").write_text(str(server.port))
            try:
                server.start()
            except subprocess.CalledProcessError:
                continue
            return server
        server.destroy()
        pytest.fail(f"could not start a private PostgreSQL on any of {_PORT_TRIES} free ports")

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        where = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return where if schema is None else f"{where}?schema={schema}"

    def _run(self, binary: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(BIN / binary), *args],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT + 30,
            cwd=self.directory,
        )

    def _ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", str(START_TIMEOUT), *args)

    def _options(self) -> str:
        # TCP on 127.0.0.1 only, the Unix socket in our own directory (not /run, which a
        # system cluster owns), no fsync: the data is thrown away.
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )

    def start(self) -> None:
        self._ctl("start", "-l", str(self.log), "-o", self._options())

    def stop(self) -> None:
        """A fast shutdown, as `pg_ctlcluster stop` does: clients are disconnected."""
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """Stop (fast: every connection is cut) and start again on the same port."""
        self._ctl("restart", "-m", "fast", "-l", str(self.log), "-o", self._options())

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL 15 server for one test, stopped and deleted afterwards."""
    server = PrivatePostgres.create()
    try:
        yield server
    finally:
        server.destroy()
