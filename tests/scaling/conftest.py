"""Fixtures of the scaling tests: a pooler in front of PostgreSQL, databases of their own.

- ``pgbouncer_or_fail``: turns a missing pgbouncer binary into a skip, or
  under CI (``CI`` set) a failure.
- ``things_database``: a database of this test's own on the test server,
  with the kernel's ``kernel_things`` table; yields its name.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

import tests.kernel.things_orm  # noqa: F401 - maps Thing
from adapters.database import metadata
from tests.support import postgres
from tests.support.pgbouncer import PgBouncerUnavailable, find_binary


def unavailable(message: str) -> None:
    """Skip, or fail under CI, where every server the tests need must be there."""
    if os.environ.get("CI"):
        pytest.fail(message + " (CI never skips the scaling tests)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pgbouncer_binary() -> None:
    if find_binary() is None:
        unavailable(str(PgBouncerUnavailable("no pgbouncer binary; run ./scripts/services.sh")))


async def create_things_table(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                metadata.create_all, tables=[metadata.tables["kernel_things"]]
            )
    finally:
        await engine.dispose()


@pytest.fixture
async def things_database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_scaling")
    try:
        await create_things_table(postgres.sqlalchemy_url(postgres_admin_dsn, name))
        yield name
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)
