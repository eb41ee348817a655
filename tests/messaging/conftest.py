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

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Table, text

from adapters.database import DatabaseSessionManager, metadata
from adapters.inbox import inbox_table
from adapters.outbox import outbox_table
from tests.messaging.sample_orm import counters, notes
from tests.support import postgres

TABLES: list[Table] = [outbox_table, inbox_table, counters, notes]


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
