"""Only the database's own connection failures count as "database unavailable".

A handler's own I/O error (a file, a socket to some other service) is the
message's failure like any other: it counts towards the dead-letter limit.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.brokers import Delivery, InProcessBroker, dead_letter_stream
from adapters.outages import is_database_unavailable

DEADLINE_SECONDS = 15.0
UNREACHABLE_DSN = "postgresql://keel@127.0.0.1:1/keel"
"""Port 1: nothing listens there, so a connection is refused at once."""


async def handler_doing_its_own_io(delivery: Delivery) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.unit
async def test_a_handler_whose_own_io_fails_is_dead_lettered_after_max_deliveries() -> None:
    broker = InProcessBroker(max_deliveries=3, redelivery_delay=0.01)
    broker.subscribe("things", handler_doing_its_own_io, group="g")

    async with asyncio.timeout(DEADLINE_SECONDS), broker:
        await broker.publish("things", {"message_id": "m-1", "type": "T", "payload": {}})
        await broker.settled()

    [letter] = broker.dead[dead_letter_stream("things")]
    assert letter.attempts == 3
    assert "No space left on device" in letter.reason


@pytest.mark.unit
async def test_a_connection_refused_outside_the_database_driver_is_not_an_outage() -> None:
    with pytest.raises(ConnectionRefusedError) as raised:
        await asyncio.open_connection("127.0.0.1", 1)

    assert not is_database_unavailable(raised.value)


@pytest.mark.integration
async def test_asyncpg_failing_to_connect_is_an_outage() -> None:
    with pytest.raises(ConnectionRefusedError) as raised:
        await asyncpg.connect(UNREACHABLE_DSN, timeout=5)

    assert is_database_unavailable(raised.value)


@pytest.mark.integration
async def test_the_engine_failing_to_connect_is_an_outage() -> None:
    engine = create_async_engine("postgresql+asyncpg://keel@127.0.0.1:1/keel")
    try:
        with pytest.raises(ConnectionRefusedError) as raised:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()

    assert is_database_unavailable(raised.value)
