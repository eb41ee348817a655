"""The migrations make the outbox and inbox exactly as the messaging kernel maps them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.database import metadata
from adapters.migrate import alembic_config, schema_filters, upgrade_to_head_async
from tests.ledger.wiring import LEDGER_MIGRATIONS
from tests.support import postgres

pytestmark = pytest.mark.integration

MESSAGING_TABLES = {"outbox", "inbox"}


@pytest.fixture(params=["postgresql", "sqlite"])
async def migrated_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_dsn: str
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        await upgrade_to_head_async(url, LEDGER_MIGRATIONS)
        yield url
        return
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_msgmigrate")
    try:
        url = postgres.sqlalchemy_url(postgres_admin_dsn, name)
        await upgrade_to_head_async(url, LEDGER_MIGRATIONS)
        yield url
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)


def _differences(connection: Connection) -> list[Any]:
    include_name, include_object = schema_filters(MESSAGING_TABLES)
    context = MigrationContext.configure(
        connection,
        opts={
            "include_name": include_name,
            "include_object": include_object,
            "compare_type": True,
            # Alembic misreads SQLite's reflected DEFAULT '' (inbox.handler) as a
            # change, for a table made by create_all just the same; compare the
            # defaults where reflection is exact.
            "compare_server_default": connection.dialect.name == "postgresql",
        },
    )
    return list(compare_metadata(context, metadata))


async def _on(url: str, work: Callable[[Connection], Any]) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


async def test_the_migrated_outbox_and_inbox_match_the_mapped_tables(migrated_url: str) -> None:
    assert await _on(migrated_url, _differences) == []


async def test_downgrading_the_ledger_branch_leaves_the_kernels_outbox_and_inbox(
    migrated_url: str,
) -> None:
    def downgrade(connection: Connection) -> None:
        config = alembic_config(locations=LEDGER_MIGRATIONS)
        config.attributes["connection"] = connection
        command.downgrade(config, "ledger@base")

    await _on(migrated_url, downgrade)

    tables = await _on(migrated_url, lambda c: set(inspect(c).get_table_names()))
    assert set(MESSAGING_TABLES) <= tables
    assert "ledger_accounts" not in tables
