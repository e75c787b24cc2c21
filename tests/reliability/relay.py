"""The TCP relay between the hosts' namespaces and the PostgreSQL server (see netns.py).

The server listens on 127.0.0.1 only, and a namespace's 127.0.0.1 is its own loopback. The
relay, an asyncio loop on a thread of the test process, listens on each host's root-side
veth address and connects to the server from 127.0.0.1, where trust auth applies. It never
closes a connection on its own, so a cut host's connections hang as they would across a
dead network.

One thing a relay changes: the server's own TCP timeouts toward a client can never fire
through it, because the relay's kernel answers the server's keepalive probes and
acknowledges its data. So the relay applies them itself, on its host-facing socket: the
values a session asks the server for in its startup packet (`-c tcp_keepalives_idle=...`
in `options`), else the ones the harness is given as the server's configuration. When a
cut host stops answering, the relay's socket gives up and the relay resets the server
side, which ends the backend as the server's own timeout would have.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import re
import socket
import struct
import threading
from typing import Any, Final

import attrs

GUARD: Final = 120.0
"""Hang guard for waits on the kernel, commands and the relay: generous for a loaded machine."""
_NEGOTIATIONS: Final = (80877103, 80877104)
"""SSLRequest and GSSENCRequest: answered with one byte before the startup packet."""


def _duration(text: str, unit_ms: int) -> int | None:
    """A GUC duration (`5`, `5s`, `500ms`, `1min`) in the GUC's base unit."""
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|min|h)?\s*", text)
    if not match:
        return None
    scale = {None: unit_ms, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
    return int(match.group(1)) * scale[match.group(2)] // unit_ms


@attrs.frozen
class ServerTcp:
    """How the server gives up on a client that stopped answering: PostgreSQL's
    `tcp_keepalives_idle`, `_interval` (seconds), `_count` and `tcp_user_timeout` (ms).
    None (or 0, as in PostgreSQL): the kernel's default - keepalive after two hours,
    unacknowledged data retransmitted for about fifteen minutes."""

    keepalives_idle: int | None = None
    keepalives_interval: int | None = None
    keepalives_count: int | None = None
    user_timeout: int | None = None
    """Also covers unacknowledged data, which keepalive does not (e.g. an answer whose
    acknowledgement the cut swallowed)."""

    def asked(self, startup: bytes) -> ServerTcp:
        """These settings, overridden by those a startup packet's body asks for."""
        fields = startup[4:].split(b"\0")
        params = dict(zip(fields[::2], fields[1::2], strict=False))
        settings = {
            k.decode(errors="replace"): v.decode(errors="replace") for k, v in params.items()
        }
        words = settings.pop("options", "").split()
        for word, following in itertools.pairwise([*words, ""]):
            given = following if word == "-c" else word[2:] if word.startswith("--") else ""
            name, _, value = given.partition("=")
            settings[name.replace("-", "_")] = value
        units = {"keepalives_idle": 1000, "keepalives_interval": 1000, "user_timeout": 1}
        changes: dict[str, int | None] = {}
        for field, unit_ms in units.items():
            if (text := settings.get(f"tcp_{field}")) is not None:
                changes[field] = _duration(text, unit_ms)
        if (text := settings.get("tcp_keepalives_count")) is not None:
            changes["keepalives_count"] = int(text) if text.isdigit() else None
        return attrs.evolve(self, **changes)

    def apply(self, sock: Any) -> None:
        options = (
            (socket.TCP_KEEPIDLE, self.keepalives_idle),
            (socket.TCP_KEEPINTVL, self.keepalives_interval),
            (socket.TCP_KEEPCNT, self.keepalives_count),
            (socket.TCP_USER_TIMEOUT, self.user_timeout),
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # as the server does
        for option, value in options:
            if value:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


class Relay:
    """Accepts on each host's gateway address and pipes bytes to and from the server."""

    def __init__(self, target: tuple[str, int], server_tcp: ServerTcp | None = None) -> None:
        self.target = target
        self.server_tcp = server_tcp or ServerTcp()
        """The server's configured TCP timeouts, which a session's own override."""
        self.accepted: collections.Counter[str] = collections.Counter()
        """Connections accepted, by gateway address."""
        self.upstream: dict[str, set[int]] = collections.defaultdict(set)
        """By gateway address, the local ports of the open connections to the server: the
        `client_port` of their backends in `pg_stat_activity`."""
        self.applied: list[ServerTcp] = []
        """The timeouts each connection got, in the order they were accepted."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="netns-relay")
        self._servers: list[asyncio.Server] = []
        self._transports: set[asyncio.WriteTransport] = set()
        self._thread.start()

    def listen(self, address: str, port: int) -> None:
        async def start() -> None:
            self._servers.append(await asyncio.start_server(self._serve, address, port))

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(GUARD)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gateway = writer.get_extra_info("sockname")[0]
        self.accepted[gateway] += 1
        self._transports.add(writer.transport)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports.add(up_writer.transport)
        port = up_writer.get_extra_info("sockname")[1]
        self.upstream[gateway].add(port)
        # A start that fails (an end closed early) leaves the pipes to see the ends.
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await self._start_up(reader, writer, up_reader, up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.upstream[gateway].discard(port)
        for transport in (writer.transport, up_writer.transport):
            transport.abort()
            self._transports.discard(transport)

    async def _start_up(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """Pass the client's startup on, reading the TCP timeouts it asks the server for
        (unless it negotiates encryption, which hides them: the server's settings then)."""
        timeouts = self.server_tcp
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            body = await reader.readexactly(max(length - 8, 0))
            up_writer.write(head + body)
            if code not in _NEGOTIATIONS:
                timeouts = timeouts.asked(head[4:] + body)
                break
            answer = await up_reader.readexactly(1)
            writer.write(answer)
            if answer != b"N":
                break
        timeouts.apply(writer.get_extra_info("socket"))
        self.applied.append(timeouts)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # An end that finishes is passed on as a half-close (the other direction may still
        # be talking, as a server answering a Terminate does); a failed end resets the
        # other, and that end's reader then sees the end too.
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
        except OSError:
            writer.transport.abort()

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for transport in list(self._transports):
                transport.abort()  # close() would wait to flush toward a cut host
            # Aborted ends make every pipe finish; cancel only what is still connecting.
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=GUARD)
                for task in pending:
                    task.cancel()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(GUARD)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(GUARD)
        self._loop.close()
