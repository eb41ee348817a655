"""The sync test harness's savepoint isolation: code under test commits, nothing persists.

``join_transaction_mode="create_savepoint"`` on a connection whose outer
transaction the fixture rolls back, as on the async side.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.kernel.factories import ThingFactory
from tests.kernel.things import Thing
from tests.kernel.things_uow import SqlAlchemySyncThingUnitOfWork
from tests.support.databases import SqlDatabase, SyncSqlDatabase

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def databases(request: pytest.FixtureRequest) -> tuple[SqlDatabase, SyncSqlDatabase]:
    prefix = "postgres" if request.param == "postgresql" else "sqlite"
    database: SqlDatabase = request.getfixturevalue(f"{prefix}_database")
    twin: SyncSqlDatabase = request.getfixturevalue(f"sync_{prefix}_database")
    return database, twin


def things_committed(twin: SyncSqlDatabase) -> int:
    with twin.manager.session() as session:
        return session.execute(select(func.count()).select_from(Thing)).scalar_one()


async def test_a_commit_inside_isolation_is_seen_inside_and_gone_after(
    databases: tuple[SqlDatabase, SyncSqlDatabase],
) -> None:
    database, twin = databases
    await database.ensure_schema()
    # The session's shared database may hold rows that other modules committed.
    before = things_committed(twin)

    with twin.isolated() as sessions:
        with SqlAlchemySyncThingUnitOfWork(sessions) as uow:
            uow.things.add(ThingFactory.build())
            uow.commit()
        with SqlAlchemySyncThingUnitOfWork(sessions) as uow:
            assert uow.things.count() == before + 1

    assert things_committed(twin) == before
