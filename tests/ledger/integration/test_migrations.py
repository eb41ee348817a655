"""The Alembic migrations: they build exactly the mapped schema, on both backends.

Each test migrates a database of its own: other suites ``create_all`` every
mapped table on the shared ones, which is what these tests must not rely on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.database import DatabaseSessionManager, metadata
from adapters.migrate import (
    MigrationError,
    alembic_config,
    schema_filters,
    tables_defined_in,
    upgrade_to_head,
    upgrade_to_head_async,
)
from tests.ledger.wiring import LEDGER_MIGRATIONS
from tests.support import postgres

pytestmark = pytest.mark.integration

LEDGER_TABLES = tables_defined_in("adapters.ledger.tables")
REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["postgresql", "sqlite"])
async def fresh_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_dsn: str
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_migrate")
    try:
        yield postgres.sqlalchemy_url(postgres_admin_dsn, name)
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)


async def _on(url: str, work: Any) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[Any]:
    include_name, include_object = schema_filters(LEDGER_TABLES)
    context = MigrationContext.configure(
        connection,
        opts={
            "include_name": include_name,
            "include_object": include_object,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _revision(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def _head() -> set[str]:
    """The revisions a fully migrated database records: every head that is no other's dependency."""
    script = ScriptDirectory.from_config(alembic_config(locations=LEDGER_MIGRATIONS))
    heads = set(script.get_heads())
    needed = {
        revision.revision
        for head in heads
        for revision in script.revision_map.iterate_revisions((head,), "base")
        if revision.revision != head
    }
    return heads - needed


def _sync_revision(url: str) -> set[str]:
    revision: set[str] = asyncio.run(_on(url, _revision))
    return revision


def test_the_ledger_tables_are_the_ones_the_migrations_manage() -> None:
    assert {
        "ledger_accounts",
        "ledger_entries",
        "ledger_refusals",
        "ledger_transfers",
    } == LEDGER_TABLES


async def test_the_migrated_schema_matches_the_mapped_tables(fresh_url: str) -> None:
    await upgrade_to_head_async(fresh_url, LEDGER_MIGRATIONS)

    assert await _on(fresh_url, _differences) == []


async def test_upgrading_twice_leaves_the_database_at_head(fresh_url: str) -> None:
    await upgrade_to_head_async(fresh_url, LEDGER_MIGRATIONS)

    await upgrade_to_head_async(fresh_url, LEDGER_MIGRATIONS)

    assert await _on(fresh_url, _revision) == _head()


async def test_downgrading_to_base_removes_the_ledger_tables(fresh_url: str) -> None:
    await upgrade_to_head_async(fresh_url, LEDGER_MIGRATIONS)

    await _on(fresh_url, lambda c: command.downgrade(_config_on(c), "base"))

    assert not LEDGER_TABLES & await _on(fresh_url, _table_names)


def _config_on(connection: Connection) -> Any:
    config = alembic_config(locations=LEDGER_MIGRATIONS)
    config.attributes["connection"] = connection
    return config


async def test_the_database_refuses_a_negative_balance(fresh_url: str) -> None:
    await upgrade_to_head_async(fresh_url, LEDGER_MIGRATIONS)
    insert = text(
        "INSERT INTO ledger_accounts (id, owner, currency, balance, entry_count, created_at, "
        "version) VALUES (:id, 'x', 'EUR', -1, 0, CURRENT_TIMESTAMP, 1)"
    )

    with pytest.raises(IntegrityError, match="balance"):
        await _on(fresh_url, lambda c: c.execute(insert, {"id": "0" * 32}))


def test_the_blocking_upgrade_works_where_no_loop_runs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'blocking.db'}"

    upgrade_to_head(url, LEDGER_MIGRATIONS)

    assert _sync_revision(url) == _head()


async def test_an_in_memory_database_is_migrated_through_the_engine_holding_it() -> None:
    manager = DatabaseSessionManager()
    manager.init("sqlite+aiosqlite://")
    try:
        await upgrade_to_head_async(manager.engine, LEDGER_MIGRATIONS)

        async with manager.connect() as connection:
            assert await connection.run_sync(_table_names) >= LEDGER_TABLES
    finally:
        await manager.close()


async def test_the_blocking_upgrade_inside_a_loop_names_the_async_one(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="upgrade_to_head_async"):
        upgrade_to_head(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")


async def test_the_migration_logs_never_carry_the_password(
    postgres_admin_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_migrate")
    url = make_url(postgres.sqlalchemy_url(postgres_admin_dsn, name)).set(password="s3cret-pw")
    caplog.set_level(logging.DEBUG)
    try:
        await upgrade_to_head_async(url.render_as_string(hide_password=False), LEDGER_MIGRATIONS)
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)

    assert caplog.records
    assert all("s3cret-pw" not in str(vars(record)) for record in caplog.records)


async def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = "postgresql+asyncpg://app:s3cret-pw@127.0.0.1:1/ledger"

    with pytest.raises(MigrationError) as caught:
        await upgrade_to_head_async(url, LEDGER_MIGRATIONS)

    assert "s3cret-pw" not in str(caught.value)
    assert "app:***@127.0.0.1:1/ledger" in str(caught.value)


async def test_a_missing_database_is_named_without_its_password(postgres_admin_dsn: str) -> None:
    url = make_url(postgres.sqlalchemy_url(postgres_admin_dsn, "keel_no_such_db")).set(
        password="s3cret-pw"
    )

    with pytest.raises(MigrationError) as caught:
        await upgrade_to_head_async(url.render_as_string(hide_password=False), LEDGER_MIGRATIONS)

    assert "s3cret-pw" not in str(caught.value)
    assert "keel_no_such_db" in str(caught.value)


def test_the_alembic_environment_run_without_keels_configuration_says_how_to_run_it(
    tmp_path: Path,
) -> None:
    config = Config()
    config.set_main_option("script_location", str(REPOSITORY_ROOT / "adapters" / "alembic"))
    config.attributes["database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}"

    with pytest.raises(RuntimeError, match="keel migrate"):
        command.upgrade(config, "heads")


V1_ROWS = """
INSERT INTO ledger_accounts (id, owner, currency, balance, entry_count, created_at, version)
VALUES ('{a}', 'Alice', 'EUR', 70, 2, CURRENT_TIMESTAMP, 3),
       ('{b}', 'Bob', 'EUR', 30, 1, CURRENT_TIMESTAMP, 2);
INSERT INTO ledger_transfers (id, source_id, target_id, amount, currency, reference, created_at)
VALUES ('{t}', '{a}', '{b}', 30, 'EUR', 'tr-1', CURRENT_TIMESTAMP);
INSERT INTO ledger_entries
    (id, account_id, sequence, kind, amount, balance_after, reference, transfer_id, created_at)
VALUES ('{e1}', '{a}', 1, 'deposit', 100, 100, 'dep-1', NULL, CURRENT_TIMESTAMP),
       ('{e2}', '{a}', 2, 'transfer_out', 30, 70, 'tr-1', '{t}', CURRENT_TIMESTAMP),
       ('{e3}', '{b}', 1, 'transfer_in', 30, 30, 'tr-1', '{t}', CURRENT_TIMESTAMP)
"""


def _ids(url: str) -> dict[str, str]:
    from uuid import uuid4

    # SQLite stores sa.Uuid as 32 hex digits; PostgreSQL takes the dashed form.
    dashed = url.startswith("postgresql")
    return {
        name: str(uuid4()) if dashed else uuid4().hex for name in ("a", "b", "t", "e1", "e2", "e3")
    }


async def test_upgrading_a_v1_ledger_keeps_its_rows_and_leaves_their_owner_unassigned(
    fresh_url: str,
) -> None:
    ids = _ids(fresh_url)
    await _on(fresh_url, lambda c: command.upgrade(_config_on(c), "ledger_0001"))
    for statement in V1_ROWS.format(**ids).split(";"):
        await _on(fresh_url, lambda c, s=statement: c.execute(text(s)))

    await upgrade_to_head_async(fresh_url, LEDGER_MIGRATIONS)

    rows = await _on(
        fresh_url,
        lambda c: c.execute(
            text("SELECT owner, owner_subject, balance FROM ledger_accounts ORDER BY owner")
        ).all(),
    )
    assert [tuple(row) for row in rows] == [("Alice", None, 70), ("Bob", None, 30)]
    assert await _on(fresh_url, _differences) == []


async def test_after_the_upgrade_a_transfer_reference_is_unique_per_source_only(
    fresh_url: str,
) -> None:
    ids = _ids(fresh_url)
    await _on(fresh_url, lambda c: command.upgrade(_config_on(c), "ledger_0001"))
    for statement in V1_ROWS.format(**ids).split(";"):
        await _on(fresh_url, lambda c, s=statement: c.execute(text(s)))
    await upgrade_to_head_async(fresh_url, LEDGER_MIGRATIONS)
    insert = text(
        "INSERT INTO ledger_transfers (id, source_id, target_id, amount, currency, reference, "
        "created_at) VALUES (:id, :source, :target, 1, 'EUR', 'tr-1', CURRENT_TIMESTAMP)"
    )
    other = _ids(fresh_url)["t"]

    await _on(fresh_url, lambda c: c.execute(insert, {**_pair(ids, "b", "a"), "id": other}))

    with pytest.raises(IntegrityError):
        await _on(
            fresh_url,
            lambda c: c.execute(insert, {**_pair(ids, "a", "b"), "id": _ids(fresh_url)["t"]}),
        )


def _pair(ids: dict[str, str], source: str, target: str) -> dict[str, str]:
    return {"source": ids[source], "target": ids[target]}
