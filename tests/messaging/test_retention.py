"""Old rows go: published outbox rows and inbox rows past their age, a batch at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.database import DatabaseSessionManager
from adapters.inbox import inbox_table
from adapters.outbox import SqlAlchemyOutbox, outbox_table
from adapters.relay import create_relay
from adapters.retention import Retention, RetentionPolicy
from adapters.settings import ConfigurationError, load_settings
from tests.messaging.factories import OpenCounterFactory
from tests.messaging.sample_service import EVENTS_STREAM, make_registry, sql_bus
from tests.messaging.support import RecordingPublisher, wait_until

pytestmark = pytest.mark.integration

WEEK = timedelta(days=7)
LONG_AGO = datetime.now(UTC) - timedelta(days=30)
RECENTLY = datetime.now(UTC) - timedelta(hours=1)


def outbox_row(*, published_at: datetime | None, created_at: datetime = LONG_AGO) -> dict[str, Any]:
    return {
        "message_id": uuid4(),
        "stream": EVENTS_STREAM,
        "aggregate_key": f"Counter:{uuid4()}",
        "type": "CounterOpened",
        "occurred_at": created_at,
        "payload": {},
        "created_at": created_at,
        "published_at": published_at,
    }


async def outbox_rows(manager: DatabaseSessionManager) -> list[datetime | None]:
    async with manager.session() as session:
        rows = await session.scalars(
            select(outbox_table.c.published_at).order_by(outbox_table.c.id)
        )
        return list(rows)


async def inbox_ids(manager: DatabaseSessionManager) -> list[str]:
    async with manager.session() as session:
        rows = await session.scalars(
            select(inbox_table.c.message_id).order_by(inbox_table.c.message_id)
        )
        return list(rows)


@contextlib.contextmanager
def counting_deletes(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def test_published_outbox_rows_past_their_age_are_purged_and_the_rest_kept(
    pg: DatabaseSessionManager,
) -> None:
    async with pg.connect() as connection:
        await connection.execute(
            insert(outbox_table),
            [
                outbox_row(published_at=LONG_AGO),
                outbox_row(published_at=None),  # pending, however old: never purged
                outbox_row(published_at=RECENTLY),
                outbox_row(published_at=LONG_AGO),
            ],
        )

    purged = await Retention(pg.engine, RetentionPolicy(outbox_age=WEEK)).purge()

    assert purged.outbox == 2
    assert await outbox_rows(pg) == [None, RECENTLY]


async def test_inbox_rows_past_their_age_are_purged_and_the_rest_kept(
    pg: DatabaseSessionManager,
) -> None:
    async with pg.connect() as connection:
        await connection.execute(
            insert(inbox_table),
            [
                {"message_id": "old-1", "handler": "", "processed_at": LONG_AGO},
                {"message_id": "new-1", "handler": "", "processed_at": RECENTLY},
                {"message_id": "old-2", "handler": "h", "processed_at": LONG_AGO},
            ],
        )

    purged = await Retention(pg.engine, RetentionPolicy(inbox_age=timedelta(days=14))).purge()

    assert purged.inbox == 2
    assert await inbox_ids(pg) == ["new-1"]


async def test_a_purge_deletes_in_transactions_of_at_most_the_batch_size(
    pg: DatabaseSessionManager,
) -> None:
    async with pg.connect() as connection:
        await connection.execute(
            insert(outbox_table), [outbox_row(published_at=LONG_AGO) for _ in range(5)]
        )
    retention = Retention(pg.engine, RetentionPolicy(outbox_age=WEEK, batch_size=2))

    with counting_deletes(pg.engine) as deletes:
        purged = await retention.purge_outbox()

    assert purged == 5
    outbox_deletes = [statement for statement in deletes if "outbox" in statement]
    assert len(outbox_deletes) == 3  # 2 + 2 + 1


async def test_the_relay_purges_published_rows_as_it_runs(pg: DatabaseSessionManager) -> None:
    bus = sql_bus(pg, SqlAlchemyOutbox(make_registry()))
    for _ in range(3):
        await bus.handle(OpenCounterFactory.build())
    policy = RetentionPolicy(outbox_age=timedelta(0), interval=0.05)
    relay = create_relay(pg.engine, publisher := RecordingPublisher(), retention=policy)

    running = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: len(publisher.sent) == 3, "the events published")
        await wait_until(lambda: outbox_is_empty(pg), "the published rows purged")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def outbox_is_empty(manager: DatabaseSessionManager) -> bool:
    async with manager.session() as session:
        count = await session.scalar(select(func.count()).select_from(outbox_table))
    return count == 0


@pytest.mark.unit
def test_an_inbox_window_shorter_than_the_redelivery_horizon_is_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            inbox_retention_seconds=60, broker_claim_idle_ms=30_000, broker_max_deliveries=5
        )

    assert "INBOX_RETENTION_SECONDS (60) must exceed" in str(raised.value)
    assert "150 s" in str(raised.value)


async def test_publishing_trims_a_stream_to_about_stream_maxlen(
    redis_url: str, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    settings = load_settings(stream_maxlen=100)
    broker = RedisStreamsBroker(redis_url, prefix=stream_prefix, maxlen=settings.stream_maxlen)

    async with broker, asyncio.timeout(30):
        for number in range(1000):
            await broker.publish("trimmed", {"message_id": str(number), "type": "T"})

    # Approximate trimming drops whole radix-tree nodes (100 entries by default).
    assert int(await redis_client.xlen(stream_prefix + "trimmed")) <= 200
