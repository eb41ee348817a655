"""Pooled connections are checked for life without a round trip (``adapters.liveness``).

A connection the server ended is known to asyncpg at once and replaced at
checkout; one that died silently (no word from the server) is caught by the
ping of a connection idle longer than ``ping_after_idle``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters import liveness
from adapters.database import create_engine_for
from tests.messaging.support import wait_until

pytestmark = pytest.mark.integration

DEADLINE = 5.0
"""How long the driver may take to notice a closed connection; never a judgement on speed."""

EngineMaker = Callable[..., AsyncEngine]


@pytest.fixture
async def make_engine(postgres_url: str) -> AsyncIterator[EngineMaker]:
    """Engines of one pooled connection on the test database, disposed of at the end."""
    made: list[AsyncEngine] = []

    def make(**options: Any) -> AsyncEngine:
        engine = create_engine_for(postgres_url, {"pool_size": 1, "max_overflow": 0}, **options)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(admin_dsn: str, pid: int) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def pooled_driver_connection(engine: AsyncEngine) -> Any:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return raw.driver_connection


async def test_a_connection_the_server_ended_is_replaced_before_use(
    make_engine: EngineMaker, postgres_admin_dsn: str
) -> None:
    engine = make_engine()
    first = await backend_pid(engine)
    driver = await pooled_driver_connection(engine)

    await terminate(postgres_admin_dsn, first)
    await wait_until(driver.is_closed, "asyncpg to notice the ended connection", DEADLINE)

    assert await backend_pid(engine) != first


async def test_a_connection_that_died_silently_is_caught_by_the_idle_ping(
    make_engine: EngineMaker, postgres_admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(ping_after_idle=0)
    first = await backend_pid(engine)
    monkeypatch.setattr(liveness, "is_closed", lambda _connection: False)  # as if no FIN came

    await terminate(postgres_admin_dsn, first)

    assert await backend_pid(engine) != first


async def test_without_the_idle_ping_a_silently_dead_connection_fails_its_request(
    make_engine: EngineMaker, postgres_admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(ping_after_idle=3600)
    first = await backend_pid(engine)
    monkeypatch.setattr(liveness, "is_closed", lambda _connection: False)

    await terminate(postgres_admin_dsn, first)

    with pytest.raises(DBAPIError):
        await backend_pid(engine)


@pytest.mark.unit
def test_a_negative_idle_threshold_is_refused() -> None:
    engine = create_engine_for("postgresql+asyncpg://keel@localhost/keel", {})

    with pytest.raises(ValueError, match="ping_after_idle must be >= 0"):
        liveness.watch(engine.sync_engine, ping_after_idle=-1)
