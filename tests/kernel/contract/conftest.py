"""Units of work for the contract scenarios: every backend, async and sync.

Each scenario runs once per backend (``memory``, ``postgresql``, ``sqlite``)
and per flavour: ``async`` runs the async unit of work itself, ``sync`` runs
the synchronous one through :mod:`tests.kernel.contract.sync_driver`, so the
same scenarios prove both ports. ``memory`` variants carry the ``unit`` mark.

``uow_factory`` / ``part_uow_factory`` run inside savepoint isolation;
``committing_uow_factory`` commits for real (two units of work then are two
transactions) and is emptied afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from adapters.repository import InMemoryStore
from tests.conftest import MEMORY, POSTGRESQL, SYNC_DATABASE_FIXTURES, _database
from tests.kernel.contract.sync_driver import (
    PartsUnitOfWork,
    SyncPartsDriver,
    SyncThingsDriver,
    ThingsUnitOfWork,
)
from tests.kernel.parts_uow import (
    InMemoryPartUnitOfWork,
    InMemorySyncPartUnitOfWork,
    SqlAlchemyPartUnitOfWork,
    SqlAlchemySyncPartUnitOfWork,
)
from tests.kernel.things_uow import (
    InMemorySyncThingUnitOfWork,
    InMemoryThingUnitOfWork,
    SqlAlchemySyncThingUnitOfWork,
    SqlAlchemyThingUnitOfWork,
    ThingUnitOfWork,
)
from tests.support.databases import Backend, SqlDatabase, SyncSqlDatabase

Flavour = Literal["async", "sync"]
UowFactory = Callable[[], ThingsUnitOfWork]
PartUowFactory = Callable[[], PartsUnitOfWork]


@dataclass(frozen=True)
class Where:
    """Where one test's units of work keep their data, in one flavour."""

    flavour: Flavour
    store: InMemoryStore | None = None
    async_sessions: async_sessionmaker[AsyncSession] | None = None
    sync_sessions: sessionmaker[Session] | None = None

    def things(self) -> UowFactory:
        if self.async_sessions is not None:
            async_sessions = self.async_sessions
            return lambda: SqlAlchemyThingUnitOfWork(async_sessions)
        if self.sync_sessions is not None:
            sync_sessions = self.sync_sessions
            return lambda: SyncThingsDriver(SqlAlchemySyncThingUnitOfWork(sync_sessions))
        store = self.store
        if self.flavour == "async":
            return lambda: InMemoryThingUnitOfWork(store)
        return lambda: SyncThingsDriver(InMemorySyncThingUnitOfWork(store))

    def parts(self) -> PartUowFactory:
        if self.async_sessions is not None:
            async_sessions = self.async_sessions
            return lambda: SqlAlchemyPartUnitOfWork(async_sessions)
        if self.sync_sessions is not None:
            sync_sessions = self.sync_sessions
            return lambda: SyncPartsDriver(SqlAlchemySyncPartUnitOfWork(sync_sessions))
        store = self.store
        if self.flavour == "async":
            return lambda: InMemoryPartUnitOfWork(store)
        return lambda: SyncPartsDriver(InMemorySyncPartUnitOfWork(store))


@pytest.fixture(params=["async", "sync"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    chosen: Flavour = request.param
    return chosen


def _sync_twin(
    request: pytest.FixtureRequest, flavour: Flavour, database: SqlDatabase | None
) -> SyncSqlDatabase | None:
    # A sync fixture: only those may resolve fixtures by name.
    if flavour == "async" or database is None:
        return None
    twin: SyncSqlDatabase = request.getfixturevalue(SYNC_DATABASE_FIXTURES[database.name])
    return twin


@pytest.fixture
def _isolated_twin(
    request: pytest.FixtureRequest, flavour: Flavour, _backend_database: SqlDatabase | None
) -> SyncSqlDatabase | None:
    return _sync_twin(request, flavour, _backend_database)


@pytest.fixture
def _committing_twin(
    request: pytest.FixtureRequest, flavour: Flavour, _committing_database: SqlDatabase | None
) -> SyncSqlDatabase | None:
    return _sync_twin(request, flavour, _committing_database)


@pytest.fixture
async def isolated_where(
    flavour: Flavour,
    _backend_database: SqlDatabase | None,
    _isolated_twin: SyncSqlDatabase | None,
) -> AsyncIterator[Where]:
    if _backend_database is None:
        yield Where(flavour, store=InMemoryStore())
        return
    if _isolated_twin is None:
        async with _backend_database.isolated() as async_sessions:
            yield Where(flavour, async_sessions=async_sessions)
        return
    await _backend_database.ensure_schema()
    with _isolated_twin.isolated() as sync_sessions:
        yield Where(flavour, sync_sessions=sync_sessions)


@pytest.fixture
async def committing_where(
    flavour: Flavour,
    _committing_database: SqlDatabase | None,
    _committing_twin: SyncSqlDatabase | None,
) -> AsyncIterator[Where]:
    if _committing_database is None:
        yield Where(flavour, store=InMemoryStore())
        return
    await _committing_database.ensure_schema()
    try:
        if _committing_twin is None:
            yield Where(flavour, async_sessions=_committing_database.session_factory)
        else:
            yield Where(flavour, sync_sessions=_committing_twin.session_factory)
    finally:
        await _committing_database.empty()


@pytest.fixture
def uow_factory(isolated_where: Where) -> UowFactory:
    return isolated_where.things()


@pytest.fixture
def part_uow_factory(isolated_where: Where) -> PartUowFactory:
    return isolated_where.parts()


@pytest.fixture
def committing_uow_factory(committing_where: Where) -> UowFactory:
    return committing_where.things()


@pytest.fixture
def committing_part_uow_factory(committing_where: Where) -> PartUowFactory:
    return committing_where.parts()


@pytest.fixture(params=[MEMORY, POSTGRESQL])
def _row_locking_database(request: pytest.FixtureRequest) -> SqlDatabase | None:
    return _database(request)


@pytest.fixture
async def row_locking_uow_factory(
    _row_locking_database: SqlDatabase | None,
) -> AsyncIterator[AsyncUowFactory]:
    """The committing factory on the backends whose writers lock rows, not the whole
    database (the fake and PostgreSQL): on SQLite a second writer cannot commit while
    the first holds uncommitted writes, so races that need that cannot be staged there."""
    database = _row_locking_database
    if database is None:
        store = InMemoryStore()
        yield lambda: InMemoryThingUnitOfWork(store)
        return
    await database.ensure_schema()
    try:
        yield lambda: SqlAlchemyThingUnitOfWork(database.session_factory)
    finally:
        await database.empty()


AsyncUowFactory = Callable[[], ThingUnitOfWork]
"""For the scenarios about what only the async port has: commit hooks, events, savepoints."""


@pytest.fixture
def async_uow_factory(backend: Backend) -> AsyncUowFactory:
    return backend.unit_of_work(SqlAlchemyThingUnitOfWork, InMemoryThingUnitOfWork)


@pytest.fixture
def async_committing_uow_factory(committing_backend: Backend) -> AsyncUowFactory:
    return committing_backend.unit_of_work(SqlAlchemyThingUnitOfWork, InMemoryThingUnitOfWork)
