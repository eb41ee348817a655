"""Real databases for integration tests, and the savepoint isolation around each test.

One :class:`SqlDatabase` per backend lives for the whole run. Its schema is
made with ``metadata.create_all`` from every table mapped at that point (and
topped up if a later test maps more). Each test then gets either

- :meth:`SqlDatabase.isolated`: a session factory bound to one connection
  whose outer transaction is rolled back after the test. Sessions join it
  with ``join_transaction_mode="create_savepoint"``, so code under test may
  call ``commit()`` — it releases a savepoint — and still nothing persists; or
- :attr:`SqlDatabase.session_factory`: the kernel's own factory with real
  commits, for tests that need two truly concurrent transactions (one shared
  outer transaction cannot hold those). :meth:`SqlDatabase.empty` deletes
  every row afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from adapters.database import DatabaseSessionManager, metadata
from adapters.repository import InMemoryStore
from adapters.sync_database import SyncDatabaseSessionManager
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.support import postgres

BackendName = Literal["memory", "postgresql", "sqlite"]
UowT = TypeVar("UowT", bound=AbstractUnitOfWork)


def emit_sqlite_begin(engine: AsyncEngine) -> None:
    """SQLAlchemy's documented recipe for real transactions on (aio)sqlite.

    In its legacy mode the sqlite3 driver sends no BEGIN before SELECT or
    SAVEPOINT, so a savepoint opened first becomes the outermost transaction
    and its RELEASE commits for good — the outer rollback of the isolation
    fixture would then undo nothing. Here SQLAlchemy sends BEGIN itself.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _driver_leaves_transactions_alone(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


class SqlDatabase:
    """One database for the test run, on one backend."""

    def __init__(self, name: Literal["postgresql", "sqlite"], url: str) -> None:
        self.name = name
        self.url = url
        self.manager = DatabaseSessionManager()
        self._isolation_manager: DatabaseSessionManager | None = None
        self._tables_created: set[str] = set()

    async def start(self) -> None:
        self.manager.init(self.url)
        if self.name == "sqlite":
            # A second engine for the isolated tests, so that the recipe does
            # not change what the committing tests see of the kernel's setup.
            self._isolation_manager = DatabaseSessionManager()
            self._isolation_manager.init(self.url)
            emit_sqlite_begin(self._isolation_manager.engine)
        await self.ensure_schema()

    async def close(self) -> None:
        if self._isolation_manager is not None:
            await self._isolation_manager.close()
        await self.manager.close()

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        """The kernel's own factory: sessions that really commit."""
        return self.manager.session_factory

    @property
    def isolation_engine(self) -> AsyncEngine:
        return (self._isolation_manager or self.manager).engine

    async def ensure_schema(self) -> None:
        """Create the tables mapped since the last call; cheap when there are none."""
        if set(metadata.tables) <= self._tables_created:
            return
        async with self.manager.connect() as connection:
            await connection.run_sync(metadata.create_all)
        self._tables_created = set(metadata.tables)

    @contextlib.asynccontextmanager
    async def isolated(self) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
        """Sessions inside one outer transaction that is rolled back at the end."""
        await self.ensure_schema()
        async with self.isolation_engine.connect() as connection:
            transaction = await connection.begin()
            try:
                yield async_sessionmaker(
                    bind=connection,
                    join_transaction_mode="create_savepoint",
                    expire_on_commit=False,
                    autoflush=True,
                )
            finally:
                if transaction.is_active:
                    await transaction.rollback()

    async def empty(self) -> None:
        """Delete every row of every mapped table, children first."""
        async with self.manager.connect() as connection:
            for table in reversed(metadata.sorted_tables):
                if table.name in self._tables_created:
                    await connection.execute(table.delete())


@dataclass(frozen=True)
class Backend:
    """Where a test's units of work keep their data: the fake's store or a database.

    ``unit_of_work(SqlCls, MemoryCls)`` gives a factory of units of work that
    all share this backend, as the units of work of one process would.
    """

    name: BackendName
    session_factory: async_sessionmaker[AsyncSession] | None = None
    store: InMemoryStore | None = None

    @property
    def is_sql(self) -> bool:
        return self.session_factory is not None

    def unit_of_work(
        self,
        sql: Callable[[async_sessionmaker[AsyncSession]], UowT],
        memory: Callable[[InMemoryStore], UowT],
    ) -> Callable[[], UowT]:
        session_factory, store = self.session_factory, self.store
        if session_factory is not None:
            return lambda: sql(session_factory)
        assert store is not None, "a Backend has either a session factory or a store"
        return lambda: memory(store)


def sync_url_of(url: str) -> str:
    """The synchronous driver's spelling of an async test database URL."""
    parsed = make_url(url)
    driver = "postgresql+psycopg" if parsed.get_backend_name() == "postgresql" else "sqlite"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def emit_sqlite_begin_sync(engine: Engine) -> None:
    """:func:`emit_sqlite_begin` for a synchronous engine."""

    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_alone(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


class SyncSqlDatabase:
    """The synchronous side of a :class:`SqlDatabase`: the same database, its own engine.

    The schema and ``empty()`` stay with the async side; call its
    ``ensure_schema()`` before using this one.
    """

    def __init__(self, database: SqlDatabase) -> None:
        self.database = database
        self.name = database.name
        self.url = sync_url_of(database.url)
        self.manager = SyncDatabaseSessionManager()
        self._isolation_manager: SyncDatabaseSessionManager | None = None

    def start(self) -> None:
        self.manager.init(self.url)
        if self.name == "sqlite":
            self._isolation_manager = SyncDatabaseSessionManager()
            self._isolation_manager.init(self.url)
            emit_sqlite_begin_sync(self._isolation_manager.engine)

    def close(self) -> None:
        if self._isolation_manager is not None:
            self._isolation_manager.close()
        self.manager.close()

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """The kernel's own sync factory: sessions that really commit."""
        return self.manager.session_factory

    @contextlib.contextmanager
    def isolated(self) -> Iterator[sessionmaker[Session]]:
        """Sessions inside one outer transaction that is rolled back at the end."""
        engine = (self._isolation_manager or self.manager).engine
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                yield sessionmaker(
                    bind=connection,
                    join_transaction_mode="create_savepoint",
                    expire_on_commit=False,
                    autoflush=True,
                )
            finally:
                if transaction.is_active:
                    transaction.rollback()


@contextlib.asynccontextmanager
async def own_postgres_database(admin_dsn: str, prefix: str) -> AsyncIterator[SqlDatabase]:
    """A PostgreSQL database made for the caller, its schema created, dropped after."""
    name = await postgres.create_database(admin_dsn, prefix=prefix)
    database = SqlDatabase("postgresql", postgres.sqlalchemy_url(admin_dsn, name))
    try:
        await database.start()
        yield database
    finally:
        await database.close()
        await postgres.drop_database(admin_dsn, name)
