"""Message brokers behind one port: in-process (the embedded default) and Redis Streams.

:func:`create_broker` picks one from ``BROKER_URL``: unset means in-process,
``redis://`` or ``rediss://`` means Redis Streams. The Redis adapter is
imported only when asked for, so the embedded default needs no Redis client.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.brokers.base import (
    Broker,
    BrokerUnavailable,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Publisher,
    dead_letter_stream,
)
from adapters.brokers.memory import InProcessBroker

__all__ = [
    "Broker",
    "BrokerConfigurationError",
    "BrokerUnavailable",
    "DeadLetter",
    "Delivery",
    "DeliveryHandler",
    "InProcessBroker",
    "Publisher",
    "create_broker",
    "dead_letter_stream",
]


class BrokerConfigurationError(ValueError):
    """``BROKER_URL`` names no broker Keel can use. The message never holds a password."""


def create_broker(
    url: str | None,
    *,
    prefix: str = "",
    max_deliveries: int = 5,
    claim_idle_ms: int = 30_000,
    history: int | None = None,
    maxlen: int | None = None,
) -> Broker:
    """The one broker factory: ``url`` unset or empty means in-process, with stream ``prefix``.

    ``claim_idle_ms`` (when an unacknowledged entry is taken over) and
    ``maxlen`` (the approximate length streams are trimmed to) apply to Redis
    Streams; ``history`` to the in-process broker (messages kept per stream).
    """
    if not url:
        return InProcessBroker(prefix=prefix, max_deliveries=max_deliveries, history=history)
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        from adapters.brokers.redis_streams import RedisStreamsBroker

        return RedisStreamsBroker(
            url,
            prefix=prefix,
            max_deliveries=max_deliveries,
            claim_idle_ms=claim_idle_ms,
            maxlen=maxlen,
        )
    raise BrokerConfigurationError(
        f"BROKER_URL has unsupported scheme {scheme!r}; expected 'redis://' or 'rediss://', "
        "or leave it unset for the in-process broker"
    )
