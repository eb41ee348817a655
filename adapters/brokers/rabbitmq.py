"""RabbitMQ: a stream is a fanout exchange, a consumer group is a quorum queue bound to it.

Mapping of the broker port (every name gets ``prefix`` in front):

- stream ``S``: a durable fanout exchange named ``S``; ``publish`` sends the
  message JSON as the body (``content_type`` application/json, persistent,
  ``message_id`` set), the headers as AMQP headers, and waits for the
  publisher confirm;
- group ``G`` of ``S``: a durable quorum queue ``S@G`` bound to it; every
  member of the group consumes that queue, with manual acknowledgement;
- dead letters: a fanout exchange ``S.dead`` with a quorum queue ``S.dead``
  bound to it; a letter's body is the original text unchanged, its headers
  ``reason``, ``stream`` and ``attempts``. The group queues name ``S.dead``
  as their ``x-dead-letter-exchange``, so what RabbitMQ itself dead-letters
  (e.g. under an operator's ``delivery-limit`` policy) lands there too.

Ordering: with ``single_active_consumer`` (the default) RabbitMQ delivers a
group's queue to one member at a time — the others are hot standbys that take
over when it goes away — and with ``prefetch=1`` that member holds one
message at a time. Hence, per group: messages are handled one at a time, in
publish order (so per key too), whichever member is active. The exception is
a message whose handler failed or whose consumer died before acknowledging
it: a quorum queue returns it *behind* the messages already waiting (measured
on RabbitMQ 3.10), so it is handled after them — the same as a Redis group
with one consumer; the inbox and version checks absorb it. The price is one
active consumer per group and stream; ``single_active_consumer=False`` (or
``prefetch > 1``) gives parallel competing consumers and no ordering at all.
A consistent-hash exchange would give per-key order *and* parallelism, but
needs a server plugin enabled and a partition-to-consumer assignment; not done.

Redelivery counts: a failure is returned with ``basic.reject`` (requeue),
which quorum queues count in ``x-delivery-count`` (RabbitMQ 4 no longer
counts ``basic.nack``), as they count a return caused by a consumer's
connection closing; ``Delivery.attempt`` is that count plus one. RabbitMQ 4
also dead-letters a message returned more than 20 times by default
(``delivery-limit``): it then lands in ``S.dead`` without a ``reason``.

A group receives what is published after its queue first exists (as with the
in-process broker, unlike a Redis group, which starts at the stream's
beginning). The queue is declared when a member starts and outlives it, so
messages published while every member is down wait in it; declare it before
the first publish with :meth:`RabbitMQBroker.declare_group` when that matters.

What FastStream does: the connection (robust: reconnects by itself), channel,
publisher confirms, declarations, the consuming loop, manual ack/nack and the
graceful stop. Nothing is hand-written but the mapping above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aio_pika.exceptions
from faststream import AckPolicy
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
)
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.schemas.queue import QuorumQueueArgs

from adapters.brokers.base import (
    DEFAULT_PING_TIMEOUT,
    Broker,
    BrokerUnavailable,
    DeadLetter,
    DeliveryHandler,
    dead_letter_stream,
)
from adapters.database import safe_url
from adapters.serialization import encode

logger = logging.getLogger(__name__)

DELIVERY_COUNT_HEADER = "x-delivery-count"
"""Set by quorum queues on a redelivered message: how many times it came back."""


def group_queue_name(wire_stream: str, group: str) -> str:
    """The queue a consumer group of ``wire_stream`` reads."""
    return f"{wire_stream}@{group}"


def _text_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The application's headers: AMQP ones (``x-...``) left out, values as text."""
    result: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if key.startswith("x-"):
            continue
        result[key] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return result


class RabbitMQBroker(Broker):
    """Streams on RabbitMQ through FastStream's ``RabbitBroker``; see the module doc.

    ``redelivery_delay`` (s) is how long a failed message is held before it is
    returned to the queue: a quorum queue hands it back at once, so without a
    pause a failing message would spin through its ``max_deliveries`` in
    milliseconds (and, with a single active consumer, hold back its queue that
    long in any case).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        max_deliveries: int = 5,
        prefetch: int = 1,
        single_active_consumer: bool = True,
        redelivery_delay: float = 1.0,
        graceful_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__(prefix=prefix, max_deliveries=max_deliveries)
        self.url = url
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        self.prefetch = prefetch
        self.single_active_consumer = single_active_consumer
        self.redelivery_delay = redelivery_delay
        self._faststream = RabbitBroker(
            url,
            timeout=connect_timeout,
            logger=logger,
            log_level=logging.DEBUG,  # one line per message is too much at INFO
            graceful_timeout=graceful_timeout,
        )
        self._channel = Channel(prefetch_count=prefetch)
        self._groups: list[tuple[str, str]] = []
        self._ready: set[str] = set()
        """Streams declared on the current connection."""
        self._streams: set[str] = set()
        self._declared_groups: set[tuple[str, str]] = set()
        """Every stream this broker ever declared, for :meth:`declared_names`."""
        self._started = False

    # -- names and declarations ----------------------------------------------------------

    def _exchange(self, wire_stream: str) -> RabbitExchange:
        return RabbitExchange(wire_stream, type=ExchangeType.FANOUT, durable=True)

    def _group_queue(self, wire_stream: str, group: str) -> RabbitQueue:
        arguments: QuorumQueueArgs = {"x-dead-letter-exchange": dead_letter_stream(wire_stream)}
        if self.single_active_consumer:
            arguments["x-single-active-consumer"] = True
        return RabbitQueue(
            group_queue_name(wire_stream, group),
            queue_type=QueueType.QUORUM,
            durable=True,
            arguments=arguments,
        )

    async def _declare_stream(self, wire_stream: str) -> None:
        """The stream's exchange, plus its dead-letter exchange and queue; once per name."""
        if wire_stream in self._ready:
            return
        await self._faststream.declare_exchange(self._exchange(wire_stream))
        dead = dead_letter_stream(wire_stream)
        dead_exchange = await self._faststream.declare_exchange(self._exchange(dead))
        dead_queue = await self._faststream.declare_queue(
            RabbitQueue(dead, queue_type=QueueType.QUORUM, durable=True)
        )
        await dead_queue.bind(dead_exchange)
        self._ready.add(wire_stream)
        self._streams.add(wire_stream)

    async def declare_group(self, stream: str, group: str) -> None:
        """Create ``group``'s queue now, so it keeps what is published before it first consumes.

        Connects if need be; may be called before or after :meth:`start`.
        """
        await self._faststream.connect()
        name = self.wire_name(stream)
        await self._declare_stream(name)
        exchange = await self._faststream.declare_exchange(self._exchange(name))
        queue = await self._faststream.declare_queue(self._group_queue(name, group))
        await queue.bind(exchange)
        self._declared_groups.add((name, group))

    def declared_names(self) -> tuple[set[str], set[str]]:
        """(exchanges, queues) this broker declared or would declare: for clean-up and ops."""
        exchanges: set[str] = set()
        queues: set[str] = set()
        for name in self._streams | {wire for wire, _ in self._groups}:
            exchanges |= {name, dead_letter_stream(name)}
            queues.add(dead_letter_stream(name))
        groups = self._declared_groups | set(self._groups)
        queues |= {group_queue_name(wire, group) for wire, group in groups}
        return exchanges, queues

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        await self._faststream.connect()
        for name, _group in self._groups:
            await self._declare_stream(name)
        await self._faststream.start()
        self._started = True

    async def stop(self) -> None:
        # FastStream waits for the handlers in flight (graceful_timeout), then
        # closes the channel: what is still unacknowledged goes back to its queue.
        await self._faststream.stop()
        self._ready.clear()
        self._started = False

    # -- the port ------------------------------------------------------------------------

    async def ping(self, *, within: float = DEFAULT_PING_TIMEOUT) -> None:
        """Open and close an AMQP connection: the server answers and takes our credentials."""
        try:
            async with asyncio.timeout(within):
                connection = await aio_pika.connect(self.url, timeout=within)
                await connection.close()
        except (OSError, aio_pika.exceptions.AMQPError) as exc:  # TimeoutError is an OSError
            cause = str(exc) or type(exc).__name__
            password = urlsplit(self.url).password
            if password:
                cause = cause.replace(password, "***")
            raise BrokerUnavailable(
                f"broker {safe_url(self.url)} did not answer within {within} s: {cause}"
            ) from exc

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        if not self._started:
            raise RuntimeError("RabbitMQBroker is not started; call 'await broker.start()'")
        name = self.wire_name(stream)
        await self._declare_stream(name)
        await self._faststream.publish(
            encode(message),
            exchange=self._exchange(name),
            headers=dict(headers or {}),
            content_type="application/json",
            message_id=str(message.get("message_id", "")) or None,
            persist=True,
            mandatory=False,  # no group yet: dropped, as on the in-process broker
        )

    async def _publish_dead(self, letter: DeadLetter) -> None:
        name = self.wire_name(letter.stream)
        await self._declare_stream(name)
        await self._faststream.publish(
            letter.raw,
            exchange=self._exchange(dead_letter_stream(name)),
            headers={
                "reason": letter.reason,
                "stream": letter.stream,
                "attempts": str(letter.attempts),
            },
            content_type="application/json",
            persist=True,
            mandatory=False,
        )

    def subscribe(
        self,
        stream: str,
        handler: DeliveryHandler,
        *,
        group: str,
        consumer: str | None = None,
    ) -> None:
        # ``consumer`` needs no name here: RabbitMQ tells members apart by connection.
        if self._started:
            raise RuntimeError("subscribe before start()")
        name = self.wire_name(stream)
        self._groups.append((name, group))

        async def on_message(message: RabbitMessage) -> None:
            await self._on_message(stream, handler, message)

        self._faststream.subscriber(
            self._group_queue(name, group),
            self._exchange(name),
            channel=self._channel,
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
        )(on_message)

    async def _on_message(
        self, stream: str, handler: DeliveryHandler, message: RabbitMessage
    ) -> None:
        incoming = message.raw_message
        raw = incoming.body.decode("utf-8", errors="replace")
        returned = (incoming.headers or {}).get(DELIVERY_COUNT_HEADER, 0)
        attempt = 1 + (returned if isinstance(returned, int) else 0)

        async def nack() -> None:
            await asyncio.sleep(self.redelivery_delay)
            await message.reject(requeue=True)

        await self.deliver(
            handler,
            stream=stream,
            raw=raw,
            headers=_text_headers(incoming.headers),
            attempt=attempt,
            ack=message.ack,
            nack=nack,
        )
