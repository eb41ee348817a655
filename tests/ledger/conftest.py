"""Units of work for the ledger tests.

Unit tests get ``uow`` (an ``InMemoryLedgerUnitOfWork`` over a fresh store)
or ``uow_factory`` (several units of work sharing that store, as concurrent
requests of one process would).

Integration tests get ``sql_uow_factory``, parametrised over PostgreSQL and
SQLite. Each backend is a database of the ledger's own for the whole run,
built by the real migrations (not ``create_all``), and dropped afterwards.
Tests commit for real and isolate themselves by opening fresh accounts and
using fresh references, as clients of a shared service do; nothing is rolled
back between them. ``postgres_uow_factory`` is the PostgreSQL one alone, for
concurrency tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from adapters.database import DatabaseSessionManager
from adapters.ledger.orm import start_mappers
from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork, SqlAlchemyLedgerUnitOfWork
from adapters.migrate import upgrade_to_head_async
from adapters.repository import InMemoryStore
from adapters.settings import Settings
from tests.ledger.wiring import LEDGER_MIGRATIONS
from tests.scaling.conftest import unavailable
from tests.support import postgres
from tests.support.pgbouncer import find_binary, running_pgbouncer

# Mapping is the composition root's job (bootstrap starts every context's
# mappers once); these tests build units of work by hand, so they do it here.
start_mappers()

SqlUowFactory = Callable[[], SqlAlchemyLedgerUnitOfWork]
MemoryUowFactory = Callable[[], InMemoryLedgerUnitOfWork]


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def uow(store: InMemoryStore) -> InMemoryLedgerUnitOfWork:
    return InMemoryLedgerUnitOfWork(store)


@pytest.fixture
def uow_factory(store: InMemoryStore) -> MemoryUowFactory:
    return lambda: InMemoryLedgerUnitOfWork(store)


@pytest.fixture(scope="session")
async def ledger_postgres(postgres_admin_dsn: str) -> AsyncIterator[DatabaseSessionManager]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_ledger")
    url = postgres.sqlalchemy_url(postgres_admin_dsn, name)
    manager = DatabaseSessionManager()
    try:
        await upgrade_to_head_async(url, LEDGER_MIGRATIONS)
        # Room for the concurrency tests' many simultaneous units of work.
        manager.init(url, pool_size=10, max_overflow=10, pool_timeout=60)
        yield manager
    finally:
        await manager.close()
        await postgres.drop_database(postgres_admin_dsn, name)


@pytest.fixture(scope="session")
async def ledger_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DatabaseSessionManager]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
    await upgrade_to_head_async(url, LEDGER_MIGRATIONS)
    manager = DatabaseSessionManager()
    manager.init(url)
    try:
        yield manager
    finally:
        await manager.close()


@pytest.fixture(params=["postgresql", "sqlite"])
def sql_uow_factory(request: pytest.FixtureRequest) -> SqlUowFactory:
    # A sync fixture: only it may call getfixturevalue, which keeps the other
    # backend's database from being set up for a test that does not use it.
    fixture = {"postgresql": "ledger_postgres", "sqlite": "ledger_sqlite"}[request.param]
    manager: DatabaseSessionManager = request.getfixturevalue(fixture)
    return lambda: SqlAlchemyLedgerUnitOfWork(manager.session_factory)


@pytest.fixture(scope="session")
async def ledger_pgbouncer(
    postgres_admin_dsn: str, ledger_postgres: DatabaseSessionManager
) -> AsyncIterator[DatabaseSessionManager]:
    """The same database through a real PgBouncer in transaction mode (four server
    connections), with the settings ``DB_PGBOUNCER=true`` gives."""
    if find_binary() is None:
        unavailable("no pgbouncer binary; run ./scripts/services.sh")
    database = ledger_postgres.engine.url.database
    assert database is not None
    async with running_pgbouncer(postgres_admin_dsn, pool_size=4) as bouncer:
        url = bouncer.url(database)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            db_pgbouncer=True,
            db_pool_size=10,
            db_max_overflow=10,
            db_pool_timeout=60,
        )
        manager = DatabaseSessionManager()
        manager.init(url, **settings.engine_options())
        try:
            yield manager
        finally:
            await manager.close()


@pytest.fixture(params=["direct", "pgbouncer"])
def postgres_uow_factory(request: pytest.FixtureRequest) -> SqlUowFactory:
    """PostgreSQL, directly and through PgBouncer: the concurrency tests hold on both."""
    fixture = {"direct": "ledger_postgres", "pgbouncer": "ledger_pgbouncer"}[request.param]
    manager: DatabaseSessionManager = request.getfixturevalue(fixture)
    return lambda: SqlAlchemyLedgerUnitOfWork(manager.session_factory)
