"""Fixtures of the messaging tests.

- ``messaging_db``: a ``DatabaseSessionManager`` on a PostgreSQL database of
  its own (the relay publishes *every* pending row, so it must not share an
  outbox with other test packages), with the outbox, inbox and sample tables.
  ``pg`` hands it to one test and empties those tables afterwards.
- ``sqlite_db``: the same on a SQLite file.
- ``redis_url`` / ``stream_prefix``: the Redis at 127.0.0.1:6379 (or
  ``KEEL_TEST_REDIS_URL``) and a unique stream prefix per test, whose streams
  are deleted afterwards. Without Redis these tests skip — under CI they fail.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import Table, text

from adapters.database import DatabaseSessionManager, metadata
from adapters.inbox import inbox_table
from adapters.outbox import outbox_table
from tests.messaging.sample_orm import counters, notes
from tests.support import postgres

TABLES: list[Table] = [outbox_table, inbox_table, counters, notes]
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def _create_tables(manager: DatabaseSessionManager) -> None:
    async with manager.connect() as connection:
        await connection.run_sync(metadata.create_all, tables=TABLES)


@pytest.fixture(scope="session")
async def messaging_db(postgres_admin_dsn: str) -> AsyncIterator[DatabaseSessionManager]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_msgtest")
    manager = DatabaseSessionManager()
    manager.init(postgres.sqlalchemy_url(postgres_admin_dsn, name), pool_size=10)
    try:
        await _create_tables(manager)
        yield manager
    finally:
        await manager.close()
        await postgres.drop_database(postgres_admin_dsn, name)


@pytest.fixture
async def pg(messaging_db: DatabaseSessionManager) -> AsyncIterator[DatabaseSessionManager]:
    try:
        yield messaging_db
    finally:
        names = ", ".join(table.name for table in TABLES)
        async with messaging_db.connect() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))


@pytest.fixture
async def sqlite_db(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DatabaseSessionManager]:
    path = tmp_path_factory.mktemp("msgtest") / "messaging.db"
    manager = DatabaseSessionManager()
    manager.init(f"sqlite+aiosqlite:///{path}")
    try:
        await _create_tables(manager)
        yield manager
    finally:
        await manager.close()


@pytest.fixture(scope="session")
async def redis_url() -> str:
    url = os.environ.get("KEEL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        message = f"no Redis answers at {url}: {type(exc).__name__}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI never skips Redis tests)")
        pytest.skip(message)
    finally:
        await client.aclose()
    return url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def stream_prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    prefix = f"msgtest-{uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in redis_client.scan_iter(match=prefix + "*")]
        if keys:
            await redis_client.delete(*keys)
