"""The Redis the fault tests use, with stream names of their own.

The Redis at 127.0.0.1:6379 (or ``KEEL_TEST_REDIS_URL``); without one the
tests skip, except under CI (``CI`` set), where they fail. Every test gets a
unique stream prefix, and its streams are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class RedisStreams:
    url: str
    client: aioredis.Redis
    prefix: str

    def wire(self, stream: str) -> str:
        return self.prefix + stream

    async def pending(self, stream: str, group: str) -> int:
        """Entries of ``stream`` delivered to ``group`` and not yet acknowledged."""
        summary = await self.client.xpending(self.wire(stream), group)
        return int(summary["pending"])

    async def most_deliveries(self, stream: str, group: str) -> int:
        """The highest delivery count among the unacknowledged entries (0: none pending)."""
        entries: list[dict[str, Any]] = await self.client.xpending_range(
            self.wire(stream), group, min="-", max="+", count=1000
        )
        return max((int(entry["times_delivered"]) for entry in entries), default=0)

    async def length(self, stream: str) -> int:
        return int(await self.client.xlen(self.wire(stream)))


@contextlib.asynccontextmanager
async def redis_streams() -> AsyncIterator[RedisStreams]:
    url = os.environ.get("KEEL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            message = f"no Redis answers at {url}: {type(exc).__name__}"
            if os.environ.get("CI"):
                pytest.fail(message + " (CI never skips Redis tests)")
            pytest.skip(message)
        prefix = f"faulttest-{uuid4().hex[:10]}:"
        try:
            yield RedisStreams(url, client, prefix)
        finally:
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
