"""A consumer whose Redis lost its consumer group recreates it and goes on consuming.

Redis configured as a cache (no persistence) comes back from a restart
empty; an operator may FLUSHALL or destroy a group by mistake. FastStream
then stops the subscriber for good: before, ``keel consume`` stayed alive
and consumed nothing. Each test runs its own ``redis-server``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.brokers import Delivery
from adapters.brokers.redis_streams import RedisStreamsBroker
from tests.faults.private_redis import PrivateRedis, private_redis
from tests.messaging.support import wait_until

pytestmark = pytest.mark.integration

STREAM = "things.commands"
GROUP = "things"
CONSUMED_WITHIN_SECONDS = 15.0
"""Bound for a message sent after the loss: the watchdog checks every 0.2 s here."""


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    async with private_redis(tmp_path) as server:
        yield server


async def xadd(url: str, message_id: str) -> None:
    """``XADD things.commands * data <json>``, as any client would."""
    client = aioredis.Redis.from_url(url)
    try:
        message = {"message_id": message_id, "type": "Thing", "payload": {}}
        await client.xadd(STREAM, {"data": json.dumps(message)})
    finally:
        await client.aclose()


async def consumed_after(
    server: PrivateRedis, lose_the_group: Callable[[], Awaitable[None]]
) -> list[str]:
    """What a running consumer handles of a message sent before, and one sent after, the loss.

    The recreated group starts at id 0, so what the stream still holds comes
    again (at least once; the inbox absorbs it): only "after" is asserted.
    """
    consumed: list[str] = []

    async def handle(delivery: Delivery) -> None:
        consumed.append(delivery.message["message_id"])

    broker = RedisStreamsBroker(server.url, poll_ms=20, group_check_interval=0.2)
    broker.subscribe(STREAM, handle, group=GROUP)
    async with broker:
        await xadd(server.url, "before")
        await wait_until(lambda: "before" in consumed, "the message sent before the loss")
        await lose_the_group()
        await xadd(server.url, "after")
        await wait_until(
            lambda: "after" in consumed,
            "the message sent after the group was lost",
            within=CONSUMED_WITHIN_SECONDS,
        )
    return consumed


async def test_a_consumer_goes_on_after_its_group_is_destroyed(
    redis_server: PrivateRedis,
) -> None:
    async def destroy_group() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            await client.xgroup_destroy(STREAM, GROUP)
        finally:
            await client.aclose()

    assert "after" in await consumed_after(redis_server, destroy_group)


async def test_a_consumer_goes_on_after_redis_is_flushed(redis_server: PrivateRedis) -> None:
    async def flush() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

    assert "after" in await consumed_after(redis_server, flush)


async def test_a_consumer_goes_on_after_redis_restarts_empty(redis_server: PrivateRedis) -> None:
    async def restart() -> None:
        await redis_server.restart()
        await asyncio.sleep(0.5)  # let the consumer hit the missing group first

    assert "after" in await consumed_after(redis_server, restart)
