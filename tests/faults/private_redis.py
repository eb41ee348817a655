"""A ``redis-server`` of the test's own, which the test may flush, stop and restart.

The shared Redis of the other tests must not be restarted under them. This
one listens on a free port of 127.0.0.1, keeps nothing on disk (``--save ""
--appendonly no``: a restart comes back empty, as a cache-configured Redis
does), and is killed when the block ends. Without a ``redis-server`` binary
the test skips, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

START_DEADLINE_SECONDS = 10.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateRedis:
    """One ``redis-server`` process on a fixed port, restartable."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            async with asyncio.timeout(START_DEADLINE_SECONDS):
                while True:
                    with contextlib.suppress(RedisError, OSError):
                        if await client.ping():
                            return
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    async def restart(self) -> None:
        """Kill the server and start it again on the same port: it comes back empty."""
        await self.stop()
        await self.start()


@contextlib.asynccontextmanager
async def private_redis(directory: Path) -> AsyncIterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "no redis-server binary to start a private Redis with"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI never skips Redis tests)")
        pytest.skip(message)
    server = PrivateRedis(binary, directory)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
