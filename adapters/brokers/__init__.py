"""Message brokers behind one port: in-process (the embedded default), Redis Streams, RabbitMQ.

:func:`create_broker` picks one from ``BROKER_URL``: unset means in-process,
``redis://`` or ``rediss://`` means Redis Streams, ``amqp://`` or ``amqps://``
means RabbitMQ. The server adapters are imported only when asked for, so the
embedded default needs no broker client.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.brokers.base import (
    DEFAULT_MAX_DELIVERIES,
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


REDIS_SCHEMES = ("redis", "rediss")
RABBITMQ_SCHEMES = ("amqp", "amqps")


def create_broker(
    url: str | None,
    *,
    prefix: str = "",
    max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    claim_idle_ms: int = 30_000,
    history: int | None = None,
    redelivery_delay: float | None = None,
    maxlen: int | None = None,
) -> Broker:
    """The broker for ``url``, the one place that maps settings to an adapter.

    - ``None`` or empty: in-process; ``history`` bounds what it keeps for
      inspection per stream (``None``: everything, for tests);
    - ``redis://`` / ``rediss://``: Redis Streams; ``claim_idle_ms`` is how
      long an unacknowledged entry waits before a live consumer takes it, and
      ``maxlen`` the approximate length streams are trimmed to;
    - ``amqp://`` / ``amqps://``: RabbitMQ.

    Every adapter takes ``prefix`` (put before every stream name) and
    ``max_deliveries``; the options of the other adapters are ignored.
    ``redelivery_delay`` (s), when given, is the pause before a failed message
    comes back on the in-process broker and on RabbitMQ (on Redis that is
    ``claim_idle_ms``).
    """
    if not url:
        if redelivery_delay is None:
            return InProcessBroker(prefix=prefix, max_deliveries=max_deliveries, history=history)
        return InProcessBroker(
            prefix=prefix,
            max_deliveries=max_deliveries,
            history=history,
            redelivery_delay=redelivery_delay,
        )
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        from adapters.brokers.redis_streams import RedisStreamsBroker

        return RedisStreamsBroker(
            url,
            prefix=prefix,
            max_deliveries=max_deliveries,
            claim_idle_ms=claim_idle_ms,
            maxlen=maxlen,
        )
    if scheme in RABBITMQ_SCHEMES:
        from adapters.brokers.rabbitmq import RabbitMQBroker

        if redelivery_delay is None:
            return RabbitMQBroker(url, prefix=prefix, max_deliveries=max_deliveries)
        return RabbitMQBroker(
            url, prefix=prefix, max_deliveries=max_deliveries, redelivery_delay=redelivery_delay
        )
    raise BrokerConfigurationError(
        f"BROKER_URL has unsupported scheme {scheme!r}; expected one of "
        f"{', '.join(s + '://' for s in REDIS_SCHEMES + RABBITMQ_SCHEMES)}, "
        "or leave it unset for the in-process broker"
    )
