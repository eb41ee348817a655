"""Units of work over the ``Thing`` aggregate, on every backend the kernel supports.

``uow_factory`` runs inside savepoint isolation; ``committing_uow_factory``
commits for real (two units of work then are two transactions) and is
emptied afterwards. ``row_locking_uow_factory`` is the committing one on the
backends whose writers lock rows, not the whole database (the fake and
PostgreSQL): on SQLite a second writer cannot commit while the first holds
uncommitted writes, so races that need that cannot be staged there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from adapters.repository import InMemoryStore
from tests.conftest import MEMORY, POSTGRESQL, _database
from tests.kernel.things_uow import (
    InMemoryThingUnitOfWork,
    SqlAlchemyThingUnitOfWork,
    ThingUnitOfWork,
)
from tests.support.databases import Backend, SqlDatabase

UowFactory = Callable[[], ThingUnitOfWork]


@pytest.fixture
def uow_factory(backend: Backend) -> UowFactory:
    return backend.unit_of_work(SqlAlchemyThingUnitOfWork, InMemoryThingUnitOfWork)


@pytest.fixture
def committing_uow_factory(committing_backend: Backend) -> UowFactory:
    return committing_backend.unit_of_work(SqlAlchemyThingUnitOfWork, InMemoryThingUnitOfWork)


@pytest.fixture(params=[MEMORY, POSTGRESQL])
def _row_locking_database(request: pytest.FixtureRequest) -> SqlDatabase | None:
    return _database(request)


@pytest.fixture
async def row_locking_uow_factory(
    _row_locking_database: SqlDatabase | None,
) -> AsyncIterator[UowFactory]:
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
