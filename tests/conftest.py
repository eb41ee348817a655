"""Fixtures shared by every test package.

- ``postgres_url``: an asyncpg SQLAlchemy URL of a database created for this
  run and dropped after it.
- ``sqlite_url``: a SQLite file in a temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import postgres


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    dsn = postgres.admin_dsn()
    if not await postgres.server_answers(dsn):
        message = f"no PostgreSQL server answers at {dsn}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI never skips PostgreSQL tests)")
        pytest.skip(message)
    name = await postgres.create_database(dsn)
    try:
        yield postgres.sqlalchemy_url(dsn, name)
    finally:
        await postgres.drop_database(dsn, name)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "keel-test.db"
    return f"sqlite+aiosqlite:///{path}"
