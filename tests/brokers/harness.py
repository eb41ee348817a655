"""One harness per broker backend, so that the contract tests are written once.

A harness makes brokers with short timeouts (redelivery in tens of
milliseconds, not the production seconds), all on this test's own stream
prefix, reads what went to a dead-letter stream, and cleans up after the test.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import redis.asyncio as aioredis

from adapters.brokers import (
    Broker,
    DeliveryHandler,
    InProcessBroker,
    create_broker,
    dead_letter_stream,
)
from adapters.brokers.rabbitmq import RabbitMQBroker
from adapters.brokers.redis_streams import RedisStreamsBroker
from tests.messaging.support import stream_entries

STREAM = "orders.commands"
GROUP = "orders"


def a_message(**payload: Any) -> dict[str, Any]:
    """A well-formed envelope with a fresh id."""
    return {
        "message_id": str(uuid.uuid4()),
        "type": "PlaceOrder",
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }


@dataclass(frozen=True)
class Letter:
    """A dead letter as any backend shows it."""

    raw: str
    reason: str


class BrokerHarness(abc.ABC):
    """Makes brokers of one backend for one test and cleans up after it."""

    name: str
    url: str | None
    """``BROKER_URL`` of the backend (``None``: in-process), for a consumer in another process."""
    prefix: str
    settle: float
    """Seconds after which an unacknowledged message would have come back."""

    def __init__(self) -> None:
        self.made: list[Broker] = []

    def make(self, **options: Any) -> Broker:
        broker = self._make(**options)
        self.made.append(broker)
        return broker

    async def started(
        self, handler: DeliveryHandler, *, group: str = GROUP, **options: Any
    ) -> Broker:
        """A broker with ``handler`` subscribed to ``STREAM`` in ``group``, started."""
        broker = self.make(**options)
        broker.subscribe(STREAM, handler, group=group)
        await broker.start()
        return broker

    @abc.abstractmethod
    def _make(self, **options: Any) -> Broker: ...

    @abc.abstractmethod
    async def dead_letters(self, broker: Broker, stream: str) -> list[Letter]: ...

    async def settle_down(self, broker: Broker) -> None:
        """Wait until a message left unacknowledged so far would have come back."""
        await asyncio.sleep(self.settle)

    async def publish_raw(self, stream: str, text: str) -> None:
        """Send ``text`` as a message body the way a foreign client would."""
        raise NotImplementedError(f"{self.name} has no way in but its own publish")

    async def close(self) -> None:
        for broker in self.made:
            await broker.stop()


class InProcessHarness(BrokerHarness):
    name = "memory"
    url = None
    prefix = "t:"
    settle = 0.2

    def _make(self, **options: Any) -> Broker:
        return create_broker(None, prefix=self.prefix, redelivery_delay=0.02, **options)

    async def settle_down(self, broker: Broker) -> None:
        """Not a guess at a delay: the broker itself knows when no redelivery is due."""
        assert isinstance(broker, InProcessBroker)
        await broker.settled()

    async def dead_letters(self, broker: Broker, stream: str) -> list[Letter]:
        assert isinstance(broker, InProcessBroker)
        letters = broker.dead[broker.wire_name(dead_letter_stream(stream))]
        return [Letter(letter.raw, letter.reason) for letter in letters]


class RedisHarness(BrokerHarness):
    name = "redis"
    settle = 0.6

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.url = self.redis_url = url
        self.prefix = prefix

    def _make(self, **options: Any) -> Broker:
        options = {"claim_idle_ms": 200, "poll_ms": 20, **options}
        return RedisStreamsBroker(self.redis_url, prefix=self.prefix, **options)

    async def dead_letters(self, broker: Broker, stream: str) -> list[Letter]:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            entries = await stream_entries(client, self.prefix + dead_letter_stream(stream))
        finally:
            await client.aclose()
        return [Letter(fields["data"], fields["reason"]) for fields in entries]

    async def publish_raw(self, stream: str, text: str) -> None:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            await client.xadd(self.prefix + stream, {"data": text})
        finally:
            await client.aclose()


class RabbitMQHarness(BrokerHarness):
    """On a prefix of its own; every exchange and queue its brokers declared is deleted after."""

    name = "rabbitmq"
    settle = 0.3

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = self.rabbitmq_url = url
        self.prefix = f"keeltest-{uuid.uuid4().hex[:10]}:"

    def _make(self, **options: Any) -> Broker:
        options = {"redelivery_delay": 0.05, "graceful_timeout": 2.0, **options}
        return RabbitMQBroker(self.rabbitmq_url, prefix=self.prefix, **options)

    async def dead_letters(self, broker: Broker, stream: str) -> list[Letter]:
        letters: list[Letter] = []
        connection = await aio_pika.connect(self.rabbitmq_url)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(self.prefix + dead_letter_stream(stream))
            # Looked at, then put back: the test may look again.
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                reason = (message.headers or {}).get("reason", "")
                letters.append(Letter(message.body.decode(), str(reason)))
            await channel.close()  # returns what was looked at
        finally:
            await connection.close()
        return letters

    async def publish_raw(self, stream: str, text: str) -> None:
        connection = await aio_pika.connect(self.rabbitmq_url)
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange(self.prefix + stream)
            await exchange.publish(aio_pika.Message(text.encode()), routing_key="")
        finally:
            await connection.close()

    async def close(self) -> None:
        await super().close()
        exchanges: set[str] = set()
        queues: set[str] = set()
        for broker in self.made:
            assert isinstance(broker, RabbitMQBroker)
            more_exchanges, more_queues = broker.declared_names()
            exchanges |= more_exchanges
            queues |= more_queues
        connection = await aio_pika.connect(self.rabbitmq_url)
        try:
            channel = await connection.channel()
            for queue in sorted(queues):
                with contextlib.suppress(aio_pika.exceptions.AMQPError):
                    await channel.queue_delete(queue)
            for exchange in sorted(exchanges):
                with contextlib.suppress(aio_pika.exceptions.AMQPError):
                    await channel.exchange_delete(exchange)
        finally:
            await connection.close()
