"""The relay and a broker that fails: no transaction waits on it, and it is noticed once.

The "black hole" is a TCP server on 127.0.0.1 that accepts connections and
never answers: the worst broker, since nothing fails until a timeout does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from sqlalchemy import text

from adapters.brokers import InProcessBroker
from adapters.brokers.base import BrokerUnavailable
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.database import DatabaseSessionManager
from adapters.outbox import InMemoryOutbox, SqlAlchemyOutbox, SqlAlchemyOutboxStore, with_outbox
from adapters.relay import OutboxRelay, create_relay
from adapters.repository import InMemoryStore
from service_layer.messagebus import MessageBus
from tests.messaging.factories import OpenCounterFactory
from tests.messaging.sample import OpenCounter
from tests.messaging.sample_service import (
    InMemoryCounterUnitOfWork,
    make_registry,
    open_counter,
    sql_bus,
)
from tests.messaging.support import wait_until

DEADLINE_SECONDS = 15.0
"""Only stops a hung test."""
LONGEST_IDLE_IN_TRANSACTION = 1.0
"""No relay transaction may stay open this long (s) while the broker keeps it waiting."""
UNREACHABLE_BROKER = "redis://:s3cret-pw@127.0.0.1:1/0"
"""Port 1: nothing listens, so connecting is refused at once. With a password to hide."""


@pytest.fixture
async def black_hole_url() -> AsyncIterator[str]:
    """A Redis URL whose server accepts connections and never answers anything."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # kept open, never written to

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def longest_idle_in_transaction(manager: DatabaseSessionManager) -> float:
    """Seconds the oldest ``idle in transaction`` session of the test database has been so."""
    async with manager.connect() as connection:
        seconds = await connection.scalar(
            text(
                "SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0) "
                "FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state LIKE 'idle in transaction%'"
            )
        )
    return float(seconds or 0)


async def write_events(manager: DatabaseSessionManager, count: int) -> None:
    bus = sql_bus(manager, SqlAlchemyOutbox(make_registry()))
    for _ in range(count):
        await bus.handle(OpenCounterFactory.build())


@pytest.mark.integration
async def test_no_relay_transaction_stays_open_while_the_broker_does_not_answer(
    pg: DatabaseSessionManager, black_hole_url: str
) -> None:
    await write_events(pg, 3)
    broker = RedisStreamsBroker(black_hole_url)
    relay = create_relay(pg.engine, broker)
    longest = 0.0
    async with broker:
        running = asyncio.create_task(relay.run())
        try:
            # Longer than a pass used to wait on the broker inside its transaction.
            loop = asyncio.get_running_loop()
            watch_until = loop.time() + 3 * LONGEST_IDLE_IN_TRANSACTION
            while loop.time() < watch_until:
                longest = max(longest, await longest_idle_in_transaction(pg))
                await asyncio.sleep(0.1)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    assert longest < LONGEST_IDLE_IN_TRANSACTION
    assert await SqlAlchemyOutboxStore(pg.engine).pending_count() == 3


@pytest.mark.integration
async def test_relay_ends_a_pass_when_the_broker_does_not_answer(
    pg: DatabaseSessionManager, black_hole_url: str
) -> None:
    await write_events(pg, 3)
    broker = RedisStreamsBroker(black_hole_url)
    relay = create_relay(pg.engine, broker, publish_timeout=0.2)

    async with broker, asyncio.timeout(DEADLINE_SECONDS):
        outcome = await relay.publish_pending()

    # One message tried and failed; the other two never sent to a broker that is gone.
    assert (outcome.claimed, outcome.published, outcome.failed) == (3, 0, 1)
    assert outcome.broker_error is not None
    assert await SqlAlchemyOutboxStore(pg.engine).pending_count() == 3


@pytest.mark.integration
async def test_ping_names_an_unreachable_broker_without_its_password() -> None:
    broker = RedisStreamsBroker(UNREACHABLE_BROKER)

    with pytest.raises(BrokerUnavailable) as raised:
        async with asyncio.timeout(DEADLINE_SECONDS):
            await broker.ping()

    assert "redis://:***@127.0.0.1:1/0" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


@pytest.mark.integration
async def test_ping_gives_up_on_a_broker_that_does_not_answer(black_hole_url: str) -> None:
    broker = RedisStreamsBroker(black_hole_url)

    with pytest.raises(BrokerUnavailable, match=r"did not answer PING within 0\.2 s"):
        async with asyncio.timeout(DEADLINE_SECONDS):
            await broker.ping(within=0.2)


@pytest.mark.integration
async def test_ping_of_a_running_redis_passes(redis_url: str) -> None:
    broker = RedisStreamsBroker(redis_url)

    async with asyncio.timeout(DEADLINE_SECONDS):
        await broker.ping()


@pytest.mark.unit
async def test_the_in_process_broker_always_answers_a_ping() -> None:
    await InProcessBroker().ping()


class BrokerDownFor:
    """A publisher whose broker is unavailable for its first ``failures`` attempts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.sent: list[str] = []

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise BrokerUnavailable("broker redis://:***@broker:6379/0 cannot be reached")
        self.sent.append(message["message_id"])


async def relay_until_published(relay: OutboxRelay, publisher: BrokerDownFor) -> None:
    running = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: len(publisher.sent) == 1, "the event, once the broker is back")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def no_wait(pause: float) -> None:
    """The relay's ``broker_pause`` in these tests: they check the pauses it logs, not the clock."""
    await asyncio.sleep(0)


async def outbox_with_one_event() -> InMemoryOutbox:
    outbox = InMemoryOutbox(make_registry())
    store = InMemoryStore()
    bus = MessageBus(with_outbox(lambda: InMemoryCounterUnitOfWork(store), outbox))
    bus.register_command(OpenCounter, open_counter)
    await bus.handle(OpenCounterFactory.build())
    return outbox


@pytest.mark.unit
async def test_the_relay_logs_once_when_the_broker_fails_and_once_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = BrokerDownFor(failures=6)
    relay = OutboxRelay(
        await outbox_with_one_event(),
        publisher,
        broker_backoff_min=0.01,
        broker_backoff_max=0.02,
        broker_pause=no_wait,
    )

    with caplog.at_level(logging.INFO, logger="adapters"):
        await relay_until_published(relay, publisher)

    assert publisher.attempts == 7
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "broker unavailable; the outbox relay keeps every message pending and retries",
        "broker available again; the outbox relay publishes",
    ]


@pytest.mark.unit
async def test_the_relay_doubles_its_pause_while_the_broker_fails_up_to_a_cap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = BrokerDownFor(failures=5)
    relay = OutboxRelay(
        await outbox_with_one_event(),
        publisher,
        broker_backoff_min=0.01,
        broker_backoff_max=0.04,
        broker_pause=no_wait,
    )

    with caplog.at_level(logging.DEBUG, logger="adapters.relay"):
        await relay_until_published(relay, publisher)

    pauses = [r.pause_s for r in caplog.records if hasattr(r, "pause_s")]
    assert pauses == [0.01, 0.02, 0.04, 0.04, 0.04]


@pytest.mark.integration
async def test_publishing_to_an_unreachable_redis_is_a_broker_failure_without_the_password() -> (
    None
):
    broker = RedisStreamsBroker(UNREACHABLE_BROKER)

    async with broker, asyncio.timeout(DEADLINE_SECONDS):
        with pytest.raises(BrokerUnavailable) as raised:
            await broker.publish("things", {"message_id": "m-1", "type": "T", "payload": {}})

    assert "127.0.0.1:1" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)
