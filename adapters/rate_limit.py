"""A per-principal rate limit on writes (``RATE_LIMIT``), through the ``limits`` library.

The counters live in memory on the embedded default and in Redis when
``BROKER_URL`` is Redis, so that every process of a deployment counts against
the same budget. The moving-window strategy: a burst at the edge of a fixed
window cannot double the rate.

A limiter whose store cannot be reached lets the request through and logs
it: the limit protects the service from a noisy client, and refusing every
write because Redis blinked would turn that protection into an outage.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from adapters.settings import Settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "keel-rate"


class RateLimiter(Protocol):
    async def hit(self, key: str) -> float | None:
        """Count one request under ``key``; ``None`` if allowed, else seconds to wait."""
        ...

    async def close(self) -> None:
        """Let go of the store's connections (at shutdown)."""
        ...


class LimitsRateLimiter:
    """:class:`RateLimiter` over a ``limits`` storage and the moving-window strategy."""

    def __init__(self, rate: str, storage: Storage) -> None:
        self.item: RateLimitItem = parse(rate)
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    async def hit(self, key: str) -> float | None:
        try:
            if await self.strategy.hit(self.item, key):
                return None
            stats = await self.strategy.get_window_stats(self.item, key)
        except Exception as exc:
            logger.warning(
                "the rate limiter's store is unreachable; the request is let through",
                extra={"cause": type(exc).__name__},
            )
            return None
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def close(self) -> None:
        # ``limits`` keeps its redis-py client on the storage's bridge and offers no close.
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        closing = getattr(client, "aclose", None)
        if closing is not None:
            await closing()


def rate_limiter(settings: Settings) -> RateLimiter | None:
    """The limiter ``RATE_LIMIT`` asks for (``None``: writes are not limited)."""
    if not settings.rate_limit:
        return None
    storage: Storage
    if settings.broker_url:
        storage = RedisStorage(
            f"async+{settings.broker_url}",
            implementation="redispy",
            key_prefix=f"{settings.stream_prefix}{KEY_PREFIX}",
        )
    else:
        storage = MemoryStorage()
    return LimitsRateLimiter(settings.rate_limit, storage)
