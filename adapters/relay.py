"""The outbox relay: publishes committed outbox rows to the broker and marks them sent.

Guarantees (see ``docs/messaging.md`` for the whole picture):

- **At least once, never lost.** A row is marked ``published_at`` only by the
  pass that published it, after the broker accepted it, while that pass
  still holds the row's key. A crash, a kill or a cancellation before that
  commit leaves the row pending, and a later pass publishes it again.
  Consumers deduplicate by ``message_id`` (the inbox).
- **Nothing skipped.** Pending means ``published_at IS NULL``: a transaction
  that took a lower id but committed late is published once it commits —
  at once when nothing is pending above it, otherwise at the relay's next
  full scan (every ``SqlAlchemyOutboxStore.FULL_SCAN_EVERY`` passes).
- **Per-key order.** Within one aggregate key, messages are published in id
  order, and a key is published by one relay at a time (PostgreSQL advisory
  lock per key; on SQLite one pass at a time). A failed publish holds back
  the rest of its key until it succeeds. Because the outbox row is inserted
  after the aggregate's row is written (and locked), the id order of one
  versioned aggregate's events is the order of its commits.
- **No transaction waits on the broker.** On PostgreSQL a pass claims its
  rows and commits before it publishes, and marks them in a second short
  transaction (``SqlAlchemyOutboxStore``). A broker that refuses or stops
  answering (``publish_timeout``) ends the pass; the relay then backs off
  and logs once when the broker starts failing and once when it is back.
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
from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters import metrics, tracing
from adapters.brokers.base import BrokerUnavailable, Publisher
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
from adapters.retention import Retention, RetentionPolicy

logger = logging.getLogger(__name__)

DEFAULT_PUBLISH_TIMEOUT = 2.0
"""Seconds one publish may take before the broker counts as unavailable (ms when it works)."""
BROKER_BACKOFF_MIN = 0.1
BROKER_BACKOFF_MAX = 5.0
"""Bounds of the relay's pause between passes while the broker fails (s)."""
DEFAULT_RETENTION = RetentionPolicy()


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
    """Publishes pending outbox rows; run several side by side for throughput or failover.

    When the broker fails (:class:`~adapters.brokers.base.BrokerUnavailable`,
    or a publish that takes longer than ``publish_timeout``) the pass ends at
    once, and the relay waits before the next one, doubling the pause from
    ``broker_backoff_min`` up to ``broker_backoff_max``. It logs when the
    broker starts failing and when it is back, not once per attempt.
    With a ``retention``, it also purges old rows every ``retention.policy.interval``.
    """

    def __init__(
        self,
        store: OutboxStore,
        publisher: Publisher,
        *,
        batch_size: int = 100,
        idle_min: float = 0.05,
        idle_max: float = 1.0,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        broker_backoff_min: float = BROKER_BACKOFF_MIN,
        broker_backoff_max: float = BROKER_BACKOFF_MAX,
        doorbell: Doorbell | None = None,
        listener: PostgresListener | None = None,
        retention: Retention | None = None,
        broker_pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 < idle_min <= idle_max:
            raise ValueError("need 0 < idle_min <= idle_max")
        if not 0 < broker_backoff_min <= broker_backoff_max:
            raise ValueError("need 0 < broker_backoff_min <= broker_backoff_max")
        if publish_timeout <= 0:
            raise ValueError(f"publish_timeout must be > 0 seconds, got {publish_timeout}")
        self.store = store
        self.publisher = publisher
        self.batch_size = batch_size
        self.idle_min = idle_min
        self.idle_max = idle_max
        self.publish_timeout = publish_timeout
        self.broker_backoff_min = broker_backoff_min
        self.broker_backoff_max = broker_backoff_max
        self.doorbell = doorbell if doorbell is not None else Doorbell()
        self.listener = listener
        self.retention = retention
        self.broker_pause = broker_pause
        """Waits out a broker-failure pause (a test seam: tests pass one that does not wait)."""
        self.published = 0
        """Messages this relay published, for monitoring and tests."""
        self.broker_failing_since: float | None = None
        """When (``loop.time()``) the broker started failing; ``None`` while it works."""
        self._broker_pause = 0.0

    async def _publish(self, record: OutboxRecord) -> None:
        try:
            with tracing.publishing(
                record.stream, str(record.message_id), record.trace_context
            ) as trace_headers:
                async with asyncio.timeout(self.publish_timeout):
                    await self.publisher.publish(
                        record.stream,
                        record.as_message(),
                        {"key": record.key, "type": record.type, **trace_headers},
                    )
        except TimeoutError:
            # A broker that accepts the connection and never answers: every other
            # message would wait as long, so this ends the pass like a refusal.
            raise BrokerUnavailable(
                f"the broker did not accept a message within {self.publish_timeout} s"
            ) from None
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
        # A task of its own: a purge waiting on a lock must not hold back publishing.
        purging = (
            asyncio.create_task(self._purge_periodically(self.retention))
            if self.retention is not None
            else None
        )
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
                if outcome.broker_error is not None:
                    # Not the doorbell: every commit rings it, and the broker needs the rest.
                    await self.broker_pause(self._broker_failed(outcome.broker_error))
                    continue
                if outcome.published:
                    self._broker_works()
                if outcome.claimed >= self.batch_size and not outcome.failed:
                    delay = self.idle_min
                    continue  # a full batch: more is probably waiting
                if outcome.published and not outcome.failed:
                    delay = self.idle_min
                rung = await self.doorbell.wait(delay)
                delay = self.idle_min if rung else min(delay * 2, self.idle_max)
        finally:
            for task in (listening, purging):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    def _broker_failed(self, cause: str) -> float:
        """Note a broker failure; the pause before the next pass, doubled each time."""
        self._broker_pause = min(
            self.broker_backoff_max, max(self.broker_backoff_min, self._broker_pause * 2)
        )
        first = self.broker_failing_since is None
        if first:
            self.broker_failing_since = asyncio.get_running_loop().time()
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "broker unavailable; the outbox relay keeps every message pending and retries"
            if first
            else "broker still unavailable",
            extra={"cause": cause, "pause_s": self._broker_pause},
        )
        return self._broker_pause

    def _broker_works(self) -> None:
        if self.broker_failing_since is None:
            return
        down_for = asyncio.get_running_loop().time() - self.broker_failing_since
        self.broker_failing_since = None
        self._broker_pause = 0.0
        logger.warning(
            "broker available again; the outbox relay publishes",
            extra={"unavailable_s": round(down_for, 3)},
        )

    @staticmethod
    async def _purge_periodically(retention: Retention) -> None:
        while True:
            try:
                await retention.purge()
            except Exception as exc:
                # Purging can wait for the next interval; publishing goes on regardless.
                if is_database_unavailable(exc):
                    logger.warning(
                        "retention purge skipped: database unavailable",
                        extra={"cause": type(exc).__name__},
                    )
                else:
                    logger.exception("retention purge failed; trying again at the next interval")
            await asyncio.sleep(retention.policy.interval)


def create_relay(
    engine: AsyncEngine,
    publisher: Publisher,
    *,
    doorbell: Doorbell | None = None,
    batch_size: int = 100,
    publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
    retention: RetentionPolicy | None = DEFAULT_RETENTION,
) -> OutboxRelay:
    """The relay for ``engine``'s database: LISTEN/NOTIFY on PostgreSQL, polling on SQLite.

    Pass the outbox writer's ``doorbell`` when the writer runs in this process.
    ``retention``: how old published outbox rows and inbox rows are purged
    (``None``: never, e.g. when another process purges).
    """
    doorbell = doorbell if doorbell is not None else Doorbell()
    purger = Retention(engine, retention) if retention is not None else None
    if engine.dialect.name == "postgresql":
        listener = PostgresListener(engine.url, doorbell)
        # NOTIFY does the waking; the poll is only the fallback.
        return OutboxRelay(
            SqlAlchemyOutboxStore(engine),
            publisher,
            batch_size=batch_size,
            idle_max=5.0,
            publish_timeout=publish_timeout,
            doorbell=doorbell,
            listener=listener,
            retention=purger,
        )
    return OutboxRelay(
        SqlAlchemyOutboxStore(engine),
        publisher,
        batch_size=batch_size,
        idle_max=0.5,
        publish_timeout=publish_timeout,
        doorbell=doorbell,
        retention=purger,
    )
