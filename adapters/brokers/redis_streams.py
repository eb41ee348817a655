"""Redis Streams: consumer groups with acknowledgements, through FastStream.

On the wire each entry carries the message as JSON text in the field ``data``
(contract, section "Messages"), plus an optional ``headers`` field with a JSON
object; so ``redis-cli XADD orders.commands '*' data '{...}'`` sends a command
and any client can read the events.

What FastStream does here: the consuming loops (``XREADGROUP`` in a group,
blocking reads, error back-off, graceful stop), manual ``XACK``, and the
reclaim of entries that a consumer took but never acknowledged — it crashed,
or its handler failed — through a second subscriber that reads with
``XAUTOCLAIM`` (``StreamSub(min_idle_time=...)``), which is also how a failed
message is redelivered.

What redis-py does directly, and why:

- publishing: FastStream's producer always writes its own envelope into a
  field named ``__data__``; the contract's entries have ``data`` instead;
- creating the consumer group at id ``0`` before FastStream starts:
  FastStream creates it at ``$``, which would skip every command sent
  before the first consumer ever ran.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from uuid import uuid4

from faststream import AckPolicy
from faststream.redis import BinaryMessageFormatV1, RedisBroker, StreamSub
from faststream.redis.annotations import RedisStreamMessage
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from adapters.brokers.base import Broker, DeadLetter, DeliveryHandler, dead_letter_stream
from adapters.serialization import encode

logger = logging.getLogger(__name__)


def default_consumer_name() -> str:
    """Unique per process, so that a restarted process never owns a dead one's entries."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:6]}"


ENTRY_FIELDS = "keel_entry_fields"
"""Where :func:`_parse_entry` keeps an entry's fields for :meth:`RedisStreamsBroker._on_entry`."""


async def _parse_entry(
    message: Mapping[str, Any], original: Callable[[Mapping[str, Any]], Awaitable[Any]]
) -> Any:
    """FastStream's own stream parser, shown none of the entry's fields.

    It takes a field named ``headers`` for its envelope's headers and fails
    on anything but a JSON object — the relay's ``headers`` field is JSON
    *text* — before any handler runs: such an entry could then be neither
    acknowledged nor dead-lettered, and would come back for ever.
    ``_on_entry`` reads the fields itself; FastStream only needs the ids.
    """
    return await original({**message, "data": {}, ENTRY_FIELDS: message["data"]})


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


class RedisStreamsBroker(Broker):
    """Streams on Redis. ``claim_idle_ms`` must exceed the longest handler run.

    An entry not acknowledged for ``claim_idle_ms`` (its consumer died, or
    its handler failed) is claimed again by a live consumer of the group;
    that is the redelivery delay too.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        max_deliveries: int = 5,
        claim_idle_ms: int = 30_000,
        poll_ms: int = 100,
        maxlen: int | None = None,
        graceful_timeout: float = 5.0,
        read_count: int = 10,
    ) -> None:
        super().__init__(prefix=prefix, max_deliveries=max_deliveries)
        self.claim_idle_ms = claim_idle_ms
        self.poll_ms = poll_ms
        # Entries one XREADGROUP takes. They wait in this consumer's line, idle
        # as far as Redis can tell: unbounded, a backlog longer than
        # claim_idle_ms would be claimed again while still queued here, and
        # each claim counts as a delivery towards the dead-letter limit.
        self.read_count = read_count
        self.maxlen = maxlen
        self._faststream = RedisBroker(
            url,
            logger=logger,
            log_level=logging.DEBUG,  # one line per message is too much at INFO
            graceful_timeout=graceful_timeout,
        )
        self._client: Redis | None = None
        self._groups: set[tuple[str, str]] = set()

    @property
    def client(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisStreamsBroker is not started; call 'await broker.start()'")
        return self._client

    async def start(self) -> None:
        if self._client is not None:
            return
        client: Redis = await self._faststream.connect()
        for name, group in sorted(self._groups):
            try:
                await client.xgroup_create(name=name, groupname=group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        await self._faststream.start()
        self._client = client

    async def stop(self) -> None:
        # FastStream's stop waits for the handlers in flight (graceful_timeout);
        # they may still dead-letter through the client, so it goes last.
        await self._faststream.stop()
        self._client = None

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        fields = {"data": encode(message)}
        if headers:
            fields["headers"] = json.dumps(dict(headers))
        await self.client.xadd(
            self.wire_name(stream),
            fields,  # type: ignore[arg-type]  # redis-py's field mapping type is invariant
            maxlen=self.maxlen,
            approximate=True,
        )

    async def _publish_dead(self, letter: DeadLetter) -> None:
        await self.client.xadd(
            self.wire_name(dead_letter_stream(letter.stream)),
            letter.fields(),  # type: ignore[arg-type]
        )

    def subscribe(
        self,
        stream: str,
        handler: DeliveryHandler,
        *,
        group: str,
        consumer: str | None = None,
    ) -> None:
        if self._client is not None:
            raise RuntimeError("subscribe before start()")
        name = self.wire_name(stream)
        consumer = consumer or default_consumer_name()
        self._groups.add((name, group))

        async def on_new(message: RedisStreamMessage) -> None:
            await self._on_entry(stream, handler, message, reclaimed=False)

        async def on_reclaimed(message: RedisStreamMessage) -> None:
            await self._on_entry(stream, handler, message, reclaimed=True)

        self._faststream.subscriber(
            stream=StreamSub(
                name,
                group=group,
                consumer=consumer,
                polling_interval=self.poll_ms,
                max_records=self.read_count,
            ),
            ack_policy=AckPolicy.MANUAL,
            parser=_parse_entry,
        )(on_new)
        self._faststream.subscriber(
            stream=StreamSub(
                name,
                group=group,
                consumer=consumer,
                min_idle_time=self.claim_idle_ms,
                polling_interval=max(self.poll_ms, min(self.claim_idle_ms // 2, 1_000)),
            ),
            ack_policy=AckPolicy.MANUAL,
            parser=_parse_entry,
        )(on_reclaimed)

    async def _on_entry(
        self,
        stream: str,
        handler: DeliveryHandler,
        message: RedisStreamMessage,
        *,
        reclaimed: bool,
    ) -> None:
        entry: Mapping[str, Any] = message.raw_message
        fields: Mapping[bytes, bytes] = entry[ENTRY_FIELDS]
        raw = _text(fields.get(b"data"))
        if raw is None and b"__data__" in fields:
            # Published through FastStream itself: unwrap its envelope.
            body, _ = BinaryMessageFormatV1.parse(fields[b"__data__"])
            raw = _text(body)
        headers: dict[str, str] = {}
        if b"headers" in fields:
            try:
                parsed = json.loads(fields[b"headers"])
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                headers = {str(key): str(value) for key, value in parsed.items()}
        # The entry's other fields (a command's 'sig') travel as headers too; they win.
        for name, value in fields.items():
            if name not in (b"data", b"__data__", b"headers"):
                headers[_text(name) or ""] = _text(value) or ""
        attempt = await message.get_delivery_count() if reclaimed else 1
        await self.deliver(
            handler,
            stream=stream,
            raw=raw,
            headers=headers,
            attempt=attempt,
            ack=message.ack,
            nack=message.nack,
        )
