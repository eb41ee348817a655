"""SQL bind parameters — owners, references — stay out of error messages and logs by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from adapters.database import DatabaseSessionManager
from adapters.settings import load_settings

pytestmark = pytest.mark.integration

SECRET = "owner-alice-reference-rent-2026"


async def _failing_statement_error(tmp_path: Path, **overrides: object) -> str:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", **overrides)
    manager = DatabaseSessionManager()
    manager.init(settings.database_url, **settings.engine_options())
    try:
        async with manager.connect() as connection:
            await connection.execute(text("CREATE TABLE t (v TEXT UNIQUE)"))
            await connection.execute(text("INSERT INTO t VALUES (:v)"), {"v": SECRET})
            with pytest.raises(DBAPIError) as caught:
                await connection.execute(text("INSERT INTO t VALUES (:v)"), {"v": SECRET})
    finally:
        await manager.close()
    return str(caught.value)


async def test_a_failing_statement_does_not_show_its_parameters(tmp_path: Path) -> None:
    message = await _failing_statement_error(tmp_path)

    assert SECRET not in message
    assert "hidden" in message


async def test_db_log_parameters_shows_them_for_debugging(tmp_path: Path) -> None:
    assert SECRET in await _failing_statement_error(tmp_path, db_log_parameters=True)
