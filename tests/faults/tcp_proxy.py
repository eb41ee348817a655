"""A TCP proxy a test puts between Keel and PostgreSQL, to take the database away and back.

Stopping a real server takes seconds and would disturb everyone else using
it; the proxy fakes the three outages a client can see, in milliseconds,
for the connections that go through it only:

- :meth:`TcpProxy.refuse` — the server is down: established connections are
  reset and new ones are refused (nothing listens on the port);
- :meth:`TcpProxy.go_silent` — the host is unreachable: established connections
  are reset, new ones are accepted but never answered, so only a client-side
  timeout ends the wait;
- :meth:`TcpProxy.restore` — the server is back.

Hand-written: it is a page of asyncio streams, and a test-only proxy
library would add a dependency for less control over the failure modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct


class Mode(enum.Enum):
    FORWARD = "forward"
    SILENT = "silent"


class TcpProxy:
    """Listens on 127.0.0.1 at a free port and forwards to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = Mode.FORWARD
        self.accepted = 0
        """Connections accepted so far, to show a client did (or did not) get through."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self._stop_listening()
        self._cut()
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def refuse(self) -> None:
        """Down: reset every connection, and refuse new ones."""
        await self._stop_listening()
        self._cut()

    async def go_silent(self) -> None:
        """Unreachable: reset every connection; accept new ones but never answer."""
        self.mode = Mode.SILENT
        self._cut()
        if self._server is None:
            await self.start()

    async def restore(self) -> None:
        """Back: forward again, on the same port."""
        self.mode = Mode.FORWARD
        if self._server is None:
            await self.start()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()

    def _cut(self) -> None:
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self.accepted += 1
        self._writers.add(client)
        if self.mode is Mode.SILENT:
            return  # the writer stays open and unanswered until the next cut
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client)
            return
        self._writers.add(upstream)
        for source, sink in ((client_reader, upstream), (upstream_reader, client)):
            task = asyncio.create_task(
                _pipe(source, sink, partner=client if sink is upstream else upstream)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, partner: asyncio.StreamWriter
) -> None:
    """Copy bytes until either side goes away, then reset both."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    _reset(sink)
    _reset(partner)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with an RST, as a crashed server's kernel would, rather than a polite FIN."""
    transport = writer.transport
    if transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # SO_LINGER with a zero timeout makes close() send RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
