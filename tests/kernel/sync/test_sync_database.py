"""The synchronous engine and ``SessionLocal``: URL checks, lifecycle, and ``session()``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, text

from adapters.database import DatabaseConfigurationError, SessionManagerNotInitialised
from adapters.sync_database import (
    SessionLocal,
    SyncDatabaseSessionManager,
    get_db,
    parse_sync_database_url,
    sync_session_manager,
)

PASSWORD = "s3cr3t-pa55"

own_metadata = MetaData()
rows = Table("kernel_sync_rows", own_metadata, Column("id", Integer, primary_key=True))


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[SyncDatabaseSessionManager]:
    manager = SyncDatabaseSessionManager()
    manager.init(f"sqlite:///{tmp_path / 'sync.db'}")
    own_metadata.create_all(manager.engine)
    yield manager
    manager.close()


def count_rows(manager: SyncDatabaseSessionManager) -> int:
    with manager.session() as session:
        return session.execute(select(func.count()).select_from(rows)).scalar_one()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "database URL is empty"),
        ("not a url", "database URL is malformed"),
        (f"postgresql+asyncpg://app:{PASSWORD}@db/app", "use 'postgresql\\+psycopg://'"),
        (f"postgresql://app:{PASSWORD}@db/app", "use 'postgresql\\+psycopg://'"),
        ("sqlite+aiosqlite:///x.db", "use 'sqlite://'"),
        ("mysql+pymysql://app@db/app", "unsupported synchronous database driver 'mysql\\+pymysql'"),
        (f"postgresql+psycopg://app:{PASSWORD}@db:70000/app", "port out of range"),
        (f"postgresql+psycopg://app:{PASSWORD}@db", "no database name"),
    ],
    ids=["empty", "malformed", "asyncpg", "bare-postgresql", "aiosqlite", "mysql", "port", "no-db"],
)
def test_an_unusable_url_is_refused_naming_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(DatabaseConfigurationError, match=message) as raised:
        parse_sync_database_url(url)

    assert PASSWORD not in str(raised.value)


@pytest.mark.unit
@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://app@db:5432/app", "sqlite://", "sqlite:///./keel.db"]
)
def test_the_synchronous_drivers_are_accepted(url: str) -> None:
    assert parse_sync_database_url(url).render_as_string() == url


@pytest.mark.integration  # imports psycopg: too slow for the unit loop
def test_engine_errors_never_show_the_password() -> None:
    manager = SyncDatabaseSessionManager()

    with pytest.raises(DatabaseConfigurationError) as raised:
        manager.init(f"postgresql+psycopg://app:{PASSWORD}@db/app", no_such_option=1)

    assert "***" in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.unit
def test_get_db_before_init_says_how_to_initialise() -> None:
    assert not sync_session_manager.is_initialised

    with pytest.raises(SessionManagerNotInitialised, match=r"sync_session_manager.init\(url\)"):
        next(get_db())


@pytest.mark.integration
def test_init_binds_session_local(tmp_path: Path) -> None:
    sync_session_manager.init(f"sqlite:///{tmp_path / 'bound.db'}")
    try:
        with SessionLocal() as session:
            assert session.execute(text("select 1")).scalar_one() == 1
    finally:
        sync_session_manager.close()


@pytest.mark.integration
def test_init_twice_is_refused(manager: SyncDatabaseSessionManager) -> None:
    with pytest.raises(RuntimeError, match="called twice"):
        manager.init("sqlite://")


@pytest.mark.integration
def test_close_twice_does_nothing(manager: SyncDatabaseSessionManager) -> None:
    manager.close()
    manager.close()

    assert not manager.is_initialised


@pytest.mark.integration
def test_session_rolls_back_and_reraises_on_error(manager: SyncDatabaseSessionManager) -> None:
    def insert_then_fail() -> None:
        with manager.session() as session:
            session.execute(insert(rows).values(id=1))
            raise LookupError

    with pytest.raises(LookupError):
        insert_then_fail()

    assert count_rows(manager) == 0


@pytest.mark.integration
def test_session_does_not_commit_by_itself(manager: SyncDatabaseSessionManager) -> None:
    with manager.session() as session:
        session.execute(insert(rows).values(id=1))

    assert count_rows(manager) == 0


@pytest.mark.integration
def test_sqlite_foreign_keys_are_enforced(manager: SyncDatabaseSessionManager) -> None:
    with manager.session() as session:
        assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
