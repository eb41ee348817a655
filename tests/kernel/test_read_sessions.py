"""Read-only units of work: no transaction around their reads, and no way to write through them.

``DatabaseSessionManager.read_session_factory`` backs every context's
``read_unit_of_work()`` (the GET routes). Its sessions run each statement in
autocommit, which saves the ``BEGIN`` and ``ROLLBACK`` round trips, and
refuse writes before they reach the database, where they would otherwise be
kept at once.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text

from adapters.database import DatabaseSessionManager, WriteInReadOnlySession
from adapters.settings import Settings
from entrypoints.bootstrap import bootstrap
from tests.conftest import DATABASE_FIXTURES, POSTGRESQL, SQLITE
from tests.kernel.things import Thing
from tests.kernel.things_orm import things
from tests.kernel.things_uow import SqlAlchemyThingUnitOfWork
from tests.support.databases import SqlDatabase

pytestmark = pytest.mark.integration


@pytest.fixture(params=[POSTGRESQL, SQLITE])
def database(request: pytest.FixtureRequest) -> SqlDatabase:
    found: SqlDatabase = request.getfixturevalue(DATABASE_FIXTURES[request.param])
    return found


def read_unit_of_work(database: SqlDatabase) -> SqlAlchemyThingUnitOfWork:
    return SqlAlchemyThingUnitOfWork(database.manager.read_session_factory)


async def count_things(database: SqlDatabase, name: str) -> int:
    async with database.manager.session() as session:
        found = await session.scalar(
            select(func.count()).select_from(things).where(things.c.name == name)
        )
    return int(found or 0)


async def committed_thing(database: SqlDatabase, name: str) -> Thing:
    thing = Thing(name)
    async with SqlAlchemyThingUnitOfWork(database.session_factory) as uow:
        uow.things.add(thing)
        await uow.commit()
    return thing


async def test_a_read_unit_of_work_reads_what_was_committed(database: SqlDatabase) -> None:
    thing = await committed_thing(database, "committed-for-reading")

    async with read_unit_of_work(database) as uow:
        found = await uow.things.get(thing.id)

    assert found is not None
    assert found.name == "committed-for-reading"


async def test_a_read_unit_of_work_runs_its_statements_outside_a_transaction(
    postgres_database: SqlDatabase,
) -> None:
    started = text("SELECT transaction_timestamp()")
    async with read_unit_of_work(postgres_database) as uow:
        first = await uow.session.scalar(started)
        second = await uow.session.scalar(started)

    # Inside one transaction both statements would report its start.
    assert first != second


async def test_an_aggregate_added_in_a_read_unit_of_work_is_refused_and_not_kept(
    database: SqlDatabase,
) -> None:
    async with read_unit_of_work(database) as uow:
        uow.things.add(Thing("written-through-a-reader"))
        with pytest.raises(WriteInReadOnlySession, match="read-only unit of work cannot write"):
            await uow.commit()

    assert await count_things(database, "written-through-a-reader") == 0


async def test_a_change_to_an_aggregate_read_in_a_read_unit_of_work_is_refused(
    database: SqlDatabase,
) -> None:
    thing = await committed_thing(database, "changed-through-a-reader")

    async with read_unit_of_work(database) as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.rename("renamed")
        with pytest.raises(WriteInReadOnlySession):
            await uow.commit()

    assert await count_things(database, "renamed") == 0


async def test_an_insert_statement_in_a_read_unit_of_work_is_refused_and_not_kept(
    database: SqlDatabase,
) -> None:
    row = {"id": Thing("x").id, "name": "inserted-through-a-reader", "count": 0, "version": 1}

    with pytest.raises(WriteInReadOnlySession, match="cannot run INSERT"):
        async with read_unit_of_work(database) as uow:
            await uow.session.execute(insert(things).values(**row))

    assert await count_things(database, "inserted-through-a-reader") == 0


@pytest.mark.parametrize(("pgbouncer", "isolation"), [(False, "AUTOCOMMIT"), (True, None)])
async def test_behind_pgbouncer_the_reads_keep_their_transaction(
    pgbouncer: bool, isolation: str | None
) -> None:
    # Outside a transaction, a transaction pooler may send a statement's prepare
    # and its execute to two different servers (tests/scaling/test_pgbouncer.py).
    settings = Settings(
        database_url="postgresql+asyncpg://keel@localhost/keel",
        keel_contexts="tests.catalog",
        db_pgbouncer=pgbouncer,
    )
    manager = DatabaseSessionManager()
    bootstrap(settings, manager=manager)
    try:
        bind = manager.read_session_factory.kw["bind"]
        assert bind.get_execution_options().get("isolation_level") == isolation
    finally:
        await manager.close()


async def test_a_read_on_an_in_memory_sqlite_database_never_commits_a_writer_in_flight() -> None:
    # One shared connection: switching it to autocommit would make the sqlite3
    # driver commit the writer's open transaction.
    manager = DatabaseSessionManager()
    manager.init("sqlite+aiosqlite://")
    try:
        async with manager.connect() as connection:
            await connection.run_sync(things.create)
        thing = Thing("never committed")
        async with SqlAlchemyThingUnitOfWork(manager.session_factory) as writer:
            writer.things.add(thing)
            await writer.session.flush()
            async with SqlAlchemyThingUnitOfWork(manager.read_session_factory) as reader:
                await reader.things.get(thing.id)
            await writer.rollback()

        async with manager.session() as session:
            stored = await session.scalar(select(func.count()).select_from(things))
        assert stored == 0
    finally:
        await manager.close()
