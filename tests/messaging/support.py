"""Small helpers shared by the messaging tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

DEADLINE = 15.0
"""How long a test waits for something that should happen; never an assertion on speed."""


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, within: float = DEADLINE
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``within`` seconds.

    The pause between polls starts at a millisecond and doubles up to 20 ms: most
    conditions hold within a few milliseconds, and a fixed 20 ms pause made each wait
    cost that much at least.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    pause = 0.001
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > give_up:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.02)


class RecordingPublisher:
    """A publisher that keeps what it was given, in order; optionally fails on some ids."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail_ids: set[str] = set()

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        if message["message_id"] in self.fail_ids:
            raise ConnectionError("broker refused the message")
        await asyncio.sleep(0)  # let side-by-side relays interleave
        self.sent.append((stream, dict(message)))

    def ids(self) -> list[str]:
        return [message["message_id"] for _, message in self.sent]


async def stream_entries(client: Any, stream: str) -> list[dict[str, str]]:
    """The fields of every entry of a Redis stream, decoded, oldest first.

    redis-py types ``XRANGE`` loosely; this is the one place that narrows it.
    """
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(stream)
    return [
        {key.decode(): value.decode() for key, value in fields.items()} for _, fields in entries
    ]
