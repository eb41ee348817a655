"""DatabaseSessionManager: lifecycle, configuration errors, and what ``session()`` guarantees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, event, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from adapters.database import (
    DatabaseConfigurationError,
    DatabaseSessionManager,
    SessionManagerNotInitialised,
)

pytestmark = pytest.mark.integration

PASSWORD = "s3cr3t-pa55"

own_metadata = MetaData()
parents = Table("parents", own_metadata, Column("id", Integer, primary_key=True))
children = Table(
    "children",
    own_metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_id", ForeignKey("parents.id"), nullable=False),
)


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[DatabaseSessionManager]:
    """A manager on a fresh SQLite file holding ``parents`` and ``children``."""
    manager = DatabaseSessionManager()
    manager.init(f"sqlite+aiosqlite:///{tmp_path / 'manager.db'}")
    async with manager.connect() as connection:
        await connection.run_sync(own_metadata.create_all)
    yield manager
    await manager.close()


async def count_parents(manager: DatabaseSessionManager) -> int:
    async with manager.session() as session:
        return len((await session.execute(select(parents))).all())


async def test_an_initialised_manager_runs_queries(manager: DatabaseSessionManager) -> None:
    async with manager.session() as session:
        assert (await session.execute(text("select 1"))).scalar_one() == 1


async def test_close_disposes_of_the_engine(manager: DatabaseSessionManager) -> None:
    await manager.close()

    assert not manager.is_initialised


async def test_close_twice_does_nothing(manager: DatabaseSessionManager) -> None:
    await manager.close()
    await manager.close()

    assert not manager.is_initialised


async def test_close_before_init_does_nothing() -> None:
    manager = DatabaseSessionManager()

    await manager.close()

    assert not manager.is_initialised


async def test_init_twice_is_refused(manager: DatabaseSessionManager) -> None:
    with pytest.raises(RuntimeError, match=r"init\(\) called twice; call 'await close\(\)' first"):
        manager.init("sqlite+aiosqlite://")


async def test_init_after_close_works_again(
    manager: DatabaseSessionManager, tmp_path: Path
) -> None:
    await manager.close()

    manager.init(f"sqlite+aiosqlite:///{tmp_path / 'again.db'}")

    async with manager.session() as session:
        assert (await session.execute(text("select 1"))).scalar_one() == 1


@pytest.mark.parametrize("member", ["engine", "session_factory"])
def test_use_before_init_says_to_call_init(member: str) -> None:
    with pytest.raises(SessionManagerNotInitialised, match=r"call session_manager\.init\(url\)"):
        getattr(DatabaseSessionManager(), member)


def test_session_before_init_says_to_call_init() -> None:
    with pytest.raises(SessionManagerNotInitialised, match=r"init\(url\)"):
        DatabaseSessionManager().session_factory()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"postgres ql://app:{PASSWORD}@db/app", "malformed"),
        (f"mysql+aiomysql://app:{PASSWORD}@db/app", "unsupported database driver 'mysql+aiomysql'"),
        (f"postgresql+psycopg2://app:{PASSWORD}@db/app", "use 'postgresql+asyncpg://'"),
        ("sqlite:///app.db", "use 'sqlite+aiosqlite://'"),
        (f"postgresql+asyncpg://app:{PASSWORD}@db:70000/app", "port out of range"),
        (f"postgresql+asyncpg://app:{PASSWORD}@db", "no database name"),
        ("", "database URL is empty"),
    ],
    ids=["malformed", "unknown", "sync-pg", "sync-sqlite", "port", "no-db", "empty"],
)
def test_a_bad_url_fails_at_init_naming_the_problem_without_the_password(
    url: str, problem: str
) -> None:
    with pytest.raises(DatabaseConfigurationError) as raised:
        DatabaseSessionManager().init(url)

    assert problem in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_a_bad_engine_option_fails_at_init_without_the_password() -> None:
    with pytest.raises(DatabaseConfigurationError) as raised:
        DatabaseSessionManager().init(f"postgresql+asyncpg://app:{PASSWORD}@db/app", pool_sise=5)

    assert "pool_sise" in str(raised.value)
    assert "postgresql+asyncpg://app:***@db/app" in str(raised.value)
    assert PASSWORD not in str(raised.value)


async def test_pool_options_pass_through_to_the_engine() -> None:
    manager = DatabaseSessionManager()
    manager.init("postgresql+asyncpg://app@db/app", pool_size=3, pool_timeout=7.5)
    try:
        pool = manager.engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool.timeout()) == (3, 7.5)
    finally:
        await manager.close()


async def test_sqlite_enforces_foreign_keys(manager: DatabaseSessionManager) -> None:
    async with manager.session() as session:
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await session.execute(insert(children).values(id=1, parent_id=404))


async def test_session_does_not_commit_by_itself(manager: DatabaseSessionManager) -> None:
    async with manager.session() as session:
        await session.execute(insert(parents).values(id=1))

    assert await count_parents(manager) == 0


async def test_session_rolls_back_and_reraises_on_an_exception(
    manager: DatabaseSessionManager,
) -> None:
    rollbacks: list[str] = []

    async def insert_then_fail() -> None:
        async with manager.session() as session:
            event.listen(session.sync_session, "after_rollback", lambda _: rollbacks.append("x"))
            await session.execute(insert(parents).values(id=1))
            raise LookupError

    with pytest.raises(LookupError):
        await insert_then_fail()

    assert rollbacks == ["x"]
    assert await count_parents(manager) == 0


async def test_session_closes_and_returns_its_connection(
    manager: DatabaseSessionManager,
) -> None:
    sessions: list[AsyncSession] = []

    async def insert_then_fail() -> None:
        async with manager.session() as session:
            sessions.append(session)
            await session.execute(insert(parents).values(id=1))
            raise LookupError

    with pytest.raises(LookupError):
        await insert_then_fail()

    assert not sessions[0].in_transaction()
    assert manager.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_connect_commits_on_success(manager: DatabaseSessionManager) -> None:
    async with manager.connect() as connection:
        await connection.execute(insert(parents).values(id=1))

    assert await count_parents(manager) == 1


async def test_expire_on_commit_is_off_so_objects_stay_readable(
    manager: DatabaseSessionManager,
) -> None:
    assert manager.session_factory.kw["expire_on_commit"] is False
