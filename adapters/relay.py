"""The outbox relay: publishes committed outbox rows to the broker and marks them sent.

Guarantees (see ``docs/messaging.md`` for the whole picture):

- **At least once, never lost.** A row is marked ``published_at`` only in the
  transaction of the pass that published it, after the broker accepted it. A
  crash, a kill or a cancellation before that commit leaves the row pending,
  and a later pass publishes it again. Consumers deduplicate by
  ``message_id`` (the inbox).
- **Nothing skipped.** Pending means ``published_at IS NULL``, not "above the
  last id seen": a transaction that took a lower id but committed late is
  published as soon as it commits.
- **Per-key order.** Within one aggregate key, messages are published in id
  order, and a key is published by one relay at a time (PostgreSQL advisory
  lock per key; on SQLite one pass at a time). A failed publish holds back
  the rest of its key until it succeeds. Because the outbox row is inserted
  after the aggregate's row is written (and locked), the id order of one
  versioned aggregate's events is the order of its commits.
- **Prompt.** On PostgreSQL a writer's ``NOTIFY`` wakes the relay through
  :class:`PostgresListener`, which re-listens by itself when its connection
  drops; a writer in the same process rings a :class:`~adapters.outbox.Doorbell`.
  Otherwise the relay polls, backing off from ``idle_min`` to ``idle_max``
  while there is nothing to do.
- **Observable.** Each publish is a producer span continuing the trace the
  outbox row kept, whose context goes out in the message's headers
  (``traceparent``), and counts in ``keel_relay_published_total``. The pass's
  own SQL is not traced: an idle relay would start a trace per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters import metrics, tracing
from adapters.brokers.base import Publisher
from adapters.database import safe_url
from adapters.outages import is_database_unavailable
from adapters.outbox import (
    NOTIFY_CHANNEL,
    BatchOutcome,
    Doorbell,
    OutboxRecord,
    PublishRecord,
    SqlAlchemyOutboxStore,
)

logger = logging.getLogger(__name__)


class OutboxStore(Protocol):
    """Where the relay finds pending rows: ``SqlAlchemyOutboxStore`` or ``InMemoryOutbox``."""

    async def process_batch(self, publish: PublishRecord, *, limit: int = 100) -> BatchOutcome: ...

    async def pending_count(self) -> int: ...


def asyncpg_dsn(url: URL) -> str:
    """The plain ``postgresql://`` DSN asyncpg connects with, for the engine's URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresListener:
    """``LISTEN`` on a dedicated asyncpg connection; rings ``doorbell`` on each ``NOTIFY``.

    Runs until cancelled. When the connection drops (server restart, an
    administrator's ``pg_terminate_backend``, a network cut noticed by the
    keep-alive query), it reconnects after ``reconnect_delay`` and rings once,
    since notifications sent meanwhile were lost. Connecting and the
    keep-alive query are bounded (``connect_timeout``, ``keepalive``): a
    server that stops answering without closing the socket must not leave
    the listener waiting on it for the minutes TCP takes to give up.
    """

    def __init__(
        self,
        url: URL,
        doorbell: Doorbell,
        *,
        channel: str = NOTIFY_CHANNEL,
        keepalive: float = 5.0,
        reconnect_delay: float = 1.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.doorbell = doorbell
        self.channel = channel
        self.keepalive = keepalive
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self.connections = 0
        """How many times a LISTEN connection was established, for monitoring and tests."""
        self.backend_pid: int | None = None
        self.listening = asyncio.Event()

    async def run(self) -> None:
        failing = False
        while True:
            connections = self.connections
            try:
                await self._listen_once()
            except Exception as exc:
                # Whatever went wrong, the relay still polls; keep trying to listen.
                # One warning per outage, not one per reconnect attempt.
                lost_now = not failing or self.connections != connections
                logger.log(
                    logging.WARNING if lost_now else logging.DEBUG,
                    "outbox LISTEN connection lost; polling until it is back",
                    extra={"database": safe_url(self.url), "cause": type(exc).__name__},
                )
                failing = True
            await asyncio.sleep(self.reconnect_delay)

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(asyncpg_dsn(self.url), timeout=self.connect_timeout)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(self.channel, self._notified)
            self.connections += 1
            self.backend_pid = connection.get_server_pid()
            self.listening.set()
            self.doorbell.ring()  # catch up on whatever was committed while not listening
            while not lost.is_set():
                try:
                    async with asyncio.timeout(self.keepalive):
                        await lost.wait()
                except TimeoutError:
                    # asyncpg notices a dead socket only when it uses it.
                    await connection.execute("SELECT 1", timeout=self.keepalive)
        finally:
            self.listening.clear()
            self.backend_pid = None
            if not connection.is_closed():
                connection.terminate()

    def _notified(self, *_args: object) -> None:
        self.doorbell.ring()


class OutboxRelay:
    """Publishes pending outbox rows; run several side by side for throughput or failover."""

    def __init__(
        self,
        store: OutboxStore,
        publisher: Publisher,
        *,
        batch_size: int = 100,
        idle_min: float = 0.05,
        idle_max: float = 1.0,
        publish_timeout: float = 10.0,
        doorbell: Doorbell | None = None,
        listener: PostgresListener | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 < idle_min <= idle_max:
            raise ValueError("need 0 < idle_min <= idle_max")
        self.store = store
        self.publisher = publisher
        self.batch_size = batch_size
        self.idle_min = idle_min
        self.idle_max = idle_max
        self.publish_timeout = publish_timeout
        self.doorbell = doorbell if doorbell is not None else Doorbell()
        self.listener = listener
        self.published = 0
        """Messages this relay published, for monitoring and tests."""

    async def _publish(self, record: OutboxRecord) -> None:
        with tracing.publishing(
            record.stream, str(record.message_id), record.trace_context
        ) as trace_headers:
            async with asyncio.timeout(self.publish_timeout):
                await self.publisher.publish(
                    record.stream,
                    record.as_message(),
                    {"key": record.key, "type": record.type, **trace_headers},
                )
        self.published += 1
        metrics.count_published(record.stream)

    async def publish_pending(self) -> BatchOutcome:
        """One pass: claim up to ``batch_size`` pending rows, publish them, mark them."""
        with tracing.suppress_instrumentation():
            return await self.store.process_batch(self._publish, limit=self.batch_size)

    async def drain(self) -> int:
        """Pass until nothing is pending or a pass publishes nothing; returns the count."""
        total = 0
        while True:
            outcome = await self.publish_pending()
            total += outcome.published
            if outcome.published == 0:
                return total

    async def run(self) -> None:
        """Relay until cancelled; a cancelled pass keeps its rows pending, all of them."""
        listening = asyncio.create_task(self.listener.run()) if self.listener else None
        delay = self.idle_min
        try:
            while True:
                try:
                    outcome = await self.publish_pending()
                except Exception as exc:
                    if is_database_unavailable(exc):
                        # Expected while the database is down: one line, no traceback.
                        logger.warning(
                            "outbox relay pass failed: database unavailable; "
                            "trying again after a pause",
                            extra={"cause": type(exc).__name__, "pause_s": delay},
                        )
                    else:
                        logger.exception("outbox relay pass failed; trying again after a pause")
                    outcome = BatchOutcome(failed=1)
                if outcome.claimed >= self.batch_size and not outcome.failed:
                    delay = self.idle_min
                    continue  # a full batch: more is probably waiting
                if outcome.published and not outcome.failed:
                    delay = self.idle_min
                rung = await self.doorbell.wait(delay)
                delay = self.idle_min if rung else min(delay * 2, self.idle_max)
        finally:
            if listening is not None:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening


def create_relay(
    engine: AsyncEngine,
    publisher: Publisher,
    *,
    doorbell: Doorbell | None = None,
    batch_size: int = 100,
) -> OutboxRelay:
    """The relay for ``engine``'s database: LISTEN/NOTIFY on PostgreSQL, polling on SQLite.

    Pass the outbox writer's ``doorbell`` when the writer runs in this process.
    """
    doorbell = doorbell if doorbell is not None else Doorbell()
    if engine.dialect.name == "postgresql":
        listener = PostgresListener(engine.url, doorbell)
        # NOTIFY does the waking; the poll is only the fallback.
        return OutboxRelay(
            SqlAlchemyOutboxStore(engine),
            publisher,
            batch_size=batch_size,
            idle_max=5.0,
            doorbell=doorbell,
            listener=listener,
        )
    return OutboxRelay(
        SqlAlchemyOutboxStore(engine),
        publisher,
        batch_size=batch_size,
        idle_max=0.5,
        doorbell=doorbell,
    )
