"""The kernel's own migration branch: it stands without any bounded context."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.migrate import MigrationError, upgrade_to_head_async
from tests.catalog import context as catalog

pytestmark = pytest.mark.integration


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_the_kernel_branch_alone_makes_the_outbox_and_the_inbox(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kernel.db'}"

    await upgrade_to_head_async(url)

    assert await _tables(url) == {"alembic_version", "outbox", "inbox"}


async def test_a_database_at_a_removed_contexts_revision_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'removed.db'}"
    assert catalog.migrations is not None
    await upgrade_to_head_async(url, [catalog.migrations])

    with pytest.raises(MigrationError, match=r"'catalog_0001'.*DELETE FROM alembic_version"):
        await upgrade_to_head_async(url)
