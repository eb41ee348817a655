"""Redis Streams: consumer groups with acknowledgements, through FastStream.

On the wire each entry carries the message as JSON text in the field ``data``
(contract, section "Messages"), plus an optional ``headers`` field with a JSON
object; so ``redis-cli XADD orders.commands '*' data '{...}'`` sends a command
and any client can read the events.

What FastStream does here: the consuming loops (``XREADGROUP`` in a group,
blocking reads, error back-off, graceful stop), and the reclaim of entries
that a consumer took but never acknowledged — it crashed, or its handler
failed — through a second subscriber that reads with ``XAUTOCLAIM``
(``StreamSub(min_idle_time=...)``), which is also how a failed message is
redelivered.

New entries come as the batch one ``XREADGROUP`` returned (up to
``read_count``), handed to the handler one by one, in order. Their
acknowledgements are sent together, in one ``XACK`` after the last of them —
each one after its own handler returned, so after its own commit — or
earlier, as soon as one of them fails: nothing committed waits through a
failure's redelivery or an outage's pause. An entry whose handler failed is
never in the ``XACK``. A consumer that dies with acknowledgements unsent
leaves those entries pending; they are delivered again, and the inbox makes
that a no-op. FastStream sees one message per batch, and its dependency
injection is off (``apply_types=False``; the subscribers take the message as
it is), which saves its per-message overhead (a thread hop among it).

What redis-py does directly, and why:

- publishing: FastStream's producer always writes its own envelope into a
  field named ``__data__``; the contract's entries have ``data`` instead;
- creating the consumer group at id ``0`` before FastStream starts:
  FastStream creates it at ``$``, which would skip every command sent
  before the first consumer ever ran;
- recreating a consumer group that Redis lost (restarted without
  persistence, ``FLUSHALL``, ``XGROUP DESTROY``): FastStream then logs
  CRITICAL and stops the subscriber for good, and the process would go on
  consuming nothing. A watchdog task notices a stopped subscriber, creates
  the group again at id ``0`` (whatever the stream still holds is consumed)
  and restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import uuid4

from faststream import AckPolicy
from faststream.redis import BinaryMessageFormatV1, RedisBroker, StreamSub
from faststream.redis.message import RedisBatchStreamMessage, RedisStreamMessage
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.brokers.base import (
    DEFAULT_PING_TIMEOUT,
    Broker,
    BrokerUnavailable,
    DeadLetter,
    DeliveryHandler,
    dead_letter_stream,
)
from adapters.database import safe_url
from adapters.dead_letters import DeadLetterEntry, DeadLetterNotFound
from adapters.serialization import encode

logger = logging.getLogger(__name__)


DEFAULT_STREAM_MAXLEN = 1_000_000
"""Entries a stream keeps (approximately) when no ``maxlen`` is given; ``STREAM_MAXLEN``."""

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
"""What redis-py raises when the server cannot be reached or does not answer."""


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


async def _parse_batch(
    message: Mapping[str, Any], original: Callable[[Mapping[str, Any]], Awaitable[Any]]
) -> Any:
    """:func:`_parse_entry` for a batch: ``data`` is the list of the entries' fields."""
    return await original({**message, "data": [], ENTRY_FIELDS: message["data"]})


async def _as_is(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """The decoder: the handler takes FastStream's message itself (ids, fields, ack)."""
    return message


def _delivery_fields(fields: Mapping[bytes, bytes]) -> tuple[str | None, dict[str, str]]:
    """An entry's message text and its headers, from its fields."""
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
    return raw, headers


AUDIT_STREAM = "keel.audit"
"""Where replays of dead letters leave their audit record (behind ``STREAM_PREFIX``)."""
AUDIT_MAXLEN = 100_000
RawEntries = list[tuple[bytes, dict[bytes, bytes]]]
"""What ``XRANGE`` answers; redis-py types it loosely."""
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


async def _create_group(client: Redis, name: str, group: str) -> None:
    """``XGROUP CREATE <name> <group> 0 MKSTREAM``; a group that exists is left as it is."""
    try:
        await client.xgroup_create(name=name, groupname=group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


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

    messaging_system = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        max_deliveries: int = 5,
        claim_idle_ms: int = 30_000,
        poll_ms: int = 100,
        maxlen: int | None = DEFAULT_STREAM_MAXLEN,
        graceful_timeout: float = 5.0,
        read_count: int = 10,
        group_check_interval: float = 1.0,
    ) -> None:
        super().__init__(prefix=prefix, max_deliveries=max_deliveries)
        self.claim_idle_ms = claim_idle_ms
        self.poll_ms = poll_ms
        # Entries one XREADGROUP takes. They wait in this consumer's line, idle
        # as far as Redis can tell: unbounded, a backlog longer than
        # claim_idle_ms would be claimed again while still queued here, and
        # each claim counts as a delivery towards the dead-letter limit.
        self.read_count = read_count
        # XADD trims each stream to about this many entries (None or 0: never), so
        # that a stream does not grow for ever. Trimming ignores consumer groups:
        # it must exceed the longest backlog a consumer may fall behind by.
        self.maxlen = maxlen or None
        self.url = url
        self._faststream = RedisBroker(
            url,
            logger=logger,
            log_level=logging.DEBUG,  # one line per message is too much at INFO
            graceful_timeout=graceful_timeout,
            apply_types=False,  # handlers take the message as it is: no injection per message
        )
        self._client: Redis | None = None
        self._groups: set[tuple[str, str]] = set()
        self.group_check_interval = group_check_interval
        self._subscribers: list[tuple[str, str, Any]] = []
        """(wire stream, group, FastStream subscriber) for the watchdog to restart."""
        self._watchdog: asyncio.Task[None] | None = None
        self.groups_recreated = 0
        """How many times a lost consumer group was recreated, for monitoring and tests."""

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
            await _create_group(client, name, group)
        # Set first: the handlers acknowledge and dead-letter through it from the first read.
        self._client = client
        try:
            await self._faststream.start()
        except BaseException:
            self._client = None
            raise
        if self._subscribers:
            self._watchdog = asyncio.create_task(
                self._keep_consuming(client), name="redis-streams-group-watchdog"
            )

    async def stop(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        # FastStream's stop cancels the subscribers' reads but closes the connections
        # before those have ended: a read cut that way logs "Message fetch error" with a
        # traceback, on every clean stop. So the subscribers stop first (each waits for
        # its handler in flight, graceful_timeout) and their reads end; then FastStream's
        # stop finds nothing reading. The handlers may still dead-letter through the
        # client, so it closes last. A subscriber that fails to stop here is stopped
        # again by FastStream's stop, which reports the failure as it always has.
        await asyncio.gather(
            *(_stopped(subscriber) for _, _, subscriber in self._subscribers),
            return_exceptions=True,
        )
        await self._faststream.stop()
        self._client = None

    async def _keep_consuming(self, client: Redis) -> None:
        """Restart every subscriber FastStream stopped because its consumer group was gone."""
        while True:
            await asyncio.sleep(self.group_check_interval)
            for name, group, subscriber in self._subscribers:
                if subscriber.running:
                    continue
                try:
                    await _create_group(client, name, group)
                    # A flushed stream starts its ids again from the clock; where the
                    # reclaiming subscriber stopped means nothing in the new stream.
                    if hasattr(subscriber, "autoclaim_start_id"):
                        subscriber.autoclaim_start_id = b"0-0"
                    await subscriber.start()
                except (RedisError, OSError) as exc:
                    # Redis is still away; FastStream's own reads say so. Next tick.
                    logger.debug(
                        "consumer group not recreated yet",
                        extra={"stream": name, "group": group, "cause": type(exc).__name__},
                    )
                    continue
                self.groups_recreated += 1
                logger.warning(
                    "consumer group was lost (Redis restarted empty or flushed); "
                    "recreated it and consuming again",
                    extra={"stream": name, "group": group},
                )

    async def ping(self, *, within: float = DEFAULT_PING_TIMEOUT) -> None:
        """``PING``, on the broker's connection once started, else on a throwaway one."""
        owned = self._client is None
        client = self._client or Redis.from_url(
            self.url, socket_connect_timeout=within, socket_timeout=within
        )
        try:
            async with asyncio.timeout(within):
                await client.ping()
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            raise self._unavailable(f"did not answer PING within {within} s", exc) from exc
        finally:
            if owned:
                await client.aclose()

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        fields = {"data": encode(message)}
        if headers:
            fields["headers"] = json.dumps(dict(headers))
        try:
            await self.client.xadd(
                self.wire_name(stream),
                fields,  # type: ignore[arg-type]  # redis-py's field mapping type is invariant
                maxlen=self.maxlen,
                approximate=True,
            )
        except CONNECTION_ERRORS as exc:
            raise self._unavailable("cannot be reached", exc) from exc

    def _unavailable(self, what: str, exc: BaseException) -> BrokerUnavailable:
        where = safe_url(self.url)
        cause = str(exc) or type(exc).__name__
        password = urlsplit(self.url).password
        if password:
            cause = cause.replace(password, "***")
        return BrokerUnavailable(f"broker {where} {what}: {cause}")

    async def _publish_dead(self, letter: DeadLetter) -> None:
        await self.client.xadd(
            self.wire_name(dead_letter_stream(letter.stream)),
            letter.fields(),  # type: ignore[arg-type]
        )

    # -- dead letters (adapters.dead_letters.DeadLetterBox) ------------------------------

    def _dead_entry(
        self, stream: str, entry_id: bytes, raw: Mapping[bytes, bytes]
    ) -> DeadLetterEntry:
        fields = {_text(key) or "": _text(value) or "" for key, value in raw.items()}
        attempts = fields.get("attempts", "")
        return DeadLetterEntry(
            id=_text(entry_id) or "",
            stream=stream,
            raw=fields.get("data", ""),
            reason=fields.get("reason", ""),
            attempts=int(attempts) if attempts.isdigit() else 0,
            fields=fields,
        )

    async def dead_letters(self, stream: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        name = self.wire_name(dead_letter_stream(stream))
        entries = cast(RawEntries, await self.client.xrange(name, count=limit))
        return [self._dead_entry(stream, entry_id, fields) for entry_id, fields in entries]

    async def dead_letter_count(self, stream: str) -> int:
        return int(await self.client.xlen(self.wire_name(dead_letter_stream(stream))))

    async def get_dead_letter(self, stream: str, entry_id: str) -> DeadLetterEntry:
        name = self.wire_name(dead_letter_stream(stream))
        entries = (
            cast(RawEntries, await self.client.xrange(name, min=entry_id, max=entry_id))
            if _ENTRY_ID.fullmatch(entry_id)
            else []
        )
        if not entries:
            raise DeadLetterNotFound(f"no dead letter {entry_id!r} in {name}")
        return self._dead_entry(stream, *entries[0])

    async def replay_dead_letter(
        self, stream: str, entry_id: str, audit: dict[str, str]
    ) -> tuple[DeadLetterEntry, str]:
        """Append the original entry to ``stream``, the audit record, and delete the dead
        letter, in one MULTI/EXEC: all three happen or none does."""
        entry = await self.get_dead_letter(stream, entry_id)
        dead_name = self.wire_name(dead_letter_stream(stream))
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.wire_name(stream), entry.replay_fields())  # type: ignore[arg-type]
            pipe.xadd(
                self.wire_name(AUDIT_STREAM),
                {**audit, "message_id": entry.message_id or ""},  # type: ignore[dict-item]
                maxlen=AUDIT_MAXLEN,
                approximate=True,
            )
            pipe.xdel(dead_name, entry_id)
            new_id, _audit_id, _deleted = await pipe.execute()
        return entry, _text(new_id) or ""

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

        async def on_new(batch: RedisBatchStreamMessage) -> None:
            await self._on_batch(stream, handler, batch)

        async def on_reclaimed(message: RedisStreamMessage) -> None:
            await self._on_entry(stream, handler, message)

        new_entries = self._faststream.subscriber(
            stream=StreamSub(
                name,
                group=group,
                consumer=consumer,
                polling_interval=self.poll_ms,
                max_records=self.read_count,
                batch=True,
            ),
            ack_policy=AckPolicy.MANUAL,
            parser=_parse_batch,
            decoder=_as_is,
        )
        new_entries(on_new)
        reclaimed_entries = self._faststream.subscriber(
            stream=StreamSub(
                name,
                group=group,
                consumer=consumer,
                min_idle_time=self.claim_idle_ms,
                polling_interval=max(self.poll_ms, min(self.claim_idle_ms // 2, 1_000)),
            ),
            ack_policy=AckPolicy.MANUAL,
            parser=_parse_entry,
            decoder=_as_is,
        )
        reclaimed_entries(on_reclaimed)
        self._subscribers += [(name, group, new_entries), (name, group, reclaimed_entries)]

    async def _on_batch(
        self, stream: str, handler: DeliveryHandler, batch: RedisBatchStreamMessage
    ) -> None:
        """Deliver the entries of one read in order; acknowledge them in one ``XACK``."""
        entry: Mapping[str, Any] = batch.raw_message
        wire_stream: str = entry["channel"]
        group = batch.group
        assert group is not None  # a group subscriber's messages name their group
        settled: list[bytes] = []

        async def acknowledge_settled() -> None:
            if not settled:
                return
            ids = list(settled)
            settled.clear()
            try:
                await self.client.xack(wire_stream, group, *ids)
            except CONNECTION_ERRORS as exc:
                # Committed, not acknowledged: delivered again later, and the inbox
                # makes that a no-op. Nothing to undo here.
                logger.warning(
                    "acknowledgements not sent; those entries will be delivered again",
                    extra={"stream": stream, "entries": len(ids), "cause": type(exc).__name__},
                )

        try:
            for entry_id, fields in zip(entry["message_ids"], entry[ENTRY_FIELDS], strict=True):
                raw, headers = _delivery_fields(fields)

                async def settle(entry_id: bytes = entry_id) -> None:
                    settled.append(entry_id)

                await self.deliver(
                    handler,
                    stream=stream,
                    raw=raw,
                    headers=headers,
                    attempt=1,
                    ack=settle,
                    # A failure leaves its own entry pending; the ones before it go now,
                    # not after a redelivery's wait or an outage's pause.
                    nack=acknowledge_settled,
                )
        finally:
            # Also when the read is cut short (a cancellation at stop): what committed
            # is acknowledged.
            await acknowledge_settled()

    async def _on_entry(
        self, stream: str, handler: DeliveryHandler, message: RedisStreamMessage
    ) -> None:
        """Deliver one reclaimed entry, as its next attempt."""
        entry: Mapping[str, Any] = message.raw_message
        raw, headers = _delivery_fields(entry[ENTRY_FIELDS])
        await self.deliver(
            handler,
            stream=stream,
            raw=raw,
            headers=headers,
            attempt=await message.get_delivery_count(),
            ack=message.ack,
            nack=message.nack,
        )


READS_END_WITHIN = 5.0
"""Seconds a stopped subscriber's cancelled reads get to end before the connections close."""


async def _stopped(subscriber: Any) -> None:
    """Stop one FastStream subscriber and wait for its reading tasks to end."""
    reads = [task for task in getattr(subscriber, "tasks", ()) if not task.done()]
    await subscriber.stop()
    if reads:
        await asyncio.wait(reads, timeout=READS_END_WITHIN)
