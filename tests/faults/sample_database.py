"""A database with the outbox, the inbox and the messaging tests' sample tables.

Messaging fault tests need one of their own: a relay publishes every pending
row it finds, so it must not share an outbox with anybody. Each actor of a
test (a writer, a relay, a consumer) gets a session manager of its own from
:class:`Actors`, whose connections carry a unique ``application_name`` that
the leak check watches.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text

from adapters.database import DatabaseSessionManager, metadata
from tests.faults.harness import LeakCheck, unique_application_name
from tests.messaging.conftest import TABLES
from tests.support import postgres


@contextlib.asynccontextmanager
async def sample_database(admin_dsn: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the server behind ``admin_dsn`` with the tables; its asyncpg URL."""
    name = await postgres.create_database(admin_dsn, prefix=prefix)
    url = postgres.sqlalchemy_url(admin_dsn, name)
    manager = DatabaseSessionManager()
    manager.init(url)
    try:
        async with manager.connect() as connection:
            await connection.run_sync(metadata.create_all, tables=TABLES)
        yield url
    finally:
        await manager.close()
        await postgres.drop_database(admin_dsn, name)


class Actors:
    """Session managers for one test's actors, each watched by ``leak_check``."""

    def __init__(self, url: str, admin_dsn: str, leak_check: LeakCheck) -> None:
        self.url = url
        self.admin_dsn = admin_dsn
        self.leak_check = leak_check
        self.managers: list[DatabaseSessionManager] = []

    def manager(self, actor: str) -> DatabaseSessionManager:
        name = unique_application_name(actor)
        manager = DatabaseSessionManager()
        manager.init(self.url, connect_args={"server_settings": {"application_name": name}})
        self.managers.append(manager)
        self.leak_check.watch(manager.engine, admin_dsn=self.admin_dsn, application_name=name)
        return manager

    async def close(self) -> None:
        """Leak-check, empty the tables for the next test, and dispose of every engine."""
        try:
            await self.leak_check.verify()
        finally:
            if self.managers:
                async with self.managers[0].connect() as connection:
                    names = ", ".join(table.name for table in TABLES)
                    await connection.execute(text(f"TRUNCATE {names}"))
            for manager in self.managers:
                await manager.close()


@contextlib.asynccontextmanager
async def actors(url: str, admin_dsn: str, leak_check: LeakCheck) -> AsyncIterator[Actors]:
    made = Actors(url, admin_dsn, leak_check)
    try:
        yield made
    finally:
        await made.close()
