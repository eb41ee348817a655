"""The ledger app on a database of its own, for fault tests that take the database away.

Each test gets a freshly migrated database (a restart or an outage must not
disturb the other fault tests' shared one) and an engine whose connections
carry a unique ``application_name``, so that the leak check
(:class:`tests.faults.harness.LeakCheck`) finds this test's sessions in
``pg_stat_activity`` and nobody else's. The app is driven in-process through
httpx's ASGITransport, as in ``tests/ledger/e2e``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from service_layer.unit_of_work import CommitHook
from tests.ledger.factories import OWNER
from tests.ledger.wiring import LEDGER_MIGRATIONS, with_hooks
from tests.support import postgres
from tests.support.tokens import bearer_for

BASE_URL = "http://testserver"


def with_port(dsn: str, port: int) -> str:
    """``dsn`` pointed at another port of the same host (e.g. a proxy in front of it)."""
    return make_url(dsn).set(port=port).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def migrated_database(admin_dsn: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the server behind ``admin_dsn``, at the newest schema; its name."""
    name = await postgres.create_database(admin_dsn, prefix=prefix)
    try:
        await upgrade_to_head_async(postgres.sqlalchemy_url(admin_dsn, name), LEDGER_MIGRATIONS)
        yield name
    finally:
        await postgres.drop_database(admin_dsn, name)


@dataclass
class Ledger:
    """A running ledger app, its container, and the HTTP client that drives it."""

    http: httpx.AsyncClient
    container: Container
    application_name: str

    @property
    def engine(self) -> AsyncEngine:
        return self.container.session_manager.engine


@contextlib.asynccontextmanager
async def running_ledger(
    database_url: str, name: str, *, hooks: Sequence[CommitHook] = (), **settings: Any
) -> AsyncIterator[Ledger]:
    """The app over ``database_url``; ``settings`` override the defaults of :class:`Settings`.

    ``hooks`` join every unit of work the routes use, after the outbox: a
    test's way to stop a request inside its transaction, just before COMMIT.
    """
    configured = Settings(database_url=database_url, db_application_name=name, **settings)
    manager = DatabaseSessionManager()
    container = bootstrap(configured, manager=manager)
    if hooks:
        container = with_hooks(container, hooks)
    try:
        app = create_app(container=container)
        async with (
            LifespanManager(app) as running,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=running.app),
                base_url=BASE_URL,
                headers=bearer_for(OWNER.subject),
            ) as http,
        ):
            yield Ledger(http, container, name)
    finally:
        await manager.close()


async def sessions_of(admin_dsn: str, name: str, *, state_like: str = "%") -> list[str]:
    """``pid: state`` of every session of ``application_name`` ``name`` on the server."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid, coalesce(state, '') AS state FROM pg_stat_activity"
            " WHERE application_name = $1 AND coalesce(state, '') LIKE $2",
            name,
            state_like,
        )
    finally:
        await connection.close()
    return [f"{row['pid']}: {row['state']}" for row in rows]
